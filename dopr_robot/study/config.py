"""What a study runs, as one TOML file: tasks, policies, optimizers and their lr grids, seeds.

    name = "default"
    policies = ["flow", "regression"]
    seeds = 5                               # paired training seeds (0 .. seeds-1)
    conditioning = [1.0, 30.0]              # PolicyConfig.ill_conditioning factors
    pairs = [["adamw", "dopr-adamw"]]       # [base, candidate]: each pair is one comparison
    [optimizers.adamw]
    lr = [3e-4, 1e-3]                       # the grid the lr is chosen from (validation seeds)
    [optimizers.dopr-adamw]
    lr = [3e-4, 1e-3]
    kwargs = { gamma = 0.1 }                # optional; `name` picks the optimizer if the
                                            # entry's key is a label (e.g. "dopr-adamw-g0.3")
    [train]                                 # TrainConfig fields shared by every run
    [policy]                                # PolicyConfig fields shared by every run
    [[tasks]]                               # one table per task family
    name = "balance"
    env_id = "dopr_robot/Balance-v0"
    demos = 20
    collect_horizon = 300
    horizons = [30, 100, 300]
    execute = 2

Presets live in `configs/study/<preset>.toml` at the repository root. Unknown keys are errors.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..optim import OPTIMIZER_NAMES
from ..policies import POLICY_KINDS, PolicyConfig
from ..train import TrainConfig
from ..train.config import read_toml

PRESET_DIR = Path(__file__).resolve().parents[2] / "configs" / "study"
PRESETS = ("quick", "default", "full")


@dataclass
class OptimizerSpec:
    """One optimizer setting of the study, under a label (the table key in TOML)."""

    label: str
    name: str
    lr: list[float]
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class TaskSpec:
    """One task family: how its demonstrations are collected and how it is evaluated."""

    name: str
    env_id: str
    demos: int
    collect_horizon: int
    horizons: list[int]
    noise: float = 0.0
    """σ of the expert's action noise while collecting"""
    perturbation: float | None = None
    """process noise; default: the family's documented level (envs.registry)"""
    image: bool = False
    """collect 96x96 images too (then add "image" to the policy's obs_keys)"""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    execute: int | None = None
    """actions executed per chunk in closed loop (default: the policy's Ta)"""
    validation_episodes: int = 20
    test_episodes: int = 30
    policies: list[str] | None = None
    """this task's policy kinds (default: the study's)"""
    train: dict[str, Any] = field(default_factory=dict)
    policy: dict[str, Any] = field(default_factory=dict)


