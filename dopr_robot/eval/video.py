"""Rollout videos: episodes tiled side by side, each frame labelled, written as H.264 mp4.

Each tile carries the episode's seed, the step, and sub-goals done / H; when an episode ends its
last frame stays on screen with a green (success) or red (failure) border while the others
finish. Frame sizes are kept even (libx264 needs it).
"""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
from PIL import Image, ImageDraw

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


def episode_frames(episode: Episode) -> list[np.ndarray]:
    """The episode's frames, labelled; the last one with its outcome border."""
    frames = episode.frames or []
    labelled = []
    for step, (frame, subgoals) in enumerate(frames):
        last = step == len(frames) - 1
        text = f"seed {episode.seed}  step {step}  sub-goals {subgoals}/{episode.task_horizon}"
        if last:
            text += "  SUCCESS" if episode.success else "  FAIL"
        border = (GREEN if episode.success else RED) if last else None
        labelled.append(label(frame, text, border))
    return labelled


def tile(episodes: list[Episode], columns: int = 2) -> list[np.ndarray]:
    """One video frame per step of the longest episode; finished tiles hold their last frame."""
    streams = [episode_frames(e) for e in episodes]
    length = max(len(s) for s in streams)
    height, width = streams[0][0].shape[:2]
    rows = -(-len(streams) // columns)
    blank = np.zeros((height, width, 3), np.uint8)
    video = []
    for t in range(length):
        tiles = [s[min(t, len(s) - 1)] for s in streams]
        tiles += [blank] * (rows * columns - len(tiles))
        grid = np.concatenate(
            [np.concatenate(tiles[r * columns : (r + 1) * columns], axis=1) for r in range(rows)]
        )
        video.append(grid[: grid.shape[0] // 2 * 2, : grid.shape[1] // 2 * 2])
    return video


def write_video(path: Path, frames: list[np.ndarray], fps: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, np.stack(frames), fps=fps, codec="libx264")
    return path
