"""Layer adapters: how one module type exposes its input rows and its gradient as a matrix.

Activation-wise preconditioning treats every eligible layer as a linear map W applied to rows z:
a Linear layer to each input vector (any leading dims), a Conv layer to each unfolded input patch
(length C_in·prod(k)) — the convolution is a shared linear map on patches. An adapter knows, for
its module type, how to turn a forward input into rows [n, d] and how to multiply the weight
gradient, viewed as a matrix [out, d] in the same column order (plus the bias as one more column
when the bias is preconditioned with the homogeneous coordinate), by the factor's inverse. The
optimizer itself never looks at module types.

A factor is stored as one or more square matrices: one [d, d] patch second moment for Linear
layers and for convolutions with `conv_factor="full"`, or — the default for convolutions — the
channel⊗tap Kronecker approximation Σ ≈ A ⊗ T with A [C_in, C_in] (channel second moment over all
taps) and T [k, k] (tap second moment over all channels). The Kronecker form makes both the
refresh and the per-step product about k times cheaper for a kernel of k taps, keeps the exact
invariance to input-channel mixing, and is KFAC's usual trade for convolutions (there, across
output positions; here, across taps as well).

As in kfac-pytorch's `kfac/layers/`, each module type has its own small adapter on one common
base (`LayerAdapter`: rows in, the AP product out); the two convolution adapters share the
padding and unfolding through two functions (`padded`, `patch_rows`), not through inheritance.
Damping and inversion are not an adapter's business: they live in `factor.py`, for a single
factor and for a Kronecker pair alike.

Decisions (the reasons are in docs/design.md, "DoPr's settings and the decisions behind the
defaults"):
- A Kronecker-factored convolution leaves its bias to the base optimizer: the homogeneous
  coordinate is not a channel-by-tap product.
- ConvTranspose1d/2d are left to the base optimizer: their input-side view is a zero-stuffed,
  flipped patch whose statistic costs more than it is worth for the up-sampling layers of a U-Net.
- Grouped convolutions (groups > 1) are left to the base optimizer: each group has its own patch
  statistic, and the U-Nets this toolkit trains do not use them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..torch_compat import reversed_padding


class LayerAdapter:
    """Base adapter: a module, its weight viewed as [out, d], and an optional bias column."""

    kind = "layer"
    factor_keys = ("",)  # one state-key prefix per factor matrix: ap_{prefix}sigma, ...

    def __init__(self, module: nn.Module, homogeneous: bool) -> None:
        self.module = module
        self.homogeneous = homogeneous and module.bias is not None
        weight = module.weight
        self.out_features = weight.shape[0]
        self.in_features = math.prod(weight.shape[1:])

    @property
    def dim(self) -> int:
        """Side of the factor Σ: the row length, plus one for the homogeneous coordinate."""
        return self.in_features + int(self.homogeneous)

    @property
    def factor_dims(self) -> tuple[int, ...]:
        return (self.dim,)

    def describe_factor(self) -> str:
        bias = " + bias (homogeneous)" if self.homogeneous else ""
        return f"factor {self.dim}x{self.dim}{bias}"

    def params(self) -> list[torch.Tensor]:
        return [self.module.weight] + ([self.module.bias] if self.homogeneous else [])

    def rows(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def record(self, x: torch.Tensor, sums: list[torch.Tensor], choose, dtype) -> int:
        """Add one forward input's rows to the running sums; returns how many rows entered.

        `choose(n)` returns the sorted indices of the rows to keep out of n, or None for all."""
        rows = self.rows(x).to(dtype)
        subset = choose(rows.shape[0])
        if subset is not None:
            rows = rows[subset]
        self.accumulate(sums, rows)
        return rows.shape[0]

    def accumulate(self, sums: list[torch.Tensor], rows: torch.Tensor) -> None:
        """Add the rows' outer products (and the bias coordinate's) to the running sums."""
        total = sums[0]
        d = self.in_features
        total[:d, :d].addmm_(rows.T, rows)
        if self.homogeneous:
            column = rows.sum(dim=0)
            total[:d, -1] += column
            total[-1, :d] += column
            total[-1, -1] += rows.shape[0]

    def statistics(self, sums: list[torch.Tensor], n_rows: int) -> list[torch.Tensor]:
        """The factor matrices from the running sums of n_rows rows."""
        return [sums[0] / n_rows]

    def product(
        self, matrix: torch.Tensor, inverses: list[torch.Tensor], out: torch.Tensor | None = None
    ) -> torch.Tensor:
        """G F⁻¹ for the [out, in_features] weight-gradient matrix and a factor without the bias
        coordinate (into `out`, [out, in_features], when given)."""
        return torch.mm(matrix, inverses[0], out=out)

    def preconditioned(
        self,
        grads: list[torch.Tensor],
        inverses: list[torch.Tensor],
        out: list[torch.Tensor] | None = None,
    ) -> list[torch.Tensor]:
        """The AP gradients, one per parameter of params(), in its own shape and contiguous;
        written into `out` (tensors shaped like the parameters) when given.

        With the bias as the homogeneous column, [G_W | g_b] P is computed as its two blocks,
        G_W P_WW + g_b P_bWᵀ and G_W P_Wb + g_b P_bb, not as one product on the concatenated
        [out, d+1] matrix: no copy of the gradient into that matrix going in, and a contiguous
        weight block coming out, which torch's fused AdamW needs (it ignores strides, so a column
        slice had to be copied again). The same products and sums as the concatenated form; the
        bias term is added last, so the result differs from it by float rounding."""
        rows, d = self.out_features, self.in_features
        weight = grads[0].reshape(rows, d)
        shape = self.module.weight.shape
        weight_out = None if out is None else out[0].view(rows, d)
        if not self.homogeneous:
            return [self.product(weight, inverses, weight_out).view(shape)]
        inverse = inverses[0]
        bias = grads[1].reshape(-1)
        bias_out = None if out is None else out[1].view(-1)
        weight_part = self.product(weight, [inverse[:d, :d]], weight_out)
        weight_part.addr_(bias, inverse[d, :d])
        bias_part = torch.mv(weight, inverse[:d, d], out=bias_out)
        bias_part.addcmul_(bias, inverse[d, d])
        return [weight_part.view(shape), bias_part.view(self.module.bias.shape)]


class LinearAdapter(LayerAdapter):
    kind = "Linear"

    def rows(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(-1, self.in_features)


def padded(conv: nn.Module, x: torch.Tensor, *, zeros: bool) -> tuple[torch.Tensor, tuple]:
    """A convolution's input padded as its forward pads it, and the zero padding still to apply.

    `padding="same"` and the padding modes other than zeros are applied here, exactly as the
    module's forward applies them; plain zero padding is left to `F.unfold` (returned), unless
    `zeros` asks for it here too (gathering windows straight from the input needs it)."""
    spatial = len(conv.kernel_size)
    if isinstance(conv.padding, str) or conv.padding_mode != "zeros":
        mode = "constant" if conv.padding_mode == "zeros" else conv.padding_mode
        return F.pad(x, reversed_padding(conv), mode=mode), (0,) * spatial
    if zeros and any(conv.padding):
        return F.pad(x, reversed_padding(conv)), (0,) * spatial
    return x, conv.padding


def patch_rows(conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Conv1d/Conv2d input as rows: the unfolded patches, one per output position, in the
    weight's (C_in, *kernel) column order. Conv1d is unfolded as a Conv2d of height 1."""
    x, padding = padded(conv, x, zeros=False)
    if len(conv.kernel_size) == 1:
        x = x.unsqueeze(-2)
        kernel, dilation = (1, conv.kernel_size[0]), (1, conv.dilation[0])
        padding, stride = (0, padding[0]), (1, conv.stride[0])
    else:
        kernel, dilation, stride = conv.kernel_size, conv.dilation, conv.stride
    if x.dim() == 3:  # unbatched input
        x = x.unsqueeze(0)
    patches = F.unfold(x, kernel, dilation=dilation, padding=padding, stride=stride)
    return patches.transpose(1, 2).reshape(-1, math.prod(conv.weight.shape[1:]))


