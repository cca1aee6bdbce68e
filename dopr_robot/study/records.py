"""The study's summary as typed records: what `summary.summarise` returns, what summary.json
holds, and what the report, the figures and the README section read.

One set of models for both directions, so the file and the objects in memory cannot drift apart:
`summarise` builds a `StudySummary`, the runner writes it with `StudySummary.to_json`, and
`load_summary` reads summary.json back through validation (a malformed file is one sentence).

- **Horizons and budget steps are `int` keys.** JSON object keys are strings, so summary.json
  writes `"25"`; the models turn them back into 25 on read, and the report indexes with the same
  ints it got from `Cell.horizons` or `Cell.budget_steps`.
- **Older files stay readable.** Fields added after the report could first read a summary
  (`data_seeds`, `grid_extensions`) have the meaning a file without them had: `data_seeds`
  false, no grid extended. Keys the report always treated as optional (`steps`, `invocations`,
  an aggregate's `sooner`, a cell's `key`, a row's `lr_at_edge`) are optional here too. Unknown
  keys are ignored, so a file from a version that wrote more still loads.
- **Infinity and NaN are written as JSON's non-standard constants**, as `json.dumps` did (a
  censored speed-up interval reaches ∞), and read back.
- **Which fields exist depends on the record's state**, as before: an optimizer's row holds
  the verdict numbers only when `complete` (`TunedComplete`), a run the budget AUCs only in the
  verdict role (`VerdictRun`); unions discriminated by those fields keep the file's shape.

The verdict records of one comparison (`Sooner`, `Plateau`, `Better`, `Trend`) are the
dataclasses of `convergence.py`, validated as they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import UserError
from .convergence import Better, Plateau, Sooner, Trend

Interval = tuple[float, float]


class Record(BaseModel):
    """Frozen (a report never edits what it reads), extra keys ignored (older writers had some)."""

    model_config = ConfigDict(frozen=True, extra="ignore", ser_json_inf_nan="constants")


# ---- runs --------------------------------------------------------------------------------------
class TuningRun(Record):
    """What one tuning run produced (validation episodes only)."""

    cell: str
    optimizer: str
    lr: float
    seed: int
    role: Literal["tuning"]
    directory: str
    diverged: bool
    best_val_loss: float | None
    final_val_loss: float | None
    validation: dict[int, float] | None
    validation_auc: float | None
    test: dict[int, float] | None
    test_auc: float | None


class VerdictRun(TuningRun):
    """A verdict run: test episodes, and its test AUC at each budget checkpoint (None: not yet)."""

    role: Literal["verdict"]
    budget_auc: dict[int, float | None]


RunRecord = Annotated[TuningRun | VerdictRun, Field(discriminator="role")]


# ---- one optimizer in one cell -----------------------------------------------------------------
class LrPoint(Record):
    lr: float
    validation_auc: float | None


class TunedIncomplete(Record):
    """One optimizer in one cell: the lr choice, before every verdict run is evaluated."""

    optimizer: str
    lr: float | None
    validation_auc: float | None
    lr_grid: list[LrPoint] = []
    lr_at_edge: Literal["largest", "smallest"] | None = None
    complete: Literal[False]


class TunedComplete(TunedIncomplete):
    """...and, once every verdict run is evaluated, the verdict seeds' numbers at that lr."""

    lr: float
    complete: Literal[True]
    success_per_seed: dict[int, list[float]]
    success: dict[int, float]
    band: dict[int, Interval]
    auc_per_seed: list[float]
    auc: float
    h_at_half: float | None
    budget_auc_per_seed: dict[int, list[float]]
    budget_auc: dict[int, float]
    budget_band: dict[int, Interval]
    best_val_loss: float | None
    final_val_loss: float | None
    diverged: int
    test_dirs: list[str]


Tuned = Annotated[TunedIncomplete | TunedComplete, Field(discriminator="complete")]


