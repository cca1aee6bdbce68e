"""Writing to disk so that a full disk costs a sentence, not what was finished.

A full disk (ENOSPC), a user's quota (EDQUOT) or a process file-size limit (EFBIG) shows up as an
`OSError` from some write deep inside numpy, zarr or ffmpeg (safetensors wraps it in its own
error type, quoting the errno), often without the file name. `writing(path, kept)` turns it into
`DiskFull`, a `UserError` sentence naming the path and saying what is still intact, so the CLI
ends with exit 2 instead of a traceback.
`write_text_atomically` writes beside the target and renames, so a write that fails halfway
leaves the previous file as it was.
"""

from __future__ import annotations

import errno
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import UserError

#: errors that mean "no room to write": the device, the user's quota, or a file-size limit
NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class DiskFull(UserError):
    """A write that found no room; the message names the path and what is intact."""


#: how Rust's io::Error names the errno inside another library's exception (safetensors)
_RUST_OS_ERROR = re.compile(r"\(os error (\d+)\)")


def room_errno(error: BaseException) -> int | None:
    """The no-room errno behind `error`, if that is what it is: an OSError's own, or the one a
    Rust-backed library (safetensors) quotes in its message."""
    if isinstance(error, OSError):
        return error.errno if error.errno in NO_ROOM else None
    found = _RUST_OS_ERROR.search(str(error))
    return int(found.group(1)) if found and int(found.group(1)) in NO_ROOM else None


def no_room(error: BaseException) -> bool:
    return room_errno(error) is not None


def disk_full_sentence(path: str | os.PathLike, error: BaseException, kept: str = "") -> str:
    code = room_errno(error)
    reason = os.strerror(code) if code else str(error)
    sentence = f"no room to write {path} ({reason})"
    return f"{sentence}; {kept}" if kept else sentence


@contextmanager
def writing(path: str | os.PathLike, kept: str = "") -> Iterator[None]:
    """Turn a full disk inside the block into one `DiskFull` sentence naming `path`; `kept`
    says what is still intact (e.g. "the checkpoint at step 1000 is intact")."""
    try:
        yield
    except Exception as error:  # not only OSError: safetensors wraps the errno in its own type
        if not no_room(error):
            raise
        raise DiskFull(disk_full_sentence(path, error, kept)) from None


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    """Write `text` beside `path` and rename it into place: a failed write (full disk, crash)
    leaves the previous file whole; a full disk is a `DiskFull` sentence naming `path`."""
    path = Path(path)
    work = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
    kept = f"the previous {path.name} is unchanged" if path.exists() else ""
    try:
        with writing(path, kept):
            work.write_text(text)
            os.replace(work, path)
    finally:
        work.unlink(missing_ok=True)
