"""A training run's directory: where each thing lives in it, and whether it is the run one means.

    <run>/
        config.json                    settings the run was started with: policy, train,
                                       shape_meta, versions (each checkpoint holds a copy)
        metrics.jsonl                  one JSON object per logged step
        tensorboard/                   with `tensorboard = true`
        checkpoints/step_0001000/      one per saved step (`checkpoint.py` owns what is inside;
                                       its `trainer_state.json` is `TRAINER_STATE`)
        eval/<checkpoint>-<split>/     `dopr-robot eval` of one checkpoint, by default
        eval/checkpoints-<split>/      every checkpoint swept (`--all-checkpoints`)
        eval/validation, eval/test,    a study's evaluations (`study/plan.py`)
        eval/budget/<checkpoint>/

Every module that looks for something in a run asks `RunDir` rather than joining names itself.
"Was this run written with these settings?" is `differing_run_settings`, used by a resume
(the trainer, against a checkpoint's config) and by a study checking the runs it finds on disk;
`with_old_meanings` gives an old run's settings the meaning they had (`train --resume` starts
from them).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config_io import differing_settings
from ..errors import UserError
from ..policies import PolicyConfig

CONFIG = "config.json"
METRICS = "metrics.jsonl"
TRAINER_STATE = "trainer_state.json"
STEP_DIR = re.compile(r"^step_(\d{7,})$")

#: train settings added since a run may have been written, with the meaning they had then
TRAIN_BEFORE_THEY_EXISTED = {"fast_path": False}


def checkpoint_name(step: int) -> str:
    """`step_0001000`: zero-padded, so names sort like steps up to ten million."""
    return f"step_{step:07d}"


@dataclass(frozen=True)
class RunDir:
    """The paths of one run directory (nothing is read or made until asked)."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @classmethod
    def of_checkpoint(cls, checkpoint: str | Path) -> RunDir:
        """The run a checkpoint directory belongs to (`<run>/checkpoints/<step>`)."""
        return cls(Path(checkpoint).parent.parent)

    @property
    def config(self) -> Path:
        return self.path / CONFIG

    @property
    def metrics(self) -> Path:
        return self.path / METRICS

    @property
    def tensorboard(self) -> Path:
        return self.path / "tensorboard"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def checkpoint(self, step: int) -> Path:
        return self.checkpoints / checkpoint_name(step)

    def checkpoints_newest_first(self) -> list[Path]:
        """Finished checkpoints only: a temporary `.step_*.partial` or a set-aside
        `step_*.broken` is not one."""
        if not self.checkpoints.is_dir():
            return []
        found = [
            (int(m.group(1)), p)
            for p in self.checkpoints.iterdir()
            if (m := STEP_DIR.match(p.name))
        ]
        return [path for _, path in sorted(found, reverse=True)]

    def latest_checkpoint(self) -> Path | None:
        found = self.checkpoints_newest_first()
        return found[0] if found else None

    def eval_dir(self, name: str) -> Path:
        return self.path / "eval" / name

    def sweep_dir(self, checkpoint: Path, split: str) -> Path:
        """Where `dopr-robot eval` writes a checkpoint's sweep unless told otherwise."""
        return self.eval_dir(f"{Path(checkpoint).name}-{split}")

    def read_config(self) -> dict[str, Any]:
        """config.json, or one sentence when it is missing or not JSON."""
        try:
            return json.loads(self.config.read_text())
        except FileNotFoundError:
            raise UserError(f"{self.path} is not a training run (no {CONFIG})") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise UserError(f"{self.config} is not valid JSON ({error})") from None


def latest_checkpoint(run: str | Path) -> Path | None:
    """The newest finished checkpoint of the run directory `run` (None before the first)."""
    return RunDir(run).latest_checkpoint()


def with_old_meanings(saved: dict[str, Any], planned_policy: dict | None = None) -> dict[str, Any]:
    """A run's saved settings (config.json) with every setting added since it was written given
    the meaning it had then, so they compare with today's; `planned_policy`: see
    `PolicyConfig.saved_settings`."""
    values = dict(saved)
    if "policy" in saved:
        values["policy"] = PolicyConfig.saved_settings(saved, planned_policy)
    if "train" in saved:
        values["train"] = {**TRAIN_BEFORE_THEY_EXISTED, **saved["train"]}
    return values


def differing_run_settings(
    saved: dict[str, Any], mine: dict[str, dict[str, Any]], train_ignored: tuple[str, ...] = ()
) -> tuple[str, list[str]] | None:
    """The first section of `mine` (in its order: "policy", "train", "shape_meta", ...) whose
    settings differ from the saved ones, with the names that differ; None when all match.
    Settings added since the run was written take their old meaning (`with_old_meanings`), and
    the train section's `data` counts as the same when it is the same place relative to `out`
    (a run moved with, or away from, its data is the same run); `train_ignored` names are not
    compared (a resume may extend `steps`)."""
    saved = with_old_meanings(saved, mine.get("policy"))
    for section, ours in mine.items():
        theirs = saved.get(section, {})
        if section == "train":
            differing = differing_settings(
                theirs, ours, ignored=train_ignored, anchor="out", paths=("data",)
            )
        else:
            differing = differing_settings(theirs, ours)
        if differing:
            return section, differing
    return None
