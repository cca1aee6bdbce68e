"""Backbone shapes and that DoPr sees their layers."""

import torch

from dopr_robot.optim import build_optimizer
from dopr_robot.policies.nets import ConditionalUnet1D, ResidualMLP


def test_unet_keeps_the_sequence_shape_and_uses_the_condition():
    net = ConditionalUnet1D(action_dim=4, cond_dim=6, down_dims=(16, 32, 64))
    sample, t = torch.randn(3, 16, 4), torch.tensor([1, 50, 99])
    cond = torch.randn(3, 6)
    out = net(sample, t, cond)
    assert out.shape == sample.shape
    assert not torch.allclose(out, net(sample, t, cond + 1.0))
    assert not torch.allclose(out, net(sample, t + 1, cond))


def test_mlp_shapes_and_dopr_coverage():
    net = ResidualMLP(10, 7, width=32, depth=2)
    assert net(torch.randn(5, 10)).shape == (5, 7)
    text = build_optimizer("dopr-adamw", net).describe()
    assert text.count(" Linear ") == 1 + 2 * 2 + 1  # stem, two per block, head
