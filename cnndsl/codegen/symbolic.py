"""Spec expressions as the code generator sees them: folded when known, else Python source.

A block's class takes its parameters at construction, so `filters * 4` stays source text, while
`3 * 4` folds to 12. Python source is produced from the spec's syntax tree, never evaluated.
"""

from __future__ import annotations

import math

from cnndsl.codegen.naming import pyname
from cnndsl.ops.base import Symbol
from cnndsl.ops.source import Src, binop, call, is_real, product, py, unary
from cnndsl.syntax import ast
from cnndsl.syntax.ast import PRECEDENCE

# Where `names` (spec variables → values) also says which of the spec's functions give whole numbers: a key
# no spec name can be. A call of one is then an int, not a float to pass through int() or whole().
WHOLE = object()

_FUNCS = {"min": ("min", min), "max": ("max", max), "abs": ("abs", abs), "floor": ("math.floor", math.floor),
          "ceil": ("math.ceil", math.ceil), "round": ("round", round)}


def evaluate(e: ast.Expr, names: dict, in_shape: tuple):
    """The value of an expression, or its Python source where it depends on constructor arguments."""
    if isinstance(e, ast.Const):
        return e.value
    if isinstance(e, ast.Name):
        return names.get(e.id, Symbol(e.id))
    if isinstance(e, ast.InAttr):
        return in_attr(e.attr, in_shape)
    if isinstance(e, ast.TupleExpr):
        return tuple(evaluate(x, names, in_shape) for x in e.items)
    if isinstance(e, ast.Unary):
        return unary(e.op, evaluate(e.operand, names, in_shape))
    if isinstance(e, ast.BinOp):
        left = evaluate(e.left, names, in_shape)
        if e.op in ("and", "or") and isinstance(left, bool):  # as check does: the right side may not
            return left if left == (e.op == "or") else evaluate(e.right, names, in_shape)  # even mean anything
        return binop(e.op, left, evaluate(e.right, names, in_shape))
    if isinstance(e, ast.Cond):
        return _cond(e, names, in_shape)
    if isinstance(e, ast.Func) and e.name not in _FUNCS:  # a function of the spec's: codegen/functions.py writes it
        args = [py(evaluate(a, names, in_shape)) for a in e.args]
        args += [f"{pyname(k.name)}={py(evaluate(k.value, names, in_shape))}" for k in e.keywords]
        return Src(f"{pyname(e.name)}({', '.join(args)})", real=not _whole_call(e, names, in_shape), word=False)
    if isinstance(e, ast.Func):
        name, fn = _FUNCS[e.name]
        args = [evaluate(a, names, in_shape) for a in e.args]
        if e.name in ("min", "max") and len(args) == 1:  # Python's min(x) wants an iterable
            return args[0]
        return call(name, *args, numeric=fn)
    raise AssertionError(e)


def _whole_call(e: ast.Func, names: dict, in_shape: tuple) -> bool:
    """Whether a call of a spec's function gives a whole number: it does for whole numbers (functions.whole)
    and these arguments are."""
    params, needed = names.get(WHOLE, {}).get(e.name, (None, None))
    if params is None:
        return False
    given = dict(zip(params, e.args)) | {k.name: k.value for k in e.keywords}
    return not any(is_real(evaluate(given[p], names, in_shape)) for p in needed if p in given)


def _cond(e: ast.Cond, names: dict, in_shape: tuple):
    """`a if c else b`: the arm taken where the condition is known, else Python's own conditional expression."""
    cond = evaluate(e.cond, names, in_shape)
    if isinstance(cond, bool):
        return evaluate(e.then if cond else e.orelse, names, in_shape)
    then, orelse = evaluate(e.then, names, in_shape), evaluate(e.orelse, names, in_shape)
    text = f"{py(then, PRECEDENCE['or'])} if {py(cond, PRECEDENCE['or'])} else {py(orelse, PRECEDENCE['if'])}"
    return Src(text, PRECEDENCE["if"], is_real(then) or is_real(orelse), word=False)


def in_attr(attr: str, shape: tuple):
    if attr == "channels":
        return shape[-1] if len(shape) == 2 else shape[0]  # L x D tokens: D
    if attr == "height":
        return shape[1]
    if attr == "width":
        return shape[2]
    return product(shape)
