"""Numerics of an activation factor: damping, the damped inverse, and its fallback chain.

A small functional core with no optimizer state, and the one place DoPr's damping is decided:
given the second moment Σ of a layer's inputs, return (Σ + λI)⁻¹ computed through a Cholesky
factorisation, together with what it took to get it; given a Kronecker pair A ⊗ T (a
convolution's channels ⊗ taps), damp each factor so that the pair is damped like a single
factor of its size (`damped_inverses`). The chain, stopping at the first success:

    1. refuse NaN/Inf in Σ;  λ = γ·tr(Σ) ("trace") or γ·tr(Σ)/d ("trace_over_dim")
    2. Cholesky of Σ + λI in float32
    3. the same in float64
    4. float64 with the damping multiplied by 10, 100, 1000
    5. give up: the caller keeps its previous inverse (or the raw gradient) and counts a failure

λ has a floor: the rounding noise of Σ's dtype (eps·tr Σ) so a rank-deficient statistic
factorises with γ = 0, and an absolute 1e-12 so an all-zero statistic (a dead layer) does too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

DAMPING_MODES = ("trace", "trace_over_dim")
DAMPING_FLOOR = 1e-12
EXTRA_DAMPING = (10.0, 100.0, 1000.0)


@dataclass
class InverseResult:
    """Outcome of one damped inversion. `inverse` is None when every attempt failed."""

    inverse: torch.Tensor | None
    damping: float
    condition: float  # estimate from the Cholesky diagonal: (max L_ii / min L_ii)²
    attempts: int  # 1 = first float32 try succeeded
    reason: str = ""  # why it failed, when it did


def damping_value(sigma: torch.Tensor, gamma: float, mode: str) -> float:
    """λ for Σ; never below the rounding noise of Σ's dtype (eps·tr Σ), which is what makes a
    rank-deficient float32 statistic factorise even with γ = 0."""
    trace = float(torch.diagonal(sigma).sum())
    scale = trace if mode == "trace" else trace / sigma.shape[0]
    noise = torch.finfo(sigma.dtype).eps * abs(trace)
    return max(gamma * scale, noise, DAMPING_FLOOR)


def all_finite(matrix: torch.Tensor) -> torch.Tensor:
    """Whether every entry is finite, as a 0-d bool tensor, from one sum: NaN and ±inf survive
    a sum, and a sum of finite float32 entries overflows only if they average above ~1e33 / n,
    a matrix that counts as a failure anyway. One reduction instead of isfinite's five
    elementwise passes and `all` (a quarter of DoPr's step on a 256-wide MLP)."""
    return torch.isfinite(matrix.sum())


def all_finite_sum(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Whether every entry of every tensor is finite (one sum each, as in all_finite)."""
    total = tensors[0].sum()
    for tensor in tensors[1:]:
        total = total + tensor.sum()
    return torch.isfinite(total)


def _try_cholesky(matrix: torch.Tensor) -> torch.Tensor | None:
    factor, info = torch.linalg.cholesky_ex(matrix)
    if int(info) != 0 or not all_finite(factor):
        return None
    return factor


def damped_inverse(sigma: torch.Tensor, gamma: float, mode: str) -> InverseResult:
    """(Σ + λI)⁻¹ in Σ's dtype (float32 statistics stay float32), with the fallback chain.

    Σ is not symmetrised first: Cholesky reads only the lower triangle, so averaging the two
    triangles (two passes over Σ per layer per refresh) changed nothing but rounding."""
    if not all_finite(sigma):
        return InverseResult(None, float("nan"), float("nan"), 0, "non-finite statistic")
    damping = damping_value(sigma, gamma, mode)
    attempts = [(sigma.dtype, 1.0), (torch.float64, 1.0)]
    attempts += [(torch.float64, extra) for extra in EXTRA_DAMPING]
    for number, (dtype, extra) in enumerate(attempts, start=1):
        lam = damping * extra
        # cast first: Σ + λI formed in float32 would round λ away on a large Σ before float64
        damped = sigma.to(dtype, copy=True)
        damped.diagonal().add_(lam)
        factor = _try_cholesky(damped)
        if factor is None:
            continue
        inverse = torch.cholesky_inverse(factor)
        if not all_finite(inverse):
            continue
        diag = torch.diagonal(factor)
        condition = float((diag.max() / diag.min()) ** 2)
        return InverseResult(inverse.to(sigma.dtype), lam, condition, number)
    return InverseResult(None, damping, float("inf"), len(attempts), "Cholesky failed")


def damped_inverses(sigmas: list[torch.Tensor], gamma: float, mode: str) -> list[InverseResult]:
    """The damped inverses of a layer's factor matrices: one factor Σ, or a Kronecker pair.

    A pair (A + δāI) ⊗ (T + δt̄I) has cross terms: its mean eigenvalue is āt̄(1 + δ)², where ā, t̄
    are the factors' mean eigenvalues and āt̄ is that of A ⊗ T. A single factor gets
    λ = γ·(mean eigenvalue) with damping="trace_over_dim" (γ·d times it with "trace"), so
    δ = √(1 + γ_rel) − 1 adds exactly that much on average. (A √γ per factor, as before,
    added γ + 2√γ: 7x more than a Linear layer at γ = 0.1.)"""
    if len(sigmas) == 1:
        return [damped_inverse(sigmas[0], gamma, mode)]
    dims = math.prod(sigma.shape[0] for sigma in sigmas)
    relative = gamma * (dims if mode == "trace" else 1)
    delta = math.sqrt(1.0 + relative) - 1.0
    return [damped_inverse(sigma, delta, "trace_over_dim") for sigma in sigmas]
