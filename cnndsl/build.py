"""Generated source → nn.Module. The only place where the compiler's output is executed.

It runs what the code generator wrote (after codegen.vet's check), and imports codegen, never the reverse.
"""

from __future__ import annotations

import inspect
import sys
import types

from cnndsl.codegen.naming import pyname
from cnndsl.codegen.vet import FORBIDDEN, vet
from cnndsl.ops.base import Symbol

__all__ = ["FORBIDDEN", "build_module", "initialize", "scores", "scores_module", "vet"]


def build_module(source: str, class_name: str, params: dict):
    """Runs the generated source as a module of its own and instantiates the network class.

    The source is what the code generator wrote from a checked spec, never the spec text itself.
    """
    vet(source)
    module = types.ModuleType(f"cnndsl_generated_{class_name.lower()}")
    module.__file__ = f"<cnndsl {class_name}>"
    sys.modules[module.__name__] = module  # so that torch.compile and pickling can find the classes
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    network = getattr(module, class_name)
    given = {pyname(k): _plain(v) for k, v in params.items()}  # `x` is the argument `x_`
    if list(inspect.signature(network).parameters) == list(given):  # by position: Python matches each keyword
        return network(*given.values())  # against the names one by one (40,000 parameters: 25 s, not 0.1)
    return network(**given)


def _plain(value):
    if isinstance(value, Symbol):
        return value.name
    return value


# ---- the built network at work: what to train on, and how its weights start ----------------------------


def scores(model):
    """What to train on: the network, or its scores before a final softmax (cross-entropy wants those)."""
    return model.logits if getattr(model, "ends_in_softmax", False) else model


def scores_module(model):
    """`scores(model)` as a module of its own (DistributedDataParallel wraps modules, not methods)."""
    if not getattr(model, "ends_in_softmax", False):
        return model
    import torch

    class Scores(torch.nn.Module):
        """The scores before a final softmax as a module's forward."""

        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model.logits(x)

    return Scores(model)


def initialize(model, initializer: str) -> None:
    """Starts the weights as `initializer` says: `pytorch` leaves each layer's default, `keras` is Keras'."""
    if initializer == "keras":
        keras_initialization(model)


def keras_initialization(model) -> None:
    """Glorot-uniform weights and zero biases for convolutions and dense layers: Keras' defaults."""
    import torch

    for module in model.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            torch.nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
