"""Writing with no room left: one sentence naming the path, and the previous file kept whole."""

from __future__ import annotations

import errno
import os

import pytest

from dopr_robot import disk
from dopr_robot.disk import DiskFull, write_text_atomically, writing


def test_no_room_is_one_sentence_naming_the_path_and_other_errors_pass(tmp_path):
    for code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        with pytest.raises(DiskFull, match=r"no room to write .*x\.bin \(.+\); the rest is kept"):
            with writing(tmp_path / "x.bin", "the rest is kept"):
                raise OSError(code, os.strerror(code))
    with pytest.raises(PermissionError):
        with writing(tmp_path / "x.bin"):
            raise PermissionError(errno.EACCES, "denied")


def test_an_atomic_write_that_fails_keeps_the_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "results.json"
    write_text_atomically(target, "old")

    def full(self, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(disk.Path, "write_text", full)
    with pytest.raises(DiskFull, match="the previous results.json is unchanged"):
        write_text_atomically(target, "new")
    monkeypatch.undo()
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temporary file left
