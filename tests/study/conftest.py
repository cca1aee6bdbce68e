"""The quick preset, run once per session on the local backend and shared by the study tests."""

from __future__ import annotations

import pytest

from dopr_robot.cli import main


@pytest.fixture(scope="session")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study") / "quick"
    assert main(["study", "--preset", "quick", "--out", str(root), "--quiet"]) == 0
    return root
