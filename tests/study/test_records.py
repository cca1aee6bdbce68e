"""records.py: summary.json read and written through the typed records — a round trip gives the
same summary, horizon and step keys come back as ints, files from before newer keys still load,
and a file that is not a summary is one sentence."""

from __future__ import annotations

import json
import math

import pytest

from dopr_robot.errors import UserError
from dopr_robot.study.config import load_study, preset_path
from dopr_robot.study.records import StudySummary, TunedComplete, VerdictRun, load_summary
from dopr_robot.study.report import cell_table, verdict_lines
from dopr_robot.study.summary import summarise

from .test_report import summary_values

#: what the writer added after the report could first read a summary, and what the report
#: always read as optional: an "old" summary.json is the current one without them
NEWER_TOP_LEVEL = ("data_seeds", "grid_extensions", "steps", "invocations",
                   "seconds_this_invocation", "stage_seconds_this_invocation")  # fmt: skip


def _old_shape(values: dict) -> dict:
    """`values` (summary.json's content) without the keys newer writers added."""
    old = {k: v for k, v in values.items() if k not in NEWER_TOP_LEVEL}
    for row in old["aggregate"]:
        row.pop("sooner", None)
    for cell in old["cells"]:
        cell.pop("key", None)
        for stats in cell["tuned"].values():
            stats.pop("lr_at_edge", None)
    return old


def test_a_hand_built_summary_survives_the_json_round_trip():
    summary = StudySummary.model_validate(summary_values())
    again = StudySummary.model_validate_json(summary.to_json())
    assert again == summary
    # a censored speed-up's interval reaches infinity: written as json.dumps did, read back
    assert again.cells[0].comparisons[0].sooner.speedup_ci == (1.0, math.inf)
    assert "Infinity" in summary.to_json()


def test_horizon_and_step_keys_are_ints_after_json():
    summary = StudySummary.model_validate_json(json.dumps(summary_values()))
    (cell,) = summary.cells
    stats = cell.tuned["adamw"]
    assert isinstance(stats, TunedComplete)
    assert list(stats.success) == list(stats.band) == cell.horizons == [10, 20]
    assert list(stats.budget_auc) == list(stats.budget_auc_per_seed) == cell.budget_steps
    assert list(cell.robustness["adamw"]) == [10, 20] and cell.robustness["dopr-adamw"] is None
    # and they are written back as JSON's string keys, as before
    written = json.loads(summary.to_json())["cells"][0]["tuned"]["adamw"]
    assert list(written["success"]) == ["10", "20"]
    assert list(written["budget_auc"]) == ["150", "300"]


def test_an_incomplete_row_keeps_its_shape_and_a_wrong_complete_row_is_refused():
    values = summary_values()
    values["cells"][0]["tuned"]["adamw"] = {"optimizer": "adamw", "lr": None,
                                            "validation_auc": None, "complete": False}  # fmt: skip
    summary = StudySummary.model_validate(values)
    written = json.loads(summary.to_json())["cells"][0]["tuned"]["adamw"]
    assert "success" not in written and written["complete"] is False
    del values["cells"][0]["tuned"]["dopr-adamw"]["auc"]  # complete rows need their numbers
    with pytest.raises(ValueError, match="auc"):
        StudySummary.model_validate(values)


def test_a_summary_without_the_newer_keys_loads_with_their_old_meaning(tmp_path):
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(_old_shape(summary_values())))
    old = load_summary(path)
    assert old.data_seeds is False and old.grid_extensions == [] and old.invocations == []
    assert old.steps is None and old.cells[0].key is None
    text = "\n".join(verdict_lines(old))
    assert "(data_seeds = false)" in text and "Every run trained ? steps." in text


def test_a_file_that_is_not_a_summary_is_one_sentence(tmp_path):
    path = tmp_path / "summary.json"
    values = summary_values(tuning_seeds="zero")
    path.write_text(json.dumps(values))
    with pytest.raises(UserError, match=r"summary.json is not a study summary .*tuning_seeds"):
        load_summary(path)


def test_the_quick_studys_summary_json_is_what_summarise_gives(study):
    """The writer's own file: it loads, dumps to the same JSON, and equals a fresh `summarise`
    of the same runs once the runner's per-invocation fields are set aside."""
    text = (study / "summary.json").read_text()
    loaded = load_summary(study / "summary.json")
    assert json.loads(loaded.to_json()) == json.loads(text)
    assert StudySummary.model_validate_json(loaded.to_json()) == loaded
    fresh = summarise(load_study(preset_path("quick")), study)
    runner_fields = {"seconds_this_invocation", "stage_seconds_this_invocation", "invocations"}
    assert fresh.model_dump(exclude=runner_fields) == loaded.model_dump(exclude=runner_fields)
    verdict_runs = [r for r in loaded.runs if isinstance(r, VerdictRun)]
    (cell,) = loaded.cells
    assert verdict_runs and all(list(r.budget_auc) == cell.budget_steps for r in verdict_runs)
    assert all(list(r.test) == cell.horizons for r in verdict_runs)


def test_the_quick_studys_summary_json_loads_in_its_old_shape(study, tmp_path):
    """The current writer's file minus what newer writers added (`_old_shape`): the same runs,
    comparisons and tables, and the report's verdict reads as before data_seeds existed."""
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(_old_shape(json.loads((study / "summary.json").read_text()))))
    old, current = load_summary(path), load_summary(study / "summary.json")
    assert old.data_seeds is False and old.invocations == [] and old.runs == current.runs
    for before, now in zip(old.cells, current.cells, strict=True):
        assert before.comparisons == now.comparisons
        assert cell_table(before) == cell_table(now)
    assert "(data_seeds = false)" in "\n".join(verdict_lines(old))
