"""CUDA and bf16 autocast (run where a GPU exists; skipped otherwise).

A file for the device concern, not one module's: the GPU's bf16 run goes through DoPr's AP stage
(dopr.py, layers.py, factor.py) and the GP stage (gp.py) together, compared with the CPU's."""

import pytest
import torch

from dopr_robot.optim import build_optimizer

from .conftest import ConvNet, batches

pytestmark = pytest.mark.cuda


@pytest.mark.parametrize("name", ["dopr-adamw", "dopr-muon"])
def test_cuda_bf16_autocast_matches_cpu_direction(name):
    torch.manual_seed(0)
    cpu = ConvNet(dtype=torch.float32)
    gpu = ConvNet(dtype=torch.float32).cuda()
    gpu.load_state_dict(cpu.state_dict())
    start = [p.detach().clone() for p in cpu.parameters()]
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
    for p0, a, b in zip(start, cpu.parameters(), gpu.parameters(), strict=True):
        assert torch.isfinite(b).all()
        moved_cpu, moved_gpu = (
            (a.detach() - p0).flatten(),
            (b.detach().float().cpu() - p0).flatten(),
        )
        # an optimizer that did nothing (or something else) fails here: the GPU's bf16 update
        # must point where the CPU's float32 one does, and be about as long
        assert moved_cpu.norm() > 0
        cosine = torch.nn.functional.cosine_similarity(moved_cpu, moved_gpu, dim=0)
        assert cosine > 0.95, float(cosine)
        assert 0.8 < float(moved_gpu.norm() / moved_cpu.norm()) < 1.25
