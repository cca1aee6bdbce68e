"""The gradient-wise preconditioner (GP) stage: AdamW, Muon (+AdamW) and SGD in one optimizer.

`GPOptimizer` owns the parameter bookkeeping every optimizer in this package shares: which
parameters are *matrices* (weights of Linear/Conv layers, the ones Muon orthogonalises), the
per-parameter state, and one `_gp_update(grads)` call that hands each parameter's gradient to
PyTorch's own functional optimizer cores (`torch.optim.adamw.adamw`, Muon's private functional
core, `torch.optim.sgd.sgd`; AdamW's fused kernel where the parameters allow it, called as torch's
fused path calls it, with the state lists kept between steps as `FusedAdamW` keeps them). The
private ones are reached through `dopr_robot.torch_compat`, which checks them at import.
Reusing those cores, not re-deriving them, is what makes DoPr with its activation-wise stage
switched off equal `torch.optim.AdamW` / `torch.optim.Muon` step for step (fused AdamW to fused,
unfused to unfused).

Muon only accepts 2-D tensors: a Conv weight [out, in, *k] is updated through its 2-D view
[out, in·prod(k)] (the view shares storage, so the update lands in the real weight). Everything
that is not a Linear/Conv weight (biases, norms, embeddings) goes to AdamW inside the same
optimizer, with the same learning rate and weight decay. The default Muon learning-rate adjustment
is "match_rms_adamw" (Moonshot): the update RMS matches AdamW's, so one lr serves both halves.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.adamw import adamw as adamw_functional
from torch.optim.sgd import sgd as sgd_functional

from ..torch_compat import (
    KNOWN_MUON_LR_ADJUSTMENTS,
    fused_adamw_step,
    fused_kernel_devices,
    muon_lr_adjustments,
    muon_step,
    scalar_dtype,
)
from .fused_adamw import one_kind

BASES = ("adamw", "muon", "sgd")
MATRIX_MODULES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
MUON_LR_ADJUSTMENTS = KNOWN_MUON_LR_ADJUSTMENTS


def matrix_parameters(model: nn.Module) -> set[int]:
    """Ids of the weights of Linear/ConvNd layers: the parameters Muon treats as matrices."""
    return {id(m.weight) for m in model.modules() if isinstance(m, MATRIX_MODULES)}


def fusable(params: Iterable[torch.Tensor]) -> bool:
    """Whether torch's fused AdamW kernel can take these parameters: floating point, contiguous
    (the kernel ignores strides), on a device it has the kernel for (CPU and CUDA among them).
    One kernel call per step instead of ~10 per-tensor ops per parameter."""
    devices = fused_kernel_devices()
    params = list(params)
    return bool(params) and all(
        p.device.type in devices and torch.is_floating_point(p) and p.is_contiguous()
        for p in params
    )


def check_range(name: str, value, low: float, high: float = math.inf, *, closed_high=False):
    ok = (
        isinstance(value, (int, float))
        and low <= value
        and (value <= high if closed_high else value < high)
    )
    if not ok:
        bound = "]" if closed_high else ")"
        raise ValueError(f"invalid {name}: {value!r} (expected a number in [{low}, {high}{bound})")


def validate_gp_hyperparameters(group: dict) -> None:
    """Raise ValueError naming the first bad GP hyper-parameter of a param group."""
    if group["base"] not in BASES:
        raise ValueError(f"invalid base optimizer: {group['base']!r} (expected one of {BASES})")
    check_range("lr", group["lr"], 0.0)
    check_range("weight_decay", group["weight_decay"], 0.0)
    check_range("eps", group["eps"], 0.0)
    betas = group["betas"]
    if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
        raise ValueError(f"invalid betas: {betas!r} (expected two numbers in [0, 1))")
    for i, beta in enumerate(betas):
        check_range(f"betas[{i}]", beta, 0.0, 1.0)
    check_range("momentum", group["momentum"], 0.0, 1.0)
    check_range("dampening", group["dampening"], 0.0, 1.0, closed_high=True)
    if not isinstance(group["ns_steps"], int) or group["ns_steps"] < 1:
        raise ValueError(f"invalid ns_steps: {group['ns_steps']!r} (expected an integer >= 1)")
    if group["fused"] not in (None, True, False):
        raise ValueError(f"invalid fused: {group['fused']!r} (expected True, False or None)")
    if group["adjust_lr_fn"] not in MUON_LR_ADJUSTMENTS:
        raise ValueError(
            f"invalid adjust_lr_fn: {group['adjust_lr_fn']!r} (expected one of "
            f"{MUON_LR_ADJUSTMENTS})"
        )
    if group["adjust_lr_fn"] not in muon_lr_adjustments():
        raise ValueError(
            f"invalid adjust_lr_fn: {group['adjust_lr_fn']!r} (torch {torch.__version__}'s Muon "
            f"does not have it; expected one of {muon_lr_adjustments()})"
        )
    if (
        group["base"] == "sgd"
        and group["nesterov"]
        and (group["momentum"] <= 0 or group["dampening"] != 0)
    ):
        raise ValueError("invalid nesterov=True for sgd: it needs momentum > 0 and dampening 0")


class GPOptimizer(Optimizer):
    r"""AdamW, Muon-with-AdamW or SGD over a model's parameters, as one torch optimizer.

    .. code-block:: text

        for each param group with base b:
          AdamW  (b = adamw, or non-matrix params when b = muon):
                 m ← β1 m + (1-β1) g ;  v ← β2 v + (1-β2) g² ;  θ ← (1-ηλ)θ - η m̂/(√v̂+ε)
          Muon   (matrix params when b = muon; conv weights as [out, in·k]):
                 B ← μB + (1-μ)g              (torch's Muon: an EMA buffer, lerp)
                 U ← (1-μ)g + μB if nesterov else B
                 O ← NewtonSchulz(U) ;  θ ← (1-ηλ)θ - η·adjust(shape) O
          SGD    (b = sgd): θ ← θ - η (g + λθ) with optional (Nesterov) momentum

    Args:
        model: the module whose parameters are optimised (Muon needs its layer types).
        params: optional iterable of parameters or param-group dicts (default: all of the model's).
        base: "adamw", "muon" or "sgd".
        lr, weight_decay: shared by every half of the update (decoupled for AdamW/Muon).
        betas, eps: AdamW's (also used for non-matrix params under Muon).
        momentum, nesterov, ns_steps, adjust_lr_fn: Muon's (momentum/nesterov also SGD's).
        dampening: SGD's.
        fused: AdamW through torch's fused kernel (one call per step for all parameters).
            None (default) = where the parameters allow it (floating point on CPU or CUDA).
            Same numbers as `torch.optim.AdamW(fused=True)`; a few ulps from the unfused loop.
    """

    def __init__(
        self,
        model: nn.Module,
        params: Iterable | None = None,
        *,
        base: str = "adamw",
        lr: float = 1e-4,
        weight_decay: float = 1e-6,
        betas: tuple[float, float] = (0.95, 0.999),
        eps: float = 1e-8,
        momentum: float | None = None,
        nesterov: bool | None = None,
        dampening: float = 0.0,
        ns_steps: int = 5,
        adjust_lr_fn: str | None = "match_rms_adamw",
        fused: bool | None = None,
        extra_defaults: dict | None = None,
    ) -> None:
        if momentum is None:  # Muon's customary momentum; plain SGD's customary none
            momentum = 0.95 if base == "muon" else 0.0
        if nesterov is None:
            nesterov = base == "muon"
        defaults = dict(
            base=base,
            lr=lr,
            weight_decay=weight_decay,
            betas=tuple(betas),
            eps=eps,
            momentum=momentum,
            nesterov=nesterov,
            dampening=dampening,
            ns_steps=ns_steps,
            adjust_lr_fn=adjust_lr_fn,
            fused=fused,
            **(extra_defaults or {}),
        )
        validate_gp_hyperparameters(defaults)
        self._matrix_ids = matrix_parameters(model)
        self._adamw_kept: dict[int, tuple] = {}  # per group: see _adamw_states
        super().__init__(list(model.parameters()) if params is None else params, defaults)
        for group in self.param_groups:
            validate_gp_hyperparameters(group)
            if group["fused"] is None:
                group["fused"] = fusable(group["params"])

    def is_matrix(self, p: torch.Tensor) -> bool:
        return id(p) in self._matrix_ids

    # ---- copying and pickling ------------------------------------------------------------------
    # torch's Optimizer copies and pickles defaults, state and param_groups only. The matrix ids
    # are ids, which a copy's tensors do not share, so they travel as the matrix parameters
    # themselves (copy's and pickle's memo map them to the copy's), and the AdamW lists are
    # rebuilt from the copied state at the copy's first step.
    def __getstate__(self) -> dict:
        state = super().__getstate__()
        params = [p for group in self.param_groups for p in group["params"]]
        state["matrix_params"] = [p for p in params if self.is_matrix(p)]
        return state

    def __setstate__(self, state: dict) -> None:
        if "matrix_params" not in state:  # load_state_dict's update of state and param_groups
            return super().__setstate__(state)
        state = dict(state)
        self._matrix_ids = {id(p) for p in state.pop("matrix_params")}
        self._adamw_kept = {}
        super().__setstate__(state)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._gp_update({})
        return loss

    def _gp_update(self, replaced_grads: dict[int, torch.Tensor]) -> None:
        """One GP step; `replaced_grads` maps id(param) to the gradient to use instead of .grad."""
        for index, group in enumerate(self.param_groups):
            adam, muon, sgd = [], [], []
            for p in group["params"]:
                grad = replaced_grads.get(id(p), p.grad)
                if grad is None:
                    continue
                if grad.is_sparse:
                    raise RuntimeError("dopr_robot optimizers do not support sparse gradients")
                if group["base"] == "sgd":
                    sgd.append((p, grad))
                elif group["base"] == "muon" and self.is_matrix(p):
                    muon.append((p, grad))
                else:
                    adam.append((p, grad))
            if adam:
                self._adamw(index, group, adam)
            if muon:
                self._muon(group, muon)
            if sgd:
                self._sgd(group, sgd)

    def _adamw(self, index: int, group: dict, pairs: list) -> None:
        # a group saved before `fused` existed (an old checkpoint) resumes unfused, as it ran
        fused = bool(group.get("fused", False))
        params = [p for p, _ in pairs]
        grads = [g for _, g in pairs]
        states = self._adamw_states(index, params, fused)
        exp_avgs, exp_avg_sqs, steps, contiguous, single_kind = states
        if fused:
            # torch's fused kernel reads every tensor as if it were contiguous: on torch 2.14's
            # CPU kernel a strided gradient (DoPr's weight block, a column slice of [W | b]) got
            # a scrambled update, silently. So strided gradients are copied first, and a group
            # with a strided parameter or state runs the per-tensor loop instead.
            grads = [g.contiguous() for g in grads]
            if contiguous and single_kind:  # what torch's fused path does, without its walk
                fused_adamw_step(group, params, grads, exp_avgs, exp_avg_sqs, steps)
                return
        beta1, beta2 = group["betas"]
        adamw_functional(
            params,
            grads,
            exp_avgs,
            exp_avg_sqs,
            [],
            steps,
            fused=fused and contiguous,
            amsgrad=False,
            beta1=beta1,
            beta2=beta2,
            lr=group["lr"],
            weight_decay=group["weight_decay"],
            eps=group["eps"],
            maximize=False,
        )

    def _adamw_states(self, index: int, params: list, fused: bool) -> tuple:
        """(exp_avgs, exp_avg_sqs, steps, contiguous, one device and dtype) of these AdamW
        parameters, created lazily as torch.optim.AdamW does, and kept while the same parameters
        step with the same state (a loaded state dict replaces `self.state`): walking every
        parameter's state each step cost as much as the fused kernel on a small network."""
        kept = self._adamw_kept.get(index)
        if (
            kept is not None
            and kept[0] is self.state
            and kept[1] == fused
            and len(kept[2]) == len(params)
            and all(a is b for a, b in zip(kept[2], params, strict=True))
        ):
            return kept[3]
        exp_avgs, exp_avg_sqs, steps = [], [], []
        for p in params:
            state = self.state[p]
            if "exp_avg" not in state:  # same lazy init as torch.optim.AdamW
                # fused kernels keep the step count on the parameter's device, as torch's do
                device = p.device if fused else None
                state["step"] = torch.zeros((), dtype=scalar_dtype(fused), device=device)
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            steps.append(state["step"])
        contiguous = all(t.is_contiguous() for t in [*params, *exp_avgs, *exp_avg_sqs])
        single_kind = one_kind([*params, *exp_avgs, *exp_avg_sqs]) and one_kind(steps)
        states = (exp_avgs, exp_avg_sqs, steps, contiguous, single_kind)
        self._adamw_kept[index] = (self.state, fused, params, states)
        return states

    def _muon(self, group: dict, pairs: list) -> None:
        params, grads, bufs = [], [], []
        for p, g in pairs:
            state = self.state[p]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(
                    p, memory_format=torch.contiguous_format
                )
            rows = p.shape[0]
            params.append(p.view(rows, -1))  # a view: Muon's in-place update reaches p
            grads.append(g.reshape(rows, -1))
            bufs.append(state["momentum_buffer"].view(rows, -1))
        muon_step(group, params, grads, bufs)

    def _sgd(self, group: dict, pairs: list) -> None:
        params = [p for p, _ in pairs]
        grads = [g for _, g in pairs]
        bufs = [self.state[p].get("momentum_buffer") for p in params]
        sgd_functional(
            params,
            grads,
            bufs,
            weight_decay=group["weight_decay"],
            momentum=group["momentum"],
            lr=group["lr"],
            dampening=group["dampening"],
            nesterov=group["nesterov"],
            maximize=False,
        )
        if group["momentum"] != 0:
            for p, buf in zip(params, bufs, strict=True):
                self.state[p]["momentum_buffer"] = buf
