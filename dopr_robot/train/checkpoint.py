"""Checkpoints: a directory per step, written whole or not at all, loaded without unpickling.

    <run>/checkpoints/step_0001000/
        model.safetensors      live weights (normaliser included)
        ema.safetensors        EMA weights (when EMA is on)
        optimizer.pt           optimizer + LR schedule state; loaded with weights_only=True
        config.json            policy config, train config, data shapes, versions
        trainer_state.json     step, last losses

Where checkpoints live in a run, and their file names, are `run_dir.py`'s. The directory is
written under a temporary name and renamed when complete, so a crash never leaves a half
checkpoint, and `RunDir.latest_checkpoint` only ever sees finished ones. A file damaged
afterwards (a disk fault, a copy cut short) is a `BrokenCheckpoint` sentence naming the file;
`Trainer.resume` then sets that checkpoint aside as `step_<n>.broken` (never deleted, never
rewritten over) and resumes from the newest one that loads (`set_aside`).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from ..disk import writing
from ..errors import UserError
from ..policies import Policy, PolicyConfig, ShapeMeta, build_policy
from .run_dir import CONFIG, TRAINER_STATE, RunDir


def save_weights(module: torch.nn.Module, path: Path) -> None:
    """A module's state_dict as safetensors, each tensor once.

    A module registered under two names (robomimic's VisualCore holds its backbone both as
    `backbone` and inside `nets`) puts the same tensor in the state_dict twice. safetensors
    refuses shared tensors, and its own `save_model`/`load_model` work-around mis-pairs the 0-d
    BatchNorm counters. So each tensor is stored under its first name and the other names are
    recorded as aliases in the file's metadata.
    """
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple, str] = {}
    for name, tensor in module.state_dict().items():
        identity = (tensor.data_ptr(), tensor.dtype, tuple(tensor.shape), tuple(tensor.stride()))
        if tensor.numel() and identity in seen:
            aliases[name] = seen[identity]
            continue
        seen[identity] = name
        tensors[name] = tensor.detach().contiguous()
    save_file(tensors, str(path), metadata={"aliases": json.dumps(aliases)})


class BrokenCheckpoint(UserError):
    """A checkpoint file that is missing, cut short or not what it should be."""


def load_weights(module: torch.nn.Module, path: Path, device: str | torch.device = "cpu") -> None:
    """The inverse of `save_weights`: every name, aliases included, loaded strictly."""
    try:
        with safe_open(str(path), framework="pt") as file:
            aliases = json.loads((file.metadata() or {}).get("aliases", "{}"))
        tensors = load_file(str(path), device=str(device))
    except Exception as error:  # safetensors raises its own error type for a damaged file
        raise BrokenCheckpoint(f"{path} cannot be read ({error})") from None
    tensors.update({alias: tensors[name] for alias, name in aliases.items()})
    module.load_state_dict(tensors, strict=True)


def save_checkpoint(
    run: Path,
    step: int,
    policy: Policy,
    ema: torch.nn.Module | None,
    optimizer_state: dict[str, Any],
    config: dict[str, Any],
    trainer_state: dict[str, Any],
) -> Path:
    target = RunDir(run).checkpoint(step)
    previous = RunDir(run).latest_checkpoint()
    kept = (
        f"the newest complete checkpoint, {previous}, is intact; free space and rerun with --resume"
        if previous is not None
        else "no checkpoint had been written yet"
    )
    with writing(target, kept):
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_checkpoint(target, step, policy, ema, optimizer_state, config, trainer_state)
    return target


def _write_checkpoint(target, step, policy, ema, optimizer_state, config, trainer_state) -> None:
    """Everything into a temporary directory, renamed to `target` only once complete."""
    work = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.partial")
    work.mkdir()
    try:
        save_weights(policy, work / "model.safetensors")
        if ema is not None:
            save_weights(ema, work / "ema.safetensors")
        torch.save(optimizer_state, work / "optimizer.pt")
        (work / CONFIG).write_text(json.dumps(config, indent=2))
        (work / TRAINER_STATE).write_text(json.dumps({"step": step, **trainer_state}))
        if target.exists():  # rewriting the same step (a resumed run reaching it again)
            shutil.rmtree(target)
        os.replace(work, target)
    finally:
        if work.exists():
            shutil.rmtree(work)


def set_aside(checkpoint: Path) -> Path:
    """Rename a broken checkpoint out of the way (`step_<n>.broken`, `.broken-2`, ...): kept for
    a look, invisible to `RunDir.latest_checkpoint`, and not overwritten when training reaches that
    step again."""
    target = checkpoint.with_name(checkpoint.name + ".broken")
    count = 1
    while target.exists():
        count += 1
        target = checkpoint.with_name(f"{checkpoint.name}.broken-{count}")
    os.replace(checkpoint, target)
    return target


def read_trainer_state(checkpoint: Path) -> dict[str, Any]:
    path = Path(checkpoint) / TRAINER_STATE
    try:
        state = json.loads(path.read_text())
        int(state["step"])
        return state
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise BrokenCheckpoint(f"{path} cannot be read ({type(error).__name__}: {error})") from None


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint directory as given, or a run directory's latest checkpoint."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} does not exist")
    if (path / "model.safetensors").exists():
        return path
    latest = RunDir(path).latest_checkpoint()
    if latest is None:
        raise UserError(f"{path} holds no checkpoint")
    return latest


def read_config(checkpoint: Path) -> dict[str, Any]:
    path = Path(checkpoint) / CONFIG
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise BrokenCheckpoint(f"{checkpoint} is not a checkpoint (no {CONFIG})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BrokenCheckpoint(f"{path} is not valid JSON ({error})") from None


def load_optimizer_state(checkpoint: Path) -> dict[str, Any]:
    """The optimizer/scheduler state; `weights_only=True` refuses anything but tensors and
    plain containers, so a tampered file cannot run code."""
    path = Path(checkpoint) / "optimizer.pt"
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise BrokenCheckpoint(f"{checkpoint} has no optimizer.pt") from None
    except Exception as error:  # the unpickler's refusal of a global, or a corrupt file
        raise BrokenCheckpoint(
            f"{path} was refused: it holds something other than tensors and plain data "
            f"({type(error).__name__}); nothing from it was executed"
        ) from None


def load_policy(checkpoint: str | Path, ema: bool = True, device: str = "cpu") -> Policy:
    """The policy a checkpoint holds (EMA weights when present and asked for), in eval mode.
    `checkpoint` may be a run directory (its latest checkpoint is used)."""
    checkpoint = resolve_checkpoint(checkpoint)
    config = read_config(checkpoint)
    policy = build_policy(
        PolicyConfig.from_saved(config["policy"]), ShapeMeta.from_dict(config["shape_meta"])
    )
    weights = checkpoint / ("ema.safetensors" if ema else "model.safetensors")
    if not weights.exists():
        weights = checkpoint / "model.safetensors"
    load_weights(policy, weights)
    return policy.to(device).eval()
