"""Merges of several inputs: add, multiply (with SE-style broadcast), concat (along channels)."""

from __future__ import annotations

from cnndsl.errors import ShapeError
from cnndsl.ops.base import Args, CodeArgs, Op, Shape, Window, fmt_shape
from cnndsl.ops.source import binop


def _name(a: Args, i: int) -> str:
    return a.labels[i] if i < len(a.labels) else f"input {i + 1}"


def _unequal(op: str, a: Args, ins: list[Shape], i: int) -> ShapeError:
    return ShapeError(
        f"{op} needs equal shapes: {_name(a, 0)} gives {fmt_shape(ins[0])}, "
        f"{_name(a, i)} gives {fmt_shape(ins[i])}"
    )


def _add_shape(a: Args, ins: list[Shape]) -> Shape:
    for i, shape in enumerate(ins[1:], 1):
        if shape != ins[0]:
            raise _unequal("add", a, ins, i)
    return ins[0]


def _broadcasts(small: Shape, big: Shape) -> bool:
    """A per-channel gate (C or Cx1x1) scales every position of a CxHxW map."""
    return len(big) == 3 and small in ((big[0],), (big[0], 1, 1))


def _multiply_shape(a: Args, ins: list[Shape]) -> Shape:
    out = max(ins, key=len)
    for i, shape in enumerate(ins):
        if shape != out and not _broadcasts(shape, out):
            j = ins.index(out)
            raise ShapeError(
                f"multiply needs equal shapes or a per-channel gate: {_name(a, j)} gives {fmt_shape(out)}, "
                f"{_name(a, i)} gives {fmt_shape(shape)}",
                hint=f"a gate for {fmt_shape(out)} has {out[0]} values (C or Cx1x1)" if len(out) == 3 else None,
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

    def expression(xs: list[str], ranks: list[int]) -> str:
        if name == "concat":
            return f"torch.cat([{', '.join(xs)}], dim=1)"
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


def _merge(name: str, doc: str, shape, rule: str) -> Op:
    return Op(name, doc, "merge", shape=shape, window=_merge_window, shape_rule=rule,
              label=lambda a, ins: f"{name} of {len(ins)}", expression=_expression(name), sym_shape=_sym_shape(name),
              output_saved=False, keras={"add": "Add", "multiply": "Multiply", "concat": "Concatenate"}[name])


ENTRIES = (
    _merge("add", "Element-wise sum of its inputs (a residual connection).", _add_shape,
           "the common shape (all inputs equal)"),
    _merge("multiply", "Element-wise product; a C or Cx1x1 input scales each channel (squeeze-and-excitation).",
           _multiply_shape, "the largest input shape"),
    _merge("concat", "Concatenation along channels (torch.cat(dim=1), Keras Concatenate).", _concat_shape,
           "sum of channels x H x W"),
)
