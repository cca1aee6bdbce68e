"""How many CPU threads torch uses, chosen on purpose rather than left to torch's default.

Measured on the 2-core build machine (docs/benchmarks.md): with torch's default OpenMP setup, a
training run beside one other busy process fell from about 26 to 11 steps/s, because OpenMP's
idle threads spin-wait on cores the other process needs. Two settings avoid that:

- `OMP_WAIT_POLICY=PASSIVE` (set by the `dopr-robot` command before torch loads, unless the
  user set it): idle OpenMP threads sleep instead of spinning, which took the same run back to
  23 steps/s beside the other process;
- `--threads N` on `train`, `eval` and `collect` (`auto` by default: every core this process may
  run on, at most `MAX_AUTO_THREADS`; a study gives each worker its share instead).
"""

from __future__ import annotations

import os

#: torch's gains flatten past a few threads for the toolkit's networks
MAX_AUTO_THREADS = 4


def prefer_passive_waiting() -> None:
    """Idle OpenMP threads sleep (read by the OpenMP runtime when torch loads: call first)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolve_threads(threads: str | int | None) -> int:
    """`auto`/None: the usable cores (at most MAX_AUTO_THREADS); else a positive integer."""
    if threads in (None, "auto"):
        return max(1, min(available_cores(), MAX_AUTO_THREADS))
    try:
        count = int(threads)
    except (TypeError, ValueError):
        count = 0
    if count < 1 or str(threads).strip() != str(count):
        from .errors import UserError

        raise UserError(f"--threads must be a positive integer or auto, got {threads!r}")
    return count


def add_threads_flag(parser) -> None:
    """`--threads auto|N`, the same on every command that runs torch (read by `cli.main`)."""
    parser.add_argument(
        "--threads",
        default="auto",
        help=f"torch CPU threads: auto (the usable cores, at most {MAX_AUTO_THREADS}) or N",
    )


def use_threads(threads: str | int | None) -> int:
    """Set torch's intra-op threads; returns the count used."""
    import torch

    count = resolve_threads(threads)
    torch.set_num_threads(count)
    return count
