"""What `dopr-robot collect` collects, as a typed model; every field is recorded in the store's
attributes and compared again when a collection is resumed."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ..config_io import OrNone, StrictConfig
from .registry import resolve_env


class CollectConfig(StrictConfig):
    """What to collect."""

    env_id: str
    """a registered id, e.g. dopr_robot/ReachChain-v0"""
    task_horizon: int = Field(ge=1)
    """H: sub-goals (chains) or steps to survive (balance) per episode"""
    episodes: int = Field(ge=1)
    """episodes to store (successful ones, unless keep_failed)"""
    seed: int = Field(0, ge=0)
    """attempt k resets the env with seed + k"""
    noise: float = Field(0.0, ge=0, allow_inf_nan=False)
    """σ of Gaussian noise on the expert's actions (the expert corrects it)"""
    perturbation: float = Field(0.0, ge=0, allow_inf_nan=False)
    """process noise σ in the env (units per family)"""
    image: bool = False
    """also store 96x96 RGB observations under `image`"""
    keep_failed: bool = False
    """store every attempt, failed ones included"""
    env_kwargs: dict[str, Any] = Field(default_factory=dict)
    """further make settings, e.g. {"task": "reach-v3"} for MetaWorld"""
    expert: OrNone[str] = None
    """module:Class of a user's expert (an envs.experts.Expert subclass); default: the env's"""

    def check(self) -> None:
        """What types cannot say: the env resolves, makes and steps with these settings."""
        resolve_env(self.env_id).check(**self.make_kwargs())

    def make_kwargs(self) -> dict[str, Any]:
        return dict(
            task_horizon=self.task_horizon,
            perturbation=self.perturbation,
            image=self.image,
            **self.env_kwargs,
        )

    def attrs(self) -> dict[str, Any]:
        return {"collect": self.to_dict(), "env_id": self.env_id, "task_horizon": self.task_horizon}
