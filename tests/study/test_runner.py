"""runner.py without training: `prepare_directory` makes a study folder, resumes it with the same
settings, refuses a folder that is not a study and a study of other settings (naming them), lets
the settings that change no run change, and with `overwrite` keeps nothing but the lock."""

from __future__ import annotations

import json

import pytest

from dopr_robot.errors import UserError
from dopr_robot.folder_lock import LOCK_NAME
from dopr_robot.study.config import study_from_dict
from dopr_robot.study.runner import NOT_COMPARED, prepare_directory

from .conftest import minimal_study


def listing(root) -> dict:
    """Every file under root with its bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_new_folder_gets_the_settings_that_define_the_study(tmp_path):
    root = tmp_path / "new" / "study"
    prepare_directory(study_from_dict(minimal_study(verdict_seeds=4)), root, overwrite=False)
    saved = json.loads((root / "study.json").read_text())
    assert saved["verdict_seeds"] == 4 and saved["tasks"][0]["name"] == "balance"
    assert not set(NOT_COMPARED) & set(saved)  # how the work is spread is not the study


def test_a_folder_holding_only_a_lock_is_a_new_study(tmp_path):
    (tmp_path / LOCK_NAME).write_text("1234\n")
    prepare_directory(study_from_dict(minimal_study()), tmp_path, overwrite=False)
    assert (tmp_path / "study.json").exists()


def test_the_same_settings_resume_and_keep_what_is_there(tmp_path):
    config = study_from_dict(minimal_study())
    prepare_directory(config, tmp_path, overwrite=False)
    run = tmp_path / "runs" / "balance" / "flow-c1" / "adamw-lr0.001-s0" / "metrics.jsonl"
    run.parent.mkdir(parents=True)
    run.write_text("{}\n")
    before = listing(tmp_path)
    prepare_directory(study_from_dict(minimal_study()), tmp_path, overwrite=False)
    assert listing(tmp_path) == before


def test_a_folder_that_is_not_a_study_is_refused_and_left_alone(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="exists and is not a study directory; choose another"):
        prepare_directory(study_from_dict(minimal_study()), tmp_path, overwrite=False)
    assert listing(tmp_path) == {"notes.txt": b"mine"}


def test_other_settings_are_refused_naming_each_one_that_differs(tmp_path):
    prepare_directory(study_from_dict(minimal_study()), tmp_path, overwrite=False)
    before = listing(tmp_path)
    other = study_from_dict(minimal_study(verdict_seeds=4, conditioning=[1.0, 10.0]))
    with pytest.raises(UserError) as refused:
        prepare_directory(other, tmp_path, overwrite=False)
    message = str(refused.value)
    assert "holds a study started with other settings (conditioning, verdict_seeds)" in message
    assert "--overwrite" in message and "\n" not in message
    assert listing(tmp_path) == before


@pytest.mark.parametrize(
    "change",
    [
        {"workers": 5},
        {"expected_minutes": "an afternoon"},
        {"videos": False},
        {"device": "cpu"},
        {"metric": "score"},
        {"margin": 0.25},
    ],
    ids=lambda change: next(iter(change)),
)
def test_a_setting_that_changes_no_run_may_change(tmp_path, change):
    prepare_directory(study_from_dict(minimal_study()), tmp_path, overwrite=False)
    before = listing(tmp_path)
    prepare_directory(study_from_dict(minimal_study(**change)), tmp_path, overwrite=False)
    assert listing(tmp_path) == before  # study.json keeps the settings it was started with


def test_overwrite_keeps_nothing_but_the_lock(tmp_path):
    prepare_directory(study_from_dict(minimal_study()), tmp_path, overwrite=False)
    (tmp_path / LOCK_NAME).write_text("4321\n")
    (tmp_path / "runs" / "balance").mkdir(parents=True)
    (tmp_path / "runs" / "balance" / "config.json").write_text("{}")
    (tmp_path / "report.md").write_text("old")
    other = study_from_dict(minimal_study(verdict_seeds=4))
    prepare_directory(other, tmp_path, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([LOCK_NAME, "study.json"])
    assert (tmp_path / LOCK_NAME).read_text() == "4321\n"
    assert json.loads((tmp_path / "study.json").read_text())["verdict_seeds"] == 4


def test_overwrite_clears_a_folder_that_is_not_a_study(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    prepare_directory(study_from_dict(minimal_study()), tmp_path, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.json"]


def test_a_study_started_before_data_seeds_existed_resumes_with_the_shared_set(tmp_path):
    """study.json written before the setting: it reads as data_seeds = false, the meaning it
    had, so the study resumes; asking for data_seeds = true there is refused, naming it."""
    root = tmp_path / "study"
    prepare_directory(study_from_dict(minimal_study()), root, overwrite=False)
    saved = json.loads((root / "study.json").read_text())
    del saved["data_seeds"]
    (root / "study.json").write_text(json.dumps(saved))
    prepare_directory(study_from_dict(minimal_study()), root, overwrite=False)
    with pytest.raises(UserError, match=r"other settings \(data_seeds\)"):
        prepare_directory(study_from_dict(minimal_study(data_seeds=True)), root, overwrite=False)
