"""Headless rendering: EGL by default, and no crash when torch pulls in Triton after a frame."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

SCRIPT = """
import dopr_robot.envs as envs
env = envs.make("dopr_robot/ReachChain-v0", image=True)
observation, _ = env.reset(seed=0)
assert observation["image"].std() > 5
env.close()
import triton.runtime  # what DDP / torch.compile import; segfaulted after Mesa before the fix
print("ok")
"""


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton not installed")
def test_importing_triton_after_a_rendered_frame_does_not_crash():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"


def test_egl_is_the_default_and_a_users_choice_is_kept():
    check = "import os, dopr_robot.envs; print(os.environ['MUJOCO_GL'])"
    base = {k: v for k, v in os.environ.items() if k != "MUJOCO_GL"}
    for env, expected in [(base, "egl"), ({**base, "MUJOCO_GL": "glfw"}, "glfw")]:
        result = subprocess.run(
            [sys.executable, "-c", check], capture_output=True, text=True, env=env
        )
        assert result.stdout.strip() == expected, result.stderr[-2000:]


@pytest.mark.skipif("DISPLAY" in os.environ, reason="with a display, GLFW works")
def test_mujoco_imported_first_without_egl_gives_a_clear_error():
    script = (
        "import mujoco, dopr_robot.envs as envs\n"
        "env = envs.make('dopr_robot/ReachChain-v0', image=True)\n"
        "try:\n    env.reset(seed=0)\nexcept RuntimeError as error:\n    print(error)\n"
    )
    base = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "PYOPENGL_PLATFORM")}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=base
    )
    assert "MUJOCO_GL must be 'egl' before mujoco is first imported" in result.stdout, (
        result.stdout + result.stderr[-2000:]
    )


def test_an_env_nobody_closed_exits_quietly():
    script = (
        "import dopr_robot.envs as envs\n"
        "env = envs.make('dopr_robot/PushChain-v0', image=True, render_mode='rgb_array')\n"
        "env.reset(seed=0); env.render()\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0 and "Error" not in result.stderr, result.stderr[-2000:]
