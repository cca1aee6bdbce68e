"""`Conv1d`: nn.Conv1d whose weight gradient goes through one GEMM where oneDNN's is slow.

On CPU, PyTorch computes a Conv1d's weight gradient with oneDNN, which is fast for small kernels
but several times slower than the arithmetic says once the weight is large: on this project's
2-core AVX-512 machine a [1024, 1024, 5] kernel on 64 × 4 positions took 160 ms for its weight
gradient, where the same product as im2col + one matrix multiply takes 34 ms; [512, 2048, 5]
144 vs 28 ms. diffusion_policy's default U-Net widths (256, 512, 1024) have seven such kernels,
and they were most of its training step. Measured over the U-Net's shapes at batch 64 and 256,
the GEMM wins whenever the weight has more than 2 M elements (1.25-6.5x) and loses or ties below
1.3 M (0.4-1.0x), so the rule is that size: a property of the layer, never of a timing, so the
same layer always takes the same path and a seed gives the same numbers run after run.

Forward and the input gradient stay oneDNN's; only the weight (and bias) gradient changes, to
the same sum in another order (float32 rounding differences, ~1e-6 relative). CUDA, small
kernels, grouped or non-zero-padded convolutions use nn.Conv1d unchanged. The module *is* an
nn.Conv1d (same parameters, state-dict keys and hooks), so DoPr and Muon treat it as one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

GEMM_WEIGHT_GRAD_ABOVE = 2_000_000  # weight elements; see the module docstring


class _GemmWeightGradConv1d(torch.autograd.Function):
    """conv1d forward (oneDNN); backward: input gradient by oneDNN, weight gradient by im2col +
    one matrix multiply, bias gradient by a sum."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride: int, padding: int, dilation: int):
        ctx.save_for_backward(x, weight)
        ctx.geometry = (stride, padding, dilation)
        ctx.has_bias = bias is not None
        return F.conv1d(x, weight, bias, stride, padding, dilation)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output):
        x, weight = ctx.saved_tensors
        stride, padding, dilation = ctx.geometry
        grad_input = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_input = torch.ops.aten.convolution_backward(
                grad_output, x, weight, None, [stride], [padding], [dilation],
                False, [0], 1, [True, False, False],
            )[0]  # fmt: skip
        out_channels, kernel = weight.shape[0], weight.shape[2]
        if ctx.needs_input_grad[1]:
            patches = F.unfold(
                x.unsqueeze(2),
                (1, kernel),
                dilation=(1, dilation),
                padding=(0, padding),
                stride=(1, stride),
            )  # [B, C_in·k, L_out], columns in the weight's (C_in, k) order
            rows = patches.transpose(1, 2).reshape(-1, patches.shape[1])
            grads = grad_output.transpose(1, 2).reshape(-1, out_channels)
            grad_weight = (grads.T @ rows).view_as(weight)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad_output.sum(dim=(0, 2))
        return grad_input, grad_weight, grad_bias, None, None, None


class Conv1d(nn.Conv1d):
    """nn.Conv1d; on CPU, a weight of more than 2 M elements gets its gradient by one GEMM
    (unless `gemm_weight_grad` is set False: the trainer's `fast_path = false`)."""

    gemm_weight_grad = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self._gemm_weight_grad(x):
            return super().forward(x)
        weight, bias = self.weight, self.bias
        if torch.is_autocast_enabled(x.device.type):  # cast as autocast would, then run as is
            dtype = torch.get_autocast_dtype(x.device.type)
            x, weight = x.to(dtype), weight.to(dtype)
            bias = bias.to(dtype) if bias is not None else None
            with torch.autocast(x.device.type, enabled=False):
                return self._apply_gemm(x, weight, bias)
        return self._apply_gemm(x, weight, bias)

    def _apply_gemm(self, x, weight, bias):
        return _GemmWeightGradConv1d.apply(
            x, weight, bias, self.stride[0], self.padding[0], self.dilation[0]
        )

    def _gemm_weight_grad(self, x: torch.Tensor) -> bool:
        return (
            self.gemm_weight_grad
            and x.device.type == "cpu"
            and self.weight.numel() > GEMM_WEIGHT_GRAD_ABOVE
            and torch.is_grad_enabled()
            and self.weight.requires_grad
            and self.groups == 1
            and self.padding_mode == "zeros"
            and not isinstance(self.padding, str)
            and x.dim() == 3
        )
