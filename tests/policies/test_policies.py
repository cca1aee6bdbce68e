"""The three policies: they fit a tiny dataset, respect shapes and bounds, share one contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers.optimization import get_cosine_schedule_with_warmup

from dopr_robot.optim import build_optimizer
from dopr_robot.policies import PolicyConfig, ShapeMeta, StepNoise, build_policy

META = ShapeMeta(obs={"state": [5]}, action_dim=2)
SMALL = dict(mlp_width=64, mlp_depth=2, pred_horizon=8, action_horizon=4, inference_steps=8)


def tiny_data(n=32, seed=0):
    """Actions that are a smooth function of the last observed state: learnable exactly."""
    g = torch.Generator().manual_seed(seed)
    state = torch.randn(n, 2, 5, generator=g)
    ramp = torch.linspace(0.5, 1.5, 8)[None, :, None]
    action = 3.0 * torch.tanh(state[:, -1:, :2] * ramp)  # range about [-3, 3]
    return {"obs": {"state": state}, "action": action}


def fitted(kind, backbone="mlp", **overrides):
    data = tiny_data()
    policy = build_policy(
        PolicyConfig(kind=kind, backbone=backbone, **{**SMALL, **overrides}), META
    )
    policy.fit_normalizer(
        {"state": data["obs"]["state"].reshape(-1, 5), "action": data["action"].reshape(-1, 2)}
    )
    return policy, data


CASES = [
    ("flow", "mlp"),
    ("diffusion", "mlp"),
    ("regression", "mlp"),
    ("flow", "unet"),
    ("diffusion", "unet"),
]


def action_error(policy, data):
    policy.eval()
    predicted = policy.predict_action(data["obs"], torch.Generator().manual_seed(0))
    policy.train()
    return float(((predicted - data["action"][:, 1:5]) ** 2).mean())


def held_out_loss(policy, data):
    """The loss on ten fixed noise draws that training never uses."""
    with torch.no_grad():
        draws = [policy.compute_loss(data, StepNoise(99, k, 32))[0].item() for k in range(10)]
    return float(np.mean(draws))


@pytest.mark.parametrize("kind, backbone", CASES)
def test_each_policy_overfits_a_tiny_dataset(kind, backbone):
    """32 windows, fresh noise every step, cosine-decayed lr: the loss (on fixed held-out noise)
    falls at least 10x, and so does the error of the sampled action chunks."""
    torch.manual_seed(0)
    unet = dict(unet_down_dims=[16, 32], time_embed_dim=32)
    policy, data = fitted(kind, backbone, **(unet if backbone == "unet" else {}))
    steps = 600 if backbone == "unet" else 1000
    optimizer = build_optimizer("adamw", policy, lr=3e-3)
    schedule = get_cosine_schedule_with_warmup(optimizer, 50, steps)
    error_before, loss_before = action_error(policy, data), held_out_loss(policy, data)
    for step in range(steps):
        loss, _ = policy.compute_loss(data, StepNoise(0, step, 32))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    assert held_out_loss(policy, data) < loss_before / 10
    assert action_error(policy, data) < error_before / 10


@pytest.mark.parametrize("kind, backbone", CASES)
def test_predict_action_shapes_and_bounds(kind, backbone):
    policy, data = fitted(kind, backbone, unet_down_dims=[16, 32], time_embed_dim=32)
    policy.eval()
    chunk = policy.predict_action({"state": data["obs"]["state"][:5]})
    assert chunk.shape == (5, 4, 2)
    low, high = data["action"].amin((0, 1)), data["action"].amax((0, 1))
    assert torch.all(chunk >= low - 1e-5) and torch.all(chunk <= high + 1e-5)


def test_sampling_is_reproducible_with_a_generator():
    policy, data = fitted("diffusion")
    policy.eval()
    obs = {"state": data["obs"]["state"][:3]}
    first = policy.predict_action(obs, torch.Generator().manual_seed(1))
    again = policy.predict_action(obs, torch.Generator().manual_seed(1))
    other = policy.predict_action(obs, torch.Generator().manual_seed(2))
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    assert not torch.equal(first, other)


def test_step_noise_slices_one_global_draw():
    whole = StepNoise(3, 7, 8).randn(4)
    halves = [StepNoise(3, 7, 8, slice(0, 4)).randn(4), StepNoise(3, 7, 8, slice(4, 8)).randn(4)]
    torch.testing.assert_close(torch.cat(halves), whole, rtol=0, atol=0)
    assert not torch.equal(StepNoise(3, 8, 8).randn(4), whole)


def test_flow_heun_sampler_and_sample_prediction_run():
    for kind, extra in [
        ("flow", {"flow_solver": "heun"}),
        ("diffusion", {"diffusion_prediction": "sample"}),
        ("diffusion", {"diffusion_prediction": "v_prediction"}),
    ]:
        policy, data = fitted(kind, **extra)
        loss, _ = policy.compute_loss(data, StepNoise(0, 0, 32))
        assert torch.isfinite(loss)
        assert policy.eval().predict_action({"state": data["obs"]["state"][:2]}).shape == (2, 4, 2)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"kind": "vae"}, "Input should be 'flow', 'diffusion' or 'regression'"),
        ({"kind": "regression", "backbone": "unet"}, "regression policy is a residual MLP"),
        ({"obs_horizon": 4, "action_horizon": 8, "pred_horizon": 8}, "must not exceed"),
        ({"backbone": "unet", "pred_horizon": 10, "action_horizon": 4}, "divisible by 4"),
        ({"obs_keys": ["image"]}, "not in the data"),
    ],
)
def test_bad_policy_settings_are_one_sentence(overrides, message):
    with pytest.raises(ValueError, match=message):
        build_policy(PolicyConfig(**overrides), META)


def test_image_policy_smoke_test_at_tiny_size():
    meta = ShapeMeta(obs={"state": [3], "image": [24, 24, 3]}, action_dim=2)
    config = PolicyConfig(obs_keys=["state", "image"], image_feature_dim=8, **SMALL)
    policy = build_policy(config, meta)
    g = torch.Generator().manual_seed(0)
    batch = {
        "obs": {
            "state": torch.randn(4, 2, 3, generator=g),
            "image": torch.randint(0, 256, (4, 2, 24, 24, 3), generator=g, dtype=torch.uint8),
        },
        "action": torch.randn(4, 8, 2, generator=g),
    }
    policy.fit_normalizer(
        {"state": batch["obs"]["state"].reshape(-1, 3), "action": batch["action"].reshape(-1, 2)}
    )
    loss, _ = policy.compute_loss(batch, StepNoise(0, 0, 4))
    loss.backward()
    core = policy.encoder.images["image"].core
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in core.parameters())
    assert policy.eval().predict_action(batch["obs"]).shape == (4, 4, 2)


def test_ill_conditioning_scales_every_odd_low_dim_input_after_normalisation():
    plain, data = fitted("regression")
    scaled, _ = fitted("regression", ill_conditioning=10.0)
    scaled.load_state_dict(plain.state_dict())
    captured = {}
    for name, policy in (("plain", plain), ("scaled", scaled)):
        policy.encoder.register_forward_hook(lambda m, args, out, n=name: captured.update({n: out}))
        policy.encode(data["obs"])
    ratio = (captured["scaled"] / captured["plain"]).reshape(32, 2, 5)
    torch.testing.assert_close(ratio[..., 0::2], torch.ones_like(ratio[..., 0::2]))
    torch.testing.assert_close(ratio[..., 1::2], torch.full_like(ratio[..., 1::2], 10.0))
    with pytest.raises(ValueError, match="greater than 0"):
        build_policy(PolicyConfig(ill_conditioning=0.0), META)


@pytest.mark.parametrize("norm", ["group", "batch"])
def test_image_encoder_uses_groupnorm_by_default_and_batchnorm_on_request(norm):
    """GroupNorm (the default, as diffusion_policy and LeRobot) has no running statistics: the
    encoder gives the same features in train and eval mode, which an EMA copy relies on."""
    meta = ShapeMeta(obs={"state": [3], "image": [24, 24, 3]}, action_dim=2)
    config = PolicyConfig(
        obs_keys=["state", "image"], image_feature_dim=8, image_norm=norm, **SMALL
    )
    encoder = build_policy(config, meta).encoder.images["image"]
    kinds = {type(m) for m in encoder.modules()}
    if norm == "group":
        assert torch.nn.GroupNorm in kinds and torch.nn.BatchNorm2d not in kinds
    else:
        assert torch.nn.BatchNorm2d in kinds and torch.nn.GroupNorm not in kinds
    images = torch.rand(4, 1, 24, 24, 3, generator=torch.Generator().manual_seed(0))
    core = encoder.core  # past the random crop, so train and eval see the same pixels
    x = images.flatten(0, 1).permute(0, 3, 1, 2)[:, :, :22, :22].contiguous()  # crop 0.9 x 24
    train_out = core.train().backbone(x)
    eval_out = core.eval().backbone(x)
    assert torch.allclose(train_out, eval_out) == (norm == "group")


def test_checkpoints_from_before_image_norm_load_with_batchnorm():
    assert PolicyConfig.from_saved({"kind": "flow"}).image_norm == "batch"
    assert PolicyConfig.from_saved({"kind": "flow", "image_norm": "group"}).image_norm == "group"


def test_ddim_trailing_starts_from_pure_noise_and_needs_a_target_that_can():
    def first_step(spacing):
        config = PolicyConfig(
            kind="diffusion", diffusion_prediction="v_prediction", ddim_spacing=spacing, **SMALL
        )
        scheduler = build_policy(config, META).inference_scheduler
        scheduler.set_timesteps(config.inference_steps)
        return int(scheduler.timesteps[0])

    last = PolicyConfig().diffusion_train_steps - 1
    assert first_step("trailing") == last  # the step whose sample is pure noise
    assert first_step("leading") < last - 5  # 100 steps / 8: starts at 84
    assert PolicyConfig.from_saved({"kind": "diffusion"}).ddim_spacing == "leading"
    with pytest.raises(ValueError, match="use diffusion_prediction v_prediction or sample"):
        PolicyConfig(kind="diffusion", ddim_spacing="trailing")
