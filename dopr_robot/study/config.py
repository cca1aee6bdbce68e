"""What a study runs, as one TOML file: tasks, policies, optimizers and their lr grids, seeds.

    name = "default"
    policies = ["flow", "regression"]
    tuning_seeds = 2                        # training seeds that choose the lr (0 .. 1)
    verdict_seeds = 10                      # fresh seeds at the chosen lr, tested (2 .. 11)
    budget = [0.25, 0.5, 1.0]               # verdict runs also tested at these fractions
    conditioning = [1.0, 30.0]              # PolicyConfig.ill_conditioning factors
    pairs = [["adamw", "dopr-adamw"]]       # [base, candidate]: each pair is one comparison
    margin = 0.1                            # δ of the plateau and equivalence rules (AUC)
    data_seeds = false                      # true: each verdict seed its own demonstrations
    [optimizers.adamw]
    lr = [3e-4, 1e-3]                       # the grid the lr is chosen from (tuning runs)
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

Presets ship inside the package, `dopr_robot/study/presets/<preset>.toml`. A file may start with
`extends = "<preset>"` and give only what differs (tables merge key by key; `[[tasks]]` and other
lists are replaced whole). Unknown keys, wrong types and out-of-range values are one sentence
each (typed models, `config_io`).
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from ..config_io import OrNone, StrictConfig, read_toml, validated
from ..errors import UserError
from ..optim import OPTIMIZER_NAMES
from ..policies import POLICY_KINDS, PolicyConfig
from ..train import TrainConfig
from ..train.config import check_optimizer_settings

PRESET_PACKAGE = "dopr_robot.study.presets"  # shipped inside the package (importlib.resources)
PRESETS = (
    "quick",
    "default",
    "long",
    "conditioning",
    "horizon",
    "full",
    "benchmarks",
    "benchmarks-cpu",
)


class OptimizerSpec(StrictConfig):
    """One optimizer setting of the study, under a label (the table key in TOML)."""

    label: str
    """the [optimizers.<label>] key"""
    name: str
    """the optimizer (default: the label)"""
    lr: list[float] = Field(min_length=1)
    """the grid the lr is chosen from (tuning runs, validation episode seeds)"""
    kwargs: dict[str, Any] = Field(default_factory=dict)
    """further optimizer settings, e.g. {gamma = 0.1}"""


class TaskSpec(StrictConfig):
    """One task family: how its demonstrations are collected and how it is evaluated."""

    name: str
    """the task's label in the report"""
    env_id: str
    """a registered env id"""
    demos: int = Field(ge=1)
    """demonstrations to collect"""
    collect_horizon: int = Field(ge=1)
    """H of the collected demonstrations"""
    horizons: list[int] = Field(min_length=1)
    """H values of the closed-loop sweep, increasing"""
    noise: float = Field(0.0, ge=0, allow_inf_nan=False)
    """σ of the expert's action noise while collecting"""
    perturbation: OrNone[float] = None
    """process noise; default ("none"): the family's documented level (envs.registry)"""
    image: bool = False
    """collect 96x96 images too (then add "image" to the policy's obs_keys)"""
    env_kwargs: dict[str, Any] = Field(default_factory=dict)
    """further make kwargs"""
    execute: OrNone[int] = None
    """actions executed per chunk in closed loop (default: the policy's Ta)"""
    validation_episodes: int = Field(20, ge=1)
    """episodes per H on the validation seeds (choosing the lr)"""
    test_episodes: int = Field(30, ge=1)
    """episodes per H on the test seeds (the verdict)"""
    policies: OrNone[list[str]] = None
    """this task's policy kinds (default: the study's)"""
    train: dict[str, Any] = Field(default_factory=dict)
    """TrainConfig fields for this task's runs (over the study's [train])"""
    policy: dict[str, Any] = Field(default_factory=dict)
    """PolicyConfig fields for this task's runs (over the study's [policy])"""


