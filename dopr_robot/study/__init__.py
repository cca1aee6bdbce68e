"""The study: does DoPr change what the robot does? (`dopr-robot study`, `run_study`)

Demonstrations → trainings over optimizers × learning rates × paired seeds → closed-loop
evaluation across task horizons → a verdict per cell and H, tuned against tuned, with intervals
and the power the run had. See `runner` for the stages and `summary` for the rules.
"""

from .config import StudyConfig, load_study, preset_path
from .paired import PairedComparison, compare_paired
from .runner import run_study

__all__ = [
    "PairedComparison",
    "StudyConfig",
    "compare_paired",
    "load_study",
    "preset_path",
    "run_study",
]
