"""DoPr — double preconditioning: activation-wise (AP) then gradient-wise (GP).

This module owns the AP stage and its bookkeeping: the accumulation of each eligible layer's
input second moment (fed by the forward pre-hooks of `hooks.py`), the per-layer factor refresh
(batch or EMA statistic, damping, inverse with fallbacks, torch.distributed averaging), and the
right-multiplication of the layer's gradient by the damped inverse. The GP stage (AdamW / Muon /
SGD) is inherited from `GPOptimizer`. All state lives in `self.state[layer.weight]` under keys
starting with "ap_"; nothing is cached outside `optimizer.state` and the param groups, so
`state_dict()` round-trips exactly. A deep copy or a pickle carries the layers as well, and
rebuilds the rest (hooks, maps keyed by tensor ids, scratch buffers) for the copy's tensors.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable

import torch
import torch.distributed as dist
from torch import nn

from . import hooks
from .factor import DAMPING_MODES, all_finite, all_finite_sum, damped_inverses
from .gp import GPOptimizer, check_range
from .layers import CONV_FACTORS, LayerAdapter, layer_adapter_for

STATISTICS = ("batch", "ema")
BIAS_MODES = ("homogeneous", "base")
AP_DEFAULTS = dict(
    ap=True,
    gamma=0.1,
    damping="trace_over_dim",
    statistic="ema",
    ema_decay=0.95,
    update_every=20,
    max_rows=2048,
    bias="homogeneous",
    conv_factor="kron",
)


def validate_ap_hyperparameters(group: dict) -> None:
    """Raise ValueError naming the first bad AP hyper-parameter of a param group."""
    check_range("gamma", group["gamma"], 0.0)  # also refuses inf and nan
    if group["damping"] not in DAMPING_MODES:
        raise ValueError(f"invalid damping: {group['damping']!r} (expected one of {DAMPING_MODES})")
    if group["statistic"] not in STATISTICS:
        raise ValueError(
            f"invalid statistic: {group['statistic']!r} (expected one of {STATISTICS})"
        )
    check_range("ema_decay", group["ema_decay"], 0.0, 1.0)
    every = group["update_every"]
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"invalid update_every: {every!r} (expected an integer >= 1)")
    rows = group["max_rows"]
    if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int) or rows < 1):
        raise ValueError(f"invalid max_rows: {rows!r} (expected None or an integer >= 1)")
    if group["bias"] not in BIAS_MODES:
        raise ValueError(f"invalid bias: {group['bias']!r} (expected one of {BIAS_MODES})")
    if group["conv_factor"] not in CONV_FACTORS:
        raise ValueError(
            f"invalid conv_factor: {group['conv_factor']!r} (expected one of {CONV_FACTORS})"
        )
    if not isinstance(group["ap"], bool):
        raise ValueError(f"invalid ap: {group['ap']!r} (expected True or False)")


def _statistic_dtype(weight: torch.Tensor) -> torch.dtype:
    """float32 statistics (float64 for a float64 model), whatever bf16/fp16 the forward ran in."""
    return torch.float64 if weight.dtype == torch.float64 else torch.float32


def _reads_are_free(device: torch.device) -> bool:
    """On CPU a tensor's value is already in host memory: reading it synchronises nothing."""
    return device.type == "cpu"


