"""Stop signals: SIGTERM (a job scheduler, `kill`) and SIGINT (Ctrl-C) end a command cleanly.

`handling()` (the CLI runs every command inside it) makes either signal raise `Stopped` in the
main thread. It is a `BaseException`, like `KeyboardInterrupt`, so no `except Exception` on the
way swallows it; the `finally` blocks on the way out run, which is where the study's executors
end the worker processes they started. The CLI then prints one sentence and exits with 2.

A trainer asks for the signal to wait (`deferred()`): inside it a signal only sets a flag, which
`Trainer.fit` reads after each step to write a last checkpoint and then raise `Stopped`; a second
signal does not wait. Worker processes are spawned with fresh interpreters, so they keep
Python's default (die at once): what they were writing is atomic (checkpoints and videos are
renamed into place, episode rows are appended one line at a time, zarr writes files whole).

`die_with_parent()` asks Linux to send a worker SIGTERM when the process that started it dies,
however it dies (even SIGKILL, which no handler sees).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

SIGNALS = (signal.SIGTERM, signal.SIGINT)
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


class Stopped(BaseException):
    """A stop signal arrived; the message says what was kept and how to go on."""

    def __init__(self, signal_number: int, detail: str = ""):
        self.signal_number = signal_number
        self.detail = detail
        super().__init__(signal_number, detail)

    def sentence(self) -> str:
        name = signal.Signals(self.signal_number).name
        what = self.detail or "what was finished is on disk; rerun the same command to resume"
        return f"stopped by {name}; {what}"


class _State:
    handling = False
    deferring = False
    pending: int | None = None


def _handler(signal_number: int, frame) -> None:
    if _State.deferring and _State.pending is None:
        _State.pending = signal_number
        return
    raise Stopped(signal_number)


@contextmanager
def handling() -> Iterator[None]:
    """Inside the block SIGTERM and SIGINT raise `Stopped`; the previous handlers come back
    after it. Outside the main thread (where Python allows no handler) it changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, _handler) for number in SIGNALS}
    was_handling, _State.handling = _State.handling, True
    try:
        yield
    finally:
        _State.handling = was_handling
        for number, handler in previous.items():
            signal.signal(number, handler)


def reclaim() -> None:
    """Put the handlers back after a library replaced them (Ray's driver installs its own
    SIGTERM handler, which dumps a stack and exits without ending the study's tasks)."""
    if _State.handling and threading.current_thread() is threading.main_thread():
        for number in SIGNALS:
            signal.signal(number, _handler)


@contextmanager
def deferred() -> Iterator[None]:
    """Inside the block a first signal is remembered (`pending()`), not raised."""
    previous = _State.deferring
    _State.deferring = True
    try:
        yield
    finally:
        _State.deferring = previous


def pending() -> int | None:
    """The signal that arrived inside `deferred()`, if any (and forget it)."""
    number, _State.pending = _State.pending, None
    return number


def raise_pending() -> None:
    """Raise `Stopped` for a signal that arrived inside `deferred()`, if one did."""
    number = pending()
    if number is not None:
        raise Stopped(number)


def die_with_parent(parent: int) -> None:
    """In a worker process started by process `parent`: receive SIGTERM when it dies (Linux;
    elsewhere nothing)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent was already gone before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)
