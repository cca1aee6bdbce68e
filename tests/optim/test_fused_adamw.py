"""FusedAdamW: torch's fused AdamW bit for bit; kept lists dropped whenever they could be wrong."""

import copy

import pytest
import torch

from dopr_robot.optim import FusedAdamW, build_optimizer

from .conftest import ConvNet

SETTINGS = dict(lr=1e-2, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)


def twins():
    torch.manual_seed(0)
    ours = ConvNet(dtype=torch.float32)
    theirs = copy.deepcopy(ours)
    return ours, theirs


def backward(model, seed, skip=()):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(16, 3, 12, generator=gen)
    y = torch.randn(16, 2, generator=gen)
    for name, p in model.named_parameters():
        p.requires_grad_(name not in skip)
    ((model(x) - y) ** 2).mean().backward()


def assert_same(a, b):
    for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q), name


def step_both(ours, opt, theirs, ref, seed, skip=()):
    for model, optimizer in ((ours, opt), (theirs, ref)):
        optimizer.zero_grad()
        backward(model, seed, skip)
        optimizer.step()


def test_steps_equal_torchs_fused_adamw_bit_for_bit_with_a_changing_lr():
    ours, theirs = twins()
    opt = FusedAdamW(ours.parameters(), **SETTINGS)
    ref = torch.optim.AdamW(theirs.parameters(), **SETTINGS, fused=True)
    for seed in range(6):
        for optimizer in (opt, ref):
            for group in optimizer.param_groups:
                group["lr"] = 1e-2 / (seed + 1)
        step_both(ours, opt, theirs, ref, seed)
        assert_same(ours, theirs)
    assert opt._kept is not None  # the later steps took the kept lists
    for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
        for key in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(opt.state[p][key], ref.state[q][key])


def test_a_parameter_without_a_gradient_is_skipped_as_torch_skips_it():
    ours, theirs = twins()
    opt = FusedAdamW(ours.parameters(), **SETTINGS)
    ref = torch.optim.AdamW(theirs.parameters(), **SETTINGS, fused=True)
    step_both(ours, opt, theirs, ref, 0)
    step_both(ours, opt, theirs, ref, 1)
    frozen = ours.head.weight.detach().clone()
    step_both(ours, opt, theirs, ref, 2, skip={"head.weight"})  # no decay, no momentum
    assert torch.equal(ours.head.weight, frozen)
    assert_same(ours, theirs)
    step_both(ours, opt, theirs, ref, 3)
    assert_same(ours, theirs)
    assert opt.state[ours.head.weight]["step"].item() == 3


def test_a_loaded_state_dict_and_an_added_group_are_stepped_from_the_new_state():
    ours, theirs = twins()
    opt = FusedAdamW(ours.parameters(), **SETTINGS)
    ref = torch.optim.AdamW(theirs.parameters(), **SETTINGS, fused=True)
    for seed in range(3):
        step_both(ours, opt, theirs, ref, seed)
    saved = copy.deepcopy(ref.state_dict())
    step_both(ours, opt, theirs, ref, 3)
    # both go back to the saved moments (the parameters are left where they are)
    opt.load_state_dict(copy.deepcopy(saved))
    ref.load_state_dict(saved)
    for seed in (4, 5):
        step_both(ours, opt, theirs, ref, seed)
        assert_same(ours, theirs)
    extra_ours = torch.nn.Parameter(torch.ones(3))
    extra_theirs = torch.nn.Parameter(torch.ones(3))
    opt.add_param_group({"params": [extra_ours]})
    ref.add_param_group({"params": [extra_theirs]})
    for seed in (6, 7):
        extra_ours.grad = torch.full((3,), float(seed))
        extra_theirs.grad = torch.full((3,), float(seed))
        step_both(ours, opt, theirs, ref, seed)
        assert_same(ours, theirs)
        assert torch.equal(extra_ours, extra_theirs)


def test_hooks_run_once_per_step_and_a_closure_is_evaluated():
    ours, _ = twins()
    opt = FusedAdamW(ours.parameters(), **SETTINGS)
    calls = []
    opt.register_step_pre_hook(lambda *_: calls.append("pre"))
    opt.register_step_post_hook(lambda *_: calls.append("post"))
    for seed in range(3):
        opt.zero_grad()
        backward(ours, seed)
        opt.step()
    assert calls == ["pre", "post"] * 3

    def closure():
        opt.zero_grad()
        backward(ours, 9)
        return torch.tensor(1.5)

    assert opt.step(closure).item() == 1.5


def test_zero_grad_sets_none_or_zeroes_as_asked():
    ours, _ = twins()
    opt = FusedAdamW(ours.parameters(), **SETTINGS)
    backward(ours, 0)
    opt.zero_grad(set_to_none=False)
    assert all(torch.count_nonzero(p.grad) == 0 for p in ours.parameters())
    opt.zero_grad()
    assert all(p.grad is None for p in ours.parameters())


@pytest.mark.parametrize("change", ["amsgrad", "maximize", "tensor lr"])
def test_a_setting_the_kept_path_does_not_pass_goes_through_torchs_step(change):
    ours, theirs = twins()
    opt = FusedAdamW(ours.parameters(), **SETTINGS)
    ref = torch.optim.AdamW(theirs.parameters(), **SETTINGS, fused=True)
    step_both(ours, opt, theirs, ref, 0)
    for optimizer in (opt, ref):
        group = optimizer.param_groups[0]
        if change == "tensor lr":
            group["lr"] = torch.tensor(5e-3)
        else:
            group[change] = True
            if change == "amsgrad":
                for p in group["params"]:
                    optimizer.state[p]["max_exp_avg_sq"] = torch.zeros_like(p)
    for seed in (1, 2):
        step_both(ours, opt, theirs, ref, seed)
        assert_same(ours, theirs)


def test_the_factory_builds_it_for_fused_adamw_only():
    model = ConvNet(dtype=torch.float32)
    assert type(build_optimizer("adamw", model)) is FusedAdamW
    assert type(build_optimizer("adamw", model, fused=False)) is torch.optim.AdamW
    assert type(build_optimizer("adamw", model, foreach=True)) is torch.optim.AdamW
    # float64 parameters are fusable on CPU too; a state dict moves between the two classes
    opt = build_optimizer("adamw", model)
    plain = build_optimizer("adamw", model, fused=False)
    backward(model, 0)
    opt.step()
    state = opt.state_dict()
    plain.load_state_dict(state)
    assert plain.state_dict()["state"].keys() == state["state"].keys()
