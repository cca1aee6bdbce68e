"""The episode record: one definition, from which the stored row and its schema derive."""

from __future__ import annotations

import jsonschema
import pytest

from dopr_robot.eval.episode import Episode, episode_schema, row_fields


def _episode(**changes):
    values = dict(task_horizon=2, seed=7, success=True, subgoals_done=2, length=30, seconds=0.5)
    return Episode(**{**values, **changes})


def test_the_schema_has_every_stored_field_with_its_type():
    schema = episode_schema()
    assert schema["required"] == row_fields()
    assert "frames" not in row_fields()  # frames are never stored
    assert schema["properties"]["score"]["type"] == ["number", "null"]
    assert schema["properties"]["success"]["type"] == ["boolean"]
    jsonschema.validate(_episode(score=0.5).to_dict(), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**_episode().to_dict(), "score": "high"}, schema)


def test_a_row_from_before_the_score_reads_with_score_none():
    old_row = {k: v for k, v in _episode(score=0.9).to_dict().items() if k != "score"}
    episode = Episode.from_row(old_row)
    assert episode.score is None and episode.to_dict() == {**old_row, "score": None}
    assert Episode.from_row(_episode(score=0.9).to_dict()).score == 0.9
