"""Flat layers and plumbing: dense, flatten, reshape, dropout."""

from __future__ import annotations

from cnndsl.errors import ShapeError
from cnndsl.ops.base import (
    Args,
    ArgSpec,
    CodeArgs,
    Op,
    Shape,
    Window,
    channels_first,
    fmt_int,
    fmt_shape,
    keras,
    need_flat,
    prod,
    pytorch,
)
from cnndsl.ops.conv import ACTIVATION, BIAS
from cnndsl.ops.source import product
from cnndsl.ops.torchsrc import ctor


def _dense_shape(a: Args, ins: list[Shape]) -> Shape:
    if len(ins[0]) == 2:  # L x D tokens: the same layer on every token (a transformer's MLP)
        return (ins[0][0], a.units)
    if a.per_position and len(ins[0]) == 3:
        return (a.units, *ins[0][1:])
    try:
        need_flat("dense", ins[0])
    except ShapeError as e:  # a missing flatten stays an error: a map is per position only when asked
        raise ShapeError(e.message, hint=f"{e.hint}; or `dense {a.units} per_position=true` for a Linear on the "
                         "channels at each position (ConvNeXt's nn.Linear, Keras' Dense on a map)") from None
    return (a.units,)


def _features(ins: list[Shape]) -> int:
    """What the one Linear reads: a flat input's values, a token's D (its last axis), a map's C (its first)."""
    return ins[0][-1] if len(ins[0]) == 2 else ins[0][0]


def _positions(ins: list[Shape]) -> int:
    """Where it is applied: once on a flat input, on each of L tokens, at each of a map's H x W positions."""
    return ins[0][0] if len(ins[0]) == 2 else prod(ins[0][1:]) if len(ins[0]) == 3 else 1


def _dense_params(a: Args, ins: list[Shape]) -> int:
    return _features(ins) * a.units + (a.units if a.bias else 0)


def _dense_macs(a: Args, ins: list[Shape], out: Shape = ()) -> int:
    return _positions(ins) * _features(ins) * a.units


def _dense_explain(a: Args, ins: list[Shape], out: Shape) -> list[str]:
    bias = " + 1" if a.bias else ""
    c, macs = _features(ins), fmt_int(_dense_macs(a, ins))
    lines = [f"params = ({c}{bias}) * {a.units} = {fmt_int(_dense_params(a, ins))}"]
    if len(ins[0]) == 3:
        _, h, w = ins[0]
        lines.insert(0, f"one Linear over the {c} channels, applied at each of the {h}x{w} positions")
        return [*lines, f"MACs = {h}x{w} positions * {c} * {a.units} = {macs}"]
    where = f" * {ins[0][0]} tokens" if len(ins[0]) == 2 else ""
    return [*lines, f"MACs = {c} * {a.units}{where} = {macs}"]


def _dense_torch(g: CodeArgs) -> str:
    # on a map, torchvision's CNBlock form: channels last, nn.Linear, channels first (bit-identical with it)
    kind = "Linear2d" if len(g.x) == 3 and not g.channels_last else "nn.Linear"
    return ctor(kind, g.x[-1] if len(g.x) == 2 else g.x[0], g.units, bias=None if g.bias is True else g.bias)


def _dense_sym_shape(g: CodeArgs) -> tuple:
    return (g.x[0], g.units) if len(g.x) == 2 else (g.units, *g.x[1:]) if len(g.x) == 3 else (g.units,)


DENSE = Op(
    "dense",
    "Fully connected layer (nn.Linear, Keras Dense). Needs a flat input, or L x D tokens (then the same layer on "
    "every token, D → units features), or with per_position=true a CxHxW map (then one Linear over the channels "
    "at every position: ConvNeXt's nn.Linear, Keras' Dense on a map).",
    "dense",
    args=(ArgSpec("units", "int", aliases=("out_features", "features"), positional=True, low=1,
                  doc="number of outputs"), BIAS, ACTIVATION,
          ArgSpec("per_position", "bool", False,
                  doc="on a map: the same Linear over the channels at each position (units x H x W out)")),
    shape=_dense_shape,
    params=_dense_params,
    macs=_dense_macs,
    label=lambda a, ins: f"dense {_features(ins)} → {a.units}" + (" per position" if len(ins[0]) == 3 else ""),
    explain=_dense_explain,
    torch=_dense_torch,
    output_saved=False,
    sym_shape=_dense_sym_shape,
    aliases=("linear", "fc"),
    foreign=(keras("Dense", "units activation use_bias"), pytorch("Linear", "in_features out_features bias")),
    shape_rule="units (input must be flat); L x units on L x D tokens; units x H x W with per_position=true on a map",
)


def _flatten_window(a: Args, ins: list[Shape]) -> Window:
    # a unit of the next dense layer sees every position of the map
    if len(ins[0]) == 3:
        _, h, w = ins[0]
        return Window(h, w)
    return Window()


FLATTEN = Op(
    "flatten",
    "Flattens CxHxW into one vector of C*H*W values (nn.Flatten, Keras Flatten).",
    "shape",
    shape=lambda a, ins: (prod(ins[0]),),
    window=_flatten_window,
    explain=lambda a, ins, out: [f"{' * '.join(map(str, ins[0]))} = {fmt_int(out[0])} values"],
    torch=lambda g: "nn.Flatten()",
    sym_shape=lambda g: (product(g.x),),
    shape_rule="C*H*W",
    foreign=(keras("Flatten", "data_format"), pytorch("Flatten", "start_dim end_dim")),
)


def _reshape_torch(g: CodeArgs) -> str:
    return ctor("Reshape", *(g.shape if isinstance(g.shape, tuple) else (g.shape,)))


def _reshape_shape(a: Args, ins: list[Shape]) -> Shape:
    target = a.shape if isinstance(a.shape, tuple) else (a.shape,)
    if prod(target) != prod(ins[0]):
        raise ShapeError(
            f"reshape to {fmt_shape(target)} ({prod(target):,} values) from {fmt_shape(ins[0])} "
            f"({prod(ins[0]):,} values)",
            hint="a reshape keeps the number of values",
        )
    if len(target) not in (1, 3):
        raise ShapeError(f"reshape needs CxHxW or a feature count, got {fmt_shape(target)}")
    return target


RESHAPE = Op(
    "reshape",
    "Reshapes to CxHxW or to a flat size with the same number of values (Keras Reshape).",
    "shape",
    args=(ArgSpec("shape", "shape", positional=True, aliases=("target_shape",), rank=True, doc="`1x28x28` or `784`"),),
    shape=_reshape_shape,
    label=lambda a, ins: f"reshape → {fmt_shape(a.shape if isinstance(a.shape, tuple) else (a.shape,))}",
    torch=_reshape_torch,
    sym_shape=lambda g: g.shape if isinstance(g.shape, tuple) else (g.shape,),
    shape_rule="the given shape (same number of values)",
    foreign=(keras("Reshape", "target_shape", convert=(("shape", channels_first),)),),
)

DROPOUT = Op(
    "dropout",
    "Zeroes a random fraction of values while training (nn.Dropout, Keras Dropout).",
    "regularisation",
    args=(ArgSpec("rate", "float", 0.5, aliases=("p",), positional=True, low=0.0, high=1.0,
                  doc="fraction dropped, 0 <= rate < 1"),),
    label=lambda a, ins: f"dropout {a.rate:g}",
    torch=lambda g: ctor("nn.Dropout", g.rate),
    foreign=(keras("Dropout", "rate noise_shape seed"), pytorch("Dropout", "p inplace")),
)

ENTRIES = (DENSE, FLATTEN, RESHAPE, DROPOUT)
