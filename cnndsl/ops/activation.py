"""Activations: one entry each; none has parameters."""

from __future__ import annotations

from cnndsl.ops.base import ArgSpec, Op, keras, pytorch
from cnndsl.ops.torchsrc import ctor


def _act(name: str, doc: str, args=(), aliases=(), module: str = "", extra: dict | None = None,
         torch_params: str = "inplace", keras_params: str | None = None, summary: str = "Activation",
         **keras_differences) -> Op:
    """An activation entry; `module` is its torch.nn class, built with its arguments in order, and `keras_params`
    the positional parameters of the Keras layer of the same class name, where Keras has one. `check --keras` shows it
    as Keras' `Activation` (the books write `Activation("relu")`), LeakyReLU as its own class."""
    names = [a.name for a in args]
    foreign = (pytorch(module, torch_params),)
    if keras_params is not None:
        foreign += (keras(module, keras_params, **keras_differences),)
    return Op(name, doc, "activation", args=tuple(args), aliases=tuple(aliases),
              torch=lambda g: ctor(f"nn.{module}", *(g.values[n] for n in names), **(extra or {})), foreign=foreign,
              keras=summary)


ENTRIES = (
    _act("relu", "max(0, x).", module="ReLU", keras_params="max_value negative_slope threshold"),
    _act("relu6", "min(max(0, x), 6), as MobileNet uses.", module="ReLU6"),
    _act("leakyrelu", "x if x > 0 else slope * x.",
         [ArgSpec("slope", "float", 0.01, aliases=("negative_slope", "alpha"), positional=True,
                  doc="PyTorch's default 0.01 (Keras uses 0.3)")], module="LeakyReLU",
         torch_params="negative_slope inplace", keras_params="negative_slope", defaults=(("slope", 0.3),), summary=""),
    _act("elu", "x if x > 0 else alpha * (exp(x) - 1).", [ArgSpec("alpha", "float", 1.0, positional=True)],
         module="ELU", torch_params="alpha inplace", keras_params="alpha"),
    _act("gelu", "x * Phi(x).", module="GELU", torch_params="approximate"),
    _act("silu", "x * sigmoid(x).", aliases=("swish",), module="SiLU"),
    _act("sigmoid", "1 / (1 + exp(-x)).", module="Sigmoid", torch_params=""),
    _act("hardsigmoid", "relu6(x + 3) / 6.", module="Hardsigmoid"),
    _act("hardswish", "x * relu6(x + 3) / 6.", module="Hardswish"),
    _act("tanh", "tanh(x).", module="Tanh", torch_params=""),
    _act("softmax", "exp(x) / sum(exp(x)) over the channel axis. A network ending in softmax is trained "
         "on its logits.", module="Softmax", extra={"dim": 1}, torch_params="dim", keras_params="axis"),
)

NAMES = tuple(op.name for op in ENTRIES) + tuple(a for op in ENTRIES for a in op.aliases)
