"""Which adapter serves an env id (`resolve_env`), and `make` / `expert_for` / `check_env_id`
for any id.

An id resolves, in this order, to:
- a family in the catalog (`catalog.FAMILIES`: the toolkit's own envs, `gym_pusht/PushT-v0`
  with the extra `pusht`, `robosuite/Lift` and `robosuite/Stack` with the extra `robosuite`),
  through the adapter its record names;
- `module:Class`, a gymnasium env class, or `module:Id`, an id the module registers when
  imported (what `--env-import my_pkg` writes), through the generic `GymAdapter`;
- any id registered with gymnasium, through `GymAdapter`.

A family's adapter module is imported only when its id is asked for: a missing extra is then the
family's one-sentence install hint, not an ImportError. Every error a user can cause here is a
`UserError` sentence, so the CLI can report it without a traceback.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import gymnasium

from ..errors import UserError
from .adapter import EnvAdapter
from .catalog import ENV_IDS, FAMILY_OF, KNOWN_IDS, PERTURBATION_LEVELS
from .family import EnvFamily, load_entry_point
from .gym_adapter import GymAdapter

__all__ = [
    "ENV_IDS",
    "PERTURBATION_LEVELS",
    "check_env_id",
    "expert_for",
    "make",
    "resolve_env",
]


def resolve_env(env_id: str) -> EnvAdapter:
    """The adapter of an env id (see the module docstring); one sentence when there is none."""
    if not isinstance(env_id, str) or not env_id:
        raise UserError(f"an env id must be a non-empty string, got {env_id!r}")
    if env_id in FAMILY_OF:
        return _family_adapter(FAMILY_OF[env_id])
    module_name, _, name = env_id.rpartition(":")
    if module_name:
        return _user_adapter(env_id, module_name, name)
    if env_id in gymnasium.registry:
        return GymAdapter(env_id, registered=env_id)
    raise UserError(
        f"unknown env {env_id!r}: not one of {', '.join(KNOWN_IDS)}, not module:Class, and not "
        "a registered gymnasium id (pass --env-import MODULE for an id a package registers)"
    )


def _family_adapter(family: EnvFamily) -> EnvAdapter:
    try:
        adapter_class = load_entry_point(family.adapter)
    except ImportError as error:
        # only a missing third-party module is the extra's absence; a broken module of ours is a bug
        if family.extra is None or (error.name or "").startswith("dopr_robot"):
            raise
        raise UserError(family.extra.hint) from None
    return adapter_class(family)


def _user_adapter(env_id: str, module_name: str, name: str) -> GymAdapter:
    """`module:Class` (a gymnasium env class) or `module:Id` (an id the module registers)."""
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise UserError(f"cannot import {module_name!r} for env {env_id!r}: {error}") from None
    target = getattr(module, name, None)
    if inspect.isclass(target) and issubclass(target, gymnasium.Env):
        return GymAdapter(env_id, env_class=target)
    if name not in gymnasium.registry:
        raise UserError(
            f"{module_name} has no gymnasium env class {name!r} and registers no id "
            f"{name!r}; pass --env module:Class or a registered id"
        )
    return GymAdapter(env_id, registered=name)


def check_env_id(env_id: str) -> None:
    """One sentence for an id no adapter knows (resolving it imports what it names)."""
    resolve_env(env_id)


def make(env_id: str, **kwargs: Any) -> gymnasium.Env:
    """An env of any id that speaks the adapter protocol; one sentence for a bad id or setting."""
    return resolve_env(env_id).make(**kwargs)


def expert_for(env_id: str, noise: float = 0.0, seed: int | None = None, **env_kwargs: Any):
    """The scripted expert of an env id; one sentence when it has none."""
    return resolve_env(env_id).expert(noise=noise, seed=seed, **env_kwargs)
