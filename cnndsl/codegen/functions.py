"""The functions a spec defines (`def`), written once each as a module-level Python function, as torchvision writes
its `_make_divisible`. This is the one place that writes them; symbolic.py writes their calls."""

from __future__ import annotations

from cnndsl.codegen.files import shown
from cnndsl.codegen.naming import pyname
from cnndsl.codegen.symbolic import evaluate
from cnndsl.codegen.wrap import wrap_all
from cnndsl.elaborate.functions import calls_in, expressions_of
from cnndsl.ops.source import Src, docstring, py
from cnndsl.syntax import ast


def used(program, definitions: list[ast.Definition]) -> list[ast.Definition]:
    """The functions `definitions` call, directly or through other functions, each after those it calls."""
    functions = {d.name: d for d in program.definitions.values() if d.kind == "function"}
    order: list[str] = []
    pending = [(name, False) for name in reversed(_called(definitions, functions))]
    while pending:  # a depth-first walk with its own stack (validate.py refused cycles)
        name, expanded = pending.pop()
        if name in order:
            continue
        if expanded:
            order.append(name)
            continue
        pending.append((name, True))
        callees = _called([functions[name]], functions)
        pending += [(callee, False) for callee in reversed(callees) if callee not in order]
    return [functions[name] for name in order]


def _called(definitions: list[ast.Definition], functions: dict[str, ast.Definition]) -> list[str]:
    names: dict[str, None] = {}
    for d in definitions:
        exprs = [p.default for p in d.params if p.default is not None]
        exprs += [e for s in ast.statements(d.body) for e in expressions_of(s)]
        for e in exprs:
            names.update((f.name, None) for f in calls_in(e) if f.name in functions)
    return list(names)


def whole(program) -> dict[str, tuple[list[str], set[str]]]:
    """The functions that give a whole number where the parameters whose default is one are given one
    (make_divisible's divisor and min_value; its `v` may be a float): each `let` and `return` is one by the
    kinds of its parts (floor, ceil and round give ints; +, -, *, //, %, min, max and `if else` keep them).
    By name: (the parameters in order, those that must be given whole numbers)."""
    functions = {d.name: d for d in program.definitions.values() if d.kind == "function"}
    found: dict[str, tuple[list[str], set[str]]] = {}
    for _ in functions:  # a function calling another one found whole: again, until none is added
        for d in functions.values():
            ints = _whole_params(d, found)
            if d.name not in found and ints is not None:
                found[d.name] = ([p.name for p in d.params], ints)
    return found


def _whole_params(d: ast.Definition, found: dict) -> set[str] | None:
    """The parameters it needs given whole numbers to give one, or None where it may not give one."""
    ints: set[str] = set()
    for p in d.params:
        if p.default is not None and _whole_expr(p.default, ints, found):
            ints.add(p.name)
    needed, known = set(ints), set(ints)
    for s in d.body:
        whole = _whole_expr(s.value, known, found)
        if isinstance(s, ast.Let):
            (known.add if whole else known.discard)(s.name)
        elif not whole:
            return None
    return needed


def _whole_expr(e: ast.Expr, ints: set[str], found: set[str]) -> bool:
    if isinstance(e, ast.Const):
        return type(e.value) is int
    if isinstance(e, ast.Name):
        return e.id in ints
    if isinstance(e, ast.Unary):
        return e.op == "-" and _whole_expr(e.operand, ints, found)
    if isinstance(e, ast.BinOp):
        return e.op in ("+", "-", "*", "//", "%") and all(_whole_expr(x, ints, found) for x in (e.left, e.right))
    if isinstance(e, ast.Cond):
        return _whole_expr(e.then, ints, found) and _whole_expr(e.orelse, ints, found)
    if isinstance(e, ast.Func):
        if e.name in ("floor", "ceil", "round"):
            return len(e.args) == 1
        if e.name in ("min", "max", "abs"):
            return all(_whole_expr(a, ints, found) for a in e.args)
        return e.name in found and all(_whole_expr(a, ints, found) for a in e.args)
    return False


def source(functions: list[ast.Definition]) -> str:
    """The Python functions, in order."""
    return "".join("\n\n" + _function(d) for d in functions)


def _function(d: ast.Definition) -> str:
    names = {p.name: Src(pyname(p.name), real=True, word=False) for p in d.params}
    params, lines = [], []
    for p in d.params:
        if p.default is None:
            params.append(pyname(p.name))
        elif isinstance(p.default, ast.Const):
            params.append(f"{pyname(p.name)}={py(p.default.value)}")
        else:  # a default from earlier parameters: computed in the body, as the classes do
            name = pyname(p.name)
            params.append(f"{name}=None")
            lines += [f"    if {name} is None:", f"        {name} = {py(evaluate(p.default, names, ()))}"]
    for s in d.body:
        value = py(evaluate(s.value, names, ()))
        if isinstance(s, ast.Let):
            lines.append(f"    {pyname(s.name)} = {value}")
            names[s.name] = Src(pyname(s.name), real=True, word=False)
        else:
            lines.append(f"    return {value}")
    where = f" ({shown(d.span.source.name)}:{d.span.line})" if d.span is not None else ""
    doc = docstring(f"def {ast.signature(d)}{where}.")
    return "\n".join(wrap_all([f"def {pyname(d.name)}({', '.join(params)}):", f"    {doc}", *lines])) + "\n"
