"""Evaluates spec expressions. Pure arithmetic on plain values: nothing in a spec runs host code."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from cnndsl import limits
from cnndsl.elaborate.binding import Slot, bind
from cnndsl.errors import CnnError, did_you_mean
from cnndsl.limits import DEPTH, NUMBER
from cnndsl.ops.base import Shape, Symbol, prod
from cnndsl.syntax import ast


@dataclass
class Work:
    """The work an analysis may do: statements run, repeat iterations and function calls. One elaboration
    shares one, so that calls that expand to nothing (a block calling the one below four times, a function
    calling the one below twice, 40 levels deep) end in a located error within seconds, not in hours."""

    total: int = limits.WORK * limits.LAYERS
    done: int = 0

    def spend(self, span, amount: int = 1) -> None:
        self.done += amount
        if self.done > self.total:
            raise CnnError(f"elaborating this network takes more than {self.total:,} steps (statements run, "
                           "repeat iterations and function calls)", span,
                           "blocks, repeats or functions here expand to a great deal of work (calls that each "
                           "make several calls of the level below grow exponentially); raise the limit with "
                           "--max-layers if this is meant")


@dataclass
class Env:
    """What an expression can see: variables, `in` (the shape entering the enclosing block), the
    functions the program defines (`def`), with the chain of those being called, and the work left."""

    vars: dict[str, object]
    in_shape: Shape | None = None
    functions: Mapping[str, ast.Definition] = field(default_factory=dict)
    calls: tuple[str, ...] = ()
    work: Work = field(default_factory=Work)


def functions_of(program) -> dict[str, ast.Definition]:
    """The functions (`def`) of a program, by name."""
    return {d.name: d for d in program.definitions.values() if d.kind == "function"}


def describe(value) -> str:
    """A value as the user wrote it: 3x3, true, "text", same."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return "x".join(map(str, value))
        return "(" + ", ".join(describe(v) for v in value) + ")"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _shown(value) -> str:
    return f"the name `{value}`" if isinstance(value, Symbol) else describe(value)


def evaluate(e: ast.Expr, env: Env):
    """The value of an expression; a CnnError at the expression's span when it has none."""
    if isinstance(e, ast.Const):
        return e.value
    if isinstance(e, ast.Name):
        if e.id in env.vars:
            return env.vars[e.id]
        return Symbol(e.id, tuple(env.vars))
    if isinstance(e, ast.InAttr):
        return _in_attr(e, env)
    if isinstance(e, ast.TupleExpr):
        return tuple(evaluate(item, env) for item in e.items)
    if isinstance(e, ast.Unary):
        return _unary(e, env)
    if isinstance(e, ast.BinOp):
        return _binop(e, env)
    if isinstance(e, ast.Func):
        return _func(e, env)
    if isinstance(e, ast.Cond):
        return evaluate(e.then if _boolean(evaluate(e.cond, env), e.cond, "`if`") else e.orelse, env)
    if isinstance(e, ast.Missing):
        raise CnnError("a value is missing here", e.span)
    raise AssertionError(e)


def _in_attr(e: ast.InAttr, env: Env):
    shape = env.in_shape
    if shape is None:
        raise CnnError("`in` has no shape here: nothing has entered the network yet", e.span,
                       "`in` is the shape entering the enclosing block; use it after `input`")
    if e.attr == "channels":
        return shape[-1] if len(shape) == 2 else shape[0]  # L x D tokens: their D features
    if e.attr in ("height", "width"):
        if len(shape) != 3:
            raise CnnError(f"`in` is a flat vector of {shape[0]:,} values; it has no {e.attr}", e.span)
        return shape[1] if e.attr == "height" else shape[2]
    if e.attr in ("features", "size"):
        return prod(shape)
    hint = did_you_mean(e.attr, ["channels", "height", "width", "features"]) or \
        "`in` has channels, height, width and features"
    raise CnnError(f"`in` has no `{e.attr}`", e.span, hint)


def _number(value, e: ast.Expr, what: str):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CnnError(f"{what} needs numbers, got {_shown(value)}", e.span,
                       undefined_hint(value))
    return value


def _boolean(value, e: ast.Expr, what: str) -> bool:
    if not isinstance(value, bool):
        raise CnnError(f"{what} needs true or false, got {_shown(value)}", e.span,
                       undefined_hint(value) or "compare values to get a boolean: `stride != 1`")
    return value


def undefined_hint(value) -> str | None:
    if isinstance(value, Symbol):
        close = did_you_mean(value.name, value.known)
        return f"`{value}` is not defined; {close}" if close else f"`{value}` is not a parameter or variable here"
    return None


def _unary(e: ast.Unary, env: Env):
    value = evaluate(e.operand, env)
    if e.op == "not":
        return not _boolean(value, e.operand, "`not`")
    return -_number(value, e.operand, "`-`")


