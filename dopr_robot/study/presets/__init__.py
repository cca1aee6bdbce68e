"""The study presets (quick, default, full) as package data; read with importlib.resources."""
