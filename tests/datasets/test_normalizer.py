"""Normalizer: round trips, limits, constant dimensions at deployment, state_dict."""

import numpy as np
import pytest
import torch

from dopr_robot.datasets import Normalizer
from dopr_robot.errors import DataError


def demo_data(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "action": rng.uniform(-3, 7, size=(500, 4)),
        "state": rng.normal(2.0, 5.0, size=(500, 3)),
    }


@pytest.mark.parametrize("mode", ["limits", "gaussian"])
def test_round_trip(mode):
    data = demo_data()
    norm = Normalizer({"action": 4, "state": 3}, {"action": mode, "state": mode}).fit(data)
    x = torch.as_tensor(data["state"], dtype=torch.float64)
    torch.testing.assert_close(norm.unnormalize("state", norm.normalize("state", x)), x)


def test_limits_map_to_minus_one_one():
    data = demo_data()
    norm = Normalizer({"action": 4}).fit(data)
    y = norm.normalize("action", torch.as_tensor(data["action"], dtype=torch.float64))
    torch.testing.assert_close(y.min(dim=0).values, -torch.ones(4, dtype=torch.float64))
    torch.testing.assert_close(y.max(dim=0).values, torch.ones(4, dtype=torch.float64))


def test_gaussian_standardises():
    data = demo_data()
    norm = Normalizer({"state": 3}, {"state": "gaussian"}).fit(data)
    y = norm.normalize("state", torch.as_tensor(data["state"]))
    torch.testing.assert_close(y.mean(dim=0), torch.zeros(3, dtype=torch.float64))
    torch.testing.assert_close(y.std(dim=0, unbiased=False), torch.ones(3, dtype=torch.float64))


@pytest.mark.parametrize("mode", ["limits", "gaussian"])
@pytest.mark.parametrize("jitter", [0.0, 1e-7])
def test_constant_demo_dimension_stays_bounded_when_it_moves_at_deployment(mode, jitter):
    """A contact force that never moved in the demos moves at deployment: the network must see
    that deviation at its own size, not multiplied by 1/tiny (which once gave inputs of ~1e6)."""
    rng = np.random.default_rng(0)
    force = 3.0 + jitter * rng.standard_normal((400, 1))
    data = {"obs": np.concatenate([rng.normal(size=(400, 2)), force], axis=1)}
    norm = Normalizer({"obs": 3}, {"obs": mode}).fit(data)
    at_train = norm.normalize("obs", torch.as_tensor(data["obs"]))
    assert at_train[:, 2].abs().max() < 1e-5  # the constant maps to ~0 ...
    deployed = torch.tensor([[0.0, 0.0, 3.0 + 50.0]], dtype=torch.float64)
    value = norm.normalize("obs", deployed)[0, 2]
    assert abs(float(value)) <= 50.0 + 1e-6  # ... and a deviation of 50 enters as at most 50


def test_image_mode_maps_uint8_to_unit_range():
    norm = Normalizer({"image": 3}, {"image": "image"}).fit({})
    image = torch.tensor([[[0, 128, 255]]], dtype=torch.uint8)
    out = norm.normalize("image", image)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, torch.tensor([[[0.0, 128 / 255, 1.0]]]))


def test_state_dict_round_trip_into_a_fresh_normalizer():
    data = demo_data()
    dims, modes = {"action": 4, "state": 3}, {"state": "gaussian"}
    norm = Normalizer(dims, modes).fit(data)
    fresh = Normalizer(dims, modes)
    fresh.load_state_dict(norm.state_dict())
    x = torch.as_tensor(data["action"][:5], dtype=torch.float32)
    torch.testing.assert_close(fresh.normalize("action", x), norm.normalize("action", x))
    assert all(isinstance(v, torch.Tensor) for v in norm.state_dict().values())


def test_errors():
    with pytest.raises(RuntimeError, match="never fitted"):
        Normalizer({"a": 2}).normalize("a", torch.zeros(2))
    with pytest.raises(DataError, match="no key 'b'"):
        Normalizer({"a": 2}).fit({"a": np.zeros((3, 2))}).normalize("b", torch.zeros(2))
    with pytest.raises(DataError, match="NaN"):
        Normalizer({"a": 2}).fit({"a": np.array([[0.0, np.nan]])})
    with pytest.raises(DataError, match="invalid normalizer mode"):
        Normalizer({"a": 2}, {"a": "minmax"})
