"""What one closed-loop evaluation runs, as a typed model; saved in results.json and checked
again when an interrupted sweep is resumed."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ..config_io import OrNone, StrictConfig


class EvalConfig(StrictConfig):
    """What to evaluate and how."""

    checkpoint: str
    """a checkpoint directory, or a run directory (its latest checkpoint)"""
    task_horizons: list[int] = Field(default_factory=lambda: [1, 2, 4, 8], min_length=1)
    """H values to sweep, including ones longer than in the demonstrations"""
    episodes: int = Field(50, ge=1)
    """episodes per cell, seeds from the chosen list"""
    split: Literal["test", "validation"] = "test"
    """test (for reporting) | validation (for choosing checkpoints or learning rates)"""
    env_id: OrNone[str] = None
    """default: the env the demonstrations were collected on"""
    env_settings: dict[str, Any] = Field(default_factory=dict)
    """make settings over the collected ones (e.g. success_key, steps_per_horizon)"""
    perturbation: OrNone[float] = Field(None, ge=0, allow_inf_nan=False)
    """default: the perturbation the demonstrations were collected with"""
    inference_steps: OrNone[list[int]] = None
    """sampler axis: diffusion/flow steps per chunk (default: the policy's own)"""
    execute: OrNone[int] = Field(None, ge=1)
    """actions executed per chunk before replanning (default: the policy's Ta)"""
    ema: bool = True
    """evaluate the EMA weights (when the checkpoint has them)"""
    n_envs: int = Field(10, ge=1)
    """environments stepped together (batched inference)"""
    vector: Literal["sync", "async"] = "sync"
    """sync | async gymnasium vector env"""
    video: bool = False
    """write a tiled mp4 per H (failed episodes first)"""
    video_episodes: int = Field(4, ge=1)
    """episodes per video"""
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    """where the policy plans: auto (cuda if available) | cpu | cuda | cuda:N; envs step on CPU"""
    bf16: bool = False
    """bf16 autocast for the policy's forward on CUDA (ignored on a CPU)"""
    out: OrNone[str] = None
    """output directory (default: <run>/eval/<checkpoint>-<split>)"""
