"""The checks of functions (`def`) and of the calls in expressions, for validate.py: a call names a function and
binds its values; a function names no `in`, is not named like a built-in function or a variable, and does not
call itself, directly or through others; and an expression, with the functions it calls, stays shallow enough
to evaluate. Each raises a located CnnError."""

from __future__ import annotations

from cnndsl import limits
from cnndsl.elaborate.binding import Slot, bind
from cnndsl.elaborate.expr import BUILTINS
from cnndsl.errors import CnnError, did_you_mean
from cnndsl.syntax import ast

CALL_DEPTH = 2 * limits.EXPRESSION  # levels of operators in an expression, those of the functions it calls included


def calls_in(e: ast.Expr | None):
    """Every call in an expression."""
    return (node for node in ast.walk(e) if isinstance(node, ast.Func))


def expressions_of(s) -> list[ast.Expr]:
    """The expressions a statement holds itself (not those of the statements nested in it)."""
    if isinstance(s, ast.Call):
        return [a.value for a in s.args]
    if isinstance(s, (ast.Let, ast.Return)):
        return [s.value]
    if isinstance(s, ast.Repeat):
        return [e for e in (s.start, s.stop) if e is not None]
    if isinstance(s, ast.If):
        return [arm.cond for arm in s.arms]
    if isinstance(s, ast.Residual):
        return [a.value for a in s.args] + ([s.shortcut_if] if s.shortcut_if is not None else [])
    if isinstance(s, (ast.Merge, ast.MergeWith)):
        return [a.value for a in s.args]
    return []


def check_call(f: ast.Func, definitions: dict[str, ast.Definition], on_function=None) -> ast.Definition | None:
    """A call's function exists and takes the values given; the function, or None for a built-in. A function
    that exists is returned even when the values do not bind: `on_function` sees it first (to check it too)."""
    if f.name in BUILTINS:
        if f.keywords:
            raise CnnError(f"{f.name}() takes no named values", f.keywords[0].span, "give the values in order")
        if f.name in ("min", "max") and not f.args:
            raise CnnError(f"{f.name}() needs at least one value", f.span)
        if f.name not in ("min", "max") and len(f.args) != 1:
            raise CnnError(f"{f.name}() takes one value, got {len(f.args)}", f.span)
        return None
    d = definitions.get(f.name)
    if d is None or d.kind != "function":
        functions = [x.name for x in definitions.values() if x.kind == "function"]
        if d is not None:
            raise CnnError(f"`{f.name}` is a {d.kind}, not a function: it cannot be called in an expression", f.span,
                           f"call it as a statement: `{f.name} ...`")
        raise CnnError(f"unknown function `{f.name}`", f.span, did_you_mean(f.name, [*BUILTINS, *functions])
                       or f"the built-in functions are {', '.join(BUILTINS)}; `def` defines others")
    if on_function is not None:
        on_function(d)
    call = ast.Call(f.name, [*(ast.Arg(None, a, a.span) for a in f.args), *f.keywords], f.span)
    bind(call, [Slot(p.name, required=p.default is None) for p in d.params], f"function `{f.name}`")
    return d


def check_function(d: ast.Definition, variables: dict[str, str]) -> None:
    """A function's own rules: not a variable's name, and no `in` (it computes from its values alone). (A name
    of a built-in function is refused with the built-in layers' names, for every definition.)"""
    if d.name in variables:
        raise CnnError(f"function `{d.name}` has the name of a variable of {variables[d.name]}", d.span,
                       "rename one of them: the generated Python would give them one name")
    for e in [p.default for p in d.params if p.default is not None] + [x for s in d.body for x in expressions_of(s)]:
        found = _in_attr(e)
        if found is not None:
            raise CnnError(f"a function cannot use `in.{found.attr}`: it computes from its values alone", found.span,
                           f"give it the value: `def {d.name}(..., channels)` and call it with `in.channels`")


def _in_attr(e: ast.Expr) -> ast.InAttr | None:
    return next((node for node in ast.walk(e) if isinstance(node, ast.InAttr)), None)


def variables_of(definitions) -> dict[str, str]:
    """Each name a definition binds (parameters, `let`s, loop variables), with where: `block `b``."""
    found: dict[str, str] = {}
    for d in definitions:
        names = [p.name for p in d.params] + [s.name if isinstance(s, ast.Let) else s.var
                                              for s in ast.statements(d.body)
                                              if isinstance(s, ast.Let) or isinstance(s, ast.Repeat) and s.var]
        for name in names:
            found.setdefault(name, f"{d.kind} `{d.name}`")
    return found


def recursion(calls: dict[str, list[tuple[str, ast.Func]]]) -> tuple[CnnError | None, list[str]]:
    """The first function that calls itself, directly or through others, named with the cycle; and the functions
    in an order where each comes after those it calls. An iterative walk: a chain of a thousand functions is
    an error or an order, never a RecursionError."""
    done: list[str] = []
    for root in calls:
        if root in done:
            continue
        path = [root]
        pending = [iter(calls.get(root, []))]
        while pending:
            step = next(pending[-1], None)
            if step is None:
                done.append(path.pop())
                pending.pop()
                continue
            callee, f = step
            if callee in path:
                cycle = " → ".join([*path[path.index(callee):], callee])
                return CnnError(f"function `{callee}` calls itself ({cycle})", f.span,
                                "functions cannot be recursive, even in an arm not taken"), done
            if callee not in done:
                path.append(callee)
                pending.append(iter(calls.get(callee, [])))
    return None, done


class Depths:
    """How deep an expression nests with the functions it calls: a call adds its function's depth."""

    def __init__(self, definitions: dict[str, ast.Definition], order: list[str]):
        """`order`: the functions, each after those it calls (`recursion`'s)."""
        self.known: dict[str, int] = {}
        for name in order:  # so that a function's depth reads its callees' without recursing through them
            d = definitions[name]
            exprs = [p.default for p in d.params if p.default is not None] + \
                [x for s in d.body for x in expressions_of(s)]
            self.known[name] = max((self.of(e) for e in exprs), default=0)

    def of(self, e) -> int:  # recursion bounded by limits.EXPRESSION
        if isinstance(e, ast.Func):
            inner = self.known.get(e.name, 0)
            return 1 + max([inner, *(self.of(a) for a in [*e.args, *(k.value for k in e.keywords)])])
        if isinstance(e, ast.Unary):
            return 1 + self.of(e.operand)
        if isinstance(e, ast.BinOp):
            return 1 + max(self.of(e.left), self.of(e.right))
        if isinstance(e, ast.Cond):
            return 1 + max(self.of(e.then), self.of(e.cond), self.of(e.orelse))
        if isinstance(e, ast.TupleExpr):
            return 1 + max((self.of(x) for x in e.items), default=0)
        return 1

    def check(self, e: ast.Expr) -> None:
        if any(True for _ in calls_in(e)) and self.of(e) > CALL_DEPTH:
            raise CnnError(f"with the functions it calls, this expression nests more than {CALL_DEPTH} operations "
                           "deep", e.span, "compute a part of it with `let` first")
