"""dopr-robot: behaviour cloning with double preconditioning, evaluated closed-loop."""

__version__ = "0.1.0"
