"""The documented shape of `results.json`, and a check that a file has it.

Written as a JSON Schema (draft 2020-12) and checked with `jsonschema`; `validate(results)`
returns one sentence per problem (an empty list when the file is valid). The episode rows'
schema is derived from the `Episode` record (`episode.py`), so the two cannot drift apart.

Versions: 2 added the continuous score (`score` per episode; `mean_score` per cell;
`score_auc` per curve). `upgrade` reads a version-1 file as version 2, with those fields None.
"""

from __future__ import annotations

from typing import Any

import jsonschema

from .episode import episode_schema

SCHEMA_ID = "dopr-robot/eval-results/2"
#: earlier versions `upgrade` reads
OLD_SCHEMA_IDS = ("dopr-robot/eval-results/1",)

_NUMBER = {"type": ["number", "null"]}
CELL = {
    "type": "object",
    "required": [
        "task_horizon",
        "inference_steps",
        "episodes",
        "successes",
        "success_rate",
        "wilson_low",
        "wilson_high",
        "mean_subgoals_done",
        "mean_score",
        "mean_failure_step",
        "errors",
        "mean_episode_seconds",
        "chunk_latency_ms",
    ],
    "properties": {
        "task_horizon": {"type": "integer"},
        "inference_steps": {"type": ["integer", "null"]},
        "episodes": {"type": "integer"},
        "successes": {"type": "integer"},
        "success_rate": {"type": "number"},
        "wilson_low": {"type": "number"},
        "wilson_high": {"type": "number"},
        "mean_subgoals_done": {"type": "number"},
        "mean_score": _NUMBER,
        "mean_failure_step": _NUMBER,
        "errors": {"type": "integer"},
        "mean_episode_seconds": {"type": "number"},
        "chunk_latency_ms": _NUMBER,
    },
}
EPISODE = episode_schema()
RESULTS_SCHEMA = {
    "type": "object",
    "required": [
        "schema",
        "config",
        "checkpoint",
        "env",
        "versions",
        "cells",
        "curves",
        "episodes",
    ],
    "properties": {
        "schema": {"type": "string", "enum": [SCHEMA_ID]},
        "config": {"type": "object"},
        "checkpoint": {
            "type": "object",
            "required": ["path", "step", "policy", "val_loss", "val_loss_ema"],
            "properties": {
                "path": {"type": "string"},
                "step": {"type": "integer"},
                "policy": {"type": "object"},
                "val_loss": _NUMBER,
                "val_loss_ema": _NUMBER,
            },
        },
        "env": {
            "type": "object",
            "required": ["id", "kwargs", "split", "seeds"],
            "properties": {
                "id": {"type": "string"},
                "kwargs": {"type": "object"},
                "split": {"type": "string", "enum": ["validation", "test"]},
                "seeds": {"type": "array", "items": {"type": "integer"}},
            },
        },
        "versions": {"type": "object"},
        "cells": {"type": "array", "items": CELL},
        "curves": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["inference_steps", "auc", "h50", "score_auc"],
                "properties": {
                    "inference_steps": {"type": ["integer", "null"]},
                    "auc": {"type": "number"},
                    "h50": _NUMBER,
                    "score_auc": _NUMBER,
                },
            },
        },
        "episodes": {"type": "array", "items": EPISODE},
    },
}


def validate(value: Any, schema: dict = RESULTS_SCHEMA) -> list[str]:
    """One sentence per place where `value` breaks `schema` (empty when it is valid)."""
    validator = jsonschema.Draft202012Validator(schema)
    problems = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    return [f"results{_where(error.absolute_path)}: {error.message}" for error in problems]


def _where(path) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)


def upgrade(results: dict[str, Any]) -> dict[str, Any]:
    """A results dict of any known version in today's shape (version-1 files had no score)."""
    if results.get("schema") not in OLD_SCHEMA_IDS:
        return results
    upgraded = {**results, "schema": SCHEMA_ID}
    upgraded["cells"] = [{"mean_score": None, **cell} for cell in results.get("cells", [])]
    upgraded["curves"] = [{"score_auc": None, **curve} for curve in results.get("curves", [])]
    upgraded["episodes"] = [{"score": None, **row} for row in results.get("episodes", [])]
    return upgraded
