"""Recipes: the measured way to make a policy competent on a task (package data).

    dopr-robot collect --recipe pusht-flow --out demos/pusht.zarr
    dopr-robot train --recipe pusht-flow --data demos/pusht.zarr --out runs/pusht-flow

A recipe is a TOML file in this folder, `<name>.toml`, with the tables
- `[collect]`: `CollectConfig` fields, the demonstrations the recipe was measured with;
- `[train]` and `[policy]`: `TrainConfig` and `PolicyConfig` fields (flags and `--config` still
  override them);
- `[measured]`: what it reached and at what cost (`RecipeMeasurement`), as printed by
  `dopr-robot eval`, so a user knows what to expect before spending the minutes.
Every table is checked by its typed model when the recipe is loaded, so a shipped recipe that has
drifted from the code fails its test, not a user's run.
"""

from __future__ import annotations

from .recipe import RECIPE_PACKAGE, Recipe, RecipeMeasurement, load_recipe, recipe_names

__all__ = ["RECIPE_PACKAGE", "Recipe", "RecipeMeasurement", "load_recipe", "recipe_names"]
