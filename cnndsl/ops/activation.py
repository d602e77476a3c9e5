"""Activations: one entry each; none has parameters."""

from __future__ import annotations

from cnndsl.ops.base import ArgSpec, Op


def _act(name: str, doc: str, args=(), aliases=()) -> Op:
    return Op(name, doc, "activation", args=tuple(args), aliases=tuple(aliases))


ENTRIES = (
    _act("relu", "max(0, x)."),
    _act("relu6", "min(max(0, x), 6), as MobileNet uses."),
    _act("leakyrelu", "x if x > 0 else slope * x.",
         [ArgSpec("slope", "float", 0.01, aliases=("negative_slope", "alpha"), positional=True,
                  doc="PyTorch's default 0.01 (Keras uses 0.3)")]),
    _act("elu", "x if x > 0 else alpha * (exp(x) - 1).", [ArgSpec("alpha", "float", 1.0, positional=True)]),
    _act("gelu", "x * Phi(x)."),
    _act("silu", "x * sigmoid(x).", aliases=("swish",)),
    _act("sigmoid", "1 / (1 + exp(-x))."),
    _act("hardsigmoid", "relu6(x + 3) / 6."),
    _act("hardswish", "x * relu6(x + 3) / 6."),
    _act("tanh", "tanh(x)."),
    _act("softmax", "exp(x) / sum(exp(x)) over the channel axis. A network ending in softmax is trained "
         "on its logits."),
)

NAMES = tuple(op.name for op in ENTRIES) + tuple(a for op in ENTRIES for a in op.aliases)
