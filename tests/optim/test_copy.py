"""Copy and pickle, for every name of the factory: a stepped (model, optimizer) pair deep-copies
and pickles like torch's optimizers, and the copy steps exactly as the original does (bit for
bit, in its own tensors).

A file of its own because no single module owns this: it holds for torch's SGD, `FusedAdamW`
(fused_adamw.py), `GPOptimizer` (gp.py) and `DoPr` (dopr.py, hooks.py) alike. How DoPr's hooks
follow a copy is hooks.py's, in test_hooks.py."""

import pytest
import torch

from dopr_robot.optim import OPTIMIZER_NAMES

from .conftest import COPIES, PAIR_MODELS, pair_batches, step_once, stepped_pair


@pytest.mark.parametrize("how", list(COPIES))
@pytest.mark.parametrize("kind", list(PAIR_MODELS))
@pytest.mark.parametrize("name", OPTIMIZER_NAMES)
def test_a_copied_pair_steps_exactly_as_the_original(name, kind, how):
    model, optimizer = stepped_pair(name, kind)
    model_copy, optimizer_copy = COPIES[how]((model, optimizer))
    assert type(optimizer_copy) is type(optimizer)
    _, in_shape, out_dim = PAIR_MODELS[kind]
    for batch in pair_batches(5, in_shape, out_dim, seed=2):
        step_once(model, optimizer, batch)
        step_once(model_copy, optimizer_copy, batch)
    theirs_all = model_copy.state_dict().values()
    for (key, ours), theirs in zip(model.state_dict().items(), theirs_all, strict=True):
        assert torch.equal(ours, theirs), f"{name} {kind} {how}: {key} differs"
    original = model.state_dict()
    assert all(p.data_ptr() != original[k].data_ptr() for k, p in model_copy.state_dict().items())
