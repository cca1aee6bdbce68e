"""`FusedAdamW`: torch's fused AdamW without its per-step walk over the parameters.

`torch.optim.AdamW(fused=True)` updates every parameter in one kernel call, but before the call,
on every step, it walks the parameters in Python: it checks each gradient, looks its state up,
appends it to six lists, then groups those lists by device and dtype; `zero_grad` walks them
again inside a profiler range. On the default study's MLP (18 tensors, a 4-5 ms step on two
cores) the walk costs as much as the kernel: 0.2-0.3 ms a step (docs/benchmarks.md).

This subclass keeps the lists between steps and hands them to the same kernel with the same
arguments, so its numbers are torch's fused AdamW's bit for bit (tests/optim/test_fused_adamw.py).
It falls back to torch's own step whenever the kept lists could be wrong or the step is one
they do not cover: the first step (the state is created there), a parameter without a gradient
(torch skips it; a kept list would not), a closure, a param group changed since the lists were
made, a setting the kernel call (`torch_compat.fused_adamw_step`) does not pass (amsgrad,
maximize, capturable, differentiable, a gradient scaler's attributes, a tensor learning rate).
Step hooks run as for any torch optimizer: torch wraps this class's `step` as it wraps its own.
"""

from __future__ import annotations

import torch

from ..torch_compat import fused_adamw_step, unhooked_step


class FusedAdamW(torch.optim.AdamW):
    """torch.optim.AdamW with `fused=True`, its per-step parameter lists kept between steps."""

    # class-level defaults: a deep-copied or pickled optimizer comes back without them (torch
    # copies and pickles only defaults, state and param_groups), and its first step rebuilds the
    # lists from the copied state
    _kept: list[tuple] | None = None
    _kept_state: object = None

    def __init__(self, params, **settings) -> None:
        super().__init__(params, **{**settings, "fused": True})

    def zero_grad(self, set_to_none: bool = True) -> None:
        if not set_to_none:
            return super().zero_grad(set_to_none=False)
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    def step(self, closure=None):
        lists = None if closure is not None else self._lists()
        if lists is None:
            # torch's step without the hook wrapper: this class's `step` has its own, so
            # calling the wrapped one would run the step hooks twice
            loss = unhooked_step(torch.optim.AdamW)(self, closure)
            self._kept, self._kept_state = self._keep(), self.state
            return loss
        with torch.no_grad():
            for group, params, grads, exp_avgs, exp_avg_sqs, steps in lists:
                fused_adamw_step(group, params, grads, exp_avgs, exp_avg_sqs, steps)
        return None

    def _lists(self) -> list[tuple] | None:
        """This step's (group, params, grads, exp_avgs, exp_avg_sqs, steps) per group, from the
        kept lists; None where torch's own step must run instead. A loaded state dict replaces
        `self.state`, an added group lengthens `param_groups`: either drops the kept lists."""
        if self._kept is None or self._kept_state is not self.state:
            return None
        if len(self._kept) != len(self.param_groups):
            return None
        if getattr(self, "grad_scale", None) is not None or getattr(self, "found_inf", None):
            return None
        lists = []
        for group, (params, kept_params, exp_avgs, exp_avg_sqs, steps) in zip(
            self.param_groups, self._kept, strict=True
        ):
            if group["params"] is not params or len(params) != len(kept_params):
                return None
            if not _plain(group):
                return None
            grads = [p.grad for p in kept_params]
            if any(g is None or g.is_sparse for g in grads):
                return None
            lists.append((group, kept_params, grads, exp_avgs, exp_avg_sqs, steps))
        return lists

    def _keep(self) -> list[tuple] | None:
        """The per-group lists, once every parameter has its state (after a step in which every
        one had a gradient); None until then, and for a group whose tensors do not share one
        device and dtype (torch splits those into one kernel call each)."""
        kept = []
        for group in self.param_groups:
            states = [self.state.get(p) for p in group["params"]]
            if not all(s and "exp_avg" in s for s in states):
                return None
            if not one_kind(group["params"]):
                return None
            kept.append(
                (
                    group["params"],
                    list(group["params"]),
                    [s["exp_avg"] for s in states],
                    [s["exp_avg_sq"] for s in states],
                    [s["step"] for s in states],
                )
            )
        return kept


def one_kind(tensors: list[torch.Tensor]) -> bool:
    """Whether the tensors share one device and dtype (one fused call takes them all)."""
    return len({(t.device, t.dtype) for t in tensors}) == 1


def _plain(group: dict) -> bool:
    """Whether the group's settings are the ones `fused_adamw_step`'s kernel call passes."""
    return (
        group["fused"] is True
        and not group["amsgrad"]
        and not group["maximize"]
        and not group["capturable"]
        and not group["differentiable"]
        and group.get("decoupled_weight_decay", True)
        and not isinstance(group["lr"], torch.Tensor)
    )
