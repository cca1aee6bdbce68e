"""Random draws of a training step as a pure function of (seed, step) and the batch rows.

Each rank of a DDP run holds a slice of the global batch. If every rank drew its own noise, a
2-process run could never equal a 1-process run, and a resumed run would need the RNG state of the
one it continues. `StepNoise` instead draws the whole global batch's noise from a generator
seeded by (seed, step) and hands each rank its rows: ranks, resumes and single processes all see
the same numbers.
"""

from __future__ import annotations

import numpy as np
import torch


def seeded_generator(*numbers: int) -> torch.Generator:
    """A torch generator seeded from a tuple of integers (64 bits of a numpy SeedSequence), so
    that nearby tuples give unrelated streams."""
    entropy = np.random.SeedSequence([int(n) for n in numbers]).generate_state(2)
    return torch.Generator().manual_seed(int(entropy[0]) << 32 | int(entropy[1]))


class StepNoise:
    """Gaussian and uniform draws for rows `rows` of a global batch of `global_batch` samples."""

    def __init__(
        self,
        seed: int,
        step: int,
        global_batch: int,
        rows: slice | None = None,
        device: torch.device | str = "cpu",
    ):
        self.generator = seeded_generator(seed, step)
        self.global_batch = int(global_batch)
        self.rows = rows if rows is not None else slice(0, self.global_batch)
        self.device = torch.device(device)

    def randn(self, *shape: int) -> torch.Tensor:
        """[rows, *shape] standard normal."""
        draw = torch.randn(self.global_batch, *shape, generator=self.generator)
        return draw[self.rows].to(self.device)

    def rand(self, *shape: int) -> torch.Tensor:
        """[rows, *shape] uniform in [0, 1)."""
        draw = torch.rand(self.global_batch, *shape, generator=self.generator)
        return draw[self.rows].to(self.device)

    def randint(self, high: int) -> torch.Tensor:
        """[rows] integers in [0, high)."""
        draw = torch.randint(0, high, (self.global_batch,), generator=self.generator)
        return draw[self.rows].to(self.device)


def default_noise(batch: int, device: torch.device | str = "cpu") -> StepNoise:
    """Noise from torch's global generator, for calls outside the trainer (tests, notebooks)."""
    seed = int(torch.randint(0, 2**62, (1,)).item())
    return StepNoise(seed, 0, batch, device=device)
