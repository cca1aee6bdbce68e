"""The record of one closed-loop episode, defined once: the runner fills it, `episodes.jsonl`,
`results.json` and `episodes.csv` store it, and the JSON Schema of a row is derived from it.

A row is `Episode.to_dict()`; `Episode.from_row` reads rows of every schema version, so a sweep
started before the score existed resumes (its old rows have `score` None and its cells then
report no mean score rather than a wrong one).
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

#: JSON Schema type of each Python annotation used in the record
_JSON_TYPES = {int: "integer", float: "number", bool: "boolean", str: "string"}


@dataclass(kw_only=True)
class Episode:
    """One rollout; one line per field says what it holds (in the order of CSV columns)."""

    task_horizon: int
    """H the episode was run at"""
    inference_steps: int | None = None
    """sampler steps the policy used (None: a regression policy, or not set by the runner)"""
    seed: int
    """the env seed: the episode's layout and its noise key"""
    success: bool
    """all H sub-goals done (the env's own success signal)"""
    subgoals_done: int
    """sub-goals done (pushes, goals, steps survived: the env's `subgoals_done`)"""
    score: float | None = None
    """the field's continuous score in [0, 1] where the env defines one (PushT: diffusion_policy's
    best coverage / 0.95, chains: share of sub-goals, balance: share of H survived); None in rows
    written before scores existed"""
    length: int
    """control steps taken"""
    seconds: float
    """wall time of the episode"""
    error: str | None = None
    """the exception an env raised, which ended this episode as a failure"""
    #: (RGB frame, sub-goals done at that moment) per step, when recorded; never stored
    frames: list[tuple[np.ndarray, int]] | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in row_fields()}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Episode:
        """A stored row (any schema version: fields added later take their defaults)."""
        return cls(**{name: row[name] for name in row_fields() if name in row})


def row_fields() -> list[str]:
    """The stored fields, in the order of CSV columns."""
    return [f.name for f in fields(Episode) if f.name != "frames"]


def _json_type(annotation: Any) -> list[str]:
    hints = (
        typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    )
    return [("null" if hint is type(None) else _JSON_TYPES[hint]) for hint in hints]


def episode_schema() -> dict[str, Any]:
    """The JSON Schema of a stored row, derived from the dataclass."""
    hints = typing.get_type_hints(Episode)
    names = row_fields()
    properties = {name: {"type": _json_type(hints[name])} for name in names}
    return {"type": "object", "required": names, "properties": properties}
