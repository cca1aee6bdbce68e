"""Hooks, accumulation, schedulers, param groups, state_dict round trip and bitwise resume."""

import copy
import io
import json
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dopr_robot.optim import DoPr, build_optimizer

from .helpers import ConvNet, batches, mlp, train


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


def test_grads_are_left_as_they_were():
    model = mlp()
    opt = DoPr(model, update_every=1)
    model(torch.randn(8, 6, dtype=torch.float64)).pow(2).sum().backward()
    before = [p.grad.clone() for p in model.parameters()]
    opt.step()
    for p, g in zip(model.parameters(), before, strict=True):
        assert torch.equal(p.grad, g)


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


def test_hook_that_never_fires_is_warned_about_once():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.used = nn.Linear(4, 4)
            self.bypassed = nn.Linear(4, 2)

        def forward(self, x):
            return F.linear(self.used(x), self.bypassed.weight, self.bypassed.bias)

    model = Functional()
    opt = DoPr(model, update_every=1)
    with pytest.warns(UserWarning, match="'bypassed'.*never fired"):
        model(torch.randn(8, 4)).sum().backward()
        opt.step()
    opt.zero_grad()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model(torch.randn(8, 4)).sum().backward()
        opt.step()
    assert "ap_inverse" in opt.state[model.used.weight]
    assert "ap_inverse" not in opt.state[model.bypassed.weight]


def test_multihead_attention_out_proj_is_left_to_the_base():
    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
            self.head = nn.Linear(8, 1)

        def forward(self, x):
            return self.head(self.attn(x, x, x)[0])

    model = Attention()
    opt = DoPr(model, update_every=1)
    assert "attn.out_proj" in opt.describe() and "MultiheadAttention" in opt.describe()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model(torch.randn(2, 5, 8)).sum().backward()
        opt.step()


def test_gradient_accumulation_equals_one_batch():
    whole, parts = ConvNet(), ConvNet()
    parts.load_state_dict(whole.state_dict())
    settings = dict(lr=1e-2, statistic="ema", update_every=2)
    opt_whole, opt_parts = DoPr(whole, **settings), DoPr(parts, **settings)
    for x, y in batches(5, 16, (3, 12), 2):
        ((whole(x) - y) ** 2).mean().backward()
        opt_whole.step()
        opt_whole.zero_grad()
        for xs, ys in zip(x.chunk(4), y.chunk(4), strict=True):
            (((parts(xs) - ys) ** 2).mean() / 4).backward()
        opt_parts.step()
        opt_parts.zero_grad()
    for a, b in zip(whole.parameters(), parts.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


def test_lr_scheduler_and_param_groups():
    model = mlp()
    head = list(model[3].parameters())
    body = [p for p in model.parameters() if all(p is not h for h in head)]
    opt = DoPr(model, [{"params": body}, {"params": head, "lr": 0.0}], lr=1e-2)
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.5**step)
    frozen = [p.detach().clone() for p in head]
    train(model, opt, batches(3, 8, (6,), 3))
    scheduler.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(5e-3)
    for p, q in zip(head, frozen, strict=True):  # lr 0 and decoupled decay: untouched
        assert torch.equal(p, q)


def _run(name, steps, state=None, **settings):
    torch.manual_seed(7)
    model = ConvNet(dtype=torch.float32)
    opt = build_optimizer(name, model, lr=1e-2, **settings)
    data = batches(10, 16, (3, 12), 2, dtype=torch.float32, seed=3)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
    start = 0 if state is None else state["step"]
    train(model, opt, data[start : start + steps])
    return model, opt


@pytest.mark.parametrize("name", ["dopr-adamw", "dopr-muon", "dopr-sgd"])
def test_resume_is_bitwise_identical(name):
    settings = dict(statistic="ema", update_every=3)  # interrupt in the middle of a period
    reference, _ = _run(name, 10, **settings)
    model, opt = _run(name, 5, **settings)
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": 5}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    resumed, _ = _run(name, 5, state=saved, **settings)
    for a, b in zip(reference.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)


def test_param_groups_are_json_and_state_round_trips():
    model = mlp(dtype=torch.float32)
    opt = build_optimizer("dopr-muon", model)
    train(model, opt, batches(2, 8, (6,), 3, dtype=torch.float32))
    saved = opt.state_dict()
    json.dumps(saved["param_groups"])
    fresh = build_optimizer("dopr-muon", model)
    fresh.load_state_dict(saved)
    again = fresh.state_dict()
    assert again["param_groups"] == saved["param_groups"]
    for key, state in saved["state"].items():
        for name, value in state.items():
            other = again["state"][key][name]
            assert torch.equal(value, other) if torch.is_tensor(value) else value == other


def test_float32_statistics_of_a_bf16_model_survive_a_load_exactly():
    """torch casts loaded state to the parameter's dtype; the AP statistics must come back as
    the saved float32 values, not rounded through bf16."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2)).to(torch.bfloat16)
    opt = DoPr(model, update_every=1)
    model(torch.randn(16, 6, dtype=torch.bfloat16)).float().pow(2).mean().backward()
    opt.step()
    saved = copy.deepcopy(opt.state_dict())
    fresh = DoPr(model, update_every=1)
    fresh.load_state_dict(saved)
    for index, param in enumerate(p for g in fresh.param_groups for p in g["params"]):
        for key, value in saved["state"].get(index, {}).items():
            if key.startswith("ap_") and torch.is_tensor(value) and value.is_floating_point():
                loaded = fresh.state[param][key]
                assert loaded.dtype == torch.float32, key
                assert torch.equal(loaded, value), key
    assert any(
        not torch.equal(v, v.to(torch.bfloat16).float())
        for s in saved["state"].values()
        for k, v in s.items()
        if k == "ap_sigma"
    )  # the statistic has digits bf16 would lose: the test can fail
