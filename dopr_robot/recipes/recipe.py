"""Loading a recipe (see the package docstring): typed, checked, one sentence when unknown."""

from __future__ import annotations

import tomllib
from importlib import resources
from typing import Any

from pydantic import Field

from ..config_io import StrictConfig, validated
from ..errors import UserError

RECIPE_PACKAGE = "dopr_robot.recipes"


class RecipeMeasurement(StrictConfig):
    """What the recipe reached, measured with `dopr-robot eval` on the test episode seeds."""

    episodes: int = Field(ge=1)
    """test episodes per H"""
    score: dict[str, float]
    """mean score per H (keys are H as text: "1", "2", "4")"""
    success: dict[str, float]
    """success rate per H"""
    train_minutes: float = Field(gt=0)
    """wall-clock minutes of the training run"""
    collect_minutes: float = Field(gt=0)
    """wall-clock minutes of `collect --recipe`"""
    machine: str
    """where it was measured (CPU, threads, what else ran)"""
    reference: str = ""
    """the field's published number for the same task, and its source"""


class Recipe(StrictConfig):
    """One recipe file."""

    name: str
    """the file's stem, set when loaded"""
    description: str
    """one line: task, policy, and what makes it work"""
    collect: dict[str, Any]
    """CollectConfig fields"""
    train: dict[str, Any] = Field(default_factory=dict)
    """TrainConfig fields (not data or out)"""
    policy: dict[str, Any] = Field(default_factory=dict)
    """PolicyConfig fields"""
    measured: RecipeMeasurement | None = None
    """what it reached; None while not measured"""

    def check(self) -> None:
        """Each table as its typed config: a recipe that drifted from the code is one sentence."""
        from ..envs.config import CollectConfig
        from ..policies import PolicyConfig
        from ..train import TrainConfig

        where = f"recipe {self.name!r}"
        CollectConfig.from_dict(self.collect, f"{where} [collect]")
        for key in ("data", "out"):
            if key in self.train:
                raise UserError(f"{where} [train] must not set {key!r} (the command line does)")
        TrainConfig.from_dict(self.train, f"{where} [train]")
        PolicyConfig.from_dict(self.policy, f"{where} [policy]")


def recipe_names() -> list[str]:
    folder = resources.files(RECIPE_PACKAGE)
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_recipe(name: str) -> Recipe:
    """The shipped recipe `name`, checked; one sentence naming the known ones when unknown."""
    known = recipe_names()
    if name not in known:
        raise UserError(f"unknown recipe {name!r}; known recipes: {', '.join(known)}")
    text = resources.files(RECIPE_PACKAGE).joinpath(f"{name}.toml").read_text()
    recipe = validated(Recipe, {"name": name, **tomllib.loads(text)}, f"recipe {name!r}")
    recipe.check()
    return recipe
