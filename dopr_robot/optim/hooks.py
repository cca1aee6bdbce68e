"""DoPr's forward pre-hooks: one per preconditioned layer, feeding the layer's inputs to the
optimizer, and what becomes of them when the model or the optimizer is copied or pickled.

A hook holds its optimizer weakly (a model must not keep an optimizer alive) and deep-copies to
itself: a copy of the model alone (an EMA model, say) shares the hook, which ignores any module
other than the one it was registered on, so the copy never feeds the optimizer. A pickled model
carries no optimizer: its hooks unpickle detached and feed nothing. An optimizer copied or
pickled together with its model (`copy.deepcopy((model, opt))`: the memo maps the model's modules
to the copy's) hooks the copy's modules itself, after dropping the inert hooks the copy brought
along, so a copied pair has one live hook per layer, like the original.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from ..torch_compat import drop_forward_pre_hooks
from .layers import LayerAdapter

if TYPE_CHECKING:
    from .dopr import DoPr


def _no_optimizer() -> None:
    return None


class StatisticHook:
    """Forward pre-hook handing one layer's training-mode inputs to `optimizer._record`."""

    def __init__(self, optimizer: DoPr, layer: LayerAdapter) -> None:
        self._optimizer = weakref.ref(optimizer)
        self._layer = layer

    def __call__(self, module: nn.Module, args: tuple) -> None:
        optimizer = self._optimizer()
        if optimizer is None or module is not self._layer.module:
            return
        if not module.training or not torch.is_grad_enabled() or not args:
            return
        optimizer._record(self._layer, args[0])

    @property
    def optimizer(self) -> DoPr | None:
        """The optimizer this hook feeds, or None once it is gone (or the hook was unpickled)."""
        return self._optimizer()

    def inert_on(self, module: nn.Module) -> bool:
        """Whether this hook can never feed an optimizer from `module`'s forwards."""
        return self._optimizer() is None or self._layer.module is not module

    def __deepcopy__(self, memo: dict) -> StatisticHook:
        return self

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self._optimizer = _no_optimizer
        self._layer = None


def attach(optimizer: DoPr, layer: LayerAdapter) -> RemovableHandle:
    """Hook the layer's module so that its forwards feed `optimizer`."""
    return layer.module.register_forward_pre_hook(StatisticHook(optimizer, layer))


def drop_inert(module: nn.Module) -> None:
    """Remove from `module` the DoPr hooks that can feed nothing there (a copy's inheritance)."""
    drop_forward_pre_hooks(
        module, lambda hook: isinstance(hook, StatisticHook) and hook.inert_on(module)
    )
