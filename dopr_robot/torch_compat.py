"""Every private torch name the toolkit uses, behind one door, checked against torch at import.

The toolkit leans on a few of torch's private APIs, for speed and for exact agreement with
torch's own optimizers: the functional Muon core (`torch.optim._muon`), the fused AdamW kernel
and four foreach ops (`torch._fused_adamw_`, `torch._foreach_*`), two helpers of torch.optim
(`_get_scalar_dtype`, `_get_fused_kernels_supported_devices`), the wrapper torch puts around
each optimizer class's `step`, oneDNN's bf16 probe, and private attributes of three kinds of
torch object (a convolution's padding tuple, a scheduler's last learning rates, a module's
forward pre-hooks). Private names may change in any release — `_muon.muon` has: torch 2.14 added
the "spectral_unclamped" learning-rate adjustment, and a later revision a required `use_addmm`
keyword — so this module is the only place that names them (tests/test_torch_compat.py greps the
package for any other), and at import it checks every one against the installed torch: that it
exists, and that the calls made here bind to its signature. A mismatch stops the import with
one sentence naming the torch releases this package is tested with, not a TypeError in the
middle of a training run.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable

import torch
from torch import nn

SUPPORTED_TORCH = "2.9 to 2.14"  # pyproject.toml's bound: torch>=2.9,<2.15
TESTED_TORCH = "2.13 and 2.14"  # the releases the test suite has run on


class TorchCompatError(ImportError):
    """The installed torch lacks, or has changed, a private API the toolkit relies on."""


def _refuse(problems: list[str]) -> TorchCompatError:
    return TorchCompatError(
        f"dopr_robot relies on private torch APIs that torch {torch.__version__} does not "
        f"provide as expected ({'; '.join(problems)}); install a torch from {SUPPORTED_TORCH} "
        f"(tested with {TESTED_TORCH})"
    )


try:
    from torch.optim import _muon
    from torch.optim.optimizer import _get_scalar_dtype
    from torch.utils._foreach_utils import _get_fused_kernels_supported_devices
except ImportError as error:  # pragma: no cover - depends on the installed torch
    raise _refuse([str(error)]) from None
_OPS = ("_fused_adamw_", "_foreach_add_", "_foreach_norm", "_foreach_mul_", "_foreach_lerp_")
_MISSING = [
    f"torch.{name} is missing" for name in (*_OPS, "_foreach_copy_") if not hasattr(torch, name)
]
if _MISSING:  # pragma: no cover - depends on the installed torch
    raise _refuse(_MISSING)

# ---- the foreach ops, as torch.optim and clip_grad_norm_ call them --------------------------
foreach_add_ = torch._foreach_add_  # (tensors, scalar): the fused path's step counts
foreach_norm = torch._foreach_norm  # (tensors): per-tensor 2-norms
foreach_mul_ = torch._foreach_mul_  # (tensors, 0-d tensor): the gradient rescale
foreach_lerp_ = torch._foreach_lerp_  # (tensors, tensors, scalar weight): the EMA
foreach_copy_ = torch._foreach_copy_  # (tensors, tensors)

# ---- torch.optim's helpers -------------------------------------------------------------------
MUON_NS_COEFFICIENTS = (_muon.DEFAULT_A, _muon.DEFAULT_B, _muon.DEFAULT_C)
MUON_EPS = _muon.EPS
# every learning-rate adjustment the toolkit knows; muon_lr_adjustments() (below) is the part of
# it this torch's Muon has: on a name it does not know, torch's functional core scales by 1.0
# without a word (2.13 has no "spectral_unclamped")
KNOWN_MUON_LR_ADJUSTMENTS = (None, "original", "match_rms_adamw", "spectral_unclamped")


def scalar_dtype(fused: bool) -> torch.dtype:
    """The dtype torch.optim gives an optimizer's step counts."""
    return _get_scalar_dtype(fused)


def fused_kernel_devices() -> list[str]:
    """The device types that have torch's fused optimizer kernels."""
    return _get_fused_kernels_supported_devices()


def unhooked_step(cls: type[torch.optim.Optimizer]) -> Callable:
    """`cls.step` without the wrapper torch adds to each optimizer class's `step` on its first
    construction (the wrapper runs the step hooks and the profiler range): for a subclass whose
    own, wrapped `step` calls this one inside, so that the hooks run once."""
    step = cls.step
    while getattr(step, "__code__", None) is _STEP_WRAPPER_CODE:
        step = step.__wrapped__
    return step


