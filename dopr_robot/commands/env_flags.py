"""The flags that name an env, shared by `collect`, `eval` and `render`.

`--env-import MODULE` imports the module that registers an id (written into the id as
`MODULE:ID`, gymnasium's own form, so subprocesses and later commands import it too);
`--success-key KEY` names the info key of a user env's success signal and `--score-key KEY`
that of its continuous score; `--env-setting KEY=VALUE`
(repeatable, VALUE read as JSON when it parses, else as a string) passes any other make setting,
e.g. `steps_per_horizon=50`, `steps_per_push=200`, or an env constructor's own argument.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..errors import UserError


def add_env_flags(parser: argparse.ArgumentParser, env_help: str) -> None:
    parser.add_argument("--env", help=env_help)
    parser.add_argument(
        "--env-import", metavar="MODULE", help="module to import first (it registers --env)"
    )
    parser.add_argument(
        "--success-key", help="info key of a gymnasium env's success signal (default is_success)"
    )
    parser.add_argument(
        "--score-key",
        help="info key of a gymnasium env's continuous score; the episode scores its best value "
        "(default: the episode's best reward)",
    )
    parser.add_argument(
        "--env-setting",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a make setting of the env (repeatable; VALUE as JSON or text)",
    )


def env_id_from(args: argparse.Namespace) -> str | None:
    """`--env`, prefixed with `--env-import`'s module (gymnasium's `module:id` form)."""
    if args.env_import and not args.env:
        raise UserError("--env-import needs --env (the id the module registers)")
    if args.env_import:
        if ":" in args.env:
            raise UserError("--env-import cannot be combined with a module:Class --env")
        return f"{args.env_import}:{args.env}"
    return args.env


def env_settings_from(args: argparse.Namespace) -> dict[str, Any]:
    """`--env-setting` pairs and `--success-key` as make settings."""
    settings: dict[str, Any] = {}
    for pair in args.env_setting:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--env-setting takes KEY=VALUE, got {pair!r}")
        try:
            settings[key.strip()] = json.loads(text)
        except json.JSONDecodeError:
            settings[key.strip()] = text
    if args.success_key:
        settings["success_key"] = args.success_key
    if args.score_key:
        settings["score_key"] = args.score_key
    return settings
