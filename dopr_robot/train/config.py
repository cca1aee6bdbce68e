"""The training run's settings in one typed model (plus the policy's), loadable from TOML.

A TOML file has a `[train]` table for `TrainConfig` fields and a `[policy]` table for
`PolicyConfig` fields; an unknown name, a wrong type or a value out of range in either is one
sentence (pydantic, see `config_io`), not a silent default or a traceback an hour in. The
`dopr-robot train` flags are derived from these fields (`commands/train.py`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from ..config_io import StrictConfig, none_word, read_toml, validated
from ..errors import UserError
from ..optim import OPTIMIZER_NAMES

OptimizerName = Literal["adamw", "muon", "sgd", "dopr-adamw", "dopr-muon", "dopr-sgd"]
assert set(OptimizerName.__args__) == set(OPTIMIZER_NAMES)  # one list of names, kept in step


class TrainConfig(StrictConfig):
    """Every knob of a training run; one line per field says what it does."""

    data: str = ""
    """demonstration store (zarr)"""
    out: str = ""
    """run directory: checkpoints/, metrics.jsonl, config.json"""
    optimizer: OptimizerName = "adamw"
    """adamw | muon | dopr-adamw | dopr-muon | sgd | dopr-sgd"""
    lr: float = Field(1e-4, gt=0, allow_inf_nan=False)
    """peak learning rate (after warm-up; cosine decay to 0 at `steps`)"""
    weight_decay: float = Field(1e-6, ge=0, allow_inf_nan=False)
    """decoupled weight decay"""
    optimizer_kwargs: dict[str, Any] = Field(default_factory=dict)
    """further optimizer settings, e.g. {gamma = 0.1} for dopr-* ("none" for None)"""
    steps: int = Field(2000, ge=1)
    """optimizer steps"""
    batch_size: int = Field(256, ge=1)
    """global batch (split across DDP ranks)"""
    warmup_steps: int = Field(100, ge=0)
    """linear warm-up steps"""
    grad_clip: float = Field(1.0, ge=0, allow_inf_nan=False)
    """max global gradient norm; 0 turns clipping off"""
    ema_decay: float = Field(0.995, ge=0, lt=1)
    """EMA of weights: decay_t = min(ema_decay, (1 + t) / (10 + t)); 0 turns EMA off"""
    val_ratio: float = Field(0.1, gt=0, lt=1)
    """share of episodes held out for the validation loss (at least one)"""
    val_every: int = Field(500, ge=1)
    """steps between validation losses (live and EMA weights); and at the end"""
    val_batches: int = Field(4, ge=1)
    """batches per validation (fixed noise, so values are comparable over time)"""
    checkpoint_every: int = Field(1000, ge=1)
    """steps between checkpoints; one is always written at the end"""
    log_every: int = Field(50, ge=1)
    """steps between metrics.jsonl lines"""
    seed: int = Field(0, ge=0)
    """weights, data order, noise: same seed, same numbers (CPU)"""
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    """auto (cuda if available) | cpu | cuda | cuda:N"""
    fast_path: bool = True
    """fused AdamW and the GEMM weight gradient of large Conv1d kernels (see docs/design.md);
    false = plain eager PyTorch (per-tensor AdamW, oneDNN's conv gradients), as runs before it"""
    bf16: bool = False
    """bf16 autocast for forward/loss, on CUDA and on CPUs with native bf16 (AVX-512 BF16, AMX)"""
    tensorboard: bool = False
    """also write TensorBoard scalars (needs the tensorboard package)"""

    @field_validator("optimizer_kwargs", mode="after")
    @classmethod
    def none_words(cls, values: dict[str, Any]) -> dict[str, Any]:
        return {key: none_word(value) for key, value in values.items()}

    def check_optimizer(self) -> None:
        """Bad optimizer settings fail now, on a two-weight model, not after the data loads."""
        check_optimizer_settings(
            self.optimizer, self.lr, self.optimizer_kwargs, "[train] optimizer_kwargs"
        )

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str = "[train]") -> TrainConfig:
        return validated(cls, values, where)


def check_optimizer_settings(name: str, lr: float, kwargs: dict[str, Any], where: str) -> None:
    """Build optimizer `name` with these settings on a two-weight model: a bad setting is one
    sentence naming `where`, before any run starts ("none" words in `kwargs` mean None)."""
    import torch

    from ..optim import build_optimizer

    settings = {key: none_word(value) for key, value in kwargs.items()}
    try:
        build_optimizer(name, torch.nn.Linear(2, 2), lr=lr, **settings)
    except (TypeError, ValueError) as error:
        raise UserError(f"{where}: {error}") from None


def load_toml(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(train table, policy table) of a TOML config file, with one sentence for a bad file."""
    document = read_toml(path)
    if not document:
        raise UserError(f"{path} is empty; expected a [train] and/or a [policy] table")
    unknown = sorted(set(document) - {"train", "policy"})
    if unknown:
        raise UserError(f"{path}: unknown table(s) {unknown}; expected [train] and [policy]")
    tables = {}
    for name in ("train", "policy"):
        table = document.get(name, {})
        if not isinstance(table, dict):
            raise UserError(f"{path}: {name} must be a [{name}] table, got {table!r}")
        tables[name] = dict(table)
    return tables["train"], tables["policy"]
