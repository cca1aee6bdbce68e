"""The documented shape of `results.json`, and a check that a file has it.

Written as a JSON Schema (the subset used here: type, required, properties, items, enum), and
checked by a small validator so that no extra dependency is needed; `validate(results)` returns
one sentence per problem (an empty list when the file is valid).
"""

from __future__ import annotations

from typing import Any

SCHEMA_ID = "dopr-robot/eval-results/1"

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
        "mean_failure_step": _NUMBER,
        "errors": {"type": "integer"},
        "mean_episode_seconds": {"type": "number"},
        "chunk_latency_ms": _NUMBER,
    },
}
EPISODE = {
    "type": "object",
    "required": [
        "seed",
        "task_horizon",
        "inference_steps",
        "success",
        "subgoals_done",
        "length",
        "seconds",
        "error",
    ],
    "properties": {
        "seed": {"type": "integer"},
        "task_horizon": {"type": "integer"},
        "inference_steps": {"type": ["integer", "null"]},
        "success": {"type": "boolean"},
        "subgoals_done": {"type": "integer"},
        "length": {"type": "integer"},
        "seconds": {"type": "number"},
        "error": {"type": ["string", "null"]},
    },
}
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
                "required": ["inference_steps", "auc", "h50"],
                "properties": {
                    "inference_steps": {"type": ["integer", "null"]},
                    "auc": {"type": "number"},
                    "h50": _NUMBER,
                },
            },
        },
        "episodes": {"type": "array", "items": EPISODE},
    },
}

_TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
    "integer": int,
    "number": (int, float),
}


def _is(value: Any, kind: str) -> bool:
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[kind])


def validate(value: Any, schema: dict = RESULTS_SCHEMA, where: str = "results") -> list[str]:
    problems: list[str] = []
    kinds = schema.get("type")
    kinds = [kinds] if isinstance(kinds, str) else kinds
    if kinds and not any(_is(value, kind) for kind in kinds):
        return [f"{where} should be {' or '.join(kinds)}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where} should be one of {schema['enum']}, got {value!r}")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                problems.append(f"{where} lacks '{key}'")
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                problems += validate(value[key], sub, f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            problems += validate(item, schema["items"], f"{where}[{i}]")
    return problems