class StudyConfig(StrictConfig):
    """A whole study; see the module docstring for the TOML layout."""

    name: str
    """the study's name (its directory under runs/ by default)"""
    tasks: list[TaskSpec] = Field(min_length=1)
    """one [[tasks]] table per task family"""
    optimizers: dict[str, OptimizerSpec]
    """[optimizers.<label>] tables"""
    pairs: list[list[str]] = Field(min_length=1)
    """[base, candidate] labels: each pair is one comparison"""
    policies: list[str] = Field(default_factory=lambda: ["flow"], min_length=1)
    """policy kinds trained on every task (unless a task names its own)"""
    tuning_seeds: int = Field(2, ge=1)
    """training seeds 0 .. tuning_seeds-1 of every (optimizer, lr): they choose the lr on the
    validation episode seeds and take no part in the verdict"""
    verdict_seeds: int = Field(10, ge=2)
    """fresh training seeds (after the tuning ones) at each optimizer's chosen lr, paired across
    optimizers and evaluated on the test episode seeds: the verdict's data"""
    budget: list[float] = Field(default_factory=lambda: [0.25, 0.5, 1.0], min_length=1)
    """fractions of the training steps at which the verdict runs are also evaluated, on the
    test episode seeds like the verdict (success vs training step; 1.0 is the verdict's own
    evaluation); the runs checkpoint there (checkpoint_every is lowered to the greatest common
    divisor where needed)"""
    conditioning: list[float] = Field(default_factory=lambda: [1.0], min_length=1)
    """PolicyConfig.ill_conditioning factors"""
    metric: Literal["success", "score"] = "success"
    """what the verdict compares, as an AUC over H: success (the success rate) | score (the
    mean continuous score: PushT's coverage score, robosuite's shaped progress, the share of
    sub-goals; where success sits at 0 or 1 in most cells the score can still separate runs)"""
    margin: float = Field(0.1, gt=0, le=1)
    """δ, in units of the verdict metric's AUC: an optimizer has plateaued when the 95 % interval
    of its change over the last two budget checkpoints lies within ±δ, and two converged
    optimizers are "equivalent within ±δ" when the 90 % interval of their difference does (TOST
    at 0.05). A setting of the verdict, not of the runs: changing it retrains nothing"""
    data_seeds: bool = False
    """false: every run of a task trains on one demonstration set; true: each verdict seed s
    trains on its own set (`data/<task>-d<s>.zarr`, collected from episode seeds 10,000·s on),
    so the verdict's intervals cover the variation between demonstration sets as well as
    between training seeds (the tuning runs keep the shared set)"""
    train: dict[str, Any] = Field(default_factory=dict)
    """TrainConfig fields shared by every run"""
    policy: dict[str, Any] = Field(default_factory=dict)
    """PolicyConfig fields shared by every run"""
    workers: int = Field(2, ge=1)
    """parallel processes (each with cores / workers threads)"""
    videos: bool = True
    """a rollout video per H for the first training seed of each tuned optimizer"""
    video_episodes: int = Field(4, ge=1)
    """episodes per video"""
    eval_envs: int = Field(32, ge=1)
    """environments stepped together in evaluation (batched inference)"""
    expected_minutes: str = ""
    """what the preset is sized for, in words (shown in the report)"""
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    """where policies plan in closed-loop evaluation: auto (CUDA if available) | cpu | cuda[:N]
    (training's device is [train] device); not a setting of the results, so a resume may change
    it"""

    @property
    def tuning_seed_list(self) -> list[int]:
        return list(range(self.tuning_seeds))

    @property
    def verdict_seed_list(self) -> list[int]:
        return list(range(self.tuning_seeds, self.tuning_seeds + self.verdict_seeds))

    def train_steps(self, task: TaskSpec) -> int:
        return TrainConfig.from_dict(self.train_values(task)).steps

    def budget_steps(self, task: TaskSpec) -> list[int]:
        steps = self.train_steps(task)
        return sorted({max(1, round(fraction * steps)) for fraction in self.budget})

    def checkpoint_every(self, task: TaskSpec) -> int:
        """The task's checkpoint interval, lowered so that every budget step is a checkpoint."""
        every = TrainConfig.from_dict(self.train_values(task)).checkpoint_every
        return math.gcd(every, *self.budget_steps(task))

    def task_policies(self, task: TaskSpec) -> list[str]:
        return task.policies or self.policies

    def train_values(self, task: TaskSpec) -> dict[str, Any]:
        return {**self.train, **task.train}

    def policy_values(self, task: TaskSpec) -> dict[str, Any]:
        return {**self.policy, **task.policy}

    def check(self) -> None:
        if not self.tasks:
            raise UserError("a study needs at least one [[tasks]] table")
        names = [t.name for t in self.tasks]
        if len(set(names)) != len(names):
            raise UserError(f"task names must be unique, got {names}")
        self._check_optimizers()
        self._check_axes()
        for task in self.tasks:
            self._check_task(task)

    def _check_optimizers(self) -> None:
        for label, spec in self.optimizers.items():
            if spec.name not in OPTIMIZER_NAMES:
                raise UserError(
                    f"optimizer {label!r}: unknown name {spec.name!r}; "
                    f"expected one of {', '.join(OPTIMIZER_NAMES)}"
                )
            if not spec.lr or any(not (lr > 0 and math.isfinite(lr)) for lr in spec.lr):
                raise UserError(f"optimizer {label!r} needs a non-empty grid of lr > 0")
            # bad kwargs fail here, on a two-weight model, not in the hundredth run
            check_optimizer_settings(spec.name, spec.lr[0], spec.kwargs, f"optimizer {label!r}")

    def _check_axes(self) -> None:
        """The pairs, the budget fractions and the conditioning factors."""
        for pair in self.pairs:
            if len(pair) != 2 or any(p not in self.optimizers for p in pair):
                raise UserError(
                    f"pair {list(pair)} must name two [optimizers.*] tables "
                    f"(have {sorted(self.optimizers)})"
                )
        if any(not 0 < f <= 1 for f in self.budget) or sorted(set(self.budget)) != self.budget:
            raise UserError(f"budget fractions must be increasing and in (0, 1], got {self.budget}")
        for factor in self.conditioning:
            if not factor > 0:
                raise UserError(f"conditioning factors must be > 0, got {factor}")

    def _check_task(self, task: TaskSpec) -> None:
        from ..envs.registry import check_env_id

        check_env_id(task.env_id)
        if any(h < 1 for h in task.horizons) or sorted(set(task.horizons)) != task.horizons:
            raise UserError(f"task {task.name!r}: horizons must be increasing and >= 1")
        for kind in self.task_policies(task):
            if kind not in POLICY_KINDS:
                raise UserError(f"task {task.name!r}: unknown policy kind {kind!r}")
            # the run settings are checked now, not an hour in
            TrainConfig.from_dict(self.train_values(task), f"task {task.name!r} [train]")
            PolicyConfig.from_dict(
                {**self.policy_values(task), "kind": kind}, f"task {task.name!r} [policy]"
            )
        execute = task.execute
        if execute is not None:
            horizon = PolicyConfig.from_dict(self.policy_values(task)).action_horizon
            if not 1 <= execute <= horizon:
                raise UserError(f"task {task.name!r}: execute must be in 1..Ta={horizon}")