@dataclass
class StudyConfig:
    name: str
    tasks: list[TaskSpec]
    optimizers: dict[str, OptimizerSpec]
    pairs: list[tuple[str, str]]
    policies: list[str] = field(default_factory=lambda: ["flow"])
    seeds: int = 5
    conditioning: list[float] = field(default_factory=lambda: [1.0])
    train: dict[str, Any] = field(default_factory=dict)
    policy: dict[str, Any] = field(default_factory=dict)
    workers: int = 2
    """parallel processes (each with cores / workers threads)"""
    videos: bool = True
    """a rollout video per H for the first training seed of each tuned optimizer"""
    video_episodes: int = 4
    eval_envs: int = 32
    """environments stepped together in evaluation (batched inference)"""
    expected_minutes: str = ""
    """what the preset is sized for, in words (shown in the report)"""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def task_policies(self, task: TaskSpec) -> list[str]:
        return task.policies or self.policies

    def train_values(self, task: TaskSpec) -> dict[str, Any]:
        return {**self.train, **task.train}

    def policy_values(self, task: TaskSpec) -> dict[str, Any]:
        return {**self.policy, **task.policy}

    def check(self) -> None:
        if not self.tasks:
            raise UserError("a study needs at least one [[tasks]] table")
        if self.seeds < 1 or self.workers < 1:
            raise UserError("seeds and workers must be >= 1")
        names = [t.name for t in self.tasks]
        if len(set(names)) != len(names):
            raise UserError(f"task names must be unique, got {names}")
        for label, spec in self.optimizers.items():
            if spec.name not in OPTIMIZER_NAMES:
                raise UserError(
                    f"optimizer {label!r}: unknown name {spec.name!r}; "
                    f"expected one of {', '.join(OPTIMIZER_NAMES)}"
                )
            if not spec.lr or any(not (lr > 0 and math.isfinite(lr)) for lr in spec.lr):
                raise UserError(f"optimizer {label!r} needs a non-empty grid of lr > 0")
            _check_optimizer_settings(label, spec)
        if not self.pairs:
            raise UserError("pairs must name at least one [base, candidate] pair")
        for pair in self.pairs:
            if len(pair) != 2 or any(p not in self.optimizers for p in pair):
                raise UserError(
                    f"pair {list(pair)} must name two [optimizers.*] tables "
                    f"(have {sorted(self.optimizers)})"
                )
        for factor in self.conditioning:
            if not factor > 0:
                raise UserError(f"conditioning factors must be > 0, got {factor}")
        for task in self.tasks:
            self._check_task(task)

    def _check_task(self, task: TaskSpec) -> None:
        from ..envs.registry import check_env_id

        check_env_id(task.env_id)
        if task.demos < 1 or task.collect_horizon < 1 or not task.horizons:
            raise UserError(f"task {task.name!r}: demos, collect_horizon, horizons must be set")
        if any(h < 1 for h in task.horizons) or sorted(set(task.horizons)) != task.horizons:
            raise UserError(f"task {task.name!r}: horizons must be increasing and >= 1")
        if task.validation_episodes < 1 or task.test_episodes < 1:
            raise UserError(f"task {task.name!r}: episode counts must be >= 1")
        for kind in self.task_policies(task):
            if kind not in POLICY_KINDS:
                raise UserError(f"task {task.name!r}: unknown policy kind {kind!r}")
            try:  # the run settings are checked now, not an hour in
                TrainConfig.from_dict(self.train_values(task)).check()
                PolicyConfig.from_dict({**self.policy_values(task), "kind": kind}).check()
            except (TypeError, ValueError) as error:
                raise UserError(f"task {task.name!r}: {error}") from None
        execute = task.execute
        if execute is not None:
            horizon = PolicyConfig.from_dict(self.policy_values(task)).action_horizon
            if not 1 <= execute <= horizon:
                raise UserError(f"task {task.name!r}: execute must be in 1..Ta={horizon}")


def _check_optimizer_settings(label: str, spec: OptimizerSpec) -> None:
    """Bad optimizer kwargs fail here, on a two-weight model, not in the hundredth run."""
    import torch

    from ..optim import build_optimizer

    try:
        build_optimizer(spec.name, torch.nn.Linear(2, 2), lr=spec.lr[0], **spec.kwargs)
    except (TypeError, ValueError) as error:
        raise UserError(f"optimizer {label!r}: {error}") from None


def _known(values: dict, cls, where: str, extra: tuple[str, ...] = ()) -> None:
    names = {f.name for f in fields(cls)} - set(extra)
    unknown = sorted(set(values) - names)
    if unknown:
        raise UserError(f"{where}: unknown key(s) {unknown}; known: {sorted(names)}")


def study_from_dict(values: dict[str, Any], where: str = "study config") -> StudyConfig:
    values = dict(values)
    _known(values, StudyConfig, where)
    for required in ("name", "tasks", "optimizers", "pairs"):
        if required not in values:
            raise UserError(f"{where}: missing {required!r}")
    tasks = []
    for table in values.pop("tasks"):
        _known(table, TaskSpec, f"{where} [[tasks]]")
        try:
            tasks.append(TaskSpec(**table))
        except TypeError as error:
            raise UserError(f"{where} [[tasks]]: {error}") from None
    optimizers = {}
    for label, table in values.pop("optimizers").items():
        table = dict(table)
        _known(table, OptimizerSpec, f"{where} [optimizers.{label}]", extra=("label",))
        table.setdefault("name", label)
        if "lr" not in table:
            raise UserError(f"{where} [optimizers.{label}]: missing lr grid")
        optimizers[label] = OptimizerSpec(label=label, **table)
    pairs = [tuple(pair) for pair in values.pop("pairs")]
    config = StudyConfig(tasks=tasks, optimizers=optimizers, pairs=pairs, **values)
    config.check()
    return config


def load_study(path: str | Path) -> StudyConfig:
    return study_from_dict(read_toml(path, "study config"), str(path))


def preset_path(preset: str) -> Path:
    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r}; expected one of {', '.join(PRESETS)}")
    path = PRESET_DIR / f"{preset}.toml"
    if not path.exists():
        raise UserError(
            f"preset file {path} is missing (presets ship with the repository); "
            "pass --config with a study TOML instead"
        )
    return path
