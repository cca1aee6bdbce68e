"""Feature statistics as LeRobot keeps them: min, max, mean, std, count and the quantiles
q01, q10, q50, q90, q99, per episode (the `stats/<feature>/<stat>` columns of
`meta/episodes`) and over the dataset (`meta/stats.json`).

Shapes follow LeRobot's `compute_episode_stats`: a numeric feature stored as [T, D] gets [D]
per statistic and a scalar feature [T] gets [1]; an image or video feature gets one value per
channel, shaped [C, 1, 1], in [0, 1]. Like LeRobot, image statistics come from at most
`IMAGE_SAMPLE_FRAMES` evenly spaced frames per episode (large frames strided down to about
`IMAGE_SAMPLE_SIDE` pixels), and `count` is the number of frames used. Quantiles of numbers are
exact (`numpy.quantile`); LeRobot approximates them with histograms, so its own values can differ
in the third digit. Dataset-wide image statistics are aggregated from the episodes the way
LeRobot's `aggregate_stats` does it (count-weighted means and quantiles, pooled variance).
"""

from __future__ import annotations

import numpy as np

QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
QUANTILE_KEYS = tuple(f"q{round(q * 100):02d}" for q in QUANTILES)
STAT_NAMES = ("min", "max", "mean", "std", "count", *QUANTILE_KEYS)
IMAGE_SAMPLE_FRAMES = 100
IMAGE_SAMPLE_SIDE = 150
IMAGE_STRIDE_ABOVE = 300  # LeRobot strides frames only when a side exceeds this

Stats = dict[str, np.ndarray]


def numeric_stats(values: np.ndarray) -> Stats:
    """Statistics over the first axis of a numeric feature ([T] or [T, ...])."""
    array = values if values.ndim > 1 else values[:, None]
    wide = array.astype(np.float64)
    out = {
        "min": array.min(axis=0),
        "max": array.max(axis=0),
        "mean": wide.mean(axis=0),
        "std": wide.std(axis=0),
        "count": np.array([len(array)], np.int64),
    }
    for key, value in zip(QUANTILE_KEYS, np.quantile(wide, QUANTILES, axis=0), strict=True):
        out[key] = value
    return out


def image_stats(frames: np.ndarray) -> Stats:
    """Per-channel statistics in [0, 1], shaped [C, 1, 1], of uint8 frames [T, H, W, C]."""
    used = np.unique(np.round(np.linspace(0, len(frames) - 1, IMAGE_SAMPLE_FRAMES)).astype(int))
    height, width, channels = frames.shape[1:]
    stride = 1
    if max(height, width) > IMAGE_STRIDE_ABOVE:
        stride = max(1, max(height, width) // IMAGE_SAMPLE_SIDE)
    pixels = frames[used, ::stride, ::stride].reshape(-1, channels).astype(np.float64) / 255.0
    out = numeric_stats(pixels)
    out = {key: value.reshape(channels, 1, 1) for key, value in out.items() if key != "count"}
    return {**out, "count": np.array([len(used)], np.int64)}


def aggregate(per_episode: list[Stats]) -> Stats:
    """One feature's statistics over episodes: count-weighted mean and quantiles, pooled std."""
    counts = np.stack([s["count"] for s in per_episode]).astype(np.float64)
    means = np.stack([s["mean"] for s in per_episode])
    weights = counts.reshape(len(counts), *([1] * (means.ndim - 1)))
    total = counts.sum()
    mean = (means * weights).sum(axis=0) / total
    spread = np.stack([s["std"] ** 2 for s in per_episode]) + (means - mean) ** 2
    out = {
        "min": np.min(np.stack([s["min"] for s in per_episode]), axis=0),
        "max": np.max(np.stack([s["max"] for s in per_episode]), axis=0),
        "mean": mean,
        "std": np.sqrt((spread * weights).sum(axis=0) / total),
        "count": np.array([int(total)], np.int64),
    }
    for key in QUANTILE_KEYS:
        out[key] = (np.stack([s[key] for s in per_episode]) * weights).sum(axis=0) / total
    return out


def as_lists(stats: Stats) -> dict[str, list]:
    """JSON- and parquet-ready nested lists, in `STAT_NAMES` order."""
    return {name: np.asarray(stats[name]).tolist() for name in STAT_NAMES}
