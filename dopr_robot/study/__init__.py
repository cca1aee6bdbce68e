"""The study: does DoPr change what the robot does? (`dopr-robot study`, `run_study`)

Demonstrations → tuning runs over optimizers × learning rates (they choose each lr) → fresh
verdict runs at the chosen lrs, paired by seed → closed-loop evaluation across task horizons and
training budgets → per cell two answers, "sooner" (time to a target) and "better" (only once
both optimizers have plateaued), each Holm-corrected, and one line across cells. See `runner`
for the stages, `summary`, `convergence`, `intervals` and `paired` for the rules, `records` for
what summary.json holds.
"""

from .config import StudyConfig, load_study, preset_path
from .convergence import CellVerdict, Curves, cell_verdicts
from .paired import describe_paired
from .records import StudySummary, load_summary
from .runner import run_study

__all__ = [
    "CellVerdict",
    "Curves",
    "StudyConfig",
    "StudySummary",
    "cell_verdicts",
    "describe_paired",
    "load_study",
    "load_summary",
    "preset_path",
    "run_study",
]
