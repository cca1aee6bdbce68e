"""Peak memory of an evaluation against its number of episodes: it should not grow with them.

    python bench/eval_memory.py [--episodes 32,128,512] [--n-envs 8]

A tiny policy is trained for a few steps on ReachChain-v0 demonstrations (its weights do not
matter: every episode runs its whole step budget, so the work per episode is the same), then
`dopr-robot eval`'s own code path (`eval.sweep.evaluate`: episodes appended to episodes.jsonl,
results.json, episodes.csv, the plot, and a video of `video_episodes` episodes) runs once per
episode count, each in a fresh process, and that process's peak resident set size is printed.
Goal: the largest peak within 20 % of the smallest (episodes are streamed to disk and only a
fixed number are recorded for the video, so nothing should grow with the episode count).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ENV = "dopr_robot/ReachChain-v0"

MEASURE = """
import json, resource, sys
from dopr_robot.eval.config import EvalConfig
from dopr_robot.eval.sweep import evaluate
run, out, episodes, n_envs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
config = EvalConfig(checkpoint=run, out=out, task_horizons=[1], episodes=episodes,
                    n_envs=n_envs, video=True, video_episodes=4)
results = evaluate(config, progress=False)
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"episodes": len(results["episodes"]), "peak_mib": peak_kib / 1024}))
"""


def _train_tiny_policy(folder: Path) -> Path:
    from dopr_robot.envs.collect import collect
    from dopr_robot.envs.config import CollectConfig
    from dopr_robot.policies import PolicyConfig
    from dopr_robot.train import TrainConfig, train

    store = folder / "reach.zarr"
    collect(CollectConfig(env_id=ENV, task_horizon=1, episodes=4), store, progress=False)
    settings = TrainConfig(
        data=str(store), out=str(folder / "run"), steps=4, batch_size=16, val_every=4,
        checkpoint_every=4, val_ratio=0.25,
    )  # fmt: skip
    policy = PolicyConfig(mlp_width=64, mlp_depth=2, inference_steps=4)
    train(settings, policy, progress=False)
    return folder / "run"


def _peak(run: Path, out: Path, episodes: int, n_envs: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(run), str(out), str(episodes), str(n_envs)],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", default="32,128,512", help="episode counts, comma-separated")
    parser.add_argument("--n-envs", type=int, default=8, help="envs stepped together")
    args = parser.parse_args()
    counts = [int(c) for c in args.episodes.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        run = _train_tiny_policy(Path(folder))
        print(f"{ENV}, H = 1 (100 steps per episode), {args.n_envs} envs, video of 4 episodes")
        print(f"{'episodes':>9}  {'peak RSS':>10}")
        peaks = []
        for count in counts:
            measured = _peak(run, Path(folder) / f"eval-{count}", count, args.n_envs)
            assert measured["episodes"] == count
            peaks.append(measured["peak_mib"])
            print(f"{count:>9}  {measured['peak_mib']:>7.0f} MiB", flush=True)
    ratio = max(peaks) / min(peaks)
    verdict = "flat within 20 %" if ratio <= 1.2 else "grows by more than 20 %"
    print(f"largest / smallest peak: {ratio:.3f} ({verdict}; goal <= 1.20)")
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(this driver process, which trained the policy: {own:.0f} MiB)")


if __name__ == "__main__":
    main()
