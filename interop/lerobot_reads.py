"""LeRobot side of `make interop` (runs in the lerobot venv): LeRobot's own code reads a toolkit
export, sees one action, finds quantile statistics, resumes it, saves an episode and reloads.

    python interop/lerobot_reads.py WORK_DIR
Prints one line and exits 1 on the first thing that does not hold.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.utils.feature_utils import dataset_to_policy_features

REPO = "local/dopr-export"
CAMERAS = {"top": "observation.images.top", "wrist": "observation.images.wrist"}


def check(condition: bool, what: str) -> None:
    if not condition:
        print(f"toolkit -> LeRobot: FAILS: {what}")
        sys.exit(1)


def read_back(root: Path, expected) -> LeRobotDataset:
    dataset = LeRobotDataset(REPO, root=root)
    check(dataset.num_frames == int(expected["episode_ends"][-1]), "frame count")
    worst = 0.0
    for i in range(dataset.num_frames):
        item = dataset[i]
        check(np.array_equal(item["observation.state"].numpy(), expected["state"][i]), f"state {i}")
        check(np.array_equal(item["action"].numpy(), expected["action"][i]), f"action {i}")
        for key, feature in CAMERAS.items():
            frame = item[feature].numpy().transpose(1, 2, 0) * 255.0
            worst = max(worst, float(np.abs(frame - expected[key][i]).mean()))
    check(worst < 3.0, f"frames differ by {worst:.2f} grey levels on average")
    return dataset


def main(work: Path) -> None:
    expected = np.load(work / "expected.npz")
    root = work / "export"
    dataset = read_back(root, expected)
    actions = [k for k, f in dataset_to_policy_features(dataset.meta.features).items()
               if f.type.name == "ACTION"]  # fmt: skip
    check(actions == ["action"], f"policy actions {actions}")
    for key in ("action", "observation.state", "observation.images.top"):
        check(all(q in dataset.meta.stats[key] for q in ("q01", "q10", "q50", "q90", "q99")),
              f"quantiles of {key}")  # fmt: skip
    episodes = dataset.meta.total_episodes
    resumed = LeRobotDataset.resume(REPO, root=root)
    n = 12
    for t in range(n):
        resumed.add_frame({
            "observation.state": expected["state"][t],
            "action": expected["action"][t],
            "observation.images.top": expected["top"][t],
            "observation.images.wrist": expected["wrist"][t],
            "task": "gym_pusht/PushT-v0",
        })  # fmt: skip
    resumed.save_episode()
    resumed.finalize()
    again = LeRobotDataset(REPO, root=root)
    check(again.meta.total_episodes == episodes + 1, "episode count after resume")
    last = again[again.num_frames - 1]
    check(np.array_equal(last["action"].numpy(), expected["action"][n - 1]), "resumed action")
    print(
        f"toolkit -> LeRobot: works (LeRobotDataset reads {dataset.num_frames} frames exactly, "
        f"frames within codec error; one policy action; q01..q99 in stats; resume + "
        f"save_episode + reload: {episodes} -> {again.meta.total_episodes} episodes)"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
