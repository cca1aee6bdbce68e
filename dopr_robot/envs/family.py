"""The record of one env family the toolkit ships, and the adapter base made from such a record.

A family is everything the toolkit knows about one env id it ships (`EnvFamily`): the adapter
that serves it, the env class gymnasium registers under it (the toolkit's own envs), its
scripted expert and the make settings that expert also reads, what H counts, the documented
perturbation level, the observation keys, and the pip extra it needs. `catalog.py` holds one
record per family, and every table (ids, perturbation levels, the gymnasium registration, the
`dopr-robot envs` listing) is derived from those records, so a new family is one new record
(plus the modules it names).

Entry points are `module:Class` strings, not classes: the catalog then imports none of the
families' modules (an optional extra's module cannot be imported without the extra), and only
the family that is asked for is loaded.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any

from ..errors import UserError
from .adapter import HORIZON_KINDS, EnvAdapter


@dataclass(frozen=True)
class Extra:
    """A pip extra a family needs: `pip install "dopr-robot[name]"`."""

    name: str
    """the extra's name in pyproject.toml"""
    module: str
    """the top-level module it installs; whether it can be found says whether it is installed"""
    hint: str
    """the one sentence a user gets when it is missing"""

    def installed(self) -> bool:
        # find_spec locates a top-level module without importing it (no simulator starts)
        return importlib.util.find_spec(self.module) is not None


@dataclass(frozen=True)
class EnvFamily:
    """One env id the toolkit ships, and everything derived from it (see the module docstring)."""

    env_id: str
    """the id a user types (`--env`)"""
    name: str
    """a short name for listings"""
    horizon_kind: str
    """what H counts, one of adapter.HORIZON_KINDS"""
    counts: str
    """what one unit of H is, in words (for listings)"""
    adapter: str
    """module:Class of its EnvAdapter subclass, made with this record"""
    expert: str
    """module:Class of its scripted expert (an envs.experts.Expert)"""
    env: str | None = None
    """module:Class registered with gymnasium under env_id; None when the adapter builds the env"""
    perturbation: float | None = None
    """the documented process-noise level (see catalog.py); None: no perturbation setting"""
    extra: Extra | None = None
    """the pip extra it needs; None: it runs on the core install"""
    expert_settings: tuple[tuple[str, Any], ...] = ()
    """make settings the expert also takes, with their defaults (MetaWorld's `task`)"""
    observation_keys: tuple[str, ...] = ("state",)
    """store keys of its observations without images"""
    image_keys: tuple[str, ...] = ("image",)
    """store keys `image=True` adds"""

    def __post_init__(self) -> None:
        if self.horizon_kind not in HORIZON_KINDS:
            raise ValueError(f"{self.env_id}: horizon_kind must be one of {HORIZON_KINDS}")


def load_entry_point(entry_point: str) -> Any:
    """The object a `module:name` string names (importing the module)."""
    module_name, _, name = entry_point.partition(":")
    return getattr(importlib.import_module(module_name), name)


class FamilyAdapter(EnvAdapter):
    """Base of the adapters of the toolkit's families: id, what H counts and the expert come from
    the family's record."""

    def __init__(self, family: EnvFamily):
        super().__init__(family.env_id)
        self.family = family
        self.horizon_kind = family.horizon_kind

    def expert(self, noise: float = 0.0, seed: int | None = None, **settings: Any):
        expert_class = load_entry_point(self.family.expert)
        chosen = {key: settings.get(key, default) for key, default in self.family.expert_settings}
        try:
            return expert_class(noise=noise, seed=seed, **chosen)
        except ValueError as error:  # a bad noise level or task: the expert's own sentence
            raise UserError(str(error)) from None