# ---- the two functional cores ----------------------------------------------------------------
def fused_adamw_step(
    group: dict,
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    exp_avgs: list[torch.Tensor],
    exp_avg_sqs: list[torch.Tensor],
    steps: list[torch.Tensor],
) -> None:
    """One AdamW step of tensors that share a device and dtype, as torch.optim's fused path
    makes it (step counts first, then one `_fused_adamw_` call), with the group's settings."""
    foreach_add_(steps, 1)
    torch._fused_adamw_(
        params, grads, exp_avgs, exp_avg_sqs, [], steps, **_fused_adamw_keywords(group)
    )


def _fused_adamw_keywords(group: dict) -> dict:
    beta1, beta2 = group["betas"]
    return dict(
        amsgrad=False,
        lr=group["lr"],
        beta1=beta1,
        beta2=beta2,
        weight_decay=group["weight_decay"],
        eps=group["eps"],
        maximize=False,
        grad_scale=None,
        found_inf=None,
    )


def muon_step(
    group: dict,
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    momentum_buffers: list[torch.Tensor],
) -> None:
    """torch's functional Muon on 2-D tensors, with the group's settings and torch.optim.Muon's
    Newton–Schulz coefficients and eps."""
    _muon.muon(params, grads, momentum_buffers, **_muon_keywords(group))


def _muon_keywords(group: dict) -> dict:
    keywords = dict(
        lr=group["lr"],
        weight_decay=group["weight_decay"],
        momentum=group["momentum"],
        nesterov=group["nesterov"],
        ns_coefficients=MUON_NS_COEFFICIENTS,
        ns_steps=group["ns_steps"],
        eps=MUON_EPS,
        adjust_lr_fn=group["adjust_lr_fn"],
        has_complex=False,
    )
    if "use_addmm" in _MUON_PARAMETERS:  # a later revision's switch; off is the plain products
        keywords["use_addmm"] = False
    return keywords


_MUON_PARAMETERS = inspect.signature(_muon.muon).parameters


# ---- private attributes of torch objects -----------------------------------------------------
def reversed_padding(conv: nn.Module) -> tuple[int, ...]:
    """The F.pad amounts a convolution's forward uses for `padding="same"` and the padding modes
    other than zeros (last dimension first, each side)."""
    return conv._reversed_padding_repeated_twice


def set_last_lr(scheduler: torch.optim.lr_scheduler.LRScheduler, lrs: list[float]) -> None:
    """Make `scheduler.get_last_lr()` return `lrs` (after its optimizer's lrs were set by hand).

    Checked here, not at import: a scheduler needs an optimizer, and building one at import
    would load torch's compiler stack (2 s) for every command that never trains."""
    scheduler._last_lr = lrs
    if scheduler.get_last_lr() != lrs:  # pragma: no cover - depends on the installed torch
        raise _refuse(["LRScheduler.get_last_lr() no longer returns _last_lr"])


def drop_forward_pre_hooks(module: nn.Module, unwanted: Callable[[object], bool]) -> None:
    """Remove the module's forward pre-hooks for which `unwanted(hook)` is true."""
    hooks = module._forward_pre_hooks
    for key in [key for key, hook in hooks.items() if unwanted(hook)]:
        del hooks[key]
        module._forward_pre_hooks_with_kwargs.pop(key, None)