def _checked(value, e: ast.Expr):
    if isinstance(value, complex):
        raise CnnError("this has no real value (a negative number to a fractional power)", e.span)
    if isinstance(value, float) and not abs(value) <= NUMBER:  # inf and nan too
        raise CnnError(f"this number is too large (over {NUMBER:,})", e.span)
    if isinstance(value, int) and abs(value) > NUMBER:
        raise CnnError(f"this number is too large (over {NUMBER:,})", e.span)
    return value


def _binop(e: ast.BinOp, env: Env):
    op = e.op
    if op in ("and", "or"):
        left = _boolean(evaluate(e.left, env), e.left, f"`{op}`")
        if (op == "and" and not left) or (op == "or" and left):
            return left
        return _boolean(evaluate(e.right, env), e.right, f"`{op}`")
    a, b = evaluate(e.left, env), evaluate(e.right, env)
    if op in ("==", "!="):
        same = _key(a) == _key(b)
        return same if op == "==" else not same
    a, b = _number(a, e.left, f"`{op}`"), _number(b, e.right, f"`{op}`")
    if op in ("<", "<=", ">", ">="):
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    if op in ("/", "//", "%") and b == 0:
        raise CnnError("division by zero", e.right.span)
    if op == "**":
        if a == 0 and b < 0:
            raise CnnError("zero to a negative power is a division by zero", e.span)
        if abs(b) > 64 and abs(a) > 1:
            raise CnnError("this power is too large", e.span)
        if isinstance(a, int) and isinstance(b, int) and b < 0:
            a = float(a)  # 2 ** -1 is 0.5, as in Python
    fn = {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b,
          "//": lambda: a // b, "%": lambda: a % b, "**": lambda: a**b}[op]
    try:
        return _checked(fn(), e)
    except (OverflowError, ZeroDivisionError):
        raise CnnError("this number is too large", e.span) from None


def _key(value):
    """Symbols compare equal to the string of the same name: `padding == same`, `mode == "same"`."""
    return value.name if isinstance(value, Symbol) else value


BUILTINS = ("min", "max", "floor", "ceil", "round", "abs")


def _func(e: ast.Func, env: Env):
    if e.name not in BUILTINS:
        return _call(e, env)
    if e.keywords:
        raise CnnError(f"{e.name}() takes no named values", e.keywords[0].span, "give the values in order")
    args = [_number(evaluate(a, env), a, f"{e.name}()") for a in e.args]
    if e.name in ("min", "max"):  # one value is its own minimum, as the generated code writes it
        if not args:
            raise CnnError(f"{e.name}() needs at least one value", e.span)
        return min(args) if e.name == "min" else max(args)
    if len(args) != 1:
        raise CnnError(f"{e.name}() takes one value, got {len(args)}", e.span)
    x = args[0]
    try:
        if e.name == "abs":
            return abs(x)
        return _checked({"floor": math.floor, "ceil": math.ceil, "round": round}[e.name](x), e)
    except (OverflowError, ValueError):
        raise CnnError("this number is too large", e.span) from None


def _call(e: ast.Func, env: Env):
    """A function the program defines: its parameters bound as a block's are, its `let`s in order, then the value
    of its `return`, which must be a number. validate.py refuses recursion; the chain is checked here too."""
    d = env.functions.get(e.name)
    if d is None:
        raise CnnError(f"unknown function `{e.name}`", e.span,
                       did_you_mean(e.name, [*BUILTINS, *env.functions]) or
                       f"the built-in functions are {', '.join(BUILTINS)}; `def` defines others")
    if e.name in env.calls or len(env.calls) >= DEPTH:
        cycle = " → ".join([*env.calls[env.calls.index(e.name):], e.name]) if e.name in env.calls else None
        raise CnnError(f"function `{e.name}` calls itself ({cycle})" if cycle else
                       f"functions call each other more than {DEPTH} deep here", e.span)
    env.work.spend(e.span, 1 + len(d.body))
    call = ast.Call(e.name, [*(ast.Arg(None, a, a.span) for a in e.args), *e.keywords], e.span)
    given = bind(call, [Slot(p.name, required=p.default is None) for p in d.params], f"function `{e.name}`")
    inner = Env({}, None, env.functions, (*env.calls, e.name), env.work)
    try:
        for p in d.params:  # a default may use earlier parameters
            arg = given.get(p.name)
            inner.vars[p.name] = evaluate(arg.value, env) if arg else evaluate(p.default, inner)
        result = None
        for s in d.body:
            if isinstance(s, ast.Let):
                inner.vars[s.name] = evaluate(s.value, inner)
            else:
                result = evaluate(s.value, inner)
    except CnnError as error:
        raise error.note(f"in function `{e.name}` called here", e.span) from None
    if isinstance(result, bool) or not isinstance(result, (int, float)):
        raise CnnError(f"function `{e.name}` gives {_shown(result)}, not a number", e.span,
                       undefined_hint(result) or "a function computes a number")
    return result
