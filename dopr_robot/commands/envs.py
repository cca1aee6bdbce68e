"""`dopr-robot envs`: the env ids the toolkit ships, what H counts in each, their observation
keys, and the extra each needs (installed or not).

Everything printed comes from the catalog's records (`envs/catalog.py`); nothing is made, so the
listing starts no simulator and works without the optional extras.
"""

from __future__ import annotations

import argparse
import textwrap

#: observation keys last: the one long column, so a wide row wraps only there
HEADER = ("id", "family", "H kind", "H counts", "extra", "installed", "observation keys")

GENERIC = (
    "Any other registered gymnasium id (--env-import MODULE for one a package registers) or "
    "module:Class works through the generic adapter: H is a step budget (H x steps_per_horizon "
    "steps), a Box observation becomes `state` and a Dict keeps its keys."
)


def add_parser(commands) -> None:
    envs = commands.add_parser(
        "envs", help="the built-in env ids: what H counts, observation keys, extras"
    )
    envs.set_defaults(func=_list)


def observation_column(keys: tuple[str, ...], image_keys: tuple[str, ...]) -> str:
    """`state, agent_pos [+ img]`: the keys always there, then what `image=True` adds."""
    return ", ".join(keys) + (f" [+ {', '.join(image_keys)}]" if image_keys else "")


def rows() -> list[tuple[str, ...]]:
    from ..envs.catalog import FAMILIES

    table = []
    for family in FAMILIES:
        extra = family.extra
        table.append(
            (
                family.env_id,
                family.name,
                family.horizon_kind,
                family.counts,
                extra.name if extra else "-",
                "yes" if extra is None or extra.installed() else "no",
                observation_column(family.observation_keys, family.image_keys),
            )
        )
    return table


def format_table(header: tuple[str, ...], body: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in (header, *body)) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *body)
    ]


def _list(args: argparse.Namespace) -> int:
    print("\n".join(format_table(HEADER, rows())))
    print()
    print(textwrap.fill(GENERIC, width=100))
    return 0
