"""The type of a block's required parameter, for its annotation (`filters: int`): what every call gives.

A required parameter has no default to take a type from, so the calls in the program decide: where each
gives an int (a literal, `filters * 4`, `in.channels`, a parameter of the caller that is one), the
annotation is `int`; where they disagree or a value cannot be told, there is none.
"""

from __future__ import annotations

from cnndsl.elaborate.binding import Slot, bind
from cnndsl.ops.base import Symbol
from cnndsl.syntax import ast
from cnndsl.syntax.loader import Program

_KINDS = ((bool, "bool"), (int, "int"), (float, "float"), (str, "str"), (Symbol, "str"))


def arguments(program: Program, d: ast.Definition) -> dict[str, list[tuple[ast.Definition, ast.Expr]]]:
    """Each parameter's default and the arguments calls give it, with the definition each appears in."""
    given = {p.name: [(d, p.default)] if p.default is not None else [] for p in d.params}
    slots = [Slot(p.name, required=p.default is None) for p in d.params]
    for other in program.definitions.values():
        for s in ast.statements(other.body):
            if isinstance(s, ast.Call) and s.name == d.name:
                for name, arg in bind(s, slots, f"block `{d.name}`").items():
                    given[name].append((other, arg.value))
    return given


class ParamTypes:
    def __init__(self, program: Program):
        self.program = program
        self.types: dict[str, dict[str, str | None]] = {}

    def of(self, d: ast.Definition) -> dict[str, str | None]:
        """Parameter → "int", "float", "bool", "str" or None (unknown)."""
        if d.name not in self.types:
            self.types[d.name] = {}  # a call cycle (refused elsewhere) reads unknowns
            found = {}
            for name, uses in arguments(self.program, d).items():
                kinds = {self.kind(e, where) for where, e in uses}
                found[name] = kinds.pop() if len(kinds) == 1 else None
            self.types[d.name] = found
        return self.types[d.name]

    def kind(self, e: ast.Expr, where: ast.Definition) -> str | None:
        if isinstance(e, ast.Const):
            return next((name for t, name in _KINDS if isinstance(e.value, t)), None)
        if isinstance(e, ast.Name):
            return self.of(where).get(e.id) if any(p.name == e.id for p in where.params) else None
        if isinstance(e, ast.InAttr):
            return "int"
        if isinstance(e, ast.Unary):
            return "bool" if e.op == "not" else self.kind(e.operand, where)
        if isinstance(e, ast.BinOp):
            if e.op in ("==", "!=", "<", "<=", ">", ">=", "and", "or"):
                return "bool" if e.op not in ("and", "or") else None
            sides = {self.kind(e.left, where), self.kind(e.right, where)}
            return "int" if sides == {"int"} and e.op in ("+", "-", "*", "//", "%") else None
        if isinstance(e, ast.Func):
            if e.name in ("floor", "ceil", "round"):
                return "int"
            if e.name not in ("min", "max", "abs"):  # a function of the spec's: its value's kind is not told here
                return None
            kinds = {self.kind(a, where) for a in e.args}
            return kinds.pop() if len(kinds) == 1 else None
        return None