def mkldnn_bf16_supported() -> bool:
    """Whether oneDNN runs bf16 natively on this CPU (ask only where mkldnn is available)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


# ---- the checks at import --------------------------------------------------------------------
_SAMPLE_GROUP = dict(
    lr=1e-3,
    weight_decay=0.0,
    betas=(0.9, 0.999),
    eps=1e-8,
    momentum=0.95,
    nesterov=True,
    ns_steps=5,
    adjust_lr_fn="match_rms_adamw",
)
# (op, overload, number of positional arguments passed, keywords passed)
ATEN_CALLS = (
    ("_fused_adamw_", "default", 6, tuple(_fused_adamw_keywords(_SAMPLE_GROUP))),
    ("_foreach_add_", "Scalar", 2, ()),
    ("_foreach_norm", "Scalar", 1, ()),
    ("_foreach_mul_", "Tensor", 2, ()),
    ("_foreach_lerp_", "Scalar", 3, ()),
    ("_foreach_copy_", "default", 2, ()),
)


def schema_accepts(schema, positional: int, keywords: tuple[str, ...]) -> str:
    """'' if an aten schema takes `positional` arguments and these keywords, else what not."""
    args = schema.arguments
    leading = [a for a in args if not a.kwarg_only]
    required = sum(1 for a in leading if not a.has_default_value())
    if not required <= positional <= len(leading):
        return f"{schema.name} takes {required}-{len(leading)} positional arguments"
    kwargs = {a.name: a for a in args if a.kwarg_only}
    unknown = [k for k in keywords if k not in kwargs]
    missing = [n for n, a in kwargs.items() if not a.has_default_value() and n not in keywords]
    if unknown or missing:
        return f"{schema.name}: unknown {unknown}, missing {missing}"
    return ""


def signature_accepts(function: Callable, args: tuple, keywords: dict) -> str:
    """'' if a Python function's signature binds these arguments, else why not."""
    try:
        inspect.signature(function).bind(*args, **keywords)
    except TypeError as error:
        return f"{getattr(function, '__qualname__', function)}: {error}"
    return ""


def problems() -> list[str]:
    """What the installed torch lacks of the private APIs above (empty when it has them all)."""
    found = [
        signature_accepts(_muon.muon, ([], [], []), _muon_keywords(_SAMPLE_GROUP)),
        signature_accepts(_get_scalar_dtype, (True,), {}),
        signature_accepts(_get_fused_kernels_supported_devices, (), {}),
    ]
    for op, overload, positional, keywords in ATEN_CALLS:
        packet = getattr(torch.ops.aten, op, None)
        if packet is None or overload not in packet.overloads():
            found.append(f"torch.ops.aten.{op}.{overload} is missing")
            continue
        found.append(schema_accepts(getattr(packet, overload)._schema, positional, keywords))
    found += _attribute_problems()
    return [problem for problem in found if problem]


def _attribute_problems() -> list[str]:
    """The private attributes read or written above, on small objects of each kind."""
    found = []
    conv = nn.Conv1d(1, 1, 3, padding="same", padding_mode="reflect")
    if list(getattr(conv, "_reversed_padding_repeated_twice", ())) != [1, 1]:
        found.append("Conv1d._reversed_padding_repeated_twice is not the padding F.pad takes")
    linear = nn.Linear(1, 1)
    for name in ("_forward_pre_hooks", "_forward_pre_hooks_with_kwargs"):
        if not isinstance(getattr(linear, name, None), dict):
            found.append(f"nn.Module.{name} is missing")
    wrap = getattr(torch.optim.Optimizer, "profile_hook_step", None)
    if wrap is None or getattr(wrap(len), "__wrapped__", None) is not len:
        found.append("torch.optim.Optimizer.profile_hook_step is missing or keeps no __wrapped__")
    if not callable(getattr(torch.optim, "Muon", None)):
        found.append("torch.optim.Muon is missing")
    mkldnn = torch.ops.mkldnn
    if torch.backends.mkldnn.is_available() and not hasattr(mkldnn, "_is_mkldnn_bf16_supported"):
        found.append("torch.ops.mkldnn._is_mkldnn_bf16_supported is missing")
    return found


_PROBLEMS = problems()
if _PROBLEMS:  # pragma: no cover - depends on the installed torch
    raise _refuse(_PROBLEMS)
# every step wrapper torch makes runs the code of the one function profile_hook_step defines
_STEP_WRAPPER_CODE = torch.optim.Optimizer.profile_hook_step(len).__code__


@functools.cache
def muon_lr_adjustments() -> tuple[str | None, ...]:
    """The known Muon lr adjustments this torch has: those torch.optim.Muon accepts (it refuses
    the others by name). Asked on first use, when an optimizer is built anyway."""
    matrix = [nn.Parameter(torch.zeros(2, 2))]
    accepted = []
    for name in KNOWN_MUON_LR_ADJUSTMENTS:
        try:
            torch.optim.Muon(matrix, adjust_lr_fn=name)
        except ValueError:
            continue
        accepted.append(name)
    return tuple(accepted)
