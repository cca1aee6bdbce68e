"""hooks.py: the forward pre-hooks record only training-mode forwards with grad, stop when
removed, are shared (inert) by a copy of the model alone, detached in a pickled model, and
follow the copied modules when the optimizer is copied or pickled with its model."""

import copy
import pickle

import pytest
import torch

from dopr_robot.optim import DoPr

from .conftest import COPIES, mlp, pair_batches, statistic_hooks, step_once, stepped_pair


def test_nothing_recorded_in_eval_or_no_grad():
    model = mlp()
    opt = DoPr(model, update_every=1)
    x = torch.randn(8, 6, dtype=torch.float64)
    model.eval()
    model(x)
    model.train()
    with torch.no_grad():
        model(x)
    assert all("ap_pending" not in s for s in opt.state.values())
    model(x)
    assert "ap_pending" in opt.state[model[0].weight]


def test_remove_hooks_stops_recording():
    model = mlp()
    opt = DoPr(model, update_every=1)
    opt.remove_hooks()
    model(torch.randn(8, 6, dtype=torch.float64))
    assert all("ap_pending" not in s for s in opt.state.values())


def test_deepcopy_of_the_model_leaves_the_optimizer_alone():
    model = mlp()
    opt = DoPr(model, update_every=1)
    ema = copy.deepcopy(model)
    hook = next(iter(model[0]._forward_pre_hooks.values()))
    assert next(iter(ema[0]._forward_pre_hooks.values())) is hook  # shared, not copied
    ema(torch.randn(8, 6, dtype=torch.float64))  # a copy's forward feeds nothing
    assert all("ap_pending" not in s for s in opt.state.values())


@pytest.mark.parametrize("how", list(COPIES))
@pytest.mark.parametrize("conv_factor", ["kron", "full"])
def test_a_copied_dopr_hooks_the_copied_modules_once(conv_factor, how):
    model, optimizer = stepped_pair("dopr-adamw", "conv", conv_factor)
    optimizer_copy, model_copy = COPIES[how]((optimizer, model))  # the optimizer first
    refreshes = {n: d["refreshes"] for n, d in optimizer_copy.diagnostics().items()}
    for layer in (model_copy.conv1d, model_copy.conv2d, model_copy.head):
        (hook,) = statistic_hooks(layer)
        assert hook.optimizer is optimizer_copy
    for layer in (model.conv1d, model.conv2d, model.head):  # the original keeps its own
        (hook,) = statistic_hooks(layer)
        assert hook.optimizer is optimizer
    for batch in pair_batches(2, (2, 20), 2, seed=3):  # steps 4 and 5: the second refreshes
        step_once(model_copy, optimizer_copy, batch)
    after = optimizer_copy.diagnostics()
    assert all(after[n]["refreshes"] == count + 1 for n, count in refreshes.items())
    assert optimizer_copy.describe() == optimizer.describe()


def test_a_pickled_model_alone_carries_no_optimizer():
    model, optimizer = stepped_pair("dopr-adamw", "mlp")
    alone = pickle.loads(pickle.dumps(model))
    (hook,) = statistic_hooks(alone[0])
    assert hook.optimizer is None  # detached: feeds nothing
    alone(torch.randn(8, 6))
    assert all("ap_pending" not in s for s in optimizer.state.values())


def test_a_copy_of_an_unhooked_dopr_stays_unhooked():
    model, optimizer = stepped_pair("dopr-sgd", "mlp")
    optimizer.remove_hooks()
    model_copy, optimizer_copy = copy.deepcopy((model, optimizer))
    assert isinstance(optimizer_copy, DoPr)
    assert not optimizer_copy._hooks and not statistic_hooks(model_copy[0])
