"""Training speed by thread setting, alone and beside a second busy job (issue: threads).

    python bench/threads.py [--steps 300] [--rounds 3]

Each setting trains the PushT recipe's network (a flow policy's residual MLP 256 x 3 at batch
256, AdamW) in a fresh process, because OpenMP reads `OMP_WAIT_POLICY` once, when torch loads:
- `1 thread`: `--threads 1`;
- `auto, passive`: what `dopr-robot` does by default (the usable cores, idle threads sleep);
- `auto, spinning`: torch's own default (the usable cores, idle threads spin-wait).
"Beside a job" runs a second process doing one-thread matrix products the whole time, as a
second training or evaluation would. Printed: steps/s per setting and case (median over rounds),
and each setting's ratio to `1 thread` in the same round.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from rounds import paired_ratio

WORKER = r"""
import sys, time, torch
from dopr_robot.policies.nets import ResidualMLP
from dopr_robot.threads import use_threads
use_threads(sys.argv[2])
steps = int(sys.argv[1])
net = ResidualMLP(in_dim=36 + 32 + 128, out_dim=32, width=256, depth=3)
opt = torch.optim.AdamW(net.parameters(), lr=1e-3, fused=True)
x, y = torch.randn(256, 36 + 32 + 128), torch.randn(256, 32)
for i in range(steps + 20):
    if i == 20:
        start = time.perf_counter()
    loss = torch.nn.functional.mse_loss(net(x), y)
    loss.backward(); opt.step(); opt.zero_grad()
print(steps / (time.perf_counter() - start))
"""
BUSY = (
    "import torch; torch.set_num_threads(1); a = torch.randn(512, 512)\n"
    "while True: a = torch.tanh(a @ a)"
)
SETTINGS = {
    "1 thread": ("1", "PASSIVE"),
    "auto, passive": ("auto", "PASSIVE"),
    "auto, spinning": ("auto", "ACTIVE"),
}


def steps_per_s(steps: int, threads: str, wait_policy: str) -> float:
    env = {**os.environ, "OMP_WAIT_POLICY": wait_policy}
    env.pop("OMP_NUM_THREADS", None)
    done = subprocess.run(
        [sys.executable, "-c", WORKER, str(steps), threads],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.strip().splitlines()[-1])


def measure(steps: int, rounds: int, beside_a_job: bool) -> dict[str, list[float]]:
    busy = None
    if beside_a_job:
        busy = subprocess.Popen([sys.executable, "-c", BUSY])
        time.sleep(2)
    try:
        found: dict[str, list[float]] = {name: [] for name in SETTINGS}
        for _ in range(rounds):
            for name, (threads, policy) in SETTINGS.items():
                found[name].append(steps_per_s(steps, threads, policy))
        return found
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from dopr_robot.threads import resolve_threads

    print(f"cores usable: {os.cpu_count()}, auto = {resolve_threads('auto')} threads")
    for case, beside in (("alone", False), ("beside a job", True)):
        found = measure(args.steps, args.rounds, beside)
        for name, values in found.items():
            ratio = paired_ratio(values, found["1 thread"])
            print(
                f"{case:<13} {name:<15} {statistics.median(values):6.1f} steps/s  "
                f"{ratio:5.2f}x 1 thread"
            )


if __name__ == "__main__":
    main()
