"""The study's grid: cells, runs, where each lives on disk and the settings each trains with.

A cell is (task, policy kind, conditioning factor): the unit a verdict is given for. A run is one
training: a cell × optimizer × learning rate × training seed. Selection is nested:
- tuning runs: every lr of the grid × tuning seeds 0 .. T-1, evaluated on the validation
  episode seeds; they choose each optimizer's lr per cell and nothing else. When the chosen lr
  is at an end of its grid and beats its neighbour by more than one standard error, the grid
  of that (cell, optimizer) is extended by one point on that side, at most
  `MAX_GRID_EXTENSIONS` times (`summary.tune_with_extensions`);
- verdict runs: the chosen lr × fresh verdict seeds T .. T+V-1, evaluated on the test episode
  seeds (the verdict), and so are their earlier budget checkpoints (success vs training step).
No network that took part in the choice is in the verdict. Runs of the two optimizers of a pair
with the same seed share data order, sampling noise and initial weights (the trainer seeds all
three from it), so their difference is paired.

Layout under the study directory:
    study.json                      the settings the study was started with
    data/<task>.zarr                demonstrations (collected once, shared by every run)
    data/<task>-d<seed>.zarr        with data_seeds: verdict seed <seed>'s own demonstrations
    runs/<task>/<policy>-c<factor>/<optimizer>-lr<lr>-s<seed>/
        config.json, checkpoints/, metrics.jsonl     (the trainer's run directory)
        eval/validation/                             (tuning runs: the lr choice)
        eval/test/, eval/budget/step_NNNNNNN/        (verdict runs: verdict, budget axis)
    report.md, summary.json, plots/
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..envs.config import CollectConfig
from ..envs.registry import PERTURBATION_LEVELS
from ..policies import PolicyConfig
from ..train import RunDir, TrainConfig
from ..train.run_dir import checkpoint_name
from .config import StudyConfig, TaskSpec


@dataclass(frozen=True)
class Cell:
    task: str
    policy: str
    conditioning: float

    @property
    def key(self) -> str:
        return f"{self.task}/{self.policy}-c{self.conditioning:g}"

    @property
    def label(self) -> str:
        inputs = (
            "standardised inputs"
            if self.conditioning == 1
            else f"ill-conditioned inputs (x{self.conditioning:g})"
        )
        return f"{self.task} · {self.policy} · {inputs}"


@dataclass(frozen=True)
class Run:
    cell: Cell
    optimizer: str
    """the optimizer's label in the study config"""
    lr: float
    seed: int

    def directory(self, root: Path) -> Path:
        name = f"{self.optimizer}-lr{self.lr:g}-s{self.seed}"
        return (
            root
            / "runs"
            / self.cell.task
            / f"{self.cell.policy}-c{self.cell.conditioning:g}"
            / name
        )

    def validation_dir(self, root: Path) -> Path:
        return RunDir(self.directory(root)).eval_dir("validation")

    def test_dir(self, root: Path) -> Path:
        return RunDir(self.directory(root)).eval_dir("test")

    def budget_dir(self, root: Path, step: int) -> Path:
        return RunDir(self.directory(root)).eval_dir("budget") / checkpoint_name(step)


def compared_optimizers(config: StudyConfig) -> list[str]:
    """Every optimizer label that appears in a pair, in first-appearance order."""
    labels: list[str] = []
    for pair in config.pairs:
        labels += [label for label in pair if label not in labels]
    return labels


def cells(config: StudyConfig) -> list[Cell]:
    return [
        Cell(task.name, kind, float(factor))
        for task in config.tasks
        for kind in config.task_policies(task)
        for factor in config.conditioning
    ]


#: (cell key, optimizer) -> the lrs its tuning runs train: the study's grid, plus extensions
Grids = dict[tuple[str, str], list[float]]
MAX_GRID_EXTENSIONS = 2


def base_grids(config: StudyConfig) -> Grids:
    return {
        (cell.key, label): [float(lr) for lr in config.optimizers[label].lr]
        for cell in cells(config)
        for label in compared_optimizers(config)
    }


