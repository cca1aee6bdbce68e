"""The study: does DoPr change what the robot does? (`dopr-robot study`, `run_study`)

Demonstrations → tuning runs over optimizers × learning rates (they choose each lr) → fresh
verdict runs at the chosen lrs, paired by seed → closed-loop evaluation across task horizons and
training budgets → one Holm-corrected verdict per cell with the power the rule had, and one line
across cells. See `runner` for the stages, `summary` and `paired` for the rules.
"""

from .config import StudyConfig, load_study, preset_path
from .paired import Headline, describe_paired, headline_verdicts
from .runner import run_study

__all__ = [
    "Headline",
    "StudyConfig",
    "describe_paired",
    "headline_verdicts",
    "load_study",
    "preset_path",
    "run_study",
]
