"""Merges of several inputs: add, multiply (with SE-style broadcast), concat (along channels)."""

from __future__ import annotations

from cnndsl.errors import ShapeError
from cnndsl.ops.base import Args, ArgSpec, CodeArgs, Op, Shape, Window, fmt_shape, keras
from cnndsl.ops.source import binop


def _name(a: Args, i: int) -> str:
    return a.labels[i] if i < len(a.labels) else f"input {i + 1}"


def _unequal(op: str, a: Args, ins: list[Shape], i: int) -> ShapeError:
    return ShapeError(
        f"{op} needs equal shapes: {_name(a, 0)} gives {fmt_shape(ins[0])}, "
        f"{_name(a, i)} gives {fmt_shape(ins[i])}"
    )


def _add_shape(a: Args, ins: list[Shape]) -> Shape:
    if a.values.get("partial"):
        return _partial_shape(a, ins)
    for i, shape in enumerate(ins[1:], 1):
        if shape != ins[0]:
            raise _unequal("add", a, ins, i)
    return ins[0]


def _partial_shape(a: Args, ins: list[Shape]) -> Shape:
    """ReXNet's residual: the second input is added to the first channels of the first, which it may not exceed."""
    if len(ins) != 2:
        raise ShapeError(f"add partial=true adds one input into the first channels of another: it takes two "
                         f"inputs, got {len(ins)}", hint="add the others first, or in a second `add`")
    wide, narrow = ins
    if len(wide) != len(narrow) or wide[1:] != narrow[1:] or narrow[0] > wide[0]:
        what = "the same HxW and no more channels" if len(wide) == 3 else "no more features"
        raise ShapeError(
            f"add partial=true needs {what} in {_name(a, 1)} than in {_name(a, 0)}: {_name(a, 0)} gives "
            f"{fmt_shape(wide)}, {_name(a, 1)} gives {fmt_shape(narrow)}",
            hint=f"{_name(a, 1)} is added to the first channels of {_name(a, 0)} (out[:, :c] += x): the wider "
                 "input comes first" if narrow[0] > wide[0] and wide[1:] == narrow[1:] else
                 "make the spatial sizes agree (equal strides, padding=same)")
    return wide


def _add_explain(a: Args, ins: list[Shape], out: Shape) -> list[str]:
    if not a.values.get("partial"):
        return ["no parameters"]
    c = ins[1][0]
    return [f"channels 0..{c - 1} of the first input ({out[0]} channels) plus the second ({c}); channels {c}.."
            f"{out[0] - 1} as they are: torch.cat([x[:, :{c}] + y, x[:, {c}:]], dim=1); params = 0"]


def _broadcasts(small: Shape, big: Shape) -> bool:
    """A per-channel gate (C or Cx1x1) scales every position of a CxHxW map."""
    return len(big) == 3 and small in ((big[0],), (big[0], 1, 1))


def _values(shape: Shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _multiply_shape(a: Args, ins: list[Shape]) -> Shape:
    """The map: the input with the most values (on whichever side); every other input equals it or is its
    per-channel gate (C or Cx1x1), first or later."""
    j = max(range(len(ins)), key=lambda k: (len(ins[k]), _values(ins[k])))
    out = ins[j]
    for i, shape in enumerate(ins):
        if shape != out and not _broadcasts(shape, out):
            raise ShapeError(
                f"multiply needs equal shapes or a per-channel gate: {_name(a, j)} gives {fmt_shape(out)}, "
                f"{_name(a, i)} gives {fmt_shape(shape)}",
                hint=(f"a gate for the {fmt_shape(out)} map of {_name(a, j)} has {out[0]} values ({out[0]} or "
                      f"{out[0]}x1x1), on either side: {_name(a, i)} has {shape[0]}" if len(out) == 3
                      else "multiply flat vectors of equal length"),
            )
    return out


def _concat_shape(a: Args, ins: list[Shape]) -> Shape:
    first = ins[0]
    for i, shape in enumerate(ins[1:], 1):
        if len(shape) != len(first) or shape[1:] != first[1:]:
            what = "the same HxW" if len(first) == 3 else "the same kind of shape"
            raise ShapeError(
                f"concat needs {what}: {_name(a, 0)} gives {fmt_shape(first)}, "
                f"{_name(a, i)} gives {fmt_shape(shape)}",
                hint="concat joins channels; make the spatial sizes agree (padding=same, equal strides)",
            )
    return (sum(s[0] for s in ins), *first[1:])


def _merge_window(a: Args, ins: list[Shape]) -> Window:
    return Window()


def _expression(name: str):
    """The forward's code: `torch.cat([a, b], dim=1)`, `a + b`, or `x * gate[:, :, None, None]` where a
    per-channel gate (rank 1) scales a map."""

    def expression(xs: list[str], ranks: list[int], values: dict | None = None) -> str:
        if name == "concat":
            return f"torch.cat([{', '.join(xs)}], dim=1)"
        if (values or {}).get("partial"):  # as timm's ReXNet: torch.cat([x[:, :c] + shortcut, x[:, c:]], dim=1)
            wide, narrow = xs
            c = f"{narrow}.shape[1]"
            return f"torch.cat([{wide}[:, :{c}] + {narrow}, {wide}[:, {c}:]], dim=1)"
        top = max(ranks)
        terms = [f"{x}[:, :, None, None]" if r == 1 and top == 3 else x for x, r in zip(xs, ranks)]
        return (" + " if name == "add" else " * ").join(terms)

    return expression


def _sym_shape(name: str):
    def shape(g: CodeArgs) -> tuple:
        if name == "concat":
            channels = g.ins[0][0]
            for s in g.ins[1:]:
                channels = binop("+", channels, s[0])
            return (channels, *g.ins[0][1:])
        return max(g.ins, key=len)

    return shape


def _label(name: str):
    def label(a: Args, ins: list[Shape]) -> str:
        return f"{name} of {len(ins)}" + (" (partial)" if a.values.get("partial") else "")

    return label


def _merge(name: str, doc: str, shape, rule: str, keras_name: str, args: tuple = (), explain=None) -> Op:
    return Op(name, doc, "merge", args=args, shape=shape, window=_merge_window, shape_rule=rule, label=_label(name),
              explain=explain, expression=_expression(name), sym_shape=_sym_shape(name), output_saved=False,
              foreign=(keras(keras_name, "axis" if name == "concat" else ""),))


PARTIAL = ArgSpec("partial", "bool", False, doc="add the second input to the first channels of the first, which "
                  "keeps its other channels (ReXNet): torch.cat([x[:, :c] + y, x[:, c:]], dim=1)")


ENTRIES = (
    _merge("add", "Element-wise sum of its inputs, in order (a residual connection); with partial=true, the "
           "second input added to the first channels of the first (ReXNet).", _add_shape,
           "the common shape (all inputs equal); partial: the first input's", "Add", (PARTIAL,), _add_explain),
    _merge("multiply", "Element-wise product; a C or Cx1x1 input scales each channel (squeeze-and-excitation).",
           _multiply_shape, "the largest input shape", "Multiply"),
    _merge("concat", "Concatenation along channels (torch.cat(dim=1), Keras Concatenate).", _concat_shape,
           "sum of channels x H x W", "Concatenate"),
)
