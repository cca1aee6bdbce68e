"""The quick preset, run once per session on the local backend and shared by the study tests,
and the per-run numbers two studies are compared on."""

from __future__ import annotations

import json

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
