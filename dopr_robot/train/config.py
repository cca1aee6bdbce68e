"""The training run's settings in one dataclass (plus the policy's), loadable from TOML.

A TOML file has a `[train]` table for `TrainConfig` fields and a `[policy]` table for
`PolicyConfig` fields; an unknown name in either is an error, not a silent default.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import tomllib

from ..errors import UserError
from ..optim import OPTIMIZER_NAMES
from ..policies import PolicyConfig


@dataclass
class TrainConfig:
    """Every knob of a training run; one line per field says what it does."""

    data: str = ""
    """demonstration store (zarr)"""
    out: str = ""
    """run directory: checkpoints/, metrics.jsonl, config.json"""
    optimizer: str = "adamw"
    """adamw | muon | dopr-adamw | dopr-muon | sgd | dopr-sgd"""
    lr: float = 1e-4
    """peak learning rate (after warm-up; cosine decay to 0 at `steps`)"""
    weight_decay: float = 1e-6
    """decoupled weight decay"""
    optimizer_kwargs: dict[str, Any] = field(default_factory=dict)
    """further optimizer settings, e.g. {gamma = 0.1} for dopr-*"""
    steps: int = 2000
    """optimizer steps"""
    batch_size: int = 256
    """global batch (split across DDP ranks)"""
    warmup_steps: int = 100
    """linear warm-up steps"""
    grad_clip: float = 1.0
    """max global gradient norm; 0 turns clipping off"""
    ema_decay: float = 0.995
    """EMA of weights: decay_t = min(ema_decay, (1 + t) / (10 + t)); 0 turns EMA off"""
    val_ratio: float = 0.1
    """share of episodes held out for the validation loss (at least one)"""
    val_every: int = 500
    """steps between validation losses (live and EMA weights); and at the end"""
    val_batches: int = 4
    """batches per validation (fixed noise, so values are comparable over time)"""
    checkpoint_every: int = 1000
    """steps between checkpoints; one is always written at the end"""
    log_every: int = 50
    """steps between metrics.jsonl lines"""
    seed: int = 0
    """weights, data order, noise: same seed, same numbers (CPU)"""
    device: str = "auto"
    """auto (cuda if available) | cpu | cuda | cuda:N"""
    bf16: bool = False
    """bf16 autocast for forward/loss on CUDA (ignored on CPU)"""
    tensorboard: bool = False
    """also write TensorBoard scalars (needs the tensorboard package)"""

    def check(self) -> None:
        if self.optimizer not in OPTIMIZER_NAMES:
            raise UserError(
                f"unknown optimizer {self.optimizer!r}; "
                f"expected one of {', '.join(OPTIMIZER_NAMES)}"
            )
        for name in ("steps", "batch_size", "val_every", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.val_ratio < 1:
            raise UserError(f"val_ratio must be between 0 and 1, got {self.val_ratio}")
        if not 0 <= self.ema_decay < 1:
            raise UserError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.lr <= 0:
            raise UserError(f"lr must be > 0, got {self.lr}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise UserError(f"unknown train setting(s) {unknown}; known: {sorted(names)}")
        return cls(**values)


def differing_settings(saved: dict[str, Any], mine: dict[str, Any]) -> list[str]:
    """Names whose values differ between two settings dicts (a name missing on one side counts);
    what every "resume with the same settings" check reports."""
    return sorted(k for k in set(saved) | set(mine) if saved.get(k) != mine.get(k))


def read_toml(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """A TOML file's tables, with one sentence for a missing or broken file."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{what} {path} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"{path} is not valid TOML ({error})") from None


def load_toml(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(train table, policy table) of a TOML config file, with one sentence for a bad file."""
    document = read_toml(path)
    unknown = sorted(set(document) - {"train", "policy"})
    if unknown:
        raise UserError(f"{path}: unknown table(s) {unknown}; expected [train] and [policy]")
    return dict(document.get("train", {})), dict(document.get("policy", {}))


def policy_config(values: dict[str, Any]) -> PolicyConfig:
    try:
        config = PolicyConfig.from_dict(values)
        config.check()
    except (TypeError, ValueError) as error:
        raise UserError(str(error)) from None
    return config
