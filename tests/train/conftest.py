"""What the trainer tests share: a small policy and the short run settings built on a store
(plain values and functions the tests import: `from .conftest import POLICY, config`), and a
small balance store (the `store` fixture)."""

from __future__ import annotations

import pytest

from dopr_robot.envs.collect import collect
from dopr_robot.envs.config import CollectConfig
from dopr_robot.policies import PolicyConfig
from dopr_robot.train import TrainConfig

#: a small MLP policy with short horizons: seconds per run on CPU
POLICY = PolicyConfig(mlp_width=32, mlp_depth=1, pred_horizon=8, action_horizon=4)


def config(store, out, **overrides) -> TrainConfig:
    """Six steps of batch 16 on `store` into `out`, validating and checkpointing every 3;
    `overrides` set any TrainConfig field."""
    base = dict(
        data=str(store),
        out=str(out),
        steps=6,
        batch_size=16,
        warmup_steps=2,
        val_every=3,
        checkpoint_every=3,
        log_every=1,
        val_batches=2,
        val_ratio=0.2,
        lr=1e-3,
    )
    return TrainConfig(**{**base, **overrides})


@pytest.fixture(scope="session")
def store(tmp_path_factory):
    """Six balance demonstrations of 60 steps (a test module may define its own `store`)."""
    path = tmp_path_factory.mktemp("data") / "balance.zarr"
    settings = CollectConfig(env_id="dopr_robot/Balance-v0", task_horizon=60, episodes=6)
    collect(settings, path, progress=False)
    return path
