"""Reading and checking the toolkit's settings files: TOML in, typed configs out, one sentence out
when anything is wrong.

Every file-facing config (train, policy, eval, collect, study) is a pydantic v2 model built on
`StrictConfig`: unknown keys are errors (`extra="forbid"`), types are strict (TOML's `1.5` is not
an integer, `true` is not a learning rate, `"ten"` is not a step count), and each field's
docstring is its description (the `--help` of the flags derived from it). `validated` turns a
pydantic `ValidationError` into a `UserError` whose message names the key, the value and what was
expected, so the CLI prints it as one line with exit code 2.

TOML has no null: a setting whose value may be None (`max_rows`, `perturbation`, ...) takes the
word "none" there (`OrNone`).

`differing_settings` is the one "resume with the same settings?" comparison: of a training run's
sections (`train/run_dir.py`), of an evaluation's folder (`eval/sweep.py`) and of a study's
directory (`study/runner.py`).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from .errors import UserError

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


def none_word(value: Any) -> Any:
    return None if isinstance(value, str) and value.strip().lower() == "none" else value


OrNone = Annotated[T | None, BeforeValidator(none_word)]
"""A setting that may be None; in TOML it is written as the word "none"."""


class StrictConfig(BaseModel):
    """Base of every settings model: unknown keys refused, no silent type coercion."""

    model_config = ConfigDict(
        extra="forbid", strict=True, use_attribute_docstrings=True, validate_assignment=True
    )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (what config.json and results.json store)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str | None = None, flags: bool = False):
        """A checked instance, or one sentence (UserError) naming `where`, key and value."""
        return validated(cls, values, where or f"{cls.__name__} settings", flags)


def validated(model: type[M], values: dict[str, Any], where: str, flags: bool = False) -> M:
    """`model(**values)`, or a UserError naming `where`, the key, the value and the expectation;
    with `flags`, the values came from the command line and keys are named as `--flag-names`."""
    if not isinstance(values, dict):
        raise UserError(f"{where} must be a table of settings, got {_show(values)}")
    try:
        return model.model_validate(values)
    except ValidationError as error:
        raise UserError(describe_validation_error(error, where, flags)) from None


def assign_flag(config: BaseModel, name: str, value: Any) -> None:
    """`config.name = value` from a command-line flag, validated, or one sentence naming it."""
    try:
        setattr(config, name, value)
    except ValidationError as error:
        raise UserError(describe_validation_error(error, "bad flag", flags=True)) from None


def describe_validation_error(error: ValidationError, where: str, flags: bool = False) -> str:
    """The first problem of a ValidationError as one sentence (with a count of the others)."""
    problems = error.errors(include_url=False)
    first = problems[0]
    key = ".".join(str(part) for part in first["loc"])
    if flags and first["loc"]:
        key = (
            "--"
            + str(first["loc"][0]).replace("_", "-")
            + "".join(f".{part}" for part in first["loc"][1:])
        )
        where = "bad flag"
    expected = first["msg"]
    if expected.startswith("Value error, "):
        expected = expected.removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        sentence = f"{where}: unknown key {key!r}"
    elif first["type"] == "missing":
        sentence = f"{where}: missing key {key!r}"
    elif key:
        sentence = f"{where}: {key} = {_show(first['input'])} is not valid ({_lower(expected)})"
    else:
        sentence = f"{where}: {_lower(expected)}"
    if len(problems) > 1:
        sentence += f"; and {len(problems) - 1} more problem(s)"
    return sentence


def _lower(text: str) -> str:
    return text[:1].lower() + text[1:]


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def read_toml(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """A TOML file's tables, with one sentence for a missing, empty-named or broken file."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise UserError(f"{what} {path} is a directory, not a TOML file") from None
    except UnicodeDecodeError:
        raise UserError(f"{what} {path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"{path} is not valid TOML ({error})") from None


def differing_settings(
    saved: dict[str, Any],
    mine: dict[str, Any],
    *,
    ignored: Iterable[str] = (),
    anchor: str | None = None,
    paths: tuple[str, ...] = (),
) -> list[str]:
    """Names whose values differ between two settings dicts (a name missing on one side counts):
    what every "resume with the same settings" check reports. `ignored` names are compared on
    neither side (settings that change no result, or that a resume may change).

    Settings that name a directory (`anchor`, e.g. a run's `out`) and paths (`paths`, e.g. its
    `data`): the anchor itself is not compared (it is where the thing is), and a path counts as
    the same when it is the same file, or the same location relative to the anchor — so a run or
    study moved or mounted elsewhere with its data still matches, and so does a run moved away
    from data that stayed put."""
    skipped = set(ignored) | ({anchor} if anchor is not None else set())
    keys = (set(saved) | set(mine)) - skipped
    plain = [k for k in keys if k not in paths and saved.get(k) != mine.get(k)]
    moved = [
        k
        for k in paths
        if k in keys and saved.get(k) != mine.get(k) and not _same_path(saved, mine, k, anchor)
    ]
    return sorted(plain + moved)


def _same_path(saved: dict[str, Any], mine: dict[str, Any], key: str, anchor: str | None) -> bool:
    """Same file, or — when both sides name their anchor — the same place relative to it."""
    if not (isinstance(saved.get(key), str) and isinstance(mine.get(key), str)):
        return False
    if os.path.abspath(saved[key]) == os.path.abspath(mine[key]):
        return True
    if anchor is None or not (saved.get(anchor) and mine.get(anchor)):
        return False
    return _relative(saved[key], saved[anchor]) == _relative(mine[key], mine[anchor])


def _relative(path: str, anchor: str | os.PathLike) -> str:
    return os.path.relpath(os.path.abspath(path), os.path.abspath(anchor))


def moved_path(path: str, anchor: str, new_anchor: str | os.PathLike) -> str:
    """Where `path` is now if it moved together with `anchor` (which is now `new_anchor`): the
    path itself when it still exists, else the same relative location from `new_anchor`."""
    if os.path.exists(path) or not anchor:
        return path
    return os.path.normpath(os.path.join(os.path.abspath(new_anchor), _relative(path, anchor)))
