"""Versions and code commit recorded with every run and evaluation (one helper for both)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from . import __version__


def git_commit() -> str | None:
    """The commit of the package's source tree, when it is a git checkout (else None)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit or None


def versions() -> dict[str, str | None]:
    """dopr_robot, its git commit, and the libraries whose versions change results."""
    import diffusers
    import gymnasium
    import mujoco
    import torch

    return {
        "dopr_robot": __version__,
        "git_commit": git_commit(),
        "torch": torch.__version__,
        "mujoco": mujoco.__version__,
        "gymnasium": gymnasium.__version__,
        "diffusers": diffusers.__version__,
    }
