"""One writer per folder: a study, a training run, or a demonstration store being resumed.

`FolderLock(folder)` holds an exclusive `flock` on `<folder>/.dopr-robot.lock` for as long as
the command runs. A second process asking for the same folder is refused with one sentence that
names the holder (pid, host, command, start time, all written into the file). The kernel drops
an flock when its process ends, however it ends, so a lock left behind by a crash is free: the
next command takes it over and says so. NFS and Lustre honour flock across nodes on Linux.

The lock file is removed when the command ends; a crash leaves it behind with the crashed
process's record, which is how the next command can say whose lock it took over. `has_content`
is what other code asks when it wants to know whether a folder is empty but for a lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path

from .errors import UserError

LOCK_NAME = ".dopr-robot.lock"


class FolderBusy(UserError):
    """Another live process holds the folder's lock."""


class FolderLock:
    """Context manager: the folder is this process's until the block ends."""

    def __init__(self, folder: str | os.PathLike, what: str = "folder"):
        self.folder = Path(folder)
        self.what = what
        self.fd: int | None = None
        self.created = False
        #: the record of a previous holder whose process is gone (None if there was none)
        self.taken_over: dict | None = None

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

    def acquire(self) -> None:
        self.created = not self.folder.exists()
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = self._lock_file()
        self.taken_over = _read_record(fd) or None
        _write_record(fd)
        self.fd = fd
        if self.taken_over is not None:
            print(
                f"dopr-robot: took over the lock on {self.folder} left by "
                f"{_describe(self.taken_over)}, which is no longer running",
                file=sys.stderr,
            )

    def _lock_file(self) -> int:
        """An open, flocked descriptor of the lock file that is still at its path (a holder
        that released it may have removed the file between our open and our flock)."""
        path = self.folder / LOCK_NAME
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _describe(_read_record(fd))
                os.close(fd)
                raise FolderBusy(
                    f"{self.folder} is being written by another dopr-robot process ({holder}); "
                    "wait for it to finish or stop it, or use another folder"
                ) from None
            try:
                if os.fstat(fd).st_ino == os.stat(path).st_ino:
                    return fd
            except FileNotFoundError:
                pass
            os.close(fd)  # we locked a file that is no longer the lock: try again

    def release(self) -> None:
        """Remove the lock file (and the folder, if this lock created it and nothing else was
        written), then unlock."""
        if self.fd is None:
            return
        (self.folder / LOCK_NAME).unlink(missing_ok=True)
        if self.created and not any(self.folder.iterdir()):
            self.folder.rmdir()
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None


def _read_record(fd: int) -> dict:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, 4096)
    try:
        record = json.loads(raw) if raw.strip() else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {"pid": "?", "command": "an unreadable lock record"}
    return record if isinstance(record, dict) else {}


def _write_record(fd: int) -> None:
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": " ".join([os.path.basename(sys.argv[0] or "python"), *sys.argv[1:]])[:300],
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, json.dumps(record).encode())


def _describe(record: dict) -> str:
    if not record:
        return "a process that left no record"
    parts = [f"pid {record.get('pid', '?')}"]
    if record.get("host"):
        parts.append(f"on {record['host']}")
    if record.get("started"):
        parts.append(f"since {record['started']}")
    if record.get("command"):
        parts.append(f"`{record['command']}`")
    return " ".join(parts)


def empty_folder(folder: str | os.PathLike) -> None:
    """Delete everything in `folder` but the lock file (which this process holds)."""
    for entry in Path(folder).iterdir():
        if entry.name != LOCK_NAME:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def has_content(folder: str | os.PathLike) -> bool:
    """Whether the folder exists and holds anything besides a lock file."""
    folder = Path(folder)
    return folder.is_dir() and any(p.name != LOCK_NAME for p in folder.iterdir())
