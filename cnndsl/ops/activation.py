"""Activations: one entry each; none has parameters."""

from __future__ import annotations

from cnndsl.ops.base import ArgSpec, Op
from cnndsl.ops.torchsrc import ctor


def _act(name: str, doc: str, args=(), aliases=(), module: str = "", extra: dict | None = None,
         keras: str = "Activation") -> Op:
    """An activation entry; `module` is its torch.nn class, built with its arguments in order. As a layer of its
    own, Keras writes most activations `Activation("relu")`, as the books do; its LeakyReLU takes the slope."""
    names = [a.name for a in args]
    return Op(name, doc, "activation", args=tuple(args), aliases=tuple(aliases),
              torch=lambda g: ctor(f"nn.{module}", *(g.values[n] for n in names), **(extra or {})), keras=keras)


ENTRIES = (
    _act("relu", "max(0, x).", module="ReLU"),
    _act("relu6", "min(max(0, x), 6), as MobileNet uses.", module="ReLU6"),
    _act("leakyrelu", "x if x > 0 else slope * x.",
         [ArgSpec("slope", "float", 0.01, aliases=("negative_slope", "alpha"), positional=True,
                  doc="PyTorch's default 0.01 (Keras uses 0.3)")], module="LeakyReLU", keras="LeakyReLU"),
    _act("elu", "x if x > 0 else alpha * (exp(x) - 1).", [ArgSpec("alpha", "float", 1.0, positional=True)],
         module="ELU"),
    _act("gelu", "x * Phi(x).", module="GELU"),
    _act("silu", "x * sigmoid(x).", aliases=("swish",), module="SiLU"),
    _act("sigmoid", "1 / (1 + exp(-x)).", module="Sigmoid"),
    _act("hardsigmoid", "relu6(x + 3) / 6.", module="Hardsigmoid"),
    _act("hardswish", "x * relu6(x + 3) / 6.", module="Hardswish"),
    _act("tanh", "tanh(x).", module="Tanh"),
    _act("softmax", "exp(x) / sum(exp(x)) over the channel axis. A network ending in softmax is trained "
         "on its logits.", module="Softmax", extra={"dim": 1}),
)

NAMES = tuple(op.name for op in ENTRIES) + tuple(a for op in ENTRIES for a in op.aliases)