def study_from_dict(values: dict[str, Any], where: str = "study config") -> StudyConfig:
    """A checked StudyConfig from a TOML document (the optimizer tables' keys are their labels)."""
    values = dict(values)
    optimizers = values.get("optimizers")
    if isinstance(optimizers, dict):
        values["optimizers"] = {
            label: {"label": label, "name": label, **table} if isinstance(table, dict) else table
            for label, table in optimizers.items()
        }
    if "seeds" in values:  # renamed when selection and verdict got separate seeds
        raise UserError(
            f"{where}: 'seeds' was split into tuning_seeds (choose the lr) and verdict_seeds "
            "(fresh seeds at the chosen lr, the verdict's data); set those instead"
        )
    config = validated(StudyConfig, values, where)
    config.check()
    return config


def load_study(path: str | Path) -> StudyConfig:
    return study_from_dict(with_preset_base(read_toml(path, "study config"), str(path)), str(path))


def with_preset_base(values: dict[str, Any], where: str) -> dict[str, Any]:
    """`extends = "<preset>"`: the preset's settings, overridden by this file's (tables merged
    key by key, lists and values replaced), so a variant states only what differs."""
    if "extends" not in values:
        return values
    values = dict(values)
    base_name = values.pop("extends")
    if not isinstance(base_name, str):
        raise UserError(f"{where}: extends must name a preset, got {base_name!r}")
    base = read_toml(preset_path(base_name), "study config")
    if "extends" in base:
        raise UserError(f"{where}: preset {base_name!r} extends another; extend that one")
    return _merged(base, values)


def _merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def preset_path(preset: str) -> Path:
    """The preset's TOML, shipped as package data (so an installed wheel has it too)."""
    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r}; expected one of {', '.join(PRESETS)}")
    path = Path(str(resources.files(PRESET_PACKAGE).joinpath(f"{preset}.toml")))
    if not path.exists():
        raise UserError(
            f"preset file {path} is missing from the installed package; "
            "pass --config with a study TOML instead"
        )
    return path