class DoPr(GPOptimizer):
    r"""Double preconditioning: AP (input-side KFAC factor) per layer, then a base GP.

    .. code-block:: text

        for every eligible layer (Linear; Conv1d/Conv2d on unfolded patches), each step t:
          (conv_factor = kron: convolutions keep Σ ≈ A ⊗ T, channels ⊗ taps, each factor damped
           by δ = √(1+γ_rel) − 1 of its mean eigenvalue (γ_rel = γ, or γ·C_in·k with
           damping = "trace"), so that the pair's mean added damping is λ like a single
           factor's, and inverted on its own; see factor.damped_inverses; M = G (A⁻¹ ⊗ T⁻¹))
          z      ← layer inputs (rows; [z, 1] with the homogeneous bias coordinate)
          if t mod k = 0:                                    (k = update_every)
            Σ_b  ← (1/n) Σ_i z_i z_iᵀ                        (float32; summed over micro-batches
                                                              and averaged over DDP ranks)
            Σ    ← Σ_b                      (statistic = batch, the paper's faithful mode, k = 1)
                   β Σ + (1-β) Σ_b          (statistic = ema)
            λ    ← γ tr(Σ) / d  or  γ tr(Σ)                  (damping)
            P    ← (Σ + λI)⁻¹                                (Cholesky; fallback chain)
          G      ← [∇W | ∇b]  reshaped to [out, d]
          M      ← G P                                        (AP)
        θ ← GP(θ, M)  — AdamW, Muon (+AdamW for non-matrix params) or SGD     (GP)

    Args:
        model: the module to optimise; DoPr installs a forward pre-hook on each eligible layer.
        params: optional parameters or param-group dicts (default: all of the model's).
        base: the gradient-wise preconditioner, "adamw", "muon" or "sgd".
        ap: apply the activation-wise stage (False gives the plain base optimizer).
        gamma: damping strength γ (>= 0).
        damping: "trace_over_dim" (λ = γ·tr(Σ)/d, γ relative to the mean eigenvalue; default)
            or "trace" (λ = γ·tr(Σ), the paper's formula).
        statistic: "ema" (default; Σ as an EMA over refreshes) or "batch" (Σ of the refresh step's
            own batch; with update_every=1 this is the paper's faithful per-minibatch mode).
        ema_decay: β of the EMA statistic.
        update_every: k, the period in optimizer steps of statistic and inverse refreshes.
        max_rows: at most this many input rows per forward enter Σ (a seeded random subset);
            None = all.
        bias: "homogeneous" (precondition [W | b] jointly with a constant-1 input; default) or
            "base" (biases go to the base optimizer unchanged). Fixed at construction.
        conv_factor: "kron" (default; Conv1d/Conv2d factors as channels ⊗ taps, their bias to the
            base optimizer) or "full" (the exact patch factor, C_in·k wide). Fixed at
            construction.
        **gp_kwargs: the base optimizer's settings (lr, weight_decay, betas, eps, momentum, ...).
    """

    def __init__(
        self,
        model: nn.Module,
        params: Iterable | None = None,
        *,
        base: str = "adamw",
        ap: bool = True,
        gamma: float = AP_DEFAULTS["gamma"],
        damping: str = AP_DEFAULTS["damping"],
        statistic: str = AP_DEFAULTS["statistic"],
        ema_decay: float = AP_DEFAULTS["ema_decay"],
        update_every: int = AP_DEFAULTS["update_every"],
        max_rows: int | None = AP_DEFAULTS["max_rows"],
        bias: str = AP_DEFAULTS["bias"],
        conv_factor: str = AP_DEFAULTS["conv_factor"],
        **gp_kwargs,
    ) -> None:
        ap_settings = dict(
            ap=ap,
            gamma=gamma,
            damping=damping,
            statistic=statistic,
            ema_decay=ema_decay,
            update_every=update_every,
            max_rows=max_rows,
            bias=bias,
            conv_factor=conv_factor,
        )
        validate_ap_hyperparameters(ap_settings)
        super().__init__(model, params, base=base, extra_defaults=ap_settings, **gp_kwargs)
        for group in self.param_groups:
            validate_ap_hyperparameters(group)
        self._layers: list[LayerAdapter] = []
        self._names: dict[int, str] = {}  # id(weight) -> module name, for messages
        self._skipped: list[tuple[str, str]] = []  # (module name, why it is left to the GP)
        self._hooks = []
        self._warned: set[int] = set()
        self._scratch: dict[int, list[torch.Tensor]] = {}  # id(layer) -> AP output buffers
        self._attach(model)

    # ---- construction -------------------------------------------------------------------
    def _attach(self, model: nn.Module) -> None:
        self._group_index = {id(p): i for i, g in enumerate(self.param_groups) for p in g["params"]}
        functional = {  # Linear modules that MultiheadAttention calls functionally
            id(m.out_proj) for m in model.modules() if isinstance(m, nn.MultiheadAttention)
        }
        for name, module in model.named_modules():
            weight = getattr(module, "weight", None)
            if not isinstance(weight, torch.Tensor) or id(weight) not in self._group_index:
                continue
            if id(module) in functional:
                self._skipped.append((name, "called functionally by MultiheadAttention"))
                continue
            group = self.param_groups[self._group_index[id(weight)]]
            bias = getattr(module, "bias", None)
            homogeneous = (
                group["bias"] == "homogeneous"
                and bias is not None
                and id(bias) in self._group_index
            )
            adapter, reason = layer_adapter_for(module, homogeneous, group["conv_factor"])
            if adapter is None:
                if reason:
                    self._skipped.append((name, reason))
                continue
            self._layers.append(adapter)
            self._names[id(weight)] = name or type(module).__name__
            self._hooks.append(hooks.attach(self, adapter))
        if not self._layers:
            raise ValueError(
                f"DoPr found no layer to precondition in {type(model).__name__}: it needs "
                "nn.Linear, nn.Conv1d or nn.Conv2d layers among the optimised parameters; use the "
                "plain base optimizer (e.g. 'adamw') for this model"
            )

    def remove_hooks(self) -> None:
        """Detach DoPr from the model; later steps apply the last factors without refreshing."""
        for handle in self._hooks:
            handle.remove()
        self._hooks.clear()

    def _group(self, layer: LayerAdapter) -> dict:
        # by position: load_state_dict replaces the group dicts but keeps their order
        return self.param_groups[self._group_index[id(layer.module.weight)]]

    def _refresh_due(self, layer: LayerAdapter) -> bool:
        """Whether this step refreshes the layer's factor (and so its forwards are recorded)."""
        group = self._group(layer)
        steps = self.state[layer.module.weight].get("ap_steps", 0)
        return group["ap"] and steps % group["update_every"] == 0

    # ---- statistics (called from the hooks) ---------------------------------------------
    def _record(self, layer: LayerAdapter, x: torch.Tensor) -> None:
        if not self._refresh_due(layer):
            return
        group = self._group(layer)
        state = self.state[layer.module.weight]
        keep = group["max_rows"]

        def choose(n: int) -> torch.Tensor | None:
            if keep is None or n <= keep:
                return None
            return self._row_subset(layer, state, n, keep)

        with torch.no_grad(), torch.autocast(x.device.type, enabled=False):
            pending = self._pending(layer, state, x.device)
            dtype = _statistic_dtype(layer.module.weight)
            state["ap_pending_rows"] += layer.record(x.detach(), pending, choose, dtype)

    def _row_subset(self, layer: LayerAdapter, state: dict, n: int, keep: int) -> torch.Tensor:
        """`keep` of n rows, drawn at random from a generator seeded by (refresh step, layer).

        Rows are (sample, position) pairs; a stride that divides the positions would give every
        sample the same positions, so the subset is random, and seeded so that a step's
        statistic is the same on every run and after a resume."""
        position = self._layers.index(layer)
        seed = state.get("ap_steps", 0) * 1_000_003 + position
        chosen = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:keep]
        return chosen.sort().values.to(layer.module.weight.device)

    def _pending(self, layer: LayerAdapter, state: dict, device) -> list[torch.Tensor]:
        """The layer's running sums, one per factor (created empty on the first record)."""
        if "ap_pending" not in state:
            dtype = _statistic_dtype(layer.module.weight)
            for prefix, side in zip(layer.factor_keys, layer.factor_dims, strict=True):
                state[f"ap_{prefix}pending"] = torch.zeros(side, side, device=device, dtype=dtype)
            state["ap_pending_rows"] = 0
        return [state[f"ap_{prefix}pending"] for prefix in layer.factor_keys]

    # ---- the step --------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        due = [
            layer
            for layer in self._layers
            if layer.module.weight.grad is not None and self._refresh_due(layer)
        ]
        self._all_reduce_pending(due)
        for layer in due:
            self._refresh(layer)
        replaced = {}
        for layer in self._layers:
            weight = layer.module.weight
            if weight.grad is None or not self._group(layer)["ap"]:
                continue
            state = self.state[weight]
            replaced.update(self._precondition(layer, state))
            state["ap_steps"] = state.get("ap_steps", 0) + 1
        self._gp_update(replaced)
        return loss

    def _all_reduce_pending(self, due: list[LayerAdapter]) -> None:
        """Sum every due layer's pending Σ and row count over ranks, in one collective."""
        if not due or not (dist.is_available() and dist.is_initialized()):
            return
        if dist.get_world_size() == 1:
            return
        states = [self.state[layer.module.weight] for layer in due]
        device = due[0].module.weight.device
        pending = [
            sums
            for layer, state in zip(due, states, strict=True)
            for sums in self._pending(layer, state, device)
        ]
        rows = torch.tensor([float(s["ap_pending_rows"]) for s in states], device=device)
        flat = torch.cat([p.flatten() for p in pending] + [rows])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        offset = 0
        for p in pending:
            p.copy_(flat[offset : offset + p.numel()].view_as(p))
            offset += p.numel()
        for state, total in zip(states, flat[offset:].tolist(), strict=True):
            state["ap_pending_rows"] = int(round(total))

    def _refresh(self, layer: LayerAdapter) -> None:
        """Turn the pending sums into Σ, update the statistic, refresh the damped inverse."""
        group = self._group(layer)
        weight = layer.module.weight
        state = self.state[weight]
        sums = [state.pop(f"ap_{prefix}pending", None) for prefix in layer.factor_keys]
        rows = state.pop("ap_pending_rows", 0)
        if sums[0] is None or rows == 0:
            if id(weight) not in self._warned and "ap_inverse" not in state:
                self._warned.add(id(weight))
                warnings.warn(
                    f"DoPr: the forward hook of layer '{self._names[id(weight)]}' never fired "
                    "(is it called functionally?); its gradient goes to the base optimizer "
                    "unchanged",
                    stacklevel=3,
                )
            return
        sigmas = layer.statistics(sums, rows)
        state["ap_refreshes"] = state.get("ap_refreshes", 0) + 1
        state.setdefault("ap_failures", 0)
        state.setdefault("ap_fallbacks", 0)
        if not all(bool(all_finite(sigma)) for sigma in sigmas):
            # checked before the EMA: one non-finite batch would otherwise poison it for good
            state["ap_failures"] += 1
            return
        if group["statistic"] == "ema":
            for i, prefix in enumerate(layer.factor_keys):
                if f"ap_{prefix}sigma" in state:
                    sigmas[i] = state[f"ap_{prefix}sigma"].lerp_(sigmas[i], 1 - group["ema_decay"])
                state[f"ap_{prefix}sigma"] = sigmas[i]
        results = damped_inverses(sigmas, group["gamma"], group["damping"])
        if any(result.inverse is None for result in results):
            state["ap_failures"] += 1  # keep the previous inverses, if there are any
            return
        state["ap_fallbacks"] += int(any(result.attempts > 1 for result in results))
        for prefix, result in zip(layer.factor_keys, results, strict=True):
            state[f"ap_{prefix}inverse"] = result.inverse
        means = [float(torch.diagonal(sigma).mean()) for sigma in sigmas]
        # the damping actually added, as the mean eigenvalue of the damped factor minus Σ's
        state["ap_damping"] = math.prod(
            m + result.damping for m, result in zip(means, results, strict=True)
        ) - math.prod(means)
        state["ap_condition"] = math.prod(result.condition for result in results)

    def _precondition(self, layer: LayerAdapter, state: dict) -> dict[int, torch.Tensor]:
        """{id(param): AP gradient} for one layer, or {} when it has no usable factor yet."""
        if "ap_inverse" not in state:
            return {}
        inverses = [state[f"ap_{prefix}inverse"] for prefix in layer.factor_keys]
        params = layer.params()
        dtype = inverses[0].dtype
        grads = [(p.grad if p.grad is not None else torch.zeros_like(p)).to(dtype) for p in params]
        parts = layer.preconditioned(grads, inverses, self._outputs(layer, params, dtype))
        # Never let a bad factor put NaN into the weights: a non-finite AP gradient falls back
        # to the raw gradient for this step. On CUDA this is decided on the device (torch.where),
        # not with a host sync per layer per step, and counted in a tensor read only by
        # diagnostics(); on CPU reading the flag costs nothing, skips where's full pass over the
        # matrix, and the count stays a Python int. A gradient that was already non-finite (a
        # diverged loss) is the base optimizer's business, not an AP failure.
        previous = state.get("ap_nonfinite_steps", 0)
        if not _reads_are_free(parts[0].device):
            finite = all_finite_sum(parts)
            parts = [torch.where(finite, part, g) for part, g in zip(parts, grads, strict=True)]
            failed = (~finite & all_finite_sum(grads)).to(torch.int64)
            state["ap_nonfinite_steps"] = previous + failed
        elif not math.isfinite(sum(part.sum().item() for part in parts)):
            # (a Python float from each sum: isfinite on a 0-d tensor is four ops, ~25 µs)
            parts = grads
            state["ap_nonfinite_steps"] = previous + int(all_finite_sum(grads))
        else:
            state["ap_nonfinite_steps"] = previous
        return {
            id(p): part.to(p.dtype)
            for p, part in zip(params, parts, strict=True)
            if p.grad is not None
        }

    def _outputs(
        self, layer: LayerAdapter, params: list[torch.Tensor], dtype: torch.dtype
    ) -> list[torch.Tensor]:
        """Per-layer buffers the AP gradients are written into, reused step after step.

        Not state (they hold nothing between steps): they spare an allocation per layer per step,
        and for large outputs the first-touch page faults of fresh memory."""
        buffers = self._scratch.get(id(layer))
        like = params[0]
        if buffers is None or buffers[0].dtype != dtype or buffers[0].device != like.device:
            buffers = [torch.empty(p.shape, dtype=dtype, device=p.device) for p in params]
            self._scratch[id(layer)] = buffers
        return buffers

    # ---- copying and pickling ------------------------------------------------------------------
    def __getstate__(self) -> dict:
        """What a copy needs beyond torch's defaults, state and param_groups: the layers (whose
        modules copy's and pickle's memo map to the copy's) and what is keyed by their ids, by
        position instead. Hook handles, id maps and scratch buffers are rebuilt, not copied."""
        state = super().__getstate__()
        weights = [id(layer.module.weight) for layer in self._layers]
        state["layers"] = self._layers
        state["layer_names"] = [self._names[weight] for weight in weights]
        state["warned_layers"] = [i for i, weight in enumerate(weights) if weight in self._warned]
        state["skipped"] = self._skipped
        state["attached"] = bool(self._hooks)
        return state

    def __setstate__(self, state: dict) -> None:
        """Rebuild the id-keyed maps for the copy's tensors and hook the copy's modules (in a
        copy of `(model, optimizer)`, the copied model's), after removing from them the hooks
        the copy brought along that feed nothing there."""
        if "layers" not in state:  # load_state_dict's update of state and param_groups
            return super().__setstate__(state)
        state = dict(state)
        layers, names = state.pop("layers"), state.pop("layer_names")
        warned, attached = state.pop("warned_layers"), state.pop("attached")
        self._skipped = state.pop("skipped")
        super().__setstate__(state)
        self._layers = layers
        self._group_index = {id(p): i for i, g in enumerate(self.param_groups) for p in g["params"]}
        weights = [id(layer.module.weight) for layer in layers]
        self._names = dict(zip(weights, names, strict=True))
        self._warned = {weights[i] for i in warned}
        self._scratch = {}
        self._hooks = []
        for layer in layers:
            hooks.drop_inert(layer.module)
            if attached:
                self._hooks.append(hooks.attach(self, layer))

    # ---- state and reporting -----------------------------------------------------------------
    def load_state_dict(self, state_dict: dict) -> None:
        """torch casts floating state to each parameter's dtype on load; the AP statistics must
        not follow (a bf16 model keeps float32 statistics), so they are set aside first and put
        back from the saved tensors, not cast to bf16 and back."""
        kept = {
            index: {
                key: value
                for key, value in saved.items()
                if key.startswith("ap_") and torch.is_tensor(value) and value.is_floating_point()
            }
            for index, saved in state_dict["state"].items()
        }
        super().load_state_dict(state_dict)
        saved_ids = [i for group in state_dict["param_groups"] for i in group["params"]]
        params = [p for group in self.param_groups for p in group["params"]]
        by_id = dict(zip(saved_ids, params, strict=True))
        for index, values in kept.items():
            param = by_id[index]
            for key, value in values.items():
                self.state[param][key] = value.to(param.device, _statistic_dtype(param))

    def diagnostics(self) -> dict[str, dict[str, float]]:
        """Per preconditioned layer: damping, condition estimate, refreshes, fallbacks, failures."""
        report = {}
        for layer in self._layers:
            weight = layer.module.weight
            state = self.state.get(weight, {})
            report[self._names[id(weight)]] = {
                "damping": float(state.get("ap_damping", float("nan"))),
                "condition": float(state.get("ap_condition", float("nan"))),
                "refreshes": int(state.get("ap_refreshes", 0)),
                "fallbacks": int(state.get("ap_fallbacks", 0)),
                "failures": int(state.get("ap_failures", 0))
                + int(state.get("ap_nonfinite_steps", 0)),
            }
        return report

    def describe(self) -> str:
        """A table of which modules are preconditioned, with their factor size, and which not."""
        lines = [f"DoPr (base {self.defaults['base']}): {len(self._layers)} preconditioned layers"]
        for layer in self._layers:
            lines.append(
                f"  AP  {self._names[id(layer.module.weight)]:<40} {layer.kind:<7} "
                f"{layer.describe_factor()}"
            )
        for name, reason in self._skipped:
            lines.append(f"  GP  {name:<40} {reason}")
        lines.append("  GP  every other parameter (norms, embeddings, 1-D params, other biases)")
        return "\n".join(lines)
