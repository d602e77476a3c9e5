"""Values as the code generator sees them: known now, or Python source computed at construction.

Registry entries use these to write their PyTorch constructors; nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from cnndsl.limits import NUMBER
from cnndsl.ops.base import Symbol

ATOM = 9
_PREC = {"or": 1, "and": 2, "not": 3, "==": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4, "+": 5, "-": 5,
         "*": 6, "/": 6, "//": 6, "%": 6, "neg": 7, "**": 8}


@dataclass(frozen=True)
class Src:
    """Python source of a value that is known only when the generated module is constructed."""

    text: str
    prec: int = ATOM

    def __str__(self) -> str:
        return self.text


def is_known(v) -> bool:
    if isinstance(v, tuple):
        return all(is_known(x) for x in v)
    return not isinstance(v, Src)


def py(v, prec: int = 0) -> str:
    """Python source of a value, in parentheses when it binds weaker than `prec`."""
    if isinstance(v, Src):
        return f"({v.text})" if v.prec < prec else v.text
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, Symbol):
        return py(v.name)
    if isinstance(v, tuple):
        return "(" + ", ".join(py(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return literal(v)
    return str(v)


def literal(text: str) -> str:
    """A Python string literal of any text: the only way user text enters generated source."""
    return '"' + _escaped(str(text)) + '"'


def docstring(*lines: str) -> str:
    """A docstring of any lines of text: each line escaped as `literal` escapes it."""
    return '"""' + "\n".join(_escaped(str(line)) for line in lines) + '"""'


def _escaped(text: str) -> str:
    """The body of a double-quoted literal: quotes and backslashes escaped, and every character that
    is not printable (newlines, NUL, \\u2028, a terminal's escape codes) as repr() writes it."""
    if text.isprintable() and '"' not in text and "\\" not in text:
        return text
    return "".join(_ESCAPES.get(c) or (c if c.isprintable() else repr(c)[1:-1]) for c in text)


_ESCAPES = {"\\": "\\\\", '"': '\\"'}


def binop(op: str, a, b):
    if is_known(a) and is_known(b):
        value = _folded(lambda: _fold(op, a, b), op == "**" and _huge_power(a, b))
        if value is not _UNFOLDED:
            return value
    p = _PREC[op]
    right = p + 1 if op != "**" else p  # left-associative except **
    left = p if op != "**" else p + 1
    return Src(f"{py(a, left)} {op} {py(b, right)}", p)


def product(values):
    """The product of sizes, folded where they are known: C*H*W of a flatten."""
    out = values[0]
    for v in values[1:]:
        out = binop("*", out, v)
    return out


def _key(v):
    return v.name if isinstance(v, Symbol) else v


def _fold(op: str, a, b):
    if op in ("==", "!="):
        return (_key(a) == _key(b)) == (op == "==")
    return {
        "+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b,
        "//": lambda: a // b, "%": lambda: a % b, "**": lambda: a**b, "<": lambda: a < b,
        "<=": lambda: a <= b, ">": lambda: a > b, ">=": lambda: a >= b,
        "and": lambda: a and b, "or": lambda: a or b,
    }[op]()


def call(fn: str, *args, numeric=None):
    """`fn(args)`, folded with `numeric` when every argument is known."""
    if numeric is not None and all(is_known(a) for a in args):
        value = _folded(lambda: numeric(*args))
        if value is not _UNFOLDED:
            return value
    return Src(f"{fn}({', '.join(py(a) for a in args)})")


_UNFOLDED = object()


def _folded(compute, refuse: bool = False):
    """A constant folded now, or _UNFOLDED where folding fails or leaves the checker's range (1 / 0,
    2 ** 10**9): such code stays source, which fails only if it ever runs, and then as `check` does
    for the parameters that run it. The code generator itself never raises or hangs on arithmetic."""
    if refuse:
        return _UNFOLDED
    try:
        value = compute()
    except (ArithmeticError, TypeError, ValueError):
        return _UNFOLDED
    if isinstance(value, complex) or (isinstance(value, (int, float)) and not abs(value) <= NUMBER):
        return _UNFOLDED
    return value


def _huge_power(a, b) -> bool:
    numbers = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (a, b))
    return numbers and abs(b) > 64 and abs(a) > 1
