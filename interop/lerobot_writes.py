"""LeRobot side of `make interop` (runs in the lerobot venv): LeRobot's own writer makes a
dataset (AV1 video, its default), and LeRobot's own reader decodes it; the decoded values go to
expected.npz for the toolkit to match.

    python interop/lerobot_writes.py WORK_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from lerobot.datasets.lerobot_dataset import LeRobotDataset

LENGTHS = (15, 22)
FEATURES = {
    "observation.state": {"dtype": "float32", "shape": (4,), "names": None},
    "action": {"dtype": "float32", "shape": (2,), "names": None},
    "observation.images.cam": {"dtype": "video", "shape": (64, 64, 3),
                               "names": ["height", "width", "channels"]},
}  # fmt: skip


def frame(t: int, seed: int) -> np.ndarray:
    yy, xx = np.mgrid[0:64, 0:64]
    image = np.stack([xx * 3 + 4 * t + seed, yy * 3 + t, np.full_like(xx, 90 + seed)], -1)
    return (image % 256).astype(np.uint8)


def main(work: Path) -> None:
    root = work / "lerobot_written"
    rng = np.random.default_rng(1)
    dataset = LeRobotDataset.create("local/lerobot-written", fps=10, root=root,
                                    features=FEATURES, use_videos=True)  # fmt: skip
    for episode, n in enumerate(LENGTHS):
        for t in range(n):
            dataset.add_frame({
                "observation.state": rng.normal(size=4).astype(np.float32),
                "action": rng.normal(size=2).astype(np.float32),
                "observation.images.cam": frame(t, 40 * episode),
                "task": "push the T",
            })  # fmt: skip
        dataset.save_episode()
    dataset.finalize()
    read = LeRobotDataset("local/lerobot-written", root=root, video_backend="pyav")
    items = [read[i] for i in range(read.num_frames)]
    np.savez(
        work / "lerobot_decoded.npz",
        state=np.stack([i["observation.state"].numpy() for i in items]),
        action=np.stack([i["action"].numpy() for i in items]),
        images_cam=np.stack(
            [
                np.round(i["observation.images.cam"].numpy().transpose(1, 2, 0) * 255).astype(
                    np.uint8
                )
                for i in items
            ]
        ),  # fmt: skip
        lengths=np.asarray(LENGTHS),
    )
    codec = read.meta.features["observation.images.cam"].get("info", {}).get("video.codec")
    print(f"wrote {root} with LeRobot's writer ({codec} video)")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
