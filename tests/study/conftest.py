"""What the study tests share: the quick preset, run once per session on the local backend (a
fixture); the per-run numbers two studies are compared on, and a small valid study config
(plain functions the tests import: `from .conftest import minimal_study`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dopr_robot.cli import main


@pytest.fixture(scope="session")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study") / "quick"
    assert main(["study", "--preset", "quick", "--out", str(root), "--quiet"]) == 0
    return root


def per_run_numbers(root) -> dict:
    """Every run's validation, test, budget AUC and losses, keyed by cell, optimizer, lr, seed."""
    summary = json.loads((root / "summary.json").read_text())
    return {
        (r["cell"], r["optimizer"], r["lr"], r["seed"]): {
            k: r.get(k)
            for k in ("validation", "test", "budget_auc", "best_val_loss", "final_val_loss")
        }
        for r in summary["runs"]
    }


def minimal_study(**changes) -> dict:
    """A small valid study (one task, two optimizers, 1 + 2 lrs, 2 tuning and 3 verdict seeds)
    as the dict `study_from_dict` reads, with `changes` set over it."""
    values = {
        "name": "t",
        "tuning_seeds": 2,
        "verdict_seeds": 3,
        "pairs": [["adamw", "dopr-adamw"]],
        "optimizers": {"adamw": {"lr": [1e-3]}, "dopr-adamw": {"lr": [1e-3, 3e-3]}},
        "tasks": [
            {
                "name": "balance",
                "env_id": "dopr_robot/Balance-v0",
                "demos": 5,
                "collect_horizon": 50,
                "horizons": [10, 20],
            }
        ],
    }
    values.update(changes)
    return values


def group_members(group: int) -> list[tuple[int, str]]:
    """(pid, command line) of the live (not zombie) processes in a process group, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            found.append((int(entry.name), command))
    return found
