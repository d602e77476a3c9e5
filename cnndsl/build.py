"""Generated source → nn.Module. The only place where the compiler's output is executed."""

from __future__ import annotations

import ast
import sys
import types

from cnndsl.errors import CnnError
from cnndsl.ops.base import Symbol

# What generated code may import and which names it may never touch. User text reaches the source only
# through string literals (ops/source.literal); this second, independent check refuses to run any source
# that would do more than build modules, should a bug ever let text through.
_IMPORTS = {"math", "torch", "torch.nn.functional", "torch.nn"}
FORBIDDEN = {"eval", "exec", "compile", "open", "__import__", "getattr", "setattr", "delattr", "globals", "locals",
              "vars", "breakpoint", "input", "exit", "quit", "help", "memoryview", "__builtins__", "__loader__",
              "__spec__", "os", "sys", "subprocess", "builtins", "importlib"}
_DUNDERS = {"__init__", "__name__"}


def vet(source: str) -> None:
    """Refuses generated source that imports anything but torch and math, or reaches for the host."""
    for node in ast.walk(ast.parse(source)):
        bad = None
        if isinstance(node, ast.Import):
            bad = next((a.name for a in node.names if a.name not in _IMPORTS), None)
        elif isinstance(node, ast.ImportFrom):
            bad = None if node.module in _IMPORTS else f"from {node.module}"
        elif isinstance(node, ast.Name) and (node.id in FORBIDDEN or _dunder(node.id)):
            bad = node.id
        elif isinstance(node, ast.Attribute) and _dunder(node.attr):
            bad = node.attr
        if bad is not None:
            raise CnnError(f"refusing to run the generated code: it uses `{bad}` (line {node.lineno})",
                           hint="this is a bug in cnndsl, not in your spec; please report it with the spec")


def _dunder(name: str) -> bool:
    return name.startswith("__") and name not in _DUNDERS


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
    from cnndsl.codegen.generator import pyname

    return network(**{pyname(k): _plain(v) for k, v in params.items()})  # `x` is the argument `x_`


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
