"""Generated `.cnn` specs for the fuzz tests (issue 7: a spec is data, and no input crashes the tool).

The strategies here write spec text of four kinds:

- `specs()`: whole programs built statement by statement with every construct of the language (blocks with
  parameters and calls, `if`/`else if`/`else`, `repeat` counts and ranges, `residual` with `shortcut` and
  `shortcut if`, `add`/`concat`/`multiply` branches, named outputs with `from` and merges, `let`,
  `frozen`, the standard library). The generator follows the shapes, so most specs are valid; an example's
  `wild` share replaces values and statements by edge cases (numbers at and past every limit, wrong kinds,
  unknown arguments, junk in branches that never run).
- `expression_specs()`: expressions over every operator and builtin, with edge numbers, in every place an
  expression may stand (arguments, defaults, `let`, `repeat`, conditions, `input`).
- `layer_specs()`: every layer kind and alias of the registry, with arguments drawn from edge values.
- `deep_specs()`: each construct nested hundreds or thousands of levels deep, chained `else if`, long
  block call chains, deep expressions.

`run_spec()` runs the commands on one text: check (and its text, JSON, Markdown and --explain reports),
compile, and build with a forward pass. Every exception other than `CnnError` is a failure, and so is a
spec that checks but does not compile, a module that disagrees
with the report, a command past its time limit, and a spec that check accepts although the generator put a
constant error into a branch the network can reach but never takes (such specs carry EXPECT_REFUSED).

`CNNDSL_FUZZ=deep` raises the example counts (20,000 inputs in all); with `CNNDSL_FUZZ_LOG=FILE` the tests
append failures to FILE (JSON lines) instead of stopping at the first, and
`python tests/fuzz_specs.py summarize FILE` groups them by cause with a minimised spec for each.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import re
import signal
import sys
import threading
import traceback
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from cnndsl.ops import ACTIVATIONS, ALIASES, REGISTRY, REQUIRED

# ---- settings --------------------------------------------------------------------------------------------

DEEP = os.environ.get("CNNDSL_FUZZ", "").lower() == "deep"
LOG = os.environ.get("CNNDSL_FUZZ_LOG")  # collect failures here instead of raising


def fuzz_settings(ci: int, deep: int, **kw) -> settings:
    """`ci` examples normally, `deep` with CNNDSL_FUZZ=deep (CNNDSL_FUZZ_EXAMPLES=N overrides both)."""
    n = int(os.environ.get("CNNDSL_FUZZ_EXAMPLES") or 0) or (deep if DEEP else ci)
    # CI sees the same inputs every run (a failure is a regression, never a new draw); deep runs explore
    return settings(max_examples=n, deadline=None, print_blob=True, derandomize=not DEEP,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much, HealthCheck.large_base_example],
                    **kw)


# ---- edge values ---------------------------------------------------------------------------------------

LIMIT = 2**62  # the language's largest number
HUGE_DIGITS = "9" * 4301  # past Python's 4,300-digit limit on int(str)
EDGE_INTS = [
    "0", "1", "2", "3", "-1", "-2", "5", "7", "8", "16", "64", "255", "256", "1000", "4096", "65535", "100000",
    "2147483647", "2147483648", "4294967296", "1000000000000", "99999999999", str(LIMIT - 1), str(LIMIT),
    str(LIMIT + 1), "9223372036854775807", "9223372036854775808", "18446744073709551616", "00", "007",
    "9" * 30, "1" + "0" * 300, "9" * 4300, HUGE_DIGITS, "1" + "0" * 5000, "(10 ** 12)", "(2 ** 62)", "(2 ** 63)",
    "(-(2 ** 62))", "(0 ** -1)", "(-0)",
]
EDGE_FLOATS = [
    "0.0", "0.5", "1.0", "1.5", "2.5", "0.1", "0.25", "0.999999", "0.9999999999999999", "1e-3", "1e3", "1E5", "2.5e3",
    "3.0e0", "1e308", "1.7976931348623157e308", "1e309", "2e308", "1e-308", "5e-324", "1e-400", "1e18", "1e19",
    "4.611686018427388e18", "9.3e18", "123456789012345678901234567890.0", "9" * 400 + ".0", "0." + "0" * 400 + "1",
    "1e" + "9" * 30, "(-0.0)", "(-0.5)", "(-1e308)", "((-2) ** 0.5)", "((-8) ** (1 / 3))", "(1e308 * 10)",
    "(1e308 - 1e308 * 10)", "(0.0 ** -1)", "(1e-320 / 1e300)",
]
EDGE_WORDS = [
    "same", '"same"', "valid", '"valid"', "relu", '"relu"', "none", "linear", "nearest", "bilinear", '""', '"x"',
    "true", "false", "SAME", "full", "causal", "undefined_name", "in.channels", "in.height", "in.width",
    "in.features", "in.size", "in.depth", "in.x", "in.in", '"std/resnet"', '"' + "x" * 1000 + '"',
]
EDGE_TUPLES = [
    "3x3", "1x1", "0x0", "0x3", "3x0", "1x2x3", "3x8x8", "1x1x1x1", "1x1x1x1x1x1x1x1x1", "100000x100000",
    "3x100000x100000", "1x" + HUGE_DIGITS, "(1,)", "(1, 2)", "(1, 2, 3, 4)", "(1, 2, 3)", "(2.0, 3.0)", "(-1, 3)",
    "(1.5, 2)", "(true, false)", "(same, 1)", "((1, 2), 3)", "(0, 0, 0, 0)", "(1e308, 1)", "(10 ** 12, 1)",
]
EDGE_ANY = EDGE_INTS + EDGE_FLOATS + EDGE_WORDS + EDGE_TUPLES

# argument values by kind: ordinary ones, and extreme ones that are still in range
TYPICAL = {"int": ["1", "2", "3", "4", "8"], "pair": ["1", "2", "3", "3x3", "(1, 3)", "2x1"],
           "float": ["0.5", "0.1", "1.0", "0.01", "2"], "bool": ["true", "false"],
           "padding": ["same", "valid", "0", "1", "(0, 1)", '"same"'], "ints": ["0", "1", "(1, 2)", "(0, 1, 2, 3)"],
           "activation": sorted(ACTIVATIONS) + ["none", "linear", '"relu"'], "shape": ["1", "3x8x8"]}
EXTREME = {"int": ["1", "64", "1000", "65536", "2147483647", "2147483648", "1000000000000", str(LIMIT), "1.0",
                   "(8 / 2)", "1e19", "1e308", "1.7976931348623157e308"],
           "pair": ["1", "1x1", "1000", "1x1000", "2147483648", "(1, 65536)", "(2.0, 1.0)", "1e308", "(1, 1e19)"],
           "float": ["0", "0.0", "5e-324", "1e-308", "0.9999999999999999", "1e308", "1.7976931348623157e308",
                     "-1e308", "(-0.0)", "1e-400", str(LIMIT)],
           "bool": ["true", "false", "(1 == 1)"],
           "padding": ["100", "1000", "(0, 1000)", "(1000, 0)", "2147483648", '"valid"'],
           "ints": ["1000", "(1000, 0)", "(0, 0, 0, 0)", "(0, 0, 0, 1000)", "2147483648"],
           "activation": ["swish", "softmax", "hardswish", "linear"], "shape": ["1", "(1,)"]}

# Names that mean something to Python, PyTorch or the generated code, as spec names
SPECIAL_NAMES = [
    "x", "y", "self", "nn", "torch", "F", "math", "np", "forward", "training", "logits", "input_shape",
    "ends_in_softmax", "body", "shortcut", "op", "last", "wiring", "counts", "_modules", "_parameters",
    "_buffers", "__init__", "__class__", "__dict__", "__builtins__", "__name__", "__", "_", "None", "True",
    "False", "class", "def", "lambda", "return", "import", "pass", "print", "range", "len", "min", "max",
    "abs", "round", "sum", "int", "float", "bool", "str", "tuple", "list", "dict", "Chain", "Residual", "Merge",
    "Conv2dSame", "frozen_", "in_channels", "in_features", "in_size", "in_height", "in_width", "conv_out",
    "same_pads", "join", "eval", "train", "cuda", "cpu", "half", "double", "type", "apply", "to", "add_module",
    "register_buffer", "register_parameter", "state_dict", "named_modules", "children", "modules", "parameters",
    "zero_grad", "T_destination", "dump_patches", "call_super_init", "weight", "bias", "kernel", "stride",
    "padding", "filters", "conv", "dense", "relu", "a" * 300,
]
KEYWORDS = {"use", "network", "block", "let", "repeat", "in", "if", "else", "residual", "shortcut", "add", "concat",
            "multiply", "branch", "from", "frozen", "true", "false", "and", "or", "not"}
# words that stand for themselves as argument values: a variable of that name would change them
WORDS = {"same", "valid", "none", "linear", "nearest", "bilinear", *ACTIVATIONS}
LAYER_NAMES = sorted(set(REGISTRY) | set(ALIASES))
ACTIVATION_WORDS = {*ACTIVATIONS, "none", "linear"}  # what a variable applied as a statement may hold
CALLABLE_LAYERS = [n for n in LAYER_NAMES if n not in KEYWORDS]

BINOPS = ["+", "-", "*", "/", "//", "%", "**", "==", "!=", "<", "<=", ">", ">=", "and", "or"]
FUNCS = ["min", "max", "floor", "ceil", "round", "abs"]

Shape = tuple  # (C, H, W) or (F,); None where the generator lost track (after an edge case)


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _pads(padding, n: int, k: int, s: int, d: int) -> tuple[int, int]:
    if padding == "same":
        out = cdiv(n, s)
        total = max((out - 1) * s + d * (k - 1) + 1 - n, 0)
        return total // 2, total - total // 2
    if padding == "valid":
        return 0, 0
    return padding, padding


def _axis(n: int, padding, k: int, s: int, d: int = 1, ceil: bool = False) -> int:
    """Output length along one axis, as PyTorch (and the docs) compute it; 0 where the window does not fit."""
    before, after = _pads(padding, n, k, s, d)
    span = n + before + after - d * (k - 1) - 1
    if span < 0:
        return 0
    if not ceil:
        return span // s + 1
    out = cdiv(span, s) + 1
    if (out - 1) * s >= n + before:
        out -= 1
    return out


def _pair(v) -> tuple:
    return v if isinstance(v, tuple) else (v, v)


@dataclass
class Scope:
    """What the statements being written can see, with the values the generator knows."""

    vars: dict  # name → value (int, float, bool, or a word as str)
    in_shape: Shape | None = None  # `in`
    labels: dict = field(default_factory=dict)  # named output → shape
    unstable: set = field(default_factory=set)  # numeric names whose value changes between loop turns
    block: str | None = None  # the block being written
    loop: bool = False  # inside a repeat body

    def copy(self) -> Scope:
        return Scope(dict(self.vars), self.in_shape, dict(self.labels), set(self.unstable), self.block, self.loop)


@dataclass
class Block:
    name: str
    params: list  # (name, value, has_default)
    in_shape: Shape
    out_shape: Shape | None


class Gen:
    """Writes one spec from a hypothesis `draw`. `wild` is the percentage of edge cases."""

    def __init__(self, draw, wild: int = 0, depth: int = 3, budget: int = 40, expr_depth: int = 2,
                 max_channels: int = 16, max_side: int = 16):
        self.draw = draw
        self.wild = wild
        self.max_depth = depth
        self.budget = budget
        self.expr_depth = expr_depth
        self.max_channels = max_channels
        self.max_side = max_side
        self.blocks: dict[str, Block] = {}
        self.taken_names: set[str] = set()
        self.counter = 0
        self.uses: list[str] = []
        self.static_junk: set[str | None] = set()  # definitions (None: the network) holding a constant error
        self.edges: set[tuple[str | None, str]] = set()  # block calls: (caller, callee)
        self.functions: set[str] = set()  # the FUNCTIONS expressions call: the program defines them

    # -- choices (the first option is the simplest: hypothesis shrinks towards it)

    def chance(self, pct: float) -> bool:
        if pct <= 0:
            return False
        if pct >= 100:
            return True
        return self.draw(st.integers(0, 999)) < pct * 10

    def pick(self, seq):
        return self.draw(st.sampled_from(list(seq)))

    def int_(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, hi))

    def weighted(self, options):
        options = [(w, o) for w, o in options if w > 0]
        total = sum(w for w, _ in options)
        i = self.draw(st.integers(0, total - 1))
        for w, o in options:
            if i < w:
                return o
            i -= w
        raise AssertionError

    def edge(self) -> bool:
        return self.chance(self.wild)

    def fresh(self, prefix: str, special: bool = True) -> str:
        if special and self.chance(8 if self.wild else 3):
            name = self.pick(SPECIAL_NAMES)
            if name not in self.taken_names and name not in KEYWORDS and name not in WORDS and \
                    not (prefix in ("b", "net") and name in FUNCS):  # `max(` reads as a call
                self.taken_names.add(name)
                return name
        self.counter += 1
        name = f"{prefix}{self.counter}"
        self.taken_names.add(name)
        return name

    # -- expressions with a known value

    def names_with(self, sc: Scope, value) -> list[str]:
        return [n for n, v in sc.vars.items()
                if type(v) is type(value) and v == value and n not in sc.unstable and n not in WORDS]

    def int_expr(self, v: int, sc: Scope, depth: int | None = None) -> str:
        """An atom (a literal, name, call or parenthesised expression) whose value is the integer v."""
        depth = self.expr_depth if depth is None else depth
        opts = [(12, "lit")]
        names = self.names_with(sc, v)
        ins = []
        if sc.in_shape:
            ins = [f"in.{a}" for a, x in zip(("channels", "height", "width"), sc.in_shape) if x == v]
            if math.prod(sc.in_shape) == v:
                ins += ["in.features", "in.size"]
        opts += [(6, "name") if names else (0, ""), (4, "in") if ins else (0, "")]
        if depth > 0:
            opts += [(3, "add"), (3, "sub"), (2, "mul"), (2, "floordiv"), (2 if v >= 0 else 0, "mod"),
                     (1, "truediv"), (2, "neg"), (1, "pos"), (3, "minmax"), (1, "minmax1"), (1, "abs"),
                     (2, "round"), (1, "pow"), (1, "unstable") if sc.unstable else (0, ""), (1, "float"),
                     (1, "fn"), (1, "cond")]
        kind = self.weighted(opts)
        sub = lambda x: self.int_expr(x, sc, depth - 1)  # noqa: E731
        if kind == "lit":
            return str(v) if v >= 0 else f"({v})"
        if kind == "name":
            return self.pick(names)
        if kind == "in":
            return self.pick(ins)
        if kind == "add":
            a = self.int_(-9, 9)
            return f"({sub(a)} + {sub(v - a)})"
        if kind == "sub":
            a = self.int_(-9, 9)
            return f"({sub(v + a)} - {sub(a)})"
        if kind == "mul":
            divisors = [d for d in range(1, min(abs(v), 12) + 1) if v % d == 0] if v else [0]
            d = self.pick(divisors)
            other = v // d if d else self.int_(-5, 5)
            return f"({sub(d)} * {sub(other)})"
        if kind == "floordiv":
            b = self.int_(1, 5)
            r = self.int_(0, b - 1)
            return f"({sub(v * b + r)} // {sub(b)})"
        if kind == "mod":
            b = v + self.int_(1, 4)
            return f"({sub(b * self.int_(0, 3) + v)} % {sub(b)})"
        if kind == "truediv":  # an integral float: accepted wherever an integer is
            b = self.int_(1, 4)
            return f"({sub(v * b)} / {sub(b)})"
        if kind == "neg":
            return f"(-{sub(-v)})"
        if kind == "pos":
            return f"(+{sub(v)})"
        if kind == "minmax":
            others = [v + self.int_(0, 5) for _ in range(self.int_(1, 3))]
            if self.chance(50):
                items = [sub(v)] + [sub(o) for o in others]
                fn = "min"
            else:
                items = [sub(v)] + [sub(2 * v - o) for o in others]
                fn = "max"
            order = self.draw(st.permutations(items))
            return f"{fn}({', '.join(order)})"
        if kind == "minmax1":  # one value: min(4) is 4
            return f"{self.pick(['min', 'max'])}({sub(v)})"
        if kind == "abs":
            return f"abs({sub(-v if self.chance(50) else v)})" if v >= 0 else f"(-abs({sub(v)}))"
        if kind == "round":
            fn, frac = self.pick([("floor", "0.25"), ("floor", "0.5"), ("floor", "0.0"), ("ceil", "-0.25"),
                                  ("ceil", "-0.75"), ("ceil", "0.0"), ("round", "0.25"), ("round", "-0.25"),
                                  ("round", "0.5" if v % 2 == 0 else "0.25")])
            return f"{fn}({sub(v)} + {frac})" if not frac.startswith("-") else f"{fn}({sub(v)} - {frac[1:]})"
        if kind == "pow":
            if v == 1:
                return f"({sub(self.int_(-3, 5))} ** 0)"
            if v == 0:
                return f"(0 ** {sub(self.int_(1, 4))})"
            root = math.isqrt(abs(v))
            if v > 0 and root * root == v:
                return f"({sub(root)} ** 2)"
            return f"({sub(v)} ** 1)"
        if kind == "unstable":  # a loop variable times 0: known although the variable is not
            return f"({sub(v)} + {self.pick(sorted(sc.unstable))} * 0)"
        if kind == "float":
            return f"{v}.0" if v >= 0 else f"({v}.0)"
        if kind == "fn":  # a function the spec defines (FUNCTIONS), called by position or by name
            name = self.pick(sorted(FUNCTIONS))
            self.functions.add(name)
            k = self.int_(-3, 3)
            if name == "fz_shift":
                return f"fz_shift({sub(v)}, k={sub(k)})" if self.chance(50) else f"fz_shift({sub(v)})"
            return f"fz_pick({self.bool_expr(True, sc, depth - 1, junk_ok=False)}, {sub(v)}, {sub(k)})"
        if kind == "cond":
            return (f"({sub(v)} if {self.bool_expr(True, sc, depth - 1, junk_ok=False)} else {sub(self.int_(0, 9))})"
                    if self.chance(50) else
                    f"({sub(self.int_(0, 9))} if {self.bool_expr(False, sc, depth - 1, junk_ok=False)} else {sub(v)})")
        raise AssertionError(kind)

    def float_expr(self, v: float, sc: Scope, depth: int | None = None) -> str:
        """An atom whose value is close to v (only used where the exact value does not matter)."""
        depth = self.expr_depth if depth is None else depth
        text = repr(float(v))
        lit = text if not text.startswith("-") else f"({text})"
        if depth <= 0 or self.chance(50):
            return lit
        kind = self.pick(["div", "add", "names", "mul"])
        if kind == "div" and float(v) * 8 == int(float(v) * 8):
            n = int(float(v) * 8)
            return f"({self.int_expr(n, sc, depth - 1)} / 8)"
        if kind == "add":
            return f"({self.float_expr(v - 0.5, sc, depth - 1)} + 0.5)"
        if kind == "names":
            names = self.names_with(sc, float(v))
            if names:
                return self.pick(names)
        if kind == "mul":
            return f"({self.float_expr(v * 2, sc, depth - 1)} * 0.5)"
        return lit

    def bool_expr(self, t: bool, sc: Scope, depth: int | None = None, junk_ok: bool = True) -> str:
        """An expression (an atom, or an expression in parentheses) whose value is t."""
        depth = self.expr_depth if depth is None else depth
        names = self.names_with(sc, t)
        opts = [(6, "lit"), (6 if names else 0, "name"), (6, "cmp")]
        if depth > 0:
            opts += [(2, "chain"), (2, "not"), (3, "and"), (3, "or"), (2, "eq"), (2 if sc.in_shape else 0, "in")]
        kind = self.weighted(opts)
        sub = lambda x: self.bool_expr(x, sc, depth - 1, junk_ok)  # noqa: E731
        if kind == "lit":
            return "true" if t else "false"
        if kind == "name":
            return self.pick(names)
        if kind == "cmp":
            a, b = self.int_(-3, 9), self.int_(-3, 9)
            ops = [op for op, f in (("<", a < b), ("<=", a <= b), (">", a > b), (">=", a >= b), ("==", a == b),
                                    ("!=", a != b)) if f == t]
            if not ops:
                return "true" if t else "false"
            return f"({self.int_expr(a, sc, depth - 1)} {self.pick(ops)} {self.int_expr(b, sc, depth - 1)})"
        if kind == "chain":
            a = self.int_(0, 5)
            b = a + self.int_(0, 3)
            c = b + (self.int_(1, 3) if t else -self.int_(1, 3))
            return f"({self.int_expr(a, sc, 0)} <= {self.int_expr(b, sc, 0)} < {self.int_expr(c, sc, 0)})"
        if kind == "not":
            return f"(not {sub(not t)})"
        if kind == "and":
            if t:
                return f"({sub(True)} and {sub(True)})"
            if self.chance(50):  # short-circuit: the right side is never evaluated
                return f"({sub(False)} and {self.junk(sc) if junk_ok else sub(self.chance(50))})"
            return f"({sub(True)} and {sub(False)})"
        if kind == "or":
            if not t:
                return f"({sub(False)} or {sub(False)})"
            if self.chance(50):
                return f"({sub(True)} or {self.junk(sc) if junk_ok else sub(self.chance(50))})"
            return f"({sub(False)} or {sub(True)})"
        if kind == "eq":
            same, other = self.pick([("relu", '"relu"'), ("same", "same"), ('"a"', '"a"'), ("(1, 2)", "1x2"),
                                     ("3x3", "(3, 3)"), ("1", "1.0"), ("true", "true"), ("0.5", "(1 / 2)")])
            if t:
                return f"({same} {self.pick(['==', '=='])} {other})"
            diff = self.pick(['"relu"', "valid", "2", "(1, 3)", "false", '"b"'])
            return self.pick([f"({same} != {other})", f"({same} == {diff})"]) if diff != other else \
                f"({same} != {other})"
        if kind == "in":
            c = sc.in_shape[0]
            return f"(in.channels {'==' if t else '!='} {self.int_expr(c, sc, depth - 1)})"
        raise AssertionError(kind)

    def junk(self, sc: Scope) -> str:
        """Anything at all, in parentheses: for places that are never evaluated."""
        return f"({self.wild_expr(sc, 3)})"

    def value_expr(self, v, sc: Scope) -> str:
        if isinstance(v, bool):
            return self.bool_expr(v, sc) if self.chance(30) else ("true" if v else "false")
        if isinstance(v, int):
            return self.int_expr(v, sc)
        if isinstance(v, float):
            return self.float_expr(v, sc)
        if isinstance(v, tuple):
            if all(isinstance(x, int) and x >= 0 for x in v) and len(v) > 1 and self.chance(60):
                return "x".join(map(str, v))
            items = [self.value_expr(x, sc) for x in v]
            return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
        if isinstance(v, str):
            names = self.names_with(sc, v)
            if names and self.chance(50):  # a parameter or variable holding the word
                return self.pick(names)
            return f'"{v}"' if self.chance(30) else v
        raise AssertionError(v)

    # -- expressions with any value

    def wild_atom(self, sc: Scope | None) -> str:
        opts = [(10, "edge_int"), (6, "edge_float"), (3, "word"), (2, "tuple"), (2, "small")]
        if sc is not None and sc.vars:
            opts.append((6, "name"))
        kind = self.weighted(opts)
        if kind == "edge_int":
            return self.pick(EDGE_INTS)
        if kind == "edge_float":
            return self.pick(EDGE_FLOATS)
        if kind == "word":
            return self.pick(EDGE_WORDS)
        if kind == "tuple":
            return self.pick(EDGE_TUPLES)
        if kind == "small":
            return str(self.int_(0, 10))
        return self.pick(sorted(sc.vars))

    def wild_expr(self, sc: Scope | None, depth: int) -> str:
        """Any expression (an atom or an expression in parentheses): every operator, builtin and edge number."""
        if depth <= 0 or self.chance(25):
            return self.wild_atom(sc)
        kind = self.weighted([(10, "bin"), (3, "unary"), (4, "func"), (1, "chain"), (1, "tuple"), (1, "paren")])
        sub = lambda: self.wild_expr(sc, depth - 1)  # noqa: E731
        if kind == "bin":
            return f"({sub()} {self.pick(BINOPS)} {sub()})"
        if kind == "unary":
            return f"({self.pick(['-', '+', 'not ', '- -', 'not not '])}{sub()})"
        if kind == "func":
            n = self.weighted([(6, 1), (4, 2), (2, 3), (1, 0), (1, 5)])
            return f"{self.pick(FUNCS)}({', '.join(sub() for _ in range(n))})"
        if kind == "chain":
            return f"({sub()} {self.pick(BINOPS[7:13])} {sub()} {self.pick(BINOPS[7:13])} {sub()})"
        if kind == "tuple":
            n = self.int_(1, 4)
            return "(" + ", ".join(sub() for _ in range(n)) + ("," if n == 1 else "") + ")"
        return f"({sub()})"

    def arg_text(self, v, sc: Scope, kind: str | None = None) -> str:
        """An argument's text: v spelled some way, or (an edge case) something else."""
        if self.edge():
            return self.edge_value(kind, sc)
        return self.value_expr(v, sc)

    def edge_value(self, kind: str | None, sc: Scope | None) -> str:
        pools = {"int": EDGE_INTS + ["1e308", "1e19", "2.0", "1e309"], "float": EDGE_FLOATS + EDGE_INTS[:8],
                 "bool": ["true", "false", "1", "0", '"true"'], "pair": EDGE_INTS + EDGE_TUPLES + ["1e308"],
                 "padding": EDGE_WORDS[:8] + EDGE_INTS + EDGE_TUPLES,
                 "ints": EDGE_INTS + EDGE_TUPLES, "shape": EDGE_TUPLES + EDGE_INTS,
                 "choice": EDGE_WORDS, "activation": sorted(ACTIVATIONS) + EDGE_WORDS}
        if kind in pools and self.chance(70):
            return self.pick(pools[kind])
        if self.chance(50):
            return self.pick(EDGE_ANY)
        return self.wild_expr(sc, 3)

    # -- layers

    def render_call(self, name: str, values: dict, sc: Scope, kinds: dict | None = None) -> str:
        """`name arg...`: the values of a layer's arguments, positional where allowed, else by name or alias."""
        op = REGISTRY.get(ALIASES.get(name, name))
        specs = {a.name: a for a in op.args} if op else {}
        kinds = kinds or {k: specs[k].kind if k in specs else None for k in values}
        parts = []
        positional = True
        order = [a.name for a in op.args] if op else list(values)
        for arg in order:
            if arg not in values:
                positional = False
                continue
            spec = specs.get(arg)
            text = self.arg_text(values[arg], sc, kinds.get(arg))
            if positional and spec is not None and spec.positional and self.chance(60):
                parts.append(("", text))
            else:
                positional = False
                names = (spec.name, *spec.aliases) if spec else (arg,)
                parts.append((self.pick(names) if len(names) > 1 and self.chance(30) else names[0], text))
        pos = [t for k, t in parts if not k]
        kw = [f"{k}={t}" for k, t in parts if k]
        if len(kw) > 1:
            kw = list(self.draw(st.permutations(kw)))
        if self.edge():  # an argument that does not exist, one given twice, or one too many
            bad = self.pick(["bogus=1", "kernel=3", "filters=4", "7", "activation=relu", "units=3"])
            kw.append(bad)
        spelled = name
        if op is not None and op.aliases and self.chance(15):
            spelled = self.pick(op.aliases)
        return " ".join([spelled, *pos, *kw])

    def layer(self, sc: Scope, shape: Shape) -> tuple[str, Shape | None]:
        """One built-in layer valid for `shape`, and its output shape."""
        image = len(shape) == 3
        opts = [(6, "act"), (2, "identity"), (3, "batchnorm"), (2, "dropout"), (1, "layernorm"), (1, "groupnorm"),
                (1, "scale"), (1, "layerscale"), (1, "droppath")]
        if image:
            opts += [(12, "conv"), (3, "dwconv"), (3, "sepconv"), (6, "pool"), (3, "global"), (2, "adaptive"),
                     (1, "instancenorm"), (3, "flatten"), (2, "upsample"), (2, "zeropad"), (1, "reshape"), (1, "lrn"),
                     (2, "convtranspose"), (1, "split"), (1, "channelshuffle"), (1, "slice")]
        else:
            opts += [(12, "dense"), (2, "reshape"), (1, "lrn"), (1, "slice")]
        kind = self.weighted(opts)
        text, out = getattr(self, "_layer_" + kind)(sc, shape)
        return text, out

    def _activation_arg(self, values: dict) -> None:
        if self.chance(25):
            values["activation"] = self.pick(sorted(ACTIVATIONS) + ["none", "linear"])

    def _layer_act(self, sc, shape):
        name = self.pick(sorted(n for n in LAYER_NAMES if REGISTRY[ALIASES.get(n, n)].category == "activation"))
        op = REGISTRY[ALIASES.get(name, name)]
        values = {}
        for a in op.args:
            if self.chance(40):
                values[a.name] = self.pick([0.0, 0.01, 0.2, 0.3, 1.0, 1.5, -0.5])
        return self.render_call(name, values, sc), shape

    def _layer_identity(self, sc, shape):
        return self.render_call("identity", {}, sc), shape

    def _layer_batchnorm(self, sc, shape):
        values = {}
        if self.chance(30):
            values["eps"] = self.pick([1e-5, 1e-3, 0.0, 0.1])
        if self.chance(20):
            values["momentum"] = self.pick([0.1, 0.01, 0.0, 0.99, 1.0])
        if self.chance(20):
            values["affine"] = self.chance(50)
        self._activation_arg(values)
        return self.render_call(self.pick(["batchnorm", "batchnorm", "bn", "batchnorm2d"]), values, sc), shape

    def _layer_layernorm(self, sc, shape):
        values = {"eps": self.pick([1e-5, 1e-6, 1e-3])} if self.chance(30) else {}
        if self.chance(20):
            values["affine"] = self.chance(50)
        return self.render_call(self.pick(["layernorm", "layernorm2d"]), values, sc), shape

    def _layer_groupnorm(self, sc, shape):
        c = shape[0]
        values = {"groups": self.pick([d for d in range(1, c + 1) if c % d == 0])}
        if self.chance(20):
            values["affine"] = self.chance(50)
        return self.render_call("groupnorm", values, sc), shape

    def _layer_instancenorm(self, sc, shape):
        if shape[1] * shape[2] == 1:  # one value per channel: refused
            return self._layer_identity(sc, shape)
        values = {k: self.chance(50) for k in ("affine", "track_running_stats") if self.chance(30)}
        return self.render_call(self.pick(["instancenorm", "instancenorm2d"]), values, sc), shape

    def _layer_scale(self, sc, shape):
        return self.render_call("scale", {"factor": self.pick([0.17, 1.0, 0.0, -2.5, 0.1])}, sc), shape

    def _layer_layerscale(self, sc, shape):
        values = {"init": self.pick([1e-6, 0.1, 1.0])} if self.chance(60) else {}
        return self.render_call("layerscale", values, sc), shape

    def _layer_droppath(self, sc, shape):
        values = {"rate": self.pick([0.2, 0.0, 0.1, 0.5])} if self.chance(70) else {}
        return self.render_call(self.pick(["droppath", "stochasticdepth"]), values, sc), shape

    def _layer_dropout(self, sc, shape):
        values = {"rate": self.pick([0.5, 0.0, 0.1, 0.25, 0.9])} if self.chance(70) else {}
        return self.render_call("dropout", values, sc), shape

    def _layer_lrn(self, sc, shape):
        values = {}
        if self.chance(60):
            values["size"] = self.int_(1, 7)
        for k, options in (("alpha", [1e-4, 0.0, 1.0]), ("beta", [0.75, 0.0, 2.0]), ("k", [1.0, 2.0, 0.5])):
            if self.chance(25):
                values[k] = self.pick(options)
        return self.render_call("lrn", values, sc), shape

    def _layer_conv(self, sc, shape):
        c, h, w = shape
        kind = self.pick(["conv", "conv", "conv2d"])
        f = self.int_(1, self.max_channels)
        values, (ho, wo) = self._window(shape, conv=True)
        values = {"filters": f, **values}
        if self.chance(15):
            g = self.pick([d for d in range(1, min(c, f) + 1) if c % d == 0 and f % d == 0])
            values["groups"] = g
        if self.chance(20):
            values["bias"] = self.chance(50)
        self._activation_arg(values)
        return self.render_call(kind, values, sc), (f, ho, wo)

    def _layer_dwconv(self, sc, shape):
        c = shape[0]
        values, (ho, wo) = self._window(shape, conv=True)
        m = 1
        if self.chance(30) and c * 3 <= self.max_channels * 2:
            m = self.int_(1, 3)
            values["multiplier"] = m
        if self.chance(20):
            values["bias"] = self.chance(50)
        self._activation_arg(values)
        return self.render_call(self.pick(["dwconv", "depthwiseconv"]), values, sc), (c * m, ho, wo)

    def _layer_sepconv(self, sc, shape):
        f = self.int_(1, self.max_channels)
        values, (ho, wo) = self._window(shape, conv=True)
        values = {"filters": f, **values}
        if self.chance(25):
            values["multiplier"] = self.int_(1, 2)
        if self.chance(20):
            values["bias"] = self.chance(50)
        self._activation_arg(values)
        return self.render_call(self.pick(["sepconv", "separableconv"]), values, sc), (f, ho, wo)

    def _layer_convtranspose(self, sc, shape):
        """Output sizes as docs/language.md states them: (n-1)*s - 2p + d*(k-1) + output_padding + 1 for a
        number, n*s for `same`, (n-1)*s + max(d*(k-1)+1, s) for `valid`."""
        c, h, w = shape
        if h > self.max_side or w > self.max_side:
            return self.render_call("identity", {}, sc), shape
        f = self.int_(1, self.max_channels)
        k = (self.int_(1, 4), self.int_(1, 4)) if self.chance(20) else self.int_(1, 4)
        s = self.int_(1, 2) if self.chance(60) else 1
        d = 2 if self.chance(15) else 1
        padding = self.weighted([(3, "same"), (2, "valid"), (3, "int")])
        values = {"filters": f, "kernel": k}
        if s != 1 or self.chance(10):
            values["stride"] = s
        if d != 1:
            values["dilation"] = d
        op = 0
        if padding == "int":
            padding = self.int_(0, 1)
            if self.chance(40) and max(s, d) > 1:
                op = self.int_(0, max(s, d) - 1)
                values["output_padding"] = op
        if padding != 0 or self.chance(20):
            values["padding"] = padding
        sizes = []
        for n, kk in zip((h, w), _pair(k)):
            ek = d * (kk - 1) + 1
            sizes.append(n * s if padding == "same" else (n - 1) * s + max(ek, s) if padding == "valid"
                         else (n - 1) * s - 2 * padding + d * (kk - 1) + op + 1)
        if min(sizes) < 1:
            return self.render_call("identity", {}, sc), shape
        if self.chance(20):
            g = self.pick([x for x in range(1, min(c, f) + 1) if c % x == 0 and f % x == 0])
            values["groups"] = g
        if self.chance(20):
            values["bias"] = self.chance(50)
        self._activation_arg(values)
        kind = self.pick(["convtranspose", "convtranspose", "deconv", "conv2dtranspose", "convtranspose2d"])
        return self.render_call(kind, values, sc), (f, *sizes)

    def _layer_split(self, sc, shape):
        c = shape[0]
        parts = self.pick([x for x in range(1, min(c, 4) + 1) if c % x == 0])
        part = self.int_(0, parts - 1)
        values = {"parts": parts, "part": part} if parts != 2 or self.chance(50) else {"part": part}
        return self.render_call(self.pick(["split", "split", "chunk"]), values, sc), (c // parts, *shape[1:])

    def _layer_slice(self, sc, shape):
        c = shape[0]
        end = self.int_(1, c)
        values = {"end": end}
        if self.chance(40):
            values["start"] = self.int_(0, end - 1)
        return self.render_call("slice", values, sc), (end - values.get("start", 0), *shape[1:])

    def _layer_channelshuffle(self, sc, shape):
        c = shape[0]
        groups = self.pick([x for x in range(1, c + 1) if c % x == 0])
        values = {"groups": groups} if groups != 2 or self.chance(50) else {}
        if groups != 2 and not values:
            values = {"groups": groups}
        return self.render_call("channelshuffle", values, sc), shape

    def _window(self, shape, conv: bool) -> tuple[dict, tuple[int, int]]:
        """kernel, stride, padding (and dilation for convolutions) that fit `shape`, and the output H, W."""
        _, h, w = shape
        for _ in range(4):
            k = (self.int_(1, 5), self.int_(1, 5)) if self.chance(20) else self.int_(1, 5)
            s = self.int_(1, 3) if self.chance(30) else 1
            d = self.int_(1, 2) if conv and self.chance(15) else 1
            padding = self.weighted([(5, "same"), (3, "valid"), (2, "int"), (1, "pair")])
            kh, kw = _pair(k)
            if padding == "int":
                padding = self.int_(0, min(kh, kw) // 2 if not conv else 2)
            elif padding == "pair":
                padding = (self.int_(0, kh // 2), self.int_(0, kw // 2))
            ph, pw = _pair(padding) if not isinstance(padding, str) else (padding, padding)
            sh, sw = _pair(s)
            ho, wo = _axis(h, ph, kh, sh, d), _axis(w, pw, kw, sw, d)
            if ho >= 1 and wo >= 1:
                values = {"kernel": k}
                if s != 1 or self.chance(10):
                    values["stride"] = s
                if padding != "valid" or self.chance(20):
                    values["padding"] = padding
                if d != 1:
                    values["dilation"] = d
                return values, (ho, wo)
        return {"kernel": 1}, (h, w)

    def _layer_pool(self, sc, shape):
        c, h, w = shape
        kind = self.pick(["maxpool", "avgpool"])
        for _ in range(4):
            k = self.int_(1, 4)
            s = self.pick([None, None, 1, 2, 3])
            padding = self.weighted([(4, "valid"), (3, "same"), (2, "int")])
            if padding == "int":
                padding = self.int_(0, k // 2)
            ceil = self.chance(15)
            stride = k if s is None else s
            ho, wo = _axis(h, padding, k, stride, 1, ceil), _axis(w, padding, k, stride, 1, ceil)
            if ho >= 1 and wo >= 1:
                values = {"kernel": k} if k != 2 or self.chance(50) else {}
                if s is not None:
                    values["stride"] = s
                if padding != "valid":
                    values["padding"] = padding
                if ceil:
                    values["ceil"] = True
                if kind == "avgpool" and self.chance(15):
                    values["count_include_pad"] = self.chance(50)
                return self.render_call(kind, values, sc), (c, ho, wo)
        return self.render_call("identity", {}, sc), shape

    def _layer_global(self, sc, shape):
        keep = self.chance(25)
        values = {"keepdims": True} if keep else ({"keepdims": False} if self.chance(10) else {})
        kind = self.pick(["globalavgpool", "globalmaxpool"])
        return self.render_call(kind, values, sc), (shape[0], 1, 1) if keep else (shape[0],)

    def _layer_adaptive(self, sc, shape):
        size = (self.int_(1, 8), self.int_(1, 8)) if self.chance(50) else self.int_(1, 8)
        return self.render_call("adaptiveavgpool", {"size": size}, sc), (shape[0], *_pair(size))

    def _layer_flatten(self, sc, shape):
        return self.render_call("flatten", {}, sc), (math.prod(shape),)

    def _layer_upsample(self, sc, shape):
        c, h, w = shape
        if h * 2 > self.max_side * 2 or w * 2 > self.max_side * 2:
            return self.render_call("identity", {}, sc), shape
        scale = self.pick([2, 1, (1, 2), (2, 1)])
        values = {"scale": scale} if scale != 2 or self.chance(50) else {}
        if self.chance(30):
            values["mode"] = self.pick(["nearest", "bilinear"])
        sh, sw = _pair(scale)
        return self.render_call("upsample", values, sc), (c, h * sh, w * sw)

    def _layer_zeropad(self, sc, shape):
        c, h, w = shape
        form = self.pick(["int", "pair", "four", "default"])
        if form == "default":
            return self.render_call("zeropad", {}, sc), (c, h + 2, w + 2)
        if form == "int":
            p = self.int_(0, 2)
            return self.render_call("zeropad", {"padding": p}, sc), (c, h + 2 * p, w + 2 * p)
        if form == "pair":
            ph, pw = self.int_(0, 2), self.int_(0, 2)
            return self.render_call("zeropad", {"padding": (ph, pw)}, sc), (c, h + 2 * ph, w + 2 * pw)
        left, right, top, bottom = (self.int_(0, 2) for _ in range(4))
        return (self.render_call("zeropad", {"padding": (left, right, top, bottom)}, sc),
                (c, h + top + bottom, w + left + right))

    def _layer_reshape(self, sc, shape):
        n = math.prod(shape)
        options = [(n,), (n, 1, 1), (1, 1, n)]
        if len(shape) == 3:
            options.append((shape[0], shape[2], shape[1]))
        target = self.pick(options)
        value = target[0] if len(target) == 1 and self.chance(50) else target
        return self.render_call(self.pick(["reshape"]), {"shape": value}, sc), target

    def _layer_dense(self, sc, shape):
        u = self.int_(1, 16)
        values = {"units": u}
        if self.chance(20):
            values["bias"] = self.chance(50)
        self._activation_arg(values)
        return self.render_call(self.pick(["dense", "dense", "linear", "fc"]), values, sc), (u,)

    # -- shape fixers: statements that take `shape` to `target`, so bodies can end where they must

    def fix(self, sc: Scope, shape: Shape, target: Shape) -> list[str]:
        if shape == target:
            return []
        out: list[str] = []
        if len(shape) == 3 and len(target) == 3:
            c, h, w = shape
            if (h, w) != target[1:]:
                th, tw = target[1:]
                if th >= h and tw >= w and self.chance(30):
                    out.append(f"zeropad ({tw - w}, 0, {th - h}, 0)")
                else:
                    out.append(f"adaptiveavgpool {th}x{tw}")
            if c != target[0]:
                if target[0] % c == 0 and self.chance(25):
                    out.append(f"dwconv 1 multiplier={target[0] // c}")
                else:
                    out.append(f"{self.pick(['conv', 'conv', 'sepconv'])} {target[0]} kernel=1")
            return out
        if len(shape) == 3 and len(target) == 1:
            if self.chance(50):
                out.append(self.pick(["globalavgpool", "globalmaxpool"]))
                shape = (shape[0],)
            else:
                out.append("flatten")
                shape = (math.prod(shape),)
            return out + self.fix(sc, shape, target)
        if len(shape) == 1 and len(target) == 3:
            n = math.prod(target)
            if shape[0] != n:
                out.append(f"dense {n}")
            return out + [f"reshape {'x'.join(map(str, target))}"]
        if len(shape) == 1 and len(target) == 1:
            return [f"dense {target[0]}"]
        return out

    # -- statements

    def body(self, sc: Scope, shape: Shape | None, depth: int, lo: int = 0, hi: int = 4) -> tuple[list, Shape]:
        lines: list[str] = []
        for _ in range(self.int_(lo, hi)):
            if self.budget <= 0:
                break
            self.budget -= 1
            more, shape = self.stmt(sc, shape, depth)
            lines += more
        return lines, shape

    def stmt(self, sc: Scope, shape: Shape | None, depth: int) -> tuple[list, Shape | None]:
        if shape is None:  # the shape is lost after an edge case: shape-agnostic statements only
            kind = self.pick(["relu", "identity", "dropout 0.1", "batchnorm", "let", "wild"])
            if kind == "let":
                return self.let(sc), shape
            if kind == "wild":
                return self.wild_stmt(sc, shape, depth), None
            return [kind], shape
        if self.chance(self.wild / 4):
            return self.wild_stmt(sc, shape, depth), None
        if self.chance(self.wild / 4):
            return self.dead_junk(sc, shape, depth), shape
        nested = depth < self.max_depth
        callable_blocks = [b for b in self.blocks.values() if b.name != sc.block]
        opts = [(30, "layer"), (4, "let"), (2, "frozen"), (5, "label"),
                (4 if nested else 0, "if"), (4 if nested else 0, "repeat"), (4 if nested else 0, "residual"),
                (4 if nested else 0, "merge"), (1 if nested else 0, "frozen_body"),
                (6 if callable_blocks else 0, "call"), (3 if sc.labels else 0, "merge_with"),
                (2 if sc.labels else 0, "from"), (2 if self.uses is not None and len(shape) == 3 else 0, "std"),
                (3 if self.held(sc) else 0, "apply")]
        kind = self.weighted(opts)
        if kind == "let":
            return self.let(sc), shape
        if kind == "label":
            name = self.pick(sorted(sc.labels)) if sc.labels and self.chance(20) else self.fresh("e")
            inner = self.weighted([(10, "layer"), (3 if callable_blocks else 0, "call"),
                                   (2 if nested else 0, "residual"), (2 if nested else 0, "merge"), (2, "frozen"),
                                   (2 if sc.labels else 0, "merge_with")])
            lines, out = self.core(inner, sc, shape, depth)
            if out is None or not lines or self.chance(2):
                return lines, out
            at = len(lines) - 1 if inner in ("layer", "call", "frozen", "merge_with") else 0
            lines[at] = f"{name}: {lines[at]}"
            sc.labels[name] = out
            return lines, out
        return self.core(kind, sc, shape, depth)

    def core(self, kind: str, sc: Scope, shape: Shape, depth: int) -> tuple[list, Shape | None]:
        if kind == "layer":
            text, out = self.layer(sc, shape)
            return [text], out
        if kind == "frozen":
            lines, out = self.core(self.pick(["layer", "layer", "call"] if self.blocks else ["layer"]), sc, shape,
                                   depth)
            if len(lines) == 1 and not lines[0].startswith(("let ", "repeat", "if ", "from ")):
                return [f"frozen {lines[0]}"], out
            return lines, out
        if kind == "frozen_body":
            lines, out = self.body(sc, shape, depth + 1, 0, 3)
            return ["frozen {", *lines, "}"], out
        if kind == "if":
            return self.if_stmt(sc, shape, depth)
        if kind == "repeat":
            return self.repeat(sc, shape, depth)
        if kind == "residual":
            return self.residual(sc, shape, depth)
        if kind == "merge":
            return self.merge(sc, shape, depth)
        if kind == "call":
            return self.call(sc, shape)
        if kind == "merge_with":
            return self.merge_with(sc, shape)
        if kind == "from":
            name = self.pick(sorted(sc.labels))
            return [f"from {name}"], sc.labels[name]
        if kind == "std":
            return self.std_call(sc, shape)
        if kind == "apply":  # `act`: the activation a variable holds (none adds no layer)
            return [self.pick(self.held(sc))], shape
        raise AssertionError(kind)

    def held(self, sc: Scope) -> list[str]:
        """Variables holding an activation that a statement may apply by name: not named as a layer or a
        block (those come first)."""
        return sorted(n for n, v in sc.vars.items() if isinstance(v, str) and v in ACTIVATION_WORDS
                      and n not in LAYER_NAMES and n not in self.blocks)

    def let(self, sc: Scope) -> list[str]:
        if sc.loop:  # a name rebound in a loop changes between turns: only fresh or unstable names
            candidates = sorted(sc.unstable)
        else:
            candidates = sorted(n for n in sc.vars if n not in WORDS)
        if candidates and self.chance(30):
            name = self.pick(candidates)
        else:
            name = self.fresh("v")
        if name in sc.unstable:
            sc.vars[name] = 0
            return [f"let {name} = {name} + {self.int_expr(self.int_(0, 3), sc, 1)}"]
        if self.edge():
            sc.vars.pop(name, None)
            sc.unstable.discard(name)
            return [f"let {name} = {self.wild_expr(sc, 3)}"]
        value = self.weighted([(6, "int"), (2, "float"), (2, "bool"), (1, "word"), (1, "tuple")])
        v = {"int": lambda: self.int_(0, 12), "float": lambda: self.pick([0.5, 0.25, 0.1, 1.5]),
             "bool": lambda: self.chance(50), "word": lambda: self.pick(["relu", "same", "valid"]),
             "tuple": lambda: (self.int_(1, 4), self.int_(1, 4))}[value]()
        text = self.value_expr(v, sc)
        sc.vars[name] = v
        return [f"let {name} = {text}"]

    def if_stmt(self, sc: Scope, shape: Shape, depth: int) -> tuple[list, Shape]:
        n = self.weighted([(5, 1), (3, 2), (2, 3), (1, 6)])
        has_else = self.chance(60)
        taken = self.int_(0, n if has_else else n)  # n (without else) means no branch runs
        # the taken branch writes into the real scope; the others into copies that are thrown away
        bodies = []
        for i in range(n + (1 if has_else else 0)):
            scope = sc if i == taken else sc.copy()
            lines, out = self.body(scope, shape, depth + 1, 0, 3)
            bodies.append((lines, out))
        target = bodies[taken][1] if taken < len(bodies) else shape
        unify = not self.chance(self.wild)
        lines = []
        for i, (body, out) in enumerate(bodies):
            if out is not None and target is not None and unify:
                body = body + self.fix(sc, out, target)
            if i < n:
                if i < taken:
                    cond = self.bool_expr(False, sc)
                elif i == taken:
                    cond = self.bool_expr(True, sc)
                else:  # never evaluated
                    cond = self.junk(sc) if self.edge() and sc.block is None else self.bool_expr(self.chance(50), sc)
                head = ("if " if i == 0 else "} else if ") + cond + " {"
            else:
                head = "} else {"
            lines += [head, *body]
        lines.append("}")
        return lines, target if (unify or taken >= len(bodies)) else (target if target == shape else None)

    def repeat(self, sc: Scope, shape: Shape, depth: int) -> tuple[list, Shape]:
        inner = sc.copy()
        inner.loop = True
        ranged = self.chance(50)
        if ranged:
            var = self.pick(sorted(sc.vars)) if sc.vars and self.chance(15) else self.fresh("i", special=False)
            start = self.int_(0, 3)
            stop = max(0, start + self.int_(-1, 3))
            count = max(0, stop - start)
            inner.vars[var] = start
            inner.unstable.add(var)
            s, e = self.int_expr(start, sc, 1), self.int_expr(stop, sc, 1)
            if self.edge():
                s, e = self.pick([s, self.edge_value("int", sc)]), self.edge_value("int", sc)
            head = f"repeat {var} in {s}..{e} {{" if self.chance(80) else f"repeat {var} in ({s}) .. ({e}) {{"
        else:
            count = self.int_(0, 3)
            text = self.int_expr(count, sc, 1)
            if self.edge():
                text = self.edge_value("int", sc)
            head = f"repeat {text} {{"
        lines, out = self.body(inner, shape, depth + 1, 0, 4)
        if out is not None and out != shape:
            lines += self.fix(inner, out, shape)
        if count > 0:  # what the body bound stays bound
            for name, value in inner.vars.items():
                if not (ranged and name == var):
                    sc.vars[name] = value
            sc.unstable |= {n for n in inner.unstable if not (ranged and n == var)}
            sc.labels.update(inner.labels)
        return [head, *lines, "}"], shape if out is not None else None

    def residual(self, sc: Scope, shape: Shape, depth: int) -> tuple[list, Shape]:
        body, out = self.body(sc, shape, depth + 1, 0, 4)
        if out is None:
            return ["residual {", *body, "}"], None
        lines = ["residual {", *body]
        if out == shape:
            form = self.weighted([(4, "none"), (2, "shortcut"), (2, "if")])
            if form == "none":
                return [*lines, "}"], out
            sc_lines, sc_out = self.body(sc, shape, depth + 1, 0, 3)
            if sc_out is not None:
                sc_lines += self.fix(sc, sc_out, shape)
            cond = "" if form == "shortcut" else f"if {self.bool_expr(self.chance(50), sc)} "
            return [*lines, f"}} shortcut {cond}{{", *sc_lines, "}"], out if sc_out is not None else None
        form = self.weighted([(3, "fix_body"), (4, "shortcut"), (2, "if_true")])
        if form == "fix_body":
            return [*lines, *self.fix(sc, out, shape), "}"], shape
        sc_lines, sc_out = self.body(sc, shape, depth + 1, 0, 2)
        if sc_out is None:
            return [*lines, "} shortcut {", *sc_lines, "}"], None
        sc_lines += self.fix(sc, sc_out, out)
        cond = "" if form == "shortcut" else f"if {self.bool_expr(True, sc, junk_ok=False)} "
        return [*lines, f"}} shortcut {cond}{{", *sc_lines, "}"], out

    def merge(self, sc: Scope, shape: Shape, depth: int) -> tuple[list, Shape]:
        op = self.pick(["add", "concat", "multiply"])
        n = self.weighted([(6, 2), (3, 3), (1, 4)])
        if self.edge():
            n = self.pick([0, 1, 8])
        branches = []
        for _ in range(n):
            body, out = self.body(sc, shape, depth + 1, 0, 3)
            branches.append((body, out))
        if any(out is None for _, out in branches) or n < 2:
            lines = [f"{op} {{"] + [x for body, _ in branches for x in ["branch {", *body, "}"]] + ["}"]
            return lines, None
        first = branches[0][1]
        fixed = []
        if op == "concat":
            for body, out in branches:
                if len(first) == 3:
                    target = (out[0], *first[1:]) if len(out) == 3 else first
                else:
                    target = out if len(out) == 1 else (math.prod(out),)
                fixed.append((body + self.fix(sc, out, target), target))
            result = ((sum(t[0] for _, t in fixed), *first[1:]) if len(first) == 3
                      else (sum(t[0] for _, t in fixed),))
        elif op == "multiply" and len(first) == 3 and self.chance(30):  # a per-channel gate
            gate = self.pick([(first[0],), (first[0], 1, 1)])
            fixed = [(branches[0][0], first)] + [(body + self.fix(sc, out, gate), gate) for body, out in branches[1:]]
            result = first
        else:
            fixed = [(body + self.fix(sc, out, first), first) for body, out in branches]
            result = first
        lines = [f"{op} {{"]
        one_line = self.chance(20)
        for body, _ in fixed:
            if one_line and len(body) <= 2 and not any("{" in x for x in body):
                lines.append("branch { " + "; ".join(body) + " }")
            else:
                lines += ["branch {", *body, "}"]
        return [*lines, "}"], result

    def merge_with(self, sc: Scope, shape: Shape) -> tuple[list, Shape]:
        op = self.pick(["add", "concat", "multiply"])
        if op == "concat":
            if len(shape) == 3:
                names = [n for n, s in sc.labels.items() if len(s) == 3 and s[1:] == shape[1:]]
            else:
                names = [n for n, s in sc.labels.items() if len(s) == 1]
        else:
            names = [n for n, s in sc.labels.items() if s == shape]
        narrower = [n for n, s in sc.labels.items() if len(s) == len(shape) and s[1:] == shape[1:] and s[0] <= shape[0]]
        if op == "add" and narrower and self.chance(25):  # ReXNet's residual into the first channels
            return [f"add partial=true {self.pick(sorted(narrower))}"], shape
        if not names:
            if not self.edge():
                text, out = self.layer(sc, shape)
                return [text], out
            names = sorted(sc.labels)
            chosen = [self.pick(names)]
            return [f"{op} {' '.join(chosen)}"], None
        chosen = [self.pick(sorted(names)) for _ in range(self.weighted([(5, 1), (2, 2), (1, 3)]))]
        if op == "concat":
            total = shape[0] + sum(sc.labels[n][0] for n in chosen)
            out = (total, *shape[1:])
        else:
            out = shape
        return [f"{op} {' '.join(chosen)}"], out

    # -- blocks

    def define_block(self, in_shape: Shape, depth: int) -> tuple[list, Block]:
        name = self.fresh("b")
        while name in REGISTRY or name in ALIASES:
            name = self.fresh("b", special=False)
        params = []
        sc = Scope({}, in_shape, block=name)
        texts = []
        for _ in range(self.weighted([(3, 0), (4, 1), (3, 2), (2, 3), (1, 5)])):
            pname = self.fresh("p")
            v = self.weighted([(6, "int"), (3, "bool"), (2, "float"), (1, "word"), (1, "tuple")])
            v = {"int": lambda: self.int_(1, 8), "bool": lambda: self.chance(50),
                 "float": lambda: self.pick([0.5, 0.1]),
                 "word": lambda: self.pick(["relu", "same", "hardswish", "none", "silu"]),
                 "tuple": lambda: (self.int_(1, 3), self.int_(1, 3))}[v]()
            has_default = self.chance(70)
            if has_default:
                texts.append(f"{pname} = {self.value_expr(v, sc)}")
            else:
                texts.append(pname)
            sc.vars[pname] = v
            params.append((pname, v, has_default))
        sc.vars = {p: v for p, v, _ in params}
        body, out = self.body(sc, in_shape, depth, 0, 5)
        block = Block(name, params, in_shape, out)
        trailing = ", " if texts and self.chance(10) else ""
        signature = f"({', '.join(texts)}{trailing})" if texts or self.chance(50) else ""
        return [f"block {name}{signature} {{", *body, "}"], block

    def call(self, sc: Scope, shape: Shape) -> tuple[list, Shape | None]:
        block = self.pick([b for b in self.blocks.values() if b.name != sc.block])
        self.edges.add((sc.block, block.name))
        lines = self.fix(sc, shape, block.in_shape)
        args_pos, args_kw = [], []
        positional = True
        for pname, v, has_default in block.params:
            if has_default and self.chance(40):
                positional = False
                continue
            text = self.value_expr(v, sc)
            if positional and self.chance(60) and not (isinstance(v, (bool, str))):
                args_pos.append(text)
            else:
                positional = False
                args_kw.append(f"{pname}={text}")
        if self.edge():
            args_kw.append(self.pick(["bogus=1", f"{block.params[0][0]}=1" if block.params else "x=1", "7"]))
        return [*lines, " ".join([block.name, *args_pos, *args_kw])], block.out_shape

    def std_call(self, sc: Scope, shape: Shape) -> tuple[list, Shape]:
        c, h, w = shape
        f = self.int_(1, 8)
        s = self.pick([1, 1, 2])
        kind = self.pick(["se", "basic", "bottleneck", "conv_bn", "vgg_stack", "inception", "xception_down",
                          "xception_middle", "stage", "squeeze_excitation", "inverted_residual_v3", "mbconv"])
        std = {"se": "se", "basic": "resnet", "bottleneck": "resnet", "stage": "resnet", "conv_bn": "inception",
               "inception": "inception", "vgg_stack": "vgg", "xception_down": "xception",
               "xception_middle": "xception", "squeeze_excitation": "se", "inverted_residual_v3": "mobilenet",
               "mbconv": "efficientnet"}[kind]
        if std not in self.uses:
            self.uses.append(std)
        down = lambda n: (n - 1) // s + 1  # noqa: E731  a 3x3 conv with padding 1 and stride s
        if kind == "se":
            return [f"se {self.int_(1, c)}" if self.chance(70) else f"se ratio={self.int_(1, c)}"], shape
        if kind == "basic":
            return [f"basic {f}" + (f" stride={s}" if s != 1 else "")], (f, down(h), down(w))
        if kind == "stage":
            return [f"stage {f} {self.int_(1, 2)}" + (f" stride={s}" if s != 1 else "")], (f, down(h), down(w))
        if kind == "bottleneck":
            e = self.pick([1, 2, 4])
            extra = f" expansion={e}" + (f" se_ratio={self.int_(1, f * e)}" if self.chance(30) else "")
            return [f"bottleneck {f} stride={s}{extra}"], (f * e, down(h), down(w))
        if kind == "conv_bn":
            k = self.pick([1, 3])
            return [f"conv_bn {f} kernel={k} stride={s} padding={k // 2}"], (f, down(h) if k == 3 else (h - 1) // s + 1,
                                                                             down(w) if k == 3 else (w - 1) // s + 1)
        if kind == "squeeze_excitation":
            acts = [f" {a}={self.pick(['relu', 'silu', 'hardsigmoid', 'none'])}" for a in ("act", "gate")
                    if self.chance(50)]
            return [f"squeeze_excitation {self.int_(1, 8)}" + "".join(acts)], shape
        k = self.pick([1, 3, 5])  # odd: (k - 1) // 2 = k // 2 padding keeps ceil(n / s)
        if kind == "inverted_residual_v3":
            se, act = self.pick(["false", "true"]), self.pick(["relu", "hardswish"])
            return [f"inverted_residual_v3 {k} {self.int_(1, 12)} {f} {se} {act} {s}"], (f, down(h), down(w))
        if kind == "mbconv":
            drop = f" drop={self.pick([0.0, 0.1, 0.5])}" if self.chance(50) else ""
            return [f"mbconv {f} {k} {s} {self.pick([1, 2, 6])}{drop}"], (f, down(h), down(w))
        if kind == "vgg_stack":
            if h < 2 or w < 2:
                return ["identity"], shape
            return [f"vgg_stack {f} {self.int_(0, 2)}"], (f, h // 2, w // 2)
        if kind == "inception":
            cs = [self.int_(1, 4) for _ in range(6)]
            k5 = self.pick([1, 3, 5])
            return [f"inception {' '.join(map(str, cs))} k5={k5}"], (cs[0] + cs[2] + cs[4] + cs[5], h, w)
        if kind == "xception_down":
            f2 = self.int_(1, 8)
            return [f"xception_down {f} {f2}" + (" relu_first=false" if self.chance(30) else "")], \
                (f2, cdiv(h, 2), cdiv(w, 2))
        return [f"xception_middle {c}" if self.chance(70) else f"xception_middle filters={c}"], shape

    # -- edge cases

    def wild_layer(self, sc: Scope, shape: Shape | None = None) -> str:
        """Any layer kind or alias of the registry, each argument typical, extreme but in range, or wrong."""
        name = self.pick(CALLABLE_LAYERS)
        op = REGISTRY[ALIASES.get(name, name)]
        parts = []
        positional = True
        for a in op.args:
            if not (a.default is REQUIRED or self.chance(50)):
                positional = False
                continue
            mode = self.weighted([(5, "typical"), (4, "extreme"), (max(1, self.wild // 5), "wrong")])
            if mode == "wrong":
                text = self.edge_value(a.kind, sc) if self.chance(80) else self.pick(EDGE_ANY)
            else:
                pool = (TYPICAL if mode == "typical" else EXTREME).get(a.kind, ["1"])
                if a.kind == "choice":
                    pool = [*a.choices, *(f'"{c}"' for c in a.choices)]
                elif a.kind == "shape" and shape is not None:
                    n = math.prod(shape)
                    pool = [str(n), f"({n},)", f"{n}x1x1", f"1x1x{n}", "x".join(map(str, shape))]
                text = self.pick(pool)
            if positional and a.positional and self.chance(60):
                parts.append(text)
            else:
                positional = False
                parts.append(f"{self.pick((a.name, *a.aliases))}={text}")
        if self.chance(self.wild / 5):
            parts.append(self.pick(["bogus=1", "1", "(1, 2)", "activation=relu"]))
        return " ".join([name, *parts])

    def wild_stmt(self, sc: Scope, shape: Shape | None, depth: int) -> list[str]:
        kind = self.weighted([(10, "layer"), (2, "merge"), (2, "from"), (2, "input"), (2, "label"), (2, "repeat"),
                              (2, "if"), (1, "residual"), (2, "call"), (1, "recursion"), (1, "network"),
                              (1, "let")])
        if kind == "layer":
            return [self.wild_layer(sc)]
        if kind == "merge":
            op = self.pick(["add", "concat", "multiply"])
            return self.pick([[f"{op} {{", "}"], [f"{op} {{", "branch { relu }", "}"],
                              [f"{op} nowhere"], [f"{op} {{ branch {{ }} branch {{ flatten }} }}"],
                              [f"{op} {{ branch {{ }} branch {{ conv 3 kernel=1 }} }}"]])
        if kind == "from":
            return [f"from {self.pick(['nowhere', 'in', 'e1'])}"]
        if kind == "input":
            return [f"input {self.pick(EDGE_TUPLES + EDGE_INTS)}"]
        if kind == "label":
            what = self.pick(["let q = 1", "repeat 1 { relu }", "if true { relu }", "from e1"])
            return [f"{self.fresh('e')}: {what}"]
        if kind == "repeat":
            return [f"repeat {self.edge_value('int', sc)} {{", "relu", "}"]
        if kind == "if":
            return [f"if {self.wild_expr(sc, 3)} {{", "relu", "}"]
        if kind == "residual":
            return ["residual { conv 3 kernel=1 stride=2 } shortcut if true { flatten }"]
        if kind == "call":
            block = self.pick(sorted(self.blocks)) if self.blocks else "undefined_block"
            return [f"{block} {self.wild_expr(sc, 2)} bogus={self.wild_expr(sc, 1)}"]
        if kind == "recursion":
            return [sc.block or "main_network"]
        if kind == "network":
            return [self.pick(["network inner { input 1 }", "block inner { relu }", "use \"std/se\""])]
        return [f"let {self.fresh('w')} = {self.wild_expr(sc, 4)}"]

    def dead_junk(self, sc: Scope, shape: Shape, depth: int) -> list[str]:
        """Junk in code that never runs: a branch not taken, a loop that runs 0 times.

        Check must still refuse the constant errors among them (an unknown layer or argument, a constant of
        the wrong kind or out of range, a block calling itself) when the network can reach them: the code
        generator writes every branch whose condition depends on a parameter.
        """
        static = [["conv 4 kernel=1 bogus=3"], ["repeat 1.5 { relu }"], ["repeat (0.5) { relu }"], ["dense 0"],
                  ["conv (0 ** -1) kernel=1"], ["dense 1e308"], ["undefined_layer 3"], ["repeat i in 0..2.5 { relu }"],
                  ['conv 4 kernel=1 padding="full"'], ["dense (1 / 0)"], ["if 3 { relu }"]]
        if sc.block is not None:
            static.append([sc.block])  # a block calling itself
        other = [["conv 4 kernel=9999"], ["input 3x8x8"], ["from nowhere"], ["add nowhere"], [self.wild_layer(sc)],
                 ["conv 4 kernel=1 padding=full"], ["upsample mode=cubic"]]  # a word might be a variable
        junk = self.pick(static + other)
        if junk in static:
            self.static_junk.add(sc.block)
        flags = [n for n, v in sc.vars.items() if v is False and n not in sc.unstable]
        where = self.pick(["if", "else", "repeat0", "range", "and"])
        if sc.block is not None and flags and self.chance(70):
            return [f"if {self.pick(flags)} {{", *junk, "}"]
        if where == "if":
            return [f"if {self.bool_expr(False, sc)} {{", *junk, "}"]
        if where == "else":
            return [f"if {self.bool_expr(True, sc)} {{", "identity", "} else {", *junk, "}"]
        if where == "repeat0":
            return [f"repeat {self.int_expr(0, sc, 1)} {{", *junk, "}"]
        if where == "range":
            return [f"repeat j{self.int_(0, 9)} in 3..1 {{", *junk, "}"]
        return [f"if false and {self.junk(sc)} {{", *junk, "}"]

    def reaches_static_junk(self) -> bool:
        """Whether a constant error sits in the network or in a block it can reach (through any call)."""
        seen, todo = set(), [None]
        while todo:
            d = todo.pop()
            if d in seen:
                continue
            seen.add(d)
            todo += [callee for caller, callee in self.edges if caller == d]
        return bool(self.static_junk & seen)

    # -- programs

    def input_shape(self, image: bool | None = None) -> Shape:
        if image is None:
            image = self.chance(85)
        if image:
            c = self.pick([3, 1, 2, 4, 8])
            h = self.pick([8, 4, 1, 2, 5, 7, 12, 16])
            w = h if self.chance(70) else self.pick([8, 3, 1, 6, 16])
            return (c, h, w)
        return (self.pick([16, 1, 3, 10, 64]),)

    def input_line(self, sc: Scope, shape: Shape) -> str:
        if self.chance(self.wild):
            return f"input {self.edge_value('shape', sc)}"
        if len(shape) == 3 and self.chance(70):
            text = "x".join(map(str, shape))
        elif len(shape) == 1 and self.chance(60):
            text = self.int_expr(shape[0], sc, 1)
        else:
            text = self.value_expr(shape if len(shape) > 1 else shape, sc)
        label = f"{self.fresh('x')}: " if self.chance(10) else ""
        return f"{label}input {text}"

    def program(self, head: str | None = None, in_shape: Shape | None = None) -> str:
        """A whole spec: blocks, then a network that uses them."""
        blocks = []
        for _ in range(self.weighted([(3, 0), (4, 1), (2, 2), (1, 3)])):
            s = self.input_shape()
            lines, block = self.define_block(s, 1)
            blocks.append(lines)
            self.blocks[block.name] = block
        name = self.fresh("net")
        while name in REGISTRY or name in ALIASES or name in self.blocks:
            name = self.fresh("net", special=False)
        sc = Scope({})
        params = []
        for _ in range(self.weighted([(3, 0), (3, 1), (2, 3)])):
            pname = self.fresh("q")
            v = self.weighted([(5, "int"), (2, "bool"), (1, "float"), (1, "word")])
            v = {"int": lambda: self.int_(1, 8), "bool": lambda: self.chance(50),
                 "float": lambda: self.pick([0.5, 0.1]), "word": lambda: self.pick(["relu", "same"])}[v]()
            params.append(f"{pname} = {self.value_expr(v, sc)}")
            sc.vars[pname] = v
        shape = in_shape or self.input_shape()
        lines = []
        if self.chance(15):
            lines += self.let(sc)
        lines.append(self.input_line(sc, shape))
        sc.in_shape = shape
        body, out = self.body(sc, shape, 0, 1, 8)
        lines += body
        if head is not None and out is not None:  # a classifier: scores from a dense layer (something to train)
            if len(out) == 3:
                lines.append(self.pick(["flatten", "globalavgpool", "globalmaxpool"]))
            lines.append(f"dense {head}" + (" activation=softmax" if self.chance(30) else ""))
        elif out is not None and self.chance(30):
            lines += self.pick([["globalavgpool", "dense 5"], ["flatten", "dense 3 activation=softmax"],
                                ["softmax"]]) if len(out) == 3 else ["dense 4", "softmax"]
        sig = f"({', '.join(params)})" if params or self.chance(50) else ""
        net = [f"network {name}{sig} {{", *lines, "}"]
        uses = [f'use "std/{u}"' for u in self.uses]
        order = blocks + [net] if self.chance(60) else [net] + blocks
        if self.reaches_static_junk():
            uses.insert(0, EXPECT_REFUSED)
        order += [FUNCTIONS[name].splitlines() for name in sorted(self.functions)]
        return "\n".join(uses + [line for part in order for line in part]) + "\n"


# Functions (`def`) that generated expressions call: each gives a value the generator knows.
FUNCTIONS = {
    "fz_shift": "def fz_shift(v, k = 0) {\n    let a = v + k\n    return a - k\n}",  # v
    "fz_pick": "def fz_pick(flag, a, b = a) {\n    return a if flag else b\n}",  # a, for a true flag
}


# A spec holding this comment must be refused by check: it has a constant error in code that never runs.
EXPECT_REFUSED = "# fuzz: check must refuse this spec (a constant error in a branch that never runs)"


# ---- strategies ----------------------------------------------------------------------------------------


@st.composite
def specs(draw, wild: int | None = None, depth: int = 3, budget: int = 40) -> str:
    """Whole programs, mostly valid; a share with edge values and edge statements."""
    if wild is None:
        wild = draw(st.sampled_from([0, 0, 0, 1, 2, 5, 15, 40]))
    return Gen(draw, wild=wild, depth=depth, budget=budget).program()


@st.composite
def trainable_specs(draw, classes: int = 3) -> str:
    """Valid programs that end in `classes` scores, on small images; a few with huge sizes."""
    gen = Gen(draw, wild=draw(st.sampled_from([0, 0, 0, 1, 3])), depth=2, budget=12, max_channels=8)
    shape = (draw(st.sampled_from([1, 3])), draw(st.integers(4, 10)), draw(st.integers(4, 10)))
    text = gen.program(head=str(classes), in_shape=shape)
    if draw(st.integers(0, 9)) == 9:  # huge: the tool must refuse it or train it, not crash
        huge = draw(st.sampled_from(["input 3x100000x100000", "input 1x30000x30000", "conv (10 ** 12) kernel=1",
                                     "conv 100000 kernel=1\nconv 100000 kernel=1", "upsample 10000",
                                     "dense 1000000000"]))
        if huge.startswith("input"):
            text = text.replace(f"input {'x'.join(map(str, shape))}", huge, 1)
        else:
            lines = text.splitlines()
            at = next((i for i, line in enumerate(lines) if "input " in line), None)
            if at is not None and at + 1 < len(lines):
                lines.insert(at + 1, huge)
            text = "\n".join(lines) + "\n"
    return text


@st.composite
def expression_specs(draw) -> str:
    """Expressions over every operator and builtin with edge numbers, in every place expressions go."""
    gen = Gen(draw, wild=draw(st.sampled_from([0, 5, 20, 50])), expr_depth=3)
    sc = Scope({"a": 2, "b": 0.5, "flag": True, "act": "relu"}, (3, 8, 8))
    sc_net = Scope({"a": 2, "b": 0.5, "flag": True, "act": "relu"})
    valid = draw(st.integers(0, 99)) < 50  # a share of valid expressions (of known values) among the wild

    def e(depth=3, scope=sc) -> str:
        if valid and draw(st.integers(0, 19)) < 19:
            return gen.int_expr(draw(st.integers(1, 6)), scope, depth)
        return gen.wild_expr(scope, depth)

    def ef(depth=2) -> str:  # a float below 1
        if valid and draw(st.integers(0, 19)) < 19:
            return gen.float_expr(draw(st.sampled_from([0.1, 0.25, 0.5, 0.0])), sc, depth)
        return gen.wild_expr(sc, depth)

    def cond(scope=sc) -> str:
        if valid and draw(st.integers(0, 19)) < 19:
            return gen.bool_expr(draw(st.booleans()), scope, 3)
        return gen.wild_expr(scope, 3)

    places = {
        "conv": lambda: f"conv {e()} kernel={e(2)} padding=same",
        "dense": lambda: f"flatten\ndense {e()}",
        "stride": lambda: f"conv 4 kernel=3 stride={e(2)} padding={gen.pick(['same', e(1)])}",
        "dropout": lambda: f"dropout {ef()}",
        "leaky": lambda: f"leakyrelu {e()}",
        "let": lambda: f"let z = {e(4)}\nconv z kernel=1",
        "if": lambda: f"if {cond()} {{ relu }} else if {cond()} {{ tanh }} else {{ identity }}",
        "repeat": lambda: f"repeat {e(2)} {{ relu }}",
        "range": lambda: f"repeat i in {e(1)}..{e(1)} {{ conv (i + 1) kernel=1 }}",
        "shortcut": lambda: f"residual {{ relu }} shortcut if {cond()} {{ identity }}",
        "block": lambda: f"b {e(2)}",
        "block_kw": lambda: f"b p={e(2)} q={e(2)}",
        "block_default": lambda: "b",
        "pool": lambda: f"maxpool {e(2)} stride={e(1)} padding={gen.pick(['same', 'valid', e(1)])}",
        "upsample": lambda: f"upsample {e(2)}",
        "zeropad": lambda: f"zeropad {e(2)}",
        "adaptive": lambda: f"adaptiveavgpool {e(2)}",
        "bn": lambda: f"batchnorm eps={e(2)} momentum={e(2)}",
        "lrn": lambda: f"lrn {e(2)} alpha={e(1)} beta={e(1)} k={e(1)}",
        "reshape": lambda: f"reshape {e(2)}",
    }
    chosen = draw(st.lists(st.sampled_from(sorted(places)), min_size=1, max_size=5))
    chosen.sort(key=lambda k: k == "dense")  # dense flattens: last
    body = "\n".join(places[k]() for k in chosen)
    block_default = e(3, Scope({}, (3, 8, 8)))
    block_cond = cond(Scope({"p": 1, "q": 2}, (3, 8, 8)))
    block_expr = e(3, Scope({"p": 1, "q": 2}, (3, 8, 8)))
    block = (f"block b(p = {block_default}, q = {e(2, Scope({'p': 1}, (3, 8, 8)))}) {{\n"
             f"if {block_cond} {{ conv {block_expr} kernel=1 }} else {{ conv p kernel=1 }}\n"
             f"repeat q {{ relu }}\n}}\n")
    params = f"(a = {e(2, Scope({}))}, b = 0.5, flag = {cond(Scope({}))}, act = relu)" if draw(st.booleans()) else \
        "(a = 2, b = 0.5, flag = true, act = relu)"
    input_text = "3x8x8" if draw(st.integers(0, 9)) < 8 else e(2, sc_net)
    functions = "".join(FUNCTIONS[name] + "\n" for name in sorted(gen.functions))
    return f"{functions}{block}network n{params} {{\ninput {input_text}\n{body}\n}}\n"


@st.composite
def layer_specs(draw) -> str:
    """Every layer kind and alias with arguments drawn from edge values, on image and flat inputs."""
    gen = Gen(draw, wild=draw(st.sampled_from([2, 10, 30])))
    shape = gen.input_shape()
    sc = Scope({"n": 4}, shape)
    lines = [f"input {'x'.join(map(str, shape))}"]
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.integers(0, 9)) < 7:
            lines.append(gen.wild_layer(sc, shape))
            shape = None  # lost: later layers may not fit
        else:
            text, shape2 = gen.layer(sc, shape) if shape else ("relu", shape)
            lines.append(text)
            shape = shape2
    if draw(st.booleans()):
        lines.append(draw(st.sampled_from(["flatten\ndense 3", "globalavgpool\ndense 3", "e9: relu\nadd e9",
                                           "e9: relu\nconcat e9", "e9: relu\nmultiply e9", "softmax"])))
    functions = "".join(FUNCTIONS[name] + "\n" for name in sorted(gen.functions))
    return functions + "network layers(n = 4) {\n" + "\n".join(lines) + "\n}\n"


DEEP_KINDS = ["if", "if_param", "else_if", "repeat", "repeat_range", "repeat_param", "residual", "shortcut",
              "add", "concat", "multiply", "frozen", "blocks", "blocks_param", "parens", "neg", "not", "pow",
              "sum", "and", "compare", "func", "tuple", "defaults", "lets", "labels", "statements", "braces",
              "open_parens", "mixed", "mixed_block"]
DEPTHS = [1, 2, 10, 25, 50, 100, 200, 300, 500, 1000, 2000, 5000]


def _first(strategy):
    """The simplest value of a sampled_from or lists strategy, for deep_text without hypothesis."""
    inner = getattr(strategy, "wrapped_strategy", strategy)
    if hasattr(inner, "elements") and isinstance(inner.elements, (list, tuple)):
        return inner.elements[0]
    element = getattr(inner, "element_strategy", None)
    return [_first(element)] if element is not None else None


# ---- work that makes little (issue "Nothing hangs", 9 and 10) --------------------------------------------------

WORK_LEAVES = ["", "if false { relu }", "let z = f", "repeat 0 { relu }", "repeat f - f { relu }",
               "let z = g(f)", "if g(f) < 0 { relu }", "relu"]


@st.composite
def work_specs(draw) -> str:
    """Specs whose elaboration does much work and makes few layers: towers of blocks each calling the level
    below several times down to a body that makes nothing, functions each calling the one below several
    times, nested repeats of empty bodies, and networks of thousands of parameters. Check must answer each
    within the harness's time limit: a report, or the work budget's located error."""
    kind = draw(st.sampled_from(["tower", "functions", "repeats", "params", "mixed"]))
    levels = draw(st.sampled_from([1, 2, 5, 10, 20, 39, 60]))
    fan = draw(st.integers(1, 6))
    calls = lambda i: " + ".join([f"g{i - 1}(y)"] * fan)  # noqa: E731
    doubling = "\n".join(["def g0(x) {\n    return x\n}"] + [
        f"def g{i}(x, y = x) {{\n    let a = g{i - 1}(x)\n    return {calls(i)} - a * 0\n}}"
        for i in range(1, min(levels, 60) + 1)])
    g = f"g{min(levels, 60)}" if kind in ("functions", "mixed") else "g0"
    head = doubling if kind in ("functions", "mixed") else "def g0(x) {\n    return x\n}"
    tail = "    flatten\n    dense 2\n}\n"
    if kind in ("tower", "mixed"):
        leaf = draw(st.sampled_from(WORK_LEAVES)).replace("g(", f"{g}(")
        default = draw(st.sampled_from(["1", "f * 1", f"{g}(1)"]))
        lines = [f"block b0(f = 1, h = {default}) {{ {leaf} }}"]
        for i in range(1, levels + 1):
            call = draw(st.sampled_from([f"b{i - 1} f", f"b{i - 1}", f"b{i - 1} (f + 0)"]))
            body = f"repeat {fan} {{ {call} }}" if draw(st.booleans()) else "; ".join([call] * fan)
            lines.append(f"block b{i}(f = 1) {{ {body} }}")
        return head + "\n" + "\n".join(lines) + f"\nnetwork n {{\n    input 1x4x4\n    b{levels}\n" + tail
    if kind == "functions":
        uses = draw(st.integers(1, 30))
        lines = "\n".join(f"    conv ({g}({k}) * 0 + 2) kernel=1" for k in range(uses))
        return head + f"\nnetwork n(p = {g}(1)) {{\n    input 1x4x4\n{lines}\n" + tail
    if kind == "repeats":
        counts = draw(st.lists(st.sampled_from(["0", "1", "10", "1000", "100000", "2**40", "n"]), min_size=1,
                               max_size=8))
        leaf = draw(st.sampled_from(WORK_LEAVES)).replace("g(", "g0(").replace("f", "n")
        body = leaf
        for c in counts:
            body = f"repeat {c} {{ {body} }}"
        return head + f"\nnetwork n(n = 7) {{\n    input 1x4x4\n    {body}\n" + tail
    n = draw(st.sampled_from([10, 1000, 10_000] + ([40_000] if DEEP else [])))
    chained = draw(st.booleans())  # each default reads the one before it
    params = ", ".join(f"a{i} = {f'a{i - 1}' if chained and i else '1'}" for i in range(n))
    return head + f"\nnetwork n({params}) {{\n    input 1x4x4\n    conv (a{n - 1} + 1) kernel=1\n" + tail


@st.composite
def deep_specs(draw) -> str:
    """One construct nested (or chained) hundreds or thousands of times."""
    return deep_text(draw(st.sampled_from(DEEP_KINDS)), draw(st.sampled_from(DEPTHS)),
                     draw(st.sampled_from(["relu", "conv 4 kernel=1", "", "dense 3", "conv 4 kernel=1 bogus=1"])),
                     draw(st.sampled_from(["network", "network", "block", "unused"])), draw)


def deep_text(kind: str, n: int, inner: str = "relu", where: str = "network", draw=None) -> str:
    """`kind` nested or chained n times around `inner`, in the network, a called block or an unused one."""
    draw = draw or (lambda strategy: _first(strategy))
    blocks = ""
    if kind in ("if", "if_param"):
        cond = "flag" if kind == "if_param" else draw(st.sampled_from(["true", "n > 0", "in.channels == 3"]))
        body = f"if {cond} {{\n" * n + inner + "\n}" * n
        where = "block" if kind == "if_param" else where
    elif kind == "else_if":
        a = draw(st.sampled_from([n, -1, 0, n // 2]))
        body = f"let a = {a}\nif a == 0 {{ relu }}"
        body += "".join(f" else if a == {i} {{ {inner or 'tanh'} }}" for i in range(1, n + 1)) + " else { identity }"
    elif kind in ("repeat", "repeat_range", "repeat_param"):
        if kind == "repeat":
            head = lambda i: "repeat 1 {\n"  # noqa: E731
        elif kind == "repeat_range":
            head = lambda i: f"repeat i{i} in 0..1 {{\n"  # noqa: E731
        else:
            head = lambda i: "repeat r {\n"  # noqa: E731
            where = "block"
        body = "".join(head(i) for i in range(n)) + inner + "\n}" * n
    elif kind == "residual":
        body = "residual {\n" * n + (inner if inner in ("relu", "") else "relu") + "\n}" * n
    elif kind == "shortcut":
        body = "residual { relu } shortcut {\n" * n + "identity" + "\n}" * n
    elif kind in ("add", "concat", "multiply"):
        body = f"{kind} {{ branch {{\n" * n + (inner if inner in ("relu", "") else "relu") + "\n} branch { } }" * n
    elif kind == "frozen":
        body = "frozen {\n" * n + inner + "\n}" * n
    elif kind in ("blocks", "blocks_param"):
        if kind == "blocks":
            blocks = "".join(f"block c{i} {{ c{i + 1} }}\n" for i in range(n)) + f"block c{n} {{ {inner} }}\n"
            body = "c0"
        else:
            blocks = "".join(f"block c{i}(p = 1) {{ c{i + 1} (p + 1) }}\n" for i in range(n))
            blocks += f"block c{n}(p = 1) {{ conv (p % 7 + 1) kernel=1 }}\n"
            body = "c0 p=1"
    elif kind == "parens":
        body = "conv " + "(" * n + "4" + ")" * n + " kernel=1"
    elif kind == "neg":
        body = "conv (" + "-" * (n - n % 2) + "4) kernel=1"
    elif kind == "not":
        body = "if " + "not " * n + "true { relu }"
    elif kind == "pow":
        body = "conv (" + "1 ** " * n + "4) kernel=1"
    elif kind == "sum":
        body = "conv (" + "1 + " * n + "4) kernel=1"
    elif kind == "and":
        body = "if " + "true and " * n + "true { relu }"
    elif kind == "compare":
        body = "if " + "1 <= " * n + "2 { relu }"
    elif kind == "func":
        body = "conv " + "max(" * n + "4" + ", 1)" * n + " kernel=1"
    elif kind == "tuple":
        body = "zeropad " + "(" * n + "1" + ",)" * n
    elif kind == "defaults":
        blocks = "block d(" + ", ".join(f"a{i} = a{i - 1} + 1" if i else "a0 = 1" for i in range(n)) + ") { relu }\n"
        body = "d"
    elif kind == "lets":
        body = "let a0 = 1\n" + "\n".join(f"let a{i} = a{i - 1} + 1" for i in range(1, n)) + "\nconv 4 kernel=1"
    elif kind == "labels":
        body = "e0: conv 4 kernel=1\n" + "\n".join(f"e{i}: add e{i - 1}" for i in range(1, n))
    elif kind == "statements":
        body = "\n".join(draw(st.sampled_from(["relu", "identity", "conv 3 kernel=1"])) for _ in range(n))
    elif kind == "braces":
        body = "{" * n
    elif kind == "open_parens":
        body = "conv " + "(" * n
    else:  # mixed: a cycle of constructs
        openers = draw(st.lists(st.sampled_from(["if true {", "repeat 1 {", "residual {", "frozen {",
                                                 "add { branch {", "if flag {", "repeat r {"]),
                                min_size=1, max_size=4))
        closers = {"add { branch {": "} branch { } }"}
        seq = [openers[i % len(openers)] for i in range(n)]
        body = "\n".join(seq) + "\n" + (inner if inner in ("relu", "") else "relu") + "\n" + \
            "\n".join(closers.get(o, "}") for o in reversed(seq))
        if kind == "mixed_block":
            where = "block"
    if where == "network":
        return f"{blocks}network deep(n = 1, flag = true, r = 1) {{\ninput 3x8x8\n{body}\n}}\n"
    call = "deep" if where == "block" else "relu"
    return (f"{blocks}block deep(n = 1, flag = true, r = 1) {{\n{body}\n}}\n"
            f"network main(n = 1) {{\ninput 3x8x8\n{call}\n}}\n")


# ---- running the commands ------------------------------------------------------------------------------

MAX_LAYERS = 5000  # the tests' --max-layers: the limit is exercised without 100,000-layer specs
BIG_PARAMS = 2_000_000  # no build above these: the fuzz stays fast and small in memory
BIG_ACTIVATIONS = 50 * 2**20
BIG_LAYERS = 3000
# What check accepts, compile writes: where something cannot be compiled, check refuses it (an `if` or a
# `repeat` a parameter decides that would change the rank of what follows: cnndsl/elaborate/ranks.py).
# Any error of compile after check accepted the spec is a failure.


STAGE_SECONDS = {"check": 15, "compile": 15, "build": 30}  # longer is a failure: a spec must not hang the tool


OUTCOMES: Counter = Counter()  # inputs run, by what happened to them: reported at exit of a logged run


def count(outcome: str) -> str:
    OUTCOMES[outcome] += 1
    return outcome


@atexit.register
def _write_counts() -> None:
    if LOG and OUTCOMES:
        path = Path(LOG + ".counts.json")
        before = Counter(json.loads(path.read_text())) if path.exists() else Counter()
        path.write_text(json.dumps(dict(before + OUTCOMES), indent=1, sort_keys=True))


class FuzzFailure(AssertionError):
    """A command did what it must not: an exception other than CnnError, or a wrong result."""


class TookTooLong(Exception):
    """A command ran past its time limit (raised by a timer inside it)."""


@contextmanager
def time_limit(stage: str):
    """Interrupts the block after STAGE_SECONDS[stage] (where the platform has SIGALRM and this is the main thread)."""
    seconds = STAGE_SECONDS[stage]
    if not hasattr(signal, "SIGALRM") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise TookTooLong(f"{stage} took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _where(exc: BaseException) -> str:
    """The innermost frame of the exception in cnndsl or in generated code: its signature."""
    if isinstance(exc, SyntaxError):  # the generated source is not Python: what kind of not
        return f"generated source: {(exc.msg or '')[:40]}"
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "cnndsl" in f.filename and "fuzz_specs" not in f.filename] or frames
    if not ours:
        return "?"
    f = ours[-1]
    if f.filename.startswith("<cnndsl"):  # in the generated module: its line numbers differ from spec to spec
        return "generated code: " + _normalized(str(exc))
    return f"{Path(f.filename).name}:{f.name}:{f.lineno}"


def _normalized(message: str) -> str:
    """A message with its numbers and names blanked, to group failures of one cause."""
    message = re.sub(r"'[^']*'", "'…'", message.splitlines()[0] if message else "")
    return re.sub(r"\d+", "N", re.sub(r"\b\w+\.__init__", "X.__init__", message))[:70]


def _fail(stage: str, text: str, exc: BaseException | None = None, message: str | None = None,
          kind: str | None = None) -> None:
    """Raises FuzzFailure, or with CNNDSL_FUZZ_LOG set appends the failure to the log and returns."""
    kind = kind or (type(exc).__name__ if exc is not None else "Mismatch")
    detail = message or (str(exc)[:500] if exc is not None else "")
    if LOG:
        record = {"stage": stage, "type": kind, "message": detail[:500],
                  "where": _where(exc) if exc is not None else stage, "text": text}
        with open(LOG, "a") as f:
            f.write(json.dumps(record) + "\n")
        return
    shown = text if len(text) < 4000 else text[:2000] + "\n...\n" + text[-1500:]
    error = FuzzFailure(f"`{stage}` failed with {kind}: {detail}\n--- spec ---\n{shown}")
    if exc is not None and not isinstance(exc, FuzzFailure):
        raise error from exc
    raise error


def fail(stage: str, text: str, message: str, kind: str = "Mismatch") -> None:
    """A failure found outside run_spec (the command line, train): raised, or logged with CNNDSL_FUZZ_LOG."""
    _fail(stage, text, message=message, kind=kind)


def run_spec(text: str, build: bool = True, network: str | None = None, params: dict | None = None) -> str:
    """check → compile → build and forward; what happened: `refused`, `compiled`, `big` or `built`.

    Raises FuzzFailure (or, with CNNDSL_FUZZ_LOG set, logs it and returns `failed`).
    """
    return count(_run_spec(text, build, network, params))


def _run_spec(text: str, build: bool, network: str | None, params: dict | None) -> str:
    import cnndsl
    from cnndsl.errors import CnnError

    try:
        with time_limit("check"):
            spec = cnndsl.loads(text, network, max_layers=MAX_LAYERS, **(params or {}))
            report = spec.check()
    except CnnError as e:
        try:
            rendered = e.render()
            assert isinstance(rendered, str) and rendered, "empty message"
            str(e)
        except Exception as inner:  # noqa: BLE001
            _fail("check (rendering the error)", text, inner)
            return "failed"
        return "refused"
    except Exception as e:  # noqa: BLE001
        _fail("check", text, e)
        return "failed"
    if EXPECT_REFUSED in text:
        _fail("check accepts a constant error in a branch not taken", text,
              message="check must refuse it: compile writes every branch whose condition depends on a parameter")
        return "failed"
    try:
        with time_limit("check"):
            _render(report)
    except Exception as e:  # noqa: BLE001
        _fail("check (rendering the report)", text, e)
        return "failed"
    try:
        with time_limit("compile"):
            source = spec.source()
            compile(source, "<generated>", "exec")
    except Exception as e:  # noqa: BLE001 (a CnnError too: what check accepts, compile writes)
        _fail("compile", text, e)
        return "failed"
    if not build or big(report):
        return "big" if build else "compiled"
    with time_limit("build"):
        return _build(spec, report, text)


def big(report) -> bool:
    """Whether building the network and a forward pass would take more than the fuzz allows."""
    memory = report.to_dict().get("memory", {})
    activations = memory.get("activations_bytes", 0) if isinstance(memory, dict) else 0
    activations += 4 * math.prod(report.input)  # the random batch the forward pass gets
    return report.params > BIG_PARAMS or activations > BIG_ACTIVATIONS or len(report.layers) > BIG_LAYERS


def _render(report) -> None:
    """Every form of the report: text, --explain, --depth, JSON, Markdown, Keras' rows, and the warnings."""
    report.text()
    report.text(explain=True)
    report.text(depth=1)
    json.loads(report.json())
    report.markdown()
    report.markdown(depth=1)
    report.keras()  # the rows of --keras (drawing them is rich's work)
    for w in report.warnings:
        w.render()


def _build(spec, report, text: str) -> str:
    import torch

    try:
        model = spec.build().eval()
    except Exception as e:  # noqa: BLE001
        _fail("build", text, e)
        return "failed"
    try:
        params = sum(p.numel() for p in model.parameters())
        buffers = sum(b.numel() for name, b in model.named_buffers() if not name.endswith("num_batches_tracked"))
        with torch.no_grad():
            out = model(torch.randn(2, *report.input))
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"the forward pass gives a {type(out).__name__}, not a tensor")
    except Exception as e:  # noqa: BLE001
        _fail("forward", text, e)
        return "failed"
    problems = []
    if tuple(out.shape[1:]) != tuple(report.output):
        problems.append(f"output {tuple(out.shape[1:])}, the report says {tuple(report.output)}")
    if params != report.params:
        problems.append(f"{params:,} parameters, the report says {report.params:,}")
    if buffers != report.buffers:
        problems.append(f"{buffers:,} buffer values, the report says {report.buffers:,}")
    if problems:
        _fail("build (module vs report)", text, message="; ".join(problems))
        return "failed"
    return "built"


# ---- summarising a log of failures (the deep run) --------------------------------------------------------


def signature(record: dict) -> tuple:
    where = record["where"]
    if where.startswith("<cnndsl"):  # a log written before generated-code failures were grouped
        where = "generated code: " + _normalized(record["message"])
    if record["stage"].startswith(("train", "check --set", "compile --set")):
        where = _normalized(record["message"].split("internal error: ")[-1])
    return record["stage"], record["type"], where


def minimize(text: str, still_fails) -> str:
    """A smaller text that still fails the same way: lines, then words, then characters removed (ddmin-like)."""
    def shrink(units: list[str], join: str) -> list[str]:
        n = 2
        while len(units) >= 2:
            size = max(1, len(units) // n)
            for start in range(0, len(units), size):
                candidate = units[:start] + units[start + size:]
                if candidate and still_fails(join.join(candidate)):
                    units = candidate
                    n = max(n - 1, 2)
                    break
            else:
                if size == 1:
                    break
                n = min(len(units), n * 2)
        return units

    text = "\n".join(shrink(text.splitlines(), "\n"))
    lines = text.splitlines()
    for i in range(len(lines)):
        words = shrink(lines[i].split(" "), " ")
        candidate = "\n".join(lines[:i] + [" ".join(words)] + lines[i + 1:])
        if still_fails(candidate):
            lines[i] = " ".join(words)
    return "\n".join(lines) + "\n"


def _signature_of(text: str) -> tuple | None:
    """Runs a text and gives the signature of its failure, or None."""
    global LOG
    import tempfile

    with tempfile.NamedTemporaryFile("w+", suffix=".jsonl", delete=False) as f:
        path = f.name
    saved, LOG = LOG, path
    try:
        run_spec(text)
    except Exception:  # noqa: BLE001
        return None
    finally:
        LOG = saved
    lines = Path(path).read_text().splitlines()
    os.unlink(path)
    return signature(json.loads(lines[0])) if lines else None


def summarize(path: str, do_minimize: bool = True) -> str:
    groups: dict[tuple, list[dict]] = {}
    for line in Path(path).read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            groups.setdefault(signature(record), []).append(record)
    out = [f"{sum(len(g) for g in groups.values())} failures, {len(groups)} distinct (stage, exception, place)\n"]
    for sig, records in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        smallest = min(records, key=lambda r: len(r["text"]))
        text = smallest["text"]
        if do_minimize and len(text) < 20000:
            sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))
            text = minimize(text, lambda t, sig=sig: _signature_of(t) == sig)
        out.append(f"## {sig[0]}: {sig[1]} at {sig[2]}  ({len(records)} inputs)\n")
        out.append(f"message: {smallest['message'][:300]}\n")
        out.append("```cnn\n" + (text if len(text) < 3000 else text[:1500] + "\n...\n" + text[-800:]) + "```\n")
    return "\n".join(out)


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "summarize":
        print(summarize(sys.argv[2], "--no-minimize" not in sys.argv))
    else:
        print("usage: python tests/fuzz_specs.py summarize LOG.jsonl [--no-minimize]")
