"""Values as the code generator sees them: known now, or Python source computed at construction.

Registry entries use these to write their PyTorch constructors; nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cnndsl.limits import NUMBER
from cnndsl.ops.base import Symbol
from cnndsl.syntax.ast import PRECEDENCE

# Attributes of the generated modules (nn.Module's public ones in torch 2.x, nn.Sequential's, and those the
# generated classes set): a named output may not take one, nor start with `_` (the classes' own `_plan`), and
# no counter makes one (graph.numbered). tests/test_codegen.py compares the list with torch's.
MODULE_ATTRIBUTES = frozenset("""
    T_destination add_module apply bfloat16 buffers call_super_init children compile cpu cuda double dump_patches
    eval extra_repr float forward get_buffer get_extra_state get_parameter get_submodule half ipu load_state_dict
    modules mtia named_buffers named_children named_modules named_parameters parameters register_backward_hook
    register_buffer register_forward_hook register_forward_pre_hook register_full_backward_hook
    register_full_backward_pre_hook register_load_state_dict_post_hook register_load_state_dict_pre_hook
    register_module register_parameter register_state_dict_post_hook register_state_dict_pre_hook requires_grad_
    set_extra_state set_submodule share_memory state_dict to to_empty train type xpu zero_grad training
    append extend insert pop input_shape logits ends_in_softmax out_channels out_size out_features
""".split())


ATOM = 9


@dataclass(frozen=True)
class Src:
    """Python source of a value that is known only when the generated module is constructed."""

    text: str
    prec: int = ATOM
    real: bool = field(default=False, compare=False)  # may be a float at construction (`filters / 2`)
    word: bool = field(default=True, compare=False)  # may be a word (`same`) rather than a number

    def __str__(self) -> str:
        return self.text


def is_real(v) -> bool:
    """Whether a value may be a float: a float now, or source that may make one."""
    return isinstance(v, float) or (isinstance(v, Src) and v.real)


def as_int(v):
    """A value where PyTorch wants an int: `int(filters / 2)` for source that may make a float (the
    checker accepts whole floats such as 32.0 there), 32 for 32.0; tuples item by item."""
    if isinstance(v, tuple):
        return tuple(as_int(x) for x in v)
    if isinstance(v, Src) and v.real:
        return Src(f"int({v.text})")
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


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


def unary(op: str, v):
    """`not v` or `-v`, folded when known (and foldable: `-same` stays source)."""
    if is_known(v):
        value = _folded(lambda: (not v) if op == "not" else -v)
        if value is not _UNFOLDED:
            return value
    return Src(f"not {py(v, 3)}", 3) if op == "not" else Src(f"-{py(v, 7)}", 7, is_real(v))


def binop(op: str, a, b):
    if is_known(a) and is_known(b):
        value = _folded(lambda: _fold(op, a, b), op == "**" and _huge_power(a, b))
        if value is not _UNFOLDED:
            return value
    if op == "*" and (type(a) is int and a == 1 or type(b) is int and b == 1):  # `c * multiplier` with 1
        return b if type(a) is int and a == 1 else a
    if op in ("+", "-") and type(b) is int and b == 0 and isinstance(a, Src):  # `h + 0`: zeropad's sides
        return a
    if op in ("+", "-") and isinstance(b, (int, float)) and not isinstance(b, bool) and b < 0:
        op, b = "-" if op == "+" else "+", -b  # n - 2, not n + -2
    p = PRECEDENCE[op]
    right = p + 1 if op != "**" else p  # left-associative except **
    left = p if op != "**" else p + 1
    real = op in ("/", "**") or (p >= PRECEDENCE["+"] and (is_real(a) or is_real(b)))
    return Src(f"{py(a, left)} {op} {py(b, right)}", p, real, word=False)  # arithmetic makes no word


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
    real = fn in ("min", "max", "abs") and any(is_real(a) for a in args)  # floor, ceil, round give ints
    return Src(f"{fn}({', '.join(py(a) for a in args)})", real=real)


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
