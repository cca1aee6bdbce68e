"""factory.py: every build_optimizer name trains and is the class it names, AdamW runs fused
unless told otherwise, unknown names and misplaced settings are refused, and an invalid
hyper-parameter of any name is one error naming the value (through the factory, the way a user
or the trainer sets them: the checks themselves live in dopr.py and gp.py)."""

import pytest
import torch
from torch import nn

from dopr_robot.optim import OPTIMIZER_NAMES, DoPr, GPOptimizer, build_optimizer

from .conftest import ConvNet, train


@pytest.mark.parametrize("name", OPTIMIZER_NAMES)
def test_every_name_trains_a_conv_net(name):
    model = ConvNet(dtype=torch.float32)
    opt = build_optimizer(name, model, lr=0.05)
    x = torch.randn(32, 3, 12)
    y = x.mean(dim=-1)[:, :2] * 3  # a target the net can fit
    losses = train(model, opt, [(x, y)] * 60)
    assert losses[-1] < 0.7 * losses[0]
    expected = {"adamw": torch.optim.AdamW, "sgd": torch.optim.SGD, "muon": GPOptimizer}
    assert isinstance(opt, expected.get(name, DoPr))


@pytest.mark.parametrize("name", ["adamw", "dopr-adamw", "muon"])
def test_adamw_runs_fused_on_cpu_unless_told_otherwise(name):
    model = ConvNet(dtype=torch.float32)
    assert build_optimizer(name, model).param_groups[0]["fused"] is True
    assert build_optimizer(name, model, fused=False).param_groups[0]["fused"] is False
    if name == "adamw":  # torch's own switch for the per-tensor loop still works
        assert not build_optimizer(name, model, foreach=True).param_groups[0]["fused"]


@pytest.mark.parametrize(
    "settings,named",
    [
        (dict(gamma=-1.0), "gamma: -1.0"),
        (dict(gamma=float("nan")), "gamma: nan"),
        (dict(damping="log"), "damping: 'log'"),
        (dict(statistic="kfac"), "statistic: 'kfac'"),
        (dict(ema_decay=1.0), "ema_decay: 1.0"),
        (dict(update_every=0), "update_every: 0"),
        (dict(max_rows=0), "max_rows: 0"),
        (dict(bias="both"), "bias: 'both'"),
        (dict(lr=-1e-3), "lr: -0.001"),
        (dict(weight_decay=-1.0), "weight_decay: -1.0"),
        (dict(betas=(1.0, 0.9)), "betas[0]: 1.0"),
        (dict(eps=-1.0), "eps: -1.0"),
        (dict(momentum=1.5), "momentum: 1.5"),
        (dict(ns_steps=0), "ns_steps: 0"),
        (dict(fused="yes"), "fused: 'yes'"),
        (dict(adjust_lr_fn="magic"), "adjust_lr_fn: 'magic'"),
    ],
)
def test_invalid_hyperparameters_name_the_value(settings, named):
    with pytest.raises(ValueError, match=named.replace("(", r"\(").replace("[", r"\[")):
        build_optimizer("dopr-adamw", nn.Linear(3, 2), **settings)


def test_unknown_name_and_misplaced_settings():
    with pytest.raises(ValueError, match="unknown optimizer: 'adam'"):
        build_optimizer("adam", nn.Linear(3, 2))
    with pytest.raises(ValueError, match="gamma only apply to dopr"):
        build_optimizer("adamw", nn.Linear(3, 2), gamma=0.1)
    with pytest.raises(ValueError, match="invalid setting for 'adamw'"):
        build_optimizer("adamw", nn.Linear(3, 2), colour="red")
