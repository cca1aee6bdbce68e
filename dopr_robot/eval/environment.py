"""Which env a checkpoint is evaluated in, and whether it can run the policy.

The env comes from the demonstrations the checkpoint was trained on: the collect settings a
`dopr-robot collect` store records, or the `env_args` a converted robomimic file kept
(`envs.robosuite_tasks.env_from_robomimic`), unless the eval config names one. Before anything is
written, one made env is probed against the policy: every observation key it reads, with its
shape, and the action size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config_io import moved_path
from ..envs.registry import resolve_env
from ..envs.robosuite_tasks import env_from_robomimic
from ..errors import UserError
from .config import EvalConfig


def resolve_environment(
    config: EvalConfig, train: dict, run: Path | None = None
) -> tuple[str, dict[str, Any]]:
    """The env id and make kwargs: as collected, unless the config says otherwise."""
    attrs: dict[str, Any] = {}
    try:
        from ..datasets import ReplayBuffer

        data = train["data"] if run is None else moved_path(train["data"], train["out"], run)
        attrs = dict(ReplayBuffer.open(data).attrs)
    except Exception:  # noqa: BLE001 - the store may be gone; then --env must say it
        attrs = {}
    collected = attrs.get("collect") or {}
    if not collected:
        try:
            collected = env_from_robomimic(attrs.get("env_args")) or {}
        except UserError:
            if config.env_id is None:
                raise
    env_id = config.env_id or collected.get("env_id")
    if env_id is None:
        raise UserError(
            "the checkpoint's demonstrations do not name their env (not collected by "
            "dopr-robot collect nor converted from a robomimic file with env_args, or moved); "
            "pass --env (and --perturbation)"
        )
    kwargs = dict(collected.get("env_kwargs", {})) if env_id == collected.get("env_id") else {}
    perturbation = config.perturbation
    if perturbation is None:
        perturbation = (
            collected.get("perturbation", 0.0) if env_id == collected.get("env_id") else 0.0
        )
    kwargs["perturbation"] = float(perturbation)
    kwargs.update(config.env_settings)
    return env_id, kwargs


def with_images_if_read(env_id: str, env_kwargs: dict[str, Any], policy) -> dict[str, Any]:
    """Turn on the env's camera observations when the policy reads an image (envs whose
    observations are their own, like a user's gymnasium env, have no such switch)."""
    reads_images = any(policy.shape_meta.is_image(k) for k in policy.config.obs_keys)
    if reads_images and resolve_env(env_id).has_image_switch:
        return {**env_kwargs, "image": True}
    return env_kwargs


def check_env_fits_policy(env_id: str, env_kwargs: dict[str, Any], policy, horizon: int) -> int:
    """One sentence when the env cannot run the policy (a missing or differently shaped
    observation key, another action size, or whatever the env itself lacks); returns the env's
    frame rate for videos."""
    probe = resolve_env(env_id).probe(**{**env_kwargs, "task_horizon": horizon})
    observed = probe.observation_shapes
    for key in policy.config.obs_keys:
        wanted = tuple(policy.shape_meta.obs[key])
        if key not in observed:
            raise UserError(
                f"the policy reads observation {key!r}, which {env_id} does not give "
                f"(it gives {sorted(observed)}); the store's keys do not match the env"
            )
        if observed[key] != wanted:
            raise UserError(
                f"the policy reads {key!r} of shape {list(wanted)}, {env_id} gives "
                f"{list(observed[key])}; the store's keys do not match the env"
            )
    if probe.action_shape != (policy.action_dim,):
        raise UserError(
            f"the policy acts in {policy.action_dim} dimensions, {env_id} takes "
            f"{list(probe.action_shape)}; the store's actions do not match the env"
        )
    return probe.render_fps
