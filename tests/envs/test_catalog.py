"""The catalog of env families: the tables derived from it, its records against the real envs,
and the install hint when an extra is missing."""

from __future__ import annotations

import sys

import gymnasium
import pytest

from dopr_robot.envs import catalog, make
from dopr_robot.envs.family import EnvFamily, load_entry_point
from dopr_robot.envs.registry import resolve_env
from dopr_robot.errors import UserError

#: what the tables held before they were derived from records (issue 28): they must not move
LEVELS = {
    "dopr_robot/ReachChain-v0": 1.0,
    "dopr_robot/PushChain-v0": 0.5,
    "dopr_robot/Balance-v0": 0.4,
    "dopr_robot/MetaWorld-v0": 10.0,
}
KINDS = {
    "dopr_robot/ReachChain-v0": "native-chain",
    "dopr_robot/PushChain-v0": "native-chain",
    "dopr_robot/Balance-v0": "step-budget",
    "dopr_robot/MetaWorld-v0": "step-budget",
    "gym_pusht/PushT-v0": "replaced-chain",
    "robosuite/Lift": "replaced-chain",
    "robosuite/Stack": "replaced-chain",
    "robosuite/PickPlaceCan": "replaced-chain",
    "robosuite/NutAssemblySquare": "replaced-chain",
}


def installed(family) -> bool:
    return family.extra is None or family.extra.installed()


def test_the_tables_derived_from_the_records_are_what_they_were():
    assert catalog.KNOWN_IDS == tuple(KINDS)
    assert catalog.ENV_IDS == tuple(LEVELS)
    assert catalog.PERTURBATION_LEVELS == LEVELS
    assert catalog.ROBOSUITE_IDS == (
        "robosuite/Lift",
        "robosuite/Stack",
        "robosuite/PickPlaceCan",
        "robosuite/NutAssemblySquare",
    )
    for env_id in catalog.ENV_IDS:
        assert gymnasium.registry[env_id].entry_point == catalog.FAMILY_OF[env_id].env


@pytest.mark.parametrize("family", catalog.FAMILIES, ids=lambda f: f.env_id)
def test_each_record_resolves_to_its_adapter_and_expert(family):
    if not installed(family):
        pytest.skip(f"extra {family.extra.name} not installed")
    adapter = resolve_env(family.env_id)
    assert type(adapter) is load_entry_point(family.adapter)
    assert adapter.horizon_kind == KINDS[family.env_id] == family.horizon_kind
    assert type(adapter.expert()) is load_entry_point(family.expert)


@pytest.mark.parametrize("image", [False, True])
@pytest.mark.parametrize("family", catalog.FAMILIES, ids=lambda f: f.env_id)
def test_each_records_observation_keys_are_the_real_envs(family, image):
    """The listing prints the record's keys without making an env: they must be the env's."""
    if not installed(family):
        pytest.skip(f"extra {family.extra.name} not installed")
    env = make(family.env_id, task_horizon=1, image=image)
    try:
        expected = family.observation_keys + (family.image_keys if image else ())
        assert set(env.observation_space.spaces) == set(expected)
    finally:
        env.close()


def test_a_family_whose_extra_is_missing_is_its_install_hint(monkeypatch):
    # as if gym-pusht and shapely (the pusht extra) were not installed, and the adapter's
    # modules not yet imported (monkeypatch puts all four back afterwards)
    loaded = [m for m in sys.modules if m.partition(".")[0] in ("gym_pusht", "shapely")]
    for name in {"gym_pusht", "shapely", *loaded}:
        monkeypatch.setitem(sys.modules, name, None)
    for name in ("dopr_robot.envs.pusht", "dopr_robot.envs.pusht_expert"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    hint = r'^PushT needs gym-pusht; pip install "dopr-robot\[pusht\]"$'
    with pytest.raises(UserError, match=hint):
        resolve_env("gym_pusht/PushT-v0")


def test_a_record_with_an_unknown_horizon_kind_is_refused():
    with pytest.raises(ValueError, match="horizon_kind must be one of"):
        EnvFamily("x/Y-v0", "Y", "laps", "laps", "m:A", "m:E")
