"""Headless, fast MuJoCo rendering for image observations and rollout videos.

`MUJOCO_GL` must be set before `mujoco` is first imported, so `dopr_robot.envs` imports this
module before anything else. EGL (Mesa's llvmpipe on a CPU machine) needs no display; a user who
has one and prefers GLFW sets `MUJOCO_GL=glfw` themselves and it is left alone.

Shadow maps and multisampling cost ~20x at 96x96 on llvmpipe (45 -> 890 frames/s measured), and a
policy does not need them: `make_fast` turns both off on a model before its first renderer exists
(the offscreen buffer is sized when the GL context is made).

Mesa's llvmpipe and Triton (which torch imports for DDP and torch.compile) each bring their own
LLVM. Loaded in the order Mesa-then-Triton, the process segfaults on Triton's import (measured
here: a rendered frame, then `import triton.runtime`, exit 139); Triton-then-Mesa works. So the
first renderer loads Triton's library first when it is installed.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import importlib  # noqa: E402
import importlib.util  # noqa: E402
import weakref  # noqa: E402

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

_llvm_order_settled = False


def load_triton_before_mesa() -> None:
    """Import Triton's native library (if installed) before the first GL context exists."""
    global _llvm_order_settled
    if not _llvm_order_settled:
        if importlib.util.find_spec("triton") is not None:
            importlib.import_module("triton._C.libtriton")
        _llvm_order_settled = True


def make_fast(model: mujoco.MjModel, max_size: int = 256) -> None:
    """No shadows, no MSAA, and an offscreen buffer big enough for `max_size` square frames."""
    model.vis.quality.shadowsize = 0
    model.vis.quality.offsamples = 0
    model.vis.global_.offwidth = max(int(model.vis.global_.offwidth), max_size)
    model.vis.global_.offheight = max(int(model.vis.global_.offheight), max_size)


def fixed_camera(lookat, distance: float, azimuth: float, elevation: float) -> mujoco.MjvCamera:
    """A free camera that never moves: what the policy sees is the same frame every episode."""
    camera = mujoco.MjvCamera()
    camera.type = mujoco.mjtCamera.mjCAMERA_FREE
    camera.lookat[:] = lookat
    camera.distance = distance
    camera.azimuth = azimuth
    camera.elevation = elevation
    return camera


class FrameRenderer:
    """Square RGB frames of one model from one fixed camera; made on first use, closed explicitly.

    An EGL context left for the interpreter's exit raises a noisy error from its destructor, so
    envs call `close()` from their own `close()`, and a renderer nobody closed is closed by a
    `weakref.finalize` hook, which runs at exit while EGL is still loaded.
    """

    def __init__(self, model: mujoco.MjModel, size: int, camera: mujoco.MjvCamera):
        self.model = model
        self.size = int(size)
        self.camera = camera
        self._renderer: mujoco.Renderer | None = None
        self._finalizer: weakref.finalize | None = None

    def render(self, data: mujoco.MjData) -> np.ndarray:
        """[size, size, 3] uint8 of the current state of `data`."""
        if self._renderer is None:
            load_triton_before_mesa()
            make_fast(self.model, self.size)
            try:
                self._renderer = mujoco.Renderer(self.model, self.size, self.size)
            except mujoco.FatalError as error:
                raise RuntimeError(
                    f"MuJoCo could not render ({error}); with no display, MUJOCO_GL must be "
                    "'egl' before mujoco is first imported (import dopr_robot.envs before "
                    f"mujoco, or set it in the shell); it is {os.environ.get('MUJOCO_GL')!r}"
                ) from None
            self._finalizer = weakref.finalize(self, self._renderer.close)
            # reflections cost ~1.6x on MetaWorld's table and nothing visible at policy size
            self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        self._renderer.update_scene(data, camera=self.camera)
        return self._renderer.render()

    def close(self) -> None:
        if self._finalizer is not None:
            self._finalizer()  # closes the renderer, once
        self._renderer = self._finalizer = None
