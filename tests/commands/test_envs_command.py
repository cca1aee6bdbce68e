"""`dopr-robot envs`: every id the toolkit ships, and observation keys that are the real envs'."""

from __future__ import annotations

import pytest

from dopr_robot.cli import main
from dopr_robot.commands.envs import HEADER
from dopr_robot.envs import make

IDS = (
    "dopr_robot/ReachChain-v0",
    "dopr_robot/PushChain-v0",
    "dopr_robot/Balance-v0",
    "dopr_robot/MetaWorld-v0",
    "gym_pusht/PushT-v0",
    "robosuite/Lift",
    "robosuite/Stack",
    "robosuite/PickPlaceCan",
    "robosuite/NutAssemblySquare",
)
#: the built-in envs that are cheap to make (no optional extra)
CHEAP = ("dopr_robot/ReachChain-v0", "dopr_robot/PushChain-v0", "dopr_robot/Balance-v0")


def run_listing(capsys) -> tuple[dict[str, dict[str, str]], list[str]]:
    """The table's rows by id, each a column -> cell mapping (columns found by the header), and
    every line printed."""
    assert main(["envs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0]
    starts = [header.index(name) for name in HEADER]
    rows = {}
    for line in lines[1 : 1 + len(IDS)]:
        bounds = zip(starts, [*starts[1:], None], strict=True)
        cells = [line[start:end].strip() for start, end in bounds]
        rows[cells[0]] = dict(zip(HEADER, cells, strict=True))
    return rows, lines


def test_envs_lists_every_id_and_the_generic_adapter(capsys):
    rows, lines = run_listing(capsys)
    assert tuple(rows) == IDS
    assert rows["gym_pusht/PushT-v0"]["extra"] == "pusht"
    assert rows["dopr_robot/Balance-v0"]["H kind"] == "step-budget"
    assert rows["dopr_robot/ReachChain-v0"]["installed"] == "yes"
    assert "module:Class" in " ".join(lines[1 + len(IDS) :])


@pytest.mark.parametrize("env_id", CHEAP)
def test_the_observation_key_column_is_the_real_envs(capsys, env_id):
    rows, _ = run_listing(capsys)
    column = rows[env_id]["observation keys"]
    always, _, added = column.partition(" [+ ")
    for image, keys in ((False, always), (True, f"{always}, {added.rstrip(']')}")):
        env = make(env_id, task_horizon=1, image=image)
        try:
            assert set(keys.split(", ")) == set(env.observation_space.spaces), (env_id, image)
        finally:
            env.close()