def extended_lr(grid: list[float], side: str) -> float:
    """One more lr beyond the `side` ("largest" / "smallest") end of a grid, at the grid's own
    geometric step there (×3 for a one-point grid), to 3 significant digits."""
    ordered = sorted(grid)
    if side == "largest":
        step = ordered[-1] / ordered[-2] if len(ordered) > 1 else 3.0
        return float(f"{ordered[-1] * step:.3g}")
    step = ordered[1] / ordered[0] if len(ordered) > 1 else 3.0
    return float(f"{ordered[0] / step:.3g}")


def tuning_runs(config: StudyConfig, grids: Grids | None = None) -> list[Run]:
    grids = grids or base_grids(config)
    return [
        Run(cell, label, float(lr), seed)
        for cell in cells(config)
        for label in compared_optimizers(config)
        for lr in grids[(cell.key, label)]
        for seed in config.tuning_seed_list
    ]


def verdict_runs(config: StudyConfig, chosen_lr: dict[tuple[str, str], float | None]) -> list[Run]:
    """Fresh seeds at each (cell key, optimizer)'s chosen lr; none where no lr could be chosen."""
    return [
        Run(cell, label, float(chosen_lr[(cell.key, label)]), seed)
        for cell in cells(config)
        for label in compared_optimizers(config)
        if chosen_lr.get((cell.key, label)) is not None
        for seed in config.verdict_seed_list
    ]


def task_of(config: StudyConfig, name: str) -> TaskSpec:
    return next(task for task in config.tasks if task.name == name)


#: with data_seeds, verdict seed s's demonstrations start at episode seed DATA_SEED_STRIDE · s:
#: disjoint from the shared set's (0, 1, ...) and from every other seed's while a set takes
#: fewer attempts than this, and far below the evaluation seeds (eval/seeds.py, 1,000,000 on)
DATA_SEED_STRIDE = 10_000


def data_seed(config: StudyConfig, run: Run) -> int | None:
    """The demonstration set a run trains on: its own seed's with data_seeds (verdict runs
    only), else None, the task's shared set."""
    if config.data_seeds and run.seed in config.verdict_seed_list:
        return run.seed
    return None


def data_path(root: Path, task: TaskSpec, seed: int | None = None) -> Path:
    name = task.name if seed is None else f"{task.name}-d{seed}"
    return root / "data" / f"{name}.zarr"


def collections(config: StudyConfig) -> list[tuple[TaskSpec, int | None]]:
    """Every demonstration set the study trains on: (task, data seed or None for the shared)."""
    seeds = config.verdict_seed_list if config.data_seeds else []
    return [(task, seed) for task in config.tasks for seed in [None, *seeds]]


def collect_config(task: TaskSpec, seed: int | None = None) -> CollectConfig:
    perturbation = task.perturbation
    if perturbation is None:
        perturbation = PERTURBATION_LEVELS.get(task.env_id, 0.0)
    return CollectConfig(
        env_id=task.env_id,
        task_horizon=task.collect_horizon,
        episodes=task.demos,
        noise=task.noise,
        perturbation=float(perturbation),
        image=task.image,
        env_kwargs=dict(task.env_kwargs),
        seed=0 if seed is None else DATA_SEED_STRIDE * seed,
    )


def run_configs(config: StudyConfig, root: Path, run: Run) -> tuple[TrainConfig, PolicyConfig]:
    """The trainer's settings for one run: study defaults < task overrides < the run's own."""
    task = task_of(config, run.cell.task)
    spec = config.optimizers[run.optimizer]
    train_values = config.train_values(task)
    train = TrainConfig.from_dict(
        {
            **train_values,
            "data": str(data_path(root, task, data_seed(config, run)).resolve()),
            "out": str(run.directory(root).resolve()),  # with data: both absolute, compared
            # relative to each other (differing_run_settings), so a study may move
            "optimizer": spec.name,
            "optimizer_kwargs": {**train_values.get("optimizer_kwargs", {}), **spec.kwargs},
            "lr": run.lr,
            "seed": run.seed,
            "checkpoint_every": config.checkpoint_every(task),  # the budget axis's checkpoints
        }
    )
    policy = PolicyConfig.from_dict(
        {
            **config.policy_values(task),
            "kind": run.cell.policy,
            "ill_conditioning": run.cell.conditioning,
        }
    )
    return train, policy
