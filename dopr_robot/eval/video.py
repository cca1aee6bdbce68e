"""Rollout videos: episodes tiled side by side, each frame labelled, written as H.264 mp4.

Each tile carries the episode's seed, the step, and sub-goals done / H; when an episode ends its
last frame stays on screen with a green (success) or red (failure) border while the others
finish. Frame sizes are kept even (libx264 needs it).

Frames are labelled, tiled and handed to the encoder one at a time (generators end to end), so
a long video costs the episodes' recorded frames and one tiled frame, not three more copies of
the whole video.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
from PIL import Image, ImageDraw

from ..disk import no_room, writing
from .rollout import Episode

GREEN, RED = (40, 170, 60), (200, 40, 40)


def label(frame: np.ndarray, text: str, border: tuple[int, int, int] | None = None) -> np.ndarray:
    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    box = draw.textbbox((4, 3), text)
    draw.rectangle((box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2), fill=(0, 0, 0))
    draw.text((4, 3), text, fill=(255, 255, 255))
    if border is not None:
        draw.rectangle((0, 0, image.width - 1, image.height - 1), outline=border, width=4)
    return np.asarray(image)


def episode_frames(episode: Episode) -> Iterator[np.ndarray]:
    """The episode's frames, labelled one at a time; the last one with its outcome border."""
    frames = episode.frames or []
    for step, (frame, subgoals) in enumerate(frames):
        last = step == len(frames) - 1
        text = f"seed {episode.seed}  step {step}  sub-goals {subgoals}/{episode.task_horizon}"
        if last:
            text += "  SUCCESS" if episode.success else "  FAIL"
        border = (GREEN if episode.success else RED) if last else None
        yield label(frame, text, border)


def tile(episodes: list[Episode], columns: int = 2) -> Iterator[np.ndarray]:
    """One video frame per step of the longest episode; finished tiles hold their last frame."""
    streams = [episode_frames(e) for e in episodes]
    lengths = [len(e.frames or []) for e in episodes]
    current = [next(stream) for stream in streams]
    height, width = current[0].shape[:2]
    rows = -(-len(streams) // columns)
    blank = np.zeros((height, width, 3), np.uint8)
    for t in range(max(lengths)):
        if t > 0:
            current = [
                next(s) if t < n else c for s, n, c in zip(streams, lengths, current, strict=True)
            ]
        tiles = current + [blank] * (rows * columns - len(current))
        grid = np.concatenate(
            [np.concatenate(tiles[r * columns : (r + 1) * columns], axis=1) for r in range(rows)]
        )
        yield grid[: grid.shape[0] // 2 * 2, : grid.shape[1] // 2 * 2]


def write_video(path: Path, frames: Iterable[np.ndarray], fps: int) -> Path:
    """Stream frames into an H.264 mp4 (imageio's ffmpeg writer: one frame in memory at a time);
    written beside the target and renamed, so a crash leaves no half video under its name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.stem + ".partial" + path.suffix)
    try:
        with writing(path, "the episodes and results are written; rerun with --resume"):
            _encode(partial, frames, fps)
            partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def _encode(path: Path, frames: Iterable[np.ndarray], fps: int) -> None:
    try:
        writer = imageio.get_writer(
            path, format="FFMPEG", fps=fps, codec="libx264", macro_block_size=2
        )
        try:
            for frame in frames:
                writer.append_data(frame)
        finally:
            writer.close()
    except (OSError, RuntimeError) as error:  # imageio-ffmpeg reports ffmpeg's exit as either
        if no_room(error) or _device_full(path):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from None
        raise


def _device_full(path: Path) -> bool:
    """ffmpeg runs in its own process: a full disk reaches imageio as a broken pipe, so the
    device is asked directly."""
    return shutil.disk_usage(path.parent).free < 1024 * 1024
