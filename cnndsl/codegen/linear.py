"""Whole-number formulas of loop indices and counts: how a child in a loop is numbered (`i + 2`).

A counter before a loop plus the children each turn names, times the turn's index, is a linear formula;
keeping it one (rather than nesting source text) writes `f"conv{2 * i + 3}"` instead of
`f"conv{1 + 2 * (i + 1)}"`.
"""

from __future__ import annotations

from dataclasses import dataclass

from cnndsl.ops.source import Src, py
from cnndsl.syntax import ast
from cnndsl.syntax.ast import PRECEDENCE


@dataclass(frozen=True)
class Lin:
    """const + sum of coefficient * atom, each atom the source of a whole number (`i`, `blocks`)."""

    const: int = 0
    terms: tuple[tuple[Src, int], ...] = ()

    @staticmethod
    def of(v) -> Lin:
        if isinstance(v, Lin):
            return v
        if isinstance(v, bool) or not isinstance(v, (int, Src)):
            raise TypeError(f"not a whole number: {v!r}")
        return Lin(v) if isinstance(v, int) else Lin(0, ((v, 1),))

    def __add__(self, other) -> Lin:
        other = Lin.of(other)
        terms = dict(self.terms)
        for atom, k in other.terms:
            terms[atom] = terms.get(atom, 0) + k
        return Lin(self.const + other.const, tuple((a, k) for a, k in terms.items() if k))

    def __sub__(self, other) -> Lin:
        return self + Lin.of(other) * -1

    def __mul__(self, k: int) -> Lin:
        return Lin(self.const * k, tuple((a, c * k) for a, c in self.terms if c * k))

    def known(self) -> bool:
        return not self.terms

    def value(self):
        """An int where the formula is one, else the formula."""
        return self.const if self.known() else self

    def source(self) -> str:
        parts = []
        for atom, k in self.terms:
            text = py(atom, PRECEDENCE["*"] if abs(k) != 1 else PRECEDENCE["+"] + 1)
            parts.append((k < 0, text if abs(k) == 1 else f"{abs(k)} * {text}"))
        if self.const or not parts:
            parts.append((self.const < 0, str(abs(self.const))))
        out = ("-" if parts[0][0] else "") + parts[0][1]
        for negative, text in parts[1:]:
            out += f" {'-' if negative else '+'} {text}"
        return out

    def src(self) -> Src | int:
        return self.const if self.known() else Src(self.source(), PRECEDENCE["+"])


def linear(e: ast.Expr, evaluate) -> Lin | None:
    """An expression of whole numbers as a Lin (`blocks - 1`), through `evaluate` for its leaves; None where
    it is not one (a float, a word, a product of two unknowns)."""
    if isinstance(e, ast.BinOp) and e.op in ("+", "-", "*"):
        left, right = linear(e.left, evaluate), linear(e.right, evaluate)
        if left is None or right is None:
            return None
        if e.op == "+":
            return left + right
        if e.op == "-":
            return left - right
        if left.known() or right.known():
            return right * left.const if left.known() else left * right.const
        return None
    value = evaluate(e)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, Src) and value.real:
        return None
    try:
        return Lin.of(value)
    except TypeError:
        return None
