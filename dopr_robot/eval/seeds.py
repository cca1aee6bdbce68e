"""Fixed, documented episode seeds for closed-loop evaluation.

Two disjoint lists, both far from the seeds `dopr-robot collect` uses for demonstrations
(0, 1, 2, ... by default), so no rollout replays a training layout:
- VALIDATION: 1,000,000 + i — for choosing checkpoints and learning rates;
- TEST: 2,000,000 + i — for reporting, and for nothing else.
Every checkpoint is evaluated on the same seeds, so comparisons between runs are paired.
"""

from __future__ import annotations

VALIDATION_START = 1_000_000
TEST_START = 2_000_000
SPLITS = ("validation", "test")


def episode_seeds(split: str, episodes: int) -> list[int]:
    if split not in SPLITS:
        raise ValueError(f"seed split must be validation or test, got {split!r}")
    if not 0 < episodes <= VALIDATION_START:
        raise ValueError(f"episodes must be between 1 and {VALIDATION_START:,}, got {episodes}")
    start = VALIDATION_START if split == "validation" else TEST_START
    return list(range(start, start + episodes))
