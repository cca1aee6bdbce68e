"""Rollout videos are streamed: frames are labelled, tiled and encoded one at a time, so a long
video never holds more than the recorded frames and one tiled frame."""

from __future__ import annotations

import types

import imageio.v3 as iio
import numpy as np

from dopr_robot.eval.rollout import Episode
from dopr_robot.eval.video import tile, write_video


def _episode(seed: int, length: int, success: bool) -> Episode:
    frames = [(np.full((32, 48, 3), 10 * step % 250, np.uint8), step) for step in range(length)]
    return Episode(
        seed=seed, task_horizon=length, success=success, subgoals_done=length - 1,
        length=length, seconds=0.0, error=None, frames=frames,
    )  # fmt: skip


def test_tiles_are_made_lazily_and_written_from_a_generator(tmp_path, monkeypatch):
    episodes = [_episode(1, 12, True), _episode(2, 7, False), _episode(3, 3, True)]
    labelled = []
    from dopr_robot.eval import video as video_module

    real_label = video_module.label

    def counting(frame, text, border=None):
        labelled.append(text)
        return real_label(frame, text, border)

    monkeypatch.setattr(video_module, "label", counting)
    frames = tile(episodes, columns=2)
    assert isinstance(frames, types.GeneratorType)
    first = next(frames)
    assert first.shape == (64, 96, 3)  # 2 x 2 grid of 32 x 48 tiles
    assert len(labelled) == 3  # only the first frame of each episode so far
    path = write_video(tmp_path / "v.mp4", frames, fps=10)
    assert len(labelled) == 12 + 7 + 3  # every frame labelled exactly once
    decoded = iio.imread(path)
    assert decoded.shape == (11, 64, 96, 3)  # the 11 frames after the first one taken above
    assert not list(tmp_path.glob("*.partial*"))  # written beside, then renamed
