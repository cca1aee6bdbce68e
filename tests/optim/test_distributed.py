"""Two gloo processes on CPU: Σ averaged over ranks equals the full-batch Σ, replicas identical.

The averaging is dopr.py's (`DoPr._all_reduce_pending`), but the test is of DoPr inside
DistributedDataParallel as a whole (the GP stage must keep the replicas bit-identical too), and
it runs two spawned processes that import `_worker` from a module of their own: a file for the
multi-process concern, not one module's unit tests."""

import tempfile
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from dopr_robot.optim import DoPr

from .conftest import ConvNet, batches

SETTINGS = dict(statistic="batch", update_every=1, lr=1e-2)


def _train(model, forward, rank=0, world=1):
    opt = DoPr(model, **SETTINGS)
    for x, y in batches(4, 16, (3, 12), 2, seed=11):
        xs, ys = x.chunk(world)[rank], y.chunk(world)[rank]
        ((forward(xs) - ys) ** 2).mean().backward()
        opt.step()
        opt.zero_grad()
    return model


def _worker(rank: int, world: int, directory: str) -> None:
    dist.init_process_group(
        "gloo", init_method=f"file://{directory}/rendezvous", rank=rank, world_size=world
    )
    torch.manual_seed(0)
    model = ConvNet()
    _train(model, DistributedDataParallel(model), rank, world)
    torch.save(model.state_dict(), Path(directory) / f"rank{rank}.pt")
    dist.destroy_process_group()


def test_two_gloo_ranks_match_one_full_batch_process():
    with tempfile.TemporaryDirectory() as directory:
        mp.spawn(_worker, args=(2, directory), nprocs=2, join=True)
        ranks = [torch.load(Path(directory) / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    torch.manual_seed(0)
    single = ConvNet()
    _train(single, single)
    for name, value in single.state_dict().items():
        assert torch.equal(ranks[0][name], ranks[1][name]), name
        torch.testing.assert_close(ranks[0][name], value, rtol=1e-10, atol=1e-12)