# ---- one pair in one cell ----------------------------------------------------------------------
class Paired(Record):
    """The descriptive numbers of one paired comparison (`paired.PairedDifference`)."""

    n_pairs: int
    mean_base: float
    mean_candidate: float
    mean_difference: float
    ci_low: float
    ci_high: float
    wins: int
    ties: int
    losses: int
    sign_test_p: float
    permutation_p: float


class HorizonRow(Paired):
    task_horizon: int


class BudgetRow(Paired):
    step: int


class AucRow(Paired):
    """The final test AUC: the paired numbers and the "better" test's verdict."""

    verdict: str
    holm_p: float | None = None
    tests_in_family: int
    ci90: Interval
    margin: float


class Plateaus(Record):
    base: Plateau
    candidate: Plateau


class Comparison(Record):
    """One pair in one cell: descriptive rows per H and budget step, then the verdicts."""

    base: str
    candidate: str
    per_horizon: list[HorizonRow]
    budget: list[BudgetRow]
    auc: AucRow
    sooner: Sooner
    plateau: Plateaus
    better: Better
    trend: Trend


# ---- a cell ------------------------------------------------------------------------------------
class ScatterPoint(Record):
    optimizer: str
    lr: float
    seed: int
    final_val_loss: float
    validation_auc: float


class Scatter(Record):
    """Tuning runs: final validation loss vs validation AUC, and Spearman's rho (None: < 3)."""

    points: list[ScatterPoint]
    spearman: float | None


class Cell(Record):
    """One (task, policy, conditioning) cell: per optimizer, per pair, robustness, scatter."""

    key: str | None = None
    label: str
    task: str
    policy: str
    conditioning: float
    horizons: list[int]
    budget_steps: list[int]
    tuned: dict[str, Tuned]
    comparisons: list[Comparison]
    robustness: dict[str, dict[int, float] | None]
    val_loss_vs_success: Scatter


# ---- across cells ------------------------------------------------------------------------------
class SoonerAggregate(Record):
    verdicts: dict[str, int] = {}
    speedup_median: float | None = None
    speedup_ci: Interval | None = None
    speedup_pairs: int = 0


class Aggregate(Record):
    """One pair across its cells: probability of improvement, mean difference, verdict counts."""

    base: str
    candidate: str
    cells: int
    probability_of_improvement: float
    probability_of_improvement_ci: Interval
    mean_auc_difference: float
    mean_auc_difference_ci: Interval
    verdicts: dict[str, int]
    sooner: SoonerAggregate | None = None


class GridExtension(Record):
    cell: str
    optimizer: str
    added: list[float]


class Invocation(Record):
    """One `run_study` call (a line of invocations.jsonl): its wall time and where it went."""

    finished: str | None = None
    seconds: float
    stages: dict[str, float] = {}
    worker_seconds: dict[str, dict[str, float]] = {}


class StudySummary(Record):
    """Everything the report shows (summary.json)."""

    study: str
    tuning_seeds: list[int]
    verdict_seeds: list[int]
    data_seeds: bool = False  # written since issue 26 item 8; before, every run shared the data
    budget: list[float]
    steps: str | None = None
    cells: list[Cell]
    grid_extensions: list[GridExtension] = []  # written since grids were extended at an edge
    aggregate: list[Aggregate] = []
    diverged_runs: list[str]
    runs: list[RunRecord]
    seconds_this_invocation: float | None = None  # set by the runner, not by `summarise`
    stage_seconds_this_invocation: dict[str, float] | None = None
    invocations: list[Invocation] = []

    def to_json(self) -> str:
        """summary.json's text."""
        return self.model_dump_json(indent=2)


def load_summary(path: Path) -> StudySummary:
    """summary.json, validated; one sentence when it is not a study's summary."""
    try:
        return StudySummary.model_validate_json(Path(path).read_bytes())
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(map(str, first["loc"])) + ": " if first["loc"] else ""  # not JSON: none
        more = error.error_count() - 1
        also = f"; {more} more problem{'s' if more > 1 else ''}" if more else ""
        raise UserError(
            f"{path} is not a study summary this version can read ({where}{first['msg']}{also})"
        ) from None
