"""CUDA and bf16 autocast (run where a GPU exists; skipped otherwise)."""

import pytest
import torch

from dopr_robot.optim import build_optimizer

from .helpers import ConvNet, batches

pytestmark = pytest.mark.cuda


@pytest.mark.parametrize("name", ["dopr-adamw", "dopr-muon"])
def test_cuda_bf16_autocast_matches_cpu_direction(name):
    torch.manual_seed(0)
    cpu = ConvNet(dtype=torch.float32)
    gpu = ConvNet(dtype=torch.float32).cuda()
    gpu.load_state_dict(cpu.state_dict())
    opt_cpu = build_optimizer(name, cpu, lr=1e-3, update_every=1)
    opt_gpu = build_optimizer(name, gpu, lr=1e-3, update_every=1)
    for x, y in batches(5, 64, (3, 12), 2, dtype=torch.float32):
        ((cpu(x) - y) ** 2).mean().backward()
        opt_cpu.step()
        opt_cpu.zero_grad()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = ((gpu(x.cuda()) - y.cuda()) ** 2).float().mean()
        loss.backward()
        opt_gpu.step()
        opt_gpu.zero_grad()
    state = opt_gpu.state[gpu.conv2.weight]
    assert state["ap_inverse"].dtype == torch.float32 and state["ap_inverse"].is_cuda
    for a, b in zip(cpu.parameters(), gpu.parameters(), strict=True):
        assert torch.isfinite(b).all()
        torch.testing.assert_close(b.float().cpu(), a, rtol=0.1, atol=0.02)
