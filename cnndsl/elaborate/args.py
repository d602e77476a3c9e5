"""A layer's arguments evaluated and checked against its registry entry (the binding itself: binding.py)."""

from __future__ import annotations

from cnndsl.elaborate.binding import Slot, Slots, bind
from cnndsl.elaborate.expr import Env, describe, evaluate, undefined_hint
from cnndsl.errors import CnnError, Span, did_you_mean
from cnndsl.ops import ACTIVATIONS, REQUIRED, ArgSpec, Op, Symbol, lookup
from cnndsl.ops.base import pair
from cnndsl.ops.conv import ACTIVATION
from cnndsl.syntax import ast

# ---- layer arguments ----------------------------------------------------------------------------


_SLOTS: dict[str, tuple[Op, Slots]] = {}


def op_slots(op: Op) -> Slots:
    """The slots of a registry layer, made once per layer kind (callers do not change them)."""
    made = _SLOTS.get(op.name)
    if made is None or made[0] is not op:
        made = _SLOTS[op.name] = (op, Slots([Slot(a.name, a.aliases, a.positional, a.default is REQUIRED)
                                              for a in op.args]))
    return made[1]


def layer_args(op: Op, call: ast.Call, env: Env) -> dict[str, object]:
    """Evaluated and type-checked arguments of a built-in layer, defaults filled in."""
    given = bind(call, op_slots(op), f"`{op.name}`")
    values: dict[str, object] = {}
    for spec in op.args:
        arg = given.get(spec.name)
        if arg is None:
            values[spec.name] = spec.default
        else:
            values[spec.name] = coerce(evaluate(arg.value, env), spec, arg.value.span, op.name)
    return values


def coerce(value, spec: ArgSpec, span: Span, op: str):
    """The value in the form the registry expects, or an error naming the argument."""
    convert = _KINDS[spec.kind]
    out = convert(value, spec)
    if out is _BAD:
        shown = f"`{value}`" if isinstance(value, Symbol) else describe(value)
        raise CnnError(f"`{spec.name}` of {op} expects {_EXPECTS[spec.kind](spec)}, got {shown}", span,
                       _kind_hint(value, spec) or undefined_hint(value))
    _bounds(out, spec, span, op)
    return out


_BAD = object()


def _int(v, spec=None):
    if isinstance(v, bool):
        return _BAD
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return _BAD


def _float(v, spec=None):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return _BAD
    return float(v)


def _bool(v, spec=None):
    return v if isinstance(v, bool) else _BAD


def _ints(v, sizes: tuple[int, ...]):
    if isinstance(v, tuple):
        items = tuple(_int(x) for x in v)
        return items if len(items) in sizes and _BAD not in items else _BAD
    return _int(v)


def _paired(v, sizes: tuple[int, ...] = (2,)):
    """A size for both axes: `3` becomes (3, 3) here, once, so that the registry's entries see only tuples."""
    out = _ints(v, sizes)
    return out if out is _BAD else pair(out)


def _word(v) -> str | None:
    return v.name if isinstance(v, Symbol) else v if isinstance(v, str) else None


def _padding(v, spec=None):
    word = _word(v)
    if word is not None:
        return word if word in ("same", "valid") else _BAD
    return _paired(v)


def _choice(v, spec: ArgSpec):
    word = _word(v)
    return word if word in spec.choices else _BAD


def _activation(v, spec=None):
    word = _word(v)
    if word in ("none", "linear"):
        return "none"
    if word in ACTIVATIONS:
        return lookup(word).name
    return _BAD


def is_activation(value) -> bool:
    """Whether a value names an activation (or `none`), as `activation=` takes it."""
    return _activation(value) is not _BAD


def held_activation(call: ast.Call, value) -> str:
    """The activation (its registry name, or "none") that the statement `act` applies, where `act` is a
    variable; an error at the statement when the variable holds something else."""
    if call.args:
        raise CnnError(f"`{call.name}` applies the activation it holds and takes no arguments", call.args[0].span,
                       "to give an activation arguments, write the layer itself: `leakyrelu 0.2`")
    kind = _BAD if value is UNBOUND else _activation(value)
    if kind is _BAD:
        shown = "nothing yet" if value is UNBOUND else f"`{value}`" if isinstance(value, Symbol) else describe(value)
        hint = (_kind_hint(value, ACTIVATION) if isinstance(value, (Symbol, str))
                else "give it an activation: `act = relu`, `act = hardswish`, or `act = none` for none")
        raise CnnError(f"`{call.name}` is a variable holding {shown}, not an activation: a statement that names a "
                       "variable applies the activation it holds", call.span, hint)
    return kind


UNBOUND = object()  # a name bound somewhere in the definition (a `let` later on) but not here


_KINDS = {
    "int": _int,
    "float": _float,
    "bool": _bool,
    "pair": lambda v, spec: _paired(v) if v is not None else _BAD,
    "padding": _padding,
    "choice": _choice,
    "activation": _activation,
    "shape": lambda v, spec: _ints(v, tuple(range(1, 9))),
    "ints": lambda v, spec: _paired(v, (2, 4)),
}

_EXPECTS = {
    "int": lambda s: "an integer",
    "float": lambda s: "a number",
    "bool": lambda s: "true or false",
    "pair": lambda s: "an integer or a pair such as 3x3",
    "padding": lambda s: "`same`, `valid`, an integer or a pair",
    "choice": lambda s: "one of " + ", ".join(f"`{c}`" for c in s.choices),
    "activation": lambda s: "an activation such as `relu`",
    "shape": lambda s: "a size such as 3x224x224 or 784",
    "ints": lambda s: "an integer, a pair or four integers",
}


def _kind_hint(value, spec: ArgSpec) -> str | None:
    if spec.kind in ("int", "pair", "shape", "ints") and isinstance(value, float):
        return "round it: `round(x)`, `floor(x)`, or use `//` for integer division"
    word = _word(value)
    if word is not None and spec.kind == "activation":
        return did_you_mean(word, ACTIVATIONS) or "activations: " + ", ".join(sorted(set(ACTIVATIONS)))
    if word is not None and spec.kind in ("choice", "padding"):
        return did_you_mean(word, spec.choices or ("same", "valid"))
    return None


SIZE_LIMIT = 2**31  # PyTorch takes kernel sizes, strides, dilations and paddings as 32-bit integers


def _bounds(value, spec: ArgSpec, span: Span, op: str) -> None:
    for x in value if isinstance(value, tuple) else (value,):
        if not isinstance(x, (int, float)) or isinstance(x, bool):
            continue
        if spec.kind in ("pair", "ints", "padding") and abs(x) >= SIZE_LIMIT:
            raise CnnError(f"`{spec.name}` of {op} must be below {SIZE_LIMIT:,} (PyTorch's sizes are 32-bit), "
                           f"got {describe(x)}", span)
        if spec.low is not None and x < spec.low:
            raise CnnError(f"`{spec.name}` of {op} must be at least {spec.low:g}, got {describe(x)}", span)
        if spec.above is not None and x <= spec.above:
            raise CnnError(f"`{spec.name}` of {op} must be above {spec.above:g}, got {describe(x)}", span)
        if spec.high is not None and x >= spec.high:
            raise CnnError(f"`{spec.name}` of {op} must be below {spec.high:g}, got {describe(x)}", span)