class ConvAdapter(LayerAdapter):
    """Conv1d/Conv2d with the exact patch factor: rows are the unfolded patches."""

    def __init__(self, module: nn.Module, homogeneous: bool) -> None:
        super().__init__(module, homogeneous)
        self.spatial = len(module.kernel_size)
        self.kind = f"Conv{self.spatial}d"

    def rows(self, x: torch.Tensor) -> torch.Tensor:
        return patch_rows(self.module, x)


class KroneckerConvAdapter(LayerAdapter):
    """Conv1d/Conv2d with the patch factor approximated as channels ⊗ taps (Σ ≈ A ⊗ T).

    A is the channel second moment averaged over taps, T the tap second moment summed over
    channels and scaled so that tr(T) = k; then tr(A ⊗ T) = tr(Σ). The pair is damped and
    inverted by `factor.damped_inverses`, and the product G (A⁻¹ ⊗ T⁻¹) is two small matrix
    products on G viewed as [out, C_in, k]. The bias is left to the base optimizer: the
    homogeneous coordinate is not a channel-by-tap product.
    """

    factor_keys = ("", "tap_")

    def __init__(self, module: nn.Module) -> None:
        super().__init__(module, homogeneous=False)
        self.spatial = len(module.kernel_size)
        self.kind = f"Conv{self.spatial}d"
        self.channels = module.in_channels
        self.taps = math.prod(module.kernel_size)

    @property
    def factor_dims(self) -> tuple[int, ...]:
        return (self.channels, self.taps)

    def describe_factor(self) -> str:
        return f"factor {self.channels}x{self.channels} (x) {self.taps}x{self.taps}"

    def rows(self, x: torch.Tensor) -> torch.Tensor:
        return patch_rows(self.module, x)

    def record(self, x: torch.Tensor, sums: list[torch.Tensor], choose, dtype) -> int:
        if self.spatial != 1:
            return super().record(x, sums, choose, dtype)
        windows = self._kept_windows(x, choose).to(dtype)
        self._add_windows(sums, windows)
        return windows.shape[0]

    def _kept_windows(self, x: torch.Tensor, choose) -> torch.Tensor:
        """The kept patches of a Conv1d input as [kept, taps, C_in], gathered straight from the
        (padded) input: the rows rows() gives, in its order, without unfolding every patch (taps
        times the input) and copying the unfolded tensor twice more before the subset is taken.
        On diffusion_policy's U-Net that was most of a refresh."""
        m = self.module
        x, _ = padded(m, x, zeros=True)
        if x.dim() == 2:  # unbatched input
            x = x.unsqueeze(0)
        batch, _, length = x.shape
        dilation, stride = m.dilation[0], m.stride[0]
        positions = max(0, (length - dilation * (self.taps - 1) - 1) // stride + 1)
        subset = choose(batch * positions)
        if subset is None:
            subset = torch.arange(batch * positions, device=x.device)
        sample, start = subset // positions, (subset % positions) * stride
        offsets = torch.arange(self.taps, device=x.device) * dilation
        return x.transpose(1, 2)[sample[:, None], start[:, None] + offsets]

    def accumulate(self, sums: list[torch.Tensor], rows: torch.Tensor) -> None:
        self._add_windows(sums, rows.view(-1, self.channels, self.taps).transpose(1, 2))

    def _add_windows(self, sums: list[torch.Tensor], windows: torch.Tensor) -> None:
        """Add patches given as [n, taps, C_in] (any strides) to the channel and tap sums."""
        by_tap = windows.reshape(-1, self.channels)  # one row per (patch, tap)
        sums[0].addmm_(by_tap.T, by_tap)
        sums[1] += torch.einsum("ntc,nsc->ts", windows, windows)

    def statistics(self, sums: list[torch.Tensor], n_rows: int) -> list[torch.Tensor]:
        channel = sums[0] / (n_rows * self.taps)
        tap = sums[1]
        trace = float(torch.diagonal(tap).sum())
        if trace > 0:
            tap = tap * (self.taps / trace)
        else:  # a dead layer: no tap structure to speak of
            tap = torch.eye(self.taps, dtype=tap.dtype, device=tap.device)
        return [channel, tap]

    def product(
        self, matrix: torch.Tensor, inverses: list[torch.Tensor], out: torch.Tensor | None = None
    ) -> torch.Tensor:
        channel, tap = inverses
        g = matrix.view(self.out_features, self.channels, self.taps) @ tap
        g = (g.transpose(1, 2).reshape(-1, self.channels) @ channel).view(
            self.out_features, self.taps, self.channels
        )
        if out is None:
            return g.transpose(1, 2).reshape(self.out_features, -1)
        out.view(self.out_features, self.channels, self.taps).copy_(g.transpose(1, 2))
        return out


CONV_FACTORS = ("kron", "full")


def layer_adapter_for(
    module: nn.Module, homogeneous: bool, conv_factor: str = "kron"
) -> tuple[LayerAdapter | None, str]:
    """The adapter for an eligible module, or (None, reason it is left to the base optimizer)."""
    if isinstance(module, nn.Linear):
        return LinearAdapter(module, homogeneous), ""
    if isinstance(module, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
        return None, "transposed convolution (left to the base optimizer)"
    if isinstance(module, (nn.Conv1d, nn.Conv2d)):
        if module.groups != 1:
            return None, f"grouped convolution, groups={module.groups} (left to the base optimizer)"
        if conv_factor == "kron":
            return KroneckerConvAdapter(module), ""
        return ConvAdapter(module, homogeneous), ""
    return None, ""
