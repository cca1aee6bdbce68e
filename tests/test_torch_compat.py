"""Private torch behind one door: no module but `dopr_robot.torch_compat` names a private torch
API, and each private call the toolkit makes is pinned against the installed torch."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import _muon
from torch.optim.lr_scheduler import LambdaLR

from dopr_robot import torch_compat
from dopr_robot.optim import build_optimizer

PACKAGE = Path(torch_compat.__file__).parent
COMPAT = Path(torch_compat.__file__)
# torch internals that are private without a leading underscore
UNMARKED_INTERNALS = ("hooked",)


def _torch_private_attributes() -> set[str]:
    """Private attribute names of the torch objects the toolkit handles (modules, optimizers,
    schedulers, tensors), found on small instances of each."""
    linear = nn.Linear(2, 2)
    sgd = torch.optim.SGD(linear.parameters(), lr=1.0)
    objects = [linear, nn.Conv1d(1, 1, 1), nn.Conv2d(1, 1, 1), sgd, LambdaLR(sgd, lambda s: 1.0)]
    objects += [torch.zeros(1), nn.Parameter(torch.zeros(1)), torch.Generator()]
    names = set()
    for obj in objects:
        names |= set(dir(obj)) | set(getattr(obj, "__dict__", {}))
    return {n for n in names if n.startswith("_") and not n.endswith("__")}


PRIVATE_ATTRIBUTES = _torch_private_attributes() | set(UNMARKED_INTERNALS)
PRIVATE_STRING = re.compile(r"torch(\.\w+)*\._(?!_)\w*")


def _private(name: str) -> bool:
    return any(part.startswith("_") and not part.endswith("__") for part in name.split("."))


def _torch_aliases(tree: ast.Module) -> set[str]:
    """The names a module binds to torch or to anything imported from it (nn, F, dist, ...)."""
    aliases = {"torch"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "torch":
                    aliases.add(alias.asname or "torch")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "torch":
            aliases.update(alias.asname or alias.name for alias in node.names)
    return aliases


def _root(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def private_torch_uses(source: str) -> list[str]:
    """The private torch names a module's code uses: imports and attribute paths from torch with
    a private component, private attributes of torch objects (not `self.`'s own), and strings
    naming either (`getattr(x, "_name")`, `import_module("torch._x")`). Comments and prose in
    docstrings do not count."""
    tree = ast.parse(source)
    aliases = _torch_aliases(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("torch") and _private(a.name)]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "torch":
            names = [f"{node.module}.{a.name}" for a in node.names]
            found += [name for name in names if _private(name)]
        elif isinstance(node, ast.Attribute):
            root = _root(node)
            if (root in aliases and _private(node.attr)) or (
                node.attr in PRIVATE_ATTRIBUTES and root != "self"
            ):
                found.append(ast.unparse(node))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if PRIVATE_STRING.fullmatch(node.value) or node.value in PRIVATE_ATTRIBUTES:
                found.append(repr(node.value))
    return found


def test_no_module_but_the_compat_module_uses_private_torch():
    offenders = {
        str(path.relative_to(PACKAGE.parent)): uses
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != COMPAT and (uses := private_torch_uses(path.read_text()))
    }
    assert not offenders, f"private torch outside dopr_robot/torch_compat.py: {offenders}"


@pytest.mark.parametrize(
    "line",
    [
        "torch._foreach_add_(steps, 1)",
        "from torch.optim._muon import muon",
        "from torch.optim.optimizer import (\n    Optimizer,\n    _get_scalar_dtype,\n)",
        "import torch.utils._foreach_utils as fu",
        "scheduler._last_lr = lrs",
        "x = F.pad(x, conv._reversed_padding_repeated_twice)",
        "hooks = module._forward_pre_hooks",
        "getattr(step, 'hooked', False)",
        "importlib.import_module('torch._dynamo')",
        "torch.ops.mkldnn._is_mkldnn_bf16_supported()",
    ],
)
def test_the_scan_finds_each_kind_of_private_use(line):
    assert private_torch_uses(line + "\n")


@pytest.mark.parametrize(
    "line",
    [
        "# torch._foreach_add_ in a comment",
        '"""torch.optim._muon in prose is not a use."""',
        "self._buffers = list(model.buffers())",
        "torch.__version__",
        "from ..torch_compat import foreach_norm",
    ],
)
def test_the_scan_lets_public_code_through(line):
    assert private_torch_uses(line + "\n") == []


# ---- what each private call is expected to accept ----------------------------------------------
GROUP = dict(
    lr=1e-2,
    weight_decay=0.1,
    betas=(0.9, 0.99),
    eps=1e-8,
    momentum=0.95,
    nesterov=True,
    ns_steps=5,
    adjust_lr_fn="match_rms_adamw",
)


def test_the_installed_torch_has_every_private_api_as_expected():
    assert torch_compat.problems() == []


def test_muon_takes_the_keywords_the_toolkit_passes():
    parameters = inspect.signature(_muon.muon).parameters
    keywords = torch_compat._muon_keywords(GROUP)
    assert set(keywords) <= set(parameters)
    required = {n for n, p in parameters.items() if p.default is inspect.Parameter.empty}
    assert required - set(keywords) == {"params", "grads", "muon_momentum_bufs"}
    assert torch_compat.MUON_NS_COEFFICIENTS == (_muon.DEFAULT_A, _muon.DEFAULT_B, _muon.DEFAULT_C)


def test_a_later_muon_with_a_required_use_addmm_gets_it_off(monkeypatch):
    def later_muon(params, grads, bufs, *, foreach=None, use_addmm: bool, **settings):
        pass

    parameters = inspect.signature(later_muon).parameters
    monkeypatch.setattr(torch_compat, "_MUON_PARAMETERS", parameters)
    keywords = torch_compat._muon_keywords(GROUP)
    assert keywords["use_addmm"] is False
    assert torch_compat.signature_accepts(later_muon, ([], [], []), keywords) == ""


def test_a_changed_signature_is_named():
    def changed_muon(params, grads, bufs, *, lr, new_required_setting):
        pass

    keywords = torch_compat._muon_keywords(GROUP)
    problem = torch_compat.signature_accepts(changed_muon, ([], [], []), keywords)
    assert "changed_muon" in problem
    error = torch_compat._refuse([problem])
    assert isinstance(error, ImportError)
    message = str(error)
    assert torch_compat.SUPPORTED_TORCH in message and torch_compat.TESTED_TORCH in message
    assert message.count(". ") == 0  # one sentence


def test_every_aten_call_binds_to_its_schema():
    for op, overload, positional, keywords in torch_compat.ATEN_CALLS:
        schema = getattr(getattr(torch.ops.aten, op), overload)._schema
        assert torch_compat.schema_accepts(schema, positional, keywords) == "", op
    fused = torch.ops.aten._fused_adamw_.default._schema
    assert torch_compat.schema_accepts(fused, 6, ("lr", "beta1")) != ""  # missing settings
    assert torch_compat.schema_accepts(fused, 6, ("lr", "gamma")) != ""  # an unknown one


def test_fused_adamw_step_is_torchs_fused_adamw():
    torch.manual_seed(0)
    ours, theirs = torch.randn(5, 3), None
    theirs = ours.clone().requires_grad_()
    reference = torch.optim.AdamW(
        [theirs], lr=1e-2, betas=(0.9, 0.99), weight_decay=0.1, eps=1e-8, fused=True
    )
    exp_avg, exp_avg_sq = torch.zeros_like(ours), torch.zeros_like(ours)
    step = torch.zeros((), dtype=torch_compat.scalar_dtype(True))
    for _ in range(3):
        grad = torch.randn(5, 3)
        theirs.grad = grad.clone()
        reference.step()
        torch_compat.fused_adamw_step(GROUP, [ours], [grad], [exp_avg], [exp_avg_sq], [step])
    assert torch.equal(ours, theirs.detach()) and int(step) == 3


def test_muon_step_is_torchs_muon():
    torch.manual_seed(0)
    ours = torch.randn(4, 6)
    theirs = nn.Parameter(ours.clone())
    reference = torch.optim.Muon(
        [theirs], lr=1e-2, weight_decay=0.1, adjust_lr_fn="match_rms_adamw"
    )
    buffer = torch.zeros_like(ours)
    for _ in range(3):
        grad = torch.randn(4, 6)
        theirs.grad = grad.clone()
        reference.step()
        torch_compat.muon_step(GROUP, [ours], [grad], [buffer])
    assert torch.equal(ours, theirs.detach())


def test_the_helpers_of_torch_optim():
    assert "cpu" in torch_compat.fused_kernel_devices()
    assert torch_compat.scalar_dtype(True) == torch.float32
    torch.optim.AdamW([nn.Parameter(torch.zeros(1))])  # torch wraps AdamW.step on first use
    step = torch_compat.unhooked_step(torch.optim.AdamW)
    assert step is torch.optim.AdamW.step.__wrapped__
    assert torch_compat.unhooked_step(torch.optim.AdamW) is step  # idempotent


def test_the_lr_adjustments_are_the_ones_torchs_muon_accepts(monkeypatch):
    for name in torch_compat.KNOWN_MUON_LR_ADJUSTMENTS:
        accepted = name in torch_compat.muon_lr_adjustments()
        try:
            torch.optim.Muon([nn.Parameter(torch.zeros(2, 2))], adjust_lr_fn=name)
        except ValueError:
            assert not accepted
        else:
            assert accepted
    from dopr_robot.optim import gp

    monkeypatch.setattr(gp, "muon_lr_adjustments", lambda: (None, "original"))
    with pytest.raises(ValueError, match=r"adjust_lr_fn: 'spectral_unclamped' \(torch .* does"):
        build_optimizer("muon", nn.Linear(3, 3), adjust_lr_fn="spectral_unclamped")


@pytest.mark.parametrize(
    "conv",
    [
        nn.Conv1d(2, 3, 3, padding="same", padding_mode="reflect"),
        nn.Conv2d(2, 3, (3, 2), padding=(1, 2), padding_mode="circular"),
        nn.Conv1d(2, 3, 3, padding="same", dilation=2),
    ],
)
def test_reversed_padding_is_what_the_forward_pads(conv):
    x = torch.randn(2, 2, *([7] * (conv.weight.dim() - 2)))
    mode = "constant" if conv.padding_mode == "zeros" else conv.padding_mode
    padded = F.pad(x, torch_compat.reversed_padding(conv), mode=mode)
    unpadded = F.conv1d if conv.weight.dim() == 3 else F.conv2d
    ours = unpadded(padded, conv.weight, conv.bias, stride=conv.stride, dilation=conv.dilation)
    assert torch.allclose(ours, conv(x), atol=1e-6)


def test_set_last_lr_is_what_the_scheduler_reports():
    sgd = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=1.0)
    scheduler = LambdaLR(sgd, lambda step: 0.5)
    torch_compat.set_last_lr(scheduler, [0.25])
    assert scheduler.get_last_lr() == [0.25]


def test_drop_forward_pre_hooks_removes_only_the_unwanted():
    module = nn.Linear(2, 2)
    calls = []

    def keep(m, args):
        calls.append("keep")

    def drop(m, args, kwargs):
        calls.append("drop")

    module.register_forward_pre_hook(keep)
    module.register_forward_pre_hook(drop, with_kwargs=True)
    torch_compat.drop_forward_pre_hooks(module, lambda hook: hook is drop)
    module(torch.zeros(1, 2))
    assert calls == ["keep"]


def test_mkldnn_bf16_probe_answers():
    if torch.backends.mkldnn.is_available():
        assert isinstance(torch_compat.mkldnn_bf16_supported(), bool)
