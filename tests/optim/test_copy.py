"""A stepped (model, optimizer) pair deep-copies and pickles like torch's optimizers: the copy
steps exactly as the original does (bit for bit), and DoPr's hooks follow the copied model."""

import copy
import pickle

import pytest
import torch
from torch import nn

from dopr_robot.optim import OPTIMIZER_NAMES, DoPr, build_optimizer
from dopr_robot.optim.hooks import StatisticHook

from .helpers import mlp


class ConvNet(nn.Module):
    """Conv1d (padding, stride, dilation), Conv2d ('same', reflect) and a Linear head."""

    def __init__(self):
        super().__init__()
        self.conv1d = nn.Conv1d(2, 6, 3, padding=2, stride=2, dilation=2)
        self.conv2d = nn.Conv2d(1, 4, 3, padding="same", padding_mode="reflect")
        self.head = nn.Linear(6 + 4, 2)

    def forward(self, x):
        h = torch.tanh(self.conv1d(x)).mean(dim=-1)
        image = x[:, :1, :16].reshape(-1, 1, 4, 4)
        g = torch.tanh(self.conv2d(image)).mean(dim=(-1, -2))
        return self.head(torch.cat([h, g], dim=-1))


MODELS = {
    "mlp": (lambda: mlp(dtype=torch.float32), (6,), 3),
    "conv": (ConvNet, (2, 20), 2),
}
COPIES = {
    "deepcopy": copy.deepcopy,
    "pickle": lambda pair: pickle.loads(pickle.dumps(pair)),
}


def _settings(name: str, conv_factor: str) -> dict:
    # refreshes every 2 steps, so that the copy is made between refreshes and refreshes after
    settings = dict(lr=1e-2)
    if name.startswith("dopr-"):
        settings.update(update_every=2, max_rows=24, conv_factor=conv_factor)
    return settings


def _step(model, optimizer, batch) -> None:
    x, y = batch
    ((model(x) - y) ** 2).mean().backward()
    optimizer.step()
    optimizer.zero_grad()


def _batches(n: int, in_shape: tuple, out_dim: int, seed: int) -> list:
    gen = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(8, *in_shape, generator=gen), torch.randn(8, out_dim, generator=gen))
        for _ in range(n)
    ]


def _stepped_pair(name: str, kind: str, conv_factor: str = "kron"):
    make, in_shape, out_dim = MODELS[kind]
    torch.manual_seed(0)
    model = make()
    optimizer = build_optimizer(name, model, **_settings(name, conv_factor))
    for batch in _batches(3, in_shape, out_dim, seed=1):
        _step(model, optimizer, batch)
    return model, optimizer


def _statistic_hooks(module: nn.Module) -> list:
    return [h for h in module._forward_pre_hooks.values() if isinstance(h, StatisticHook)]


@pytest.mark.parametrize("how", list(COPIES))
@pytest.mark.parametrize("kind", list(MODELS))
@pytest.mark.parametrize("name", OPTIMIZER_NAMES)
def test_a_copied_pair_steps_exactly_as_the_original(name, kind, how):
    model, optimizer = _stepped_pair(name, kind)
    model_copy, optimizer_copy = COPIES[how]((model, optimizer))
    assert type(optimizer_copy) is type(optimizer)
    _, in_shape, out_dim = MODELS[kind]
    for batch in _batches(5, in_shape, out_dim, seed=2):
        _step(model, optimizer, batch)
        _step(model_copy, optimizer_copy, batch)
    theirs_all = model_copy.state_dict().values()
    for (key, ours), theirs in zip(model.state_dict().items(), theirs_all, strict=True):
        assert torch.equal(ours, theirs), f"{name} {kind} {how}: {key} differs"
    original = model.state_dict()
    assert all(p.data_ptr() != original[k].data_ptr() for k, p in model_copy.state_dict().items())


@pytest.mark.parametrize("how", list(COPIES))
@pytest.mark.parametrize("conv_factor", ["kron", "full"])
def test_a_copied_dopr_hooks_the_copied_modules_once(conv_factor, how):
    model, optimizer = _stepped_pair("dopr-adamw", "conv", conv_factor)
    optimizer_copy, model_copy = COPIES[how]((optimizer, model))  # the optimizer first
    refreshes = {n: d["refreshes"] for n, d in optimizer_copy.diagnostics().items()}
    for layer in (model_copy.conv1d, model_copy.conv2d, model_copy.head):
        (hook,) = _statistic_hooks(layer)
        assert hook.optimizer is optimizer_copy
    for layer in (model.conv1d, model.conv2d, model.head):  # the original keeps its own
        (hook,) = _statistic_hooks(layer)
        assert hook.optimizer is optimizer
    for batch in _batches(2, (2, 20), 2, seed=3):  # steps 4 and 5: the second refreshes
        _step(model_copy, optimizer_copy, batch)
    after = optimizer_copy.diagnostics()
    assert all(after[n]["refreshes"] == count + 1 for n, count in refreshes.items())
    assert optimizer_copy.describe() == optimizer.describe()


def test_a_pickled_model_alone_carries_no_optimizer():
    model, optimizer = _stepped_pair("dopr-adamw", "mlp")
    alone = pickle.loads(pickle.dumps(model))
    (hook,) = _statistic_hooks(alone[0])
    assert hook.optimizer is None  # detached: feeds nothing
    alone(torch.randn(8, 6))
    assert all("ap_pending" not in s for s in optimizer.state.values())


def test_a_copy_of_an_unhooked_dopr_stays_unhooked():
    model, optimizer = _stepped_pair("dopr-sgd", "mlp")
    optimizer.remove_hooks()
    model_copy, optimizer_copy = copy.deepcopy((model, optimizer))
    assert isinstance(optimizer_copy, DoPr)
    assert not optimizer_copy._hooks and not _statistic_hooks(model_copy[0])
