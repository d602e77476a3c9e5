"""The functions a spec defines (`def`), written once each as a module-level Python function, as torchvision writes
its `_make_divisible`. This is the one place that writes them; symbolic.py writes their calls."""

from __future__ import annotations

from cnndsl.codegen.naming import pyname
from cnndsl.codegen.symbolic import evaluate
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
    where = f" ({d.span.source.name}:{d.span.line})" if d.span is not None else ""
    doc = docstring(f"def {ast.signature(d)}{where}.")
    return "\n".join([f"def {pyname(d.name)}({', '.join(params)}):", f"    {doc}", *lines]) + "\n"
