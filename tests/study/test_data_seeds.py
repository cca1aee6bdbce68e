"""`data_seeds = true` end to end: each verdict seed collects and trains on its own demonstration
set, the tuning runs share one, and the report says which setting the verdict used."""

from __future__ import annotations

import json

import numpy as np

from dopr_robot.datasets import ReplayBuffer
from dopr_robot.study.config import study_from_dict
from dopr_robot.study.runner import run_study

from .conftest import minimal_study


def test_each_verdict_seed_trains_on_its_own_demonstrations(tmp_path):
    values = minimal_study(
        tuning_seeds=1,
        verdict_seeds=2,
        data_seeds=True,
        workers=1,
        videos=False,
        budget=[1.0],
        optimizers={"adamw": {"lr": [1e-3]}, "dopr-adamw": {"lr": [1e-3]}},
        train={"steps": 20, "batch_size": 32, "warmup_steps": 2, "val_every": 20},
        policy={"mlp_width": 32, "mlp_depth": 1, "pred_horizon": 8, "action_horizon": 4},
    )
    values["tasks"][0].update(validation_episodes=2, test_episodes=2, execute=1)
    root = tmp_path / "study"
    run_study(study_from_dict(values), root, progress=False)
    stores = sorted(p.name for p in (root / "data").iterdir())
    assert stores == ["balance-d1.zarr", "balance-d2.zarr", "balance.zarr"]
    first_actions = [
        ReplayBuffer.open(root / "data" / name).get_episode(0)["action"] for name in stores
    ]
    assert not np.array_equal(first_actions[0], first_actions[1])  # different episodes
    assert not np.array_equal(first_actions[0], first_actions[2])
    for config in root.glob("runs/balance/*/*/config.json"):
        data = json.loads(config.read_text())["train"]["data"]
        seed = int(config.parent.name.rsplit("-s", 1)[1])
        expected = "balance.zarr" if seed == 0 else f"balance-d{seed}.zarr"
        assert data.endswith("/data/" + expected), (config, data)
    report = (root / "report.md").read_text()
    assert "its own demonstration set" in report
