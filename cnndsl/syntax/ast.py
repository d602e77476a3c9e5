"""The syntax tree: plain dataclasses, each node with the span it came from.

Spans are left out of equality (`field(compare=False)`): two trees are equal when they say the same thing,
wherever they were written, so `parse(print(tree)) == tree`. A tree made in code has no spans (None).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cnndsl.errors import Span


class _Node:
    """Nodes are not changed once built, so a copy of the parser's stack (error recovery) shares them."""

    def __deepcopy__(self, memo: dict):
        return self

# ---- expressions ----------------------------------------------------------------------------


@dataclass
class Const(_Node):
    """A literal: int, float, str, bool, or a size such as 3x224x224 (a tuple of ints)."""

    value: object
    span: Span | None = field(default=None, compare=False)


@dataclass
class Name(_Node):
    id: str
    span: Span | None = field(default=None, compare=False)


@dataclass
class InAttr(_Node):
    """`in.channels`: a property of the shape entering the enclosing block."""

    attr: str
    span: Span | None = field(default=None, compare=False)


@dataclass
class Unary(_Node):
    op: str  # "-", "+", "not"
    operand: Expr
    span: Span | None = field(default=None, compare=False)


@dataclass
class BinOp(_Node):
    op: str  # + - * / // % ** == != < <= > >= and or
    left: Expr
    right: Expr
    span: Span | None = field(default=None, compare=False)


@dataclass
class Func(_Node):
    """A call in an expression: a built-in (`max(a, b)`) or a function the spec defines (`def`)."""

    name: str
    args: list[Expr]
    span: Span | None = field(default=None, compare=False)
    keywords: list[Arg] = field(default_factory=list)  # `divisor=8`


@dataclass
class Cond(_Node):
    """`a if cond else b`, as in Python."""

    then: Expr
    cond: Expr
    orelse: Expr
    span: Span | None = field(default=None, compare=False)


@dataclass
class Missing(_Node):
    """What the parser puts where a syntax error left a hole (`conv 64 kernel=`): it has no value."""

    span: Span | None = field(default=None, compare=False)


@dataclass
class TupleExpr(_Node):
    items: list[Expr]
    span: Span | None = field(default=None, compare=False)


Expr = Const | Name | InAttr | Unary | BinOp | Func | Cond | TupleExpr | Missing

# ---- statements -----------------------------------------------------------------------------


@dataclass
class Arg(_Node):
    name: str | None  # None for a positional argument
    value: Expr
    span: Span | None = field(default=None, compare=False)


@dataclass
class Call(_Node):
    """A layer or a block call: `conv 64 kernel=3`; `fuse 32 with lo` gives a block the tensors it takes
    besides the current one."""

    name: str
    args: list[Arg]
    span: Span | None = field(default=None, compare=False)
    inputs: list[Name] = field(default_factory=list)


@dataclass
class Repeat(_Node):
    """`repeat n { }` (var is None) or `repeat i in a..b { }`."""

    var: str | None
    start: Expr | None
    stop: Expr
    body: list[Stmt]
    span: Span | None = field(default=None, compare=False)


@dataclass
class Arm(_Node):
    """`if cond { body }`, or one `else if cond { body }` of a chain."""

    cond: Expr
    body: list[Stmt]
    span: Span | None = field(default=None, compare=False)


@dataclass
class If(_Node):
    """`if a { } else if b { } else { }`: the first arm whose condition holds, else `orelse`."""

    arms: list[Arm]
    orelse: list[Stmt]
    span: Span | None = field(default=None, compare=False)


@dataclass
class Residual(_Node):
    """`residual { body } shortcut [if cond] { ... }`: the sum of body(x) and shortcut(x)."""

    body: list[Stmt]
    shortcut: list[Stmt] | None
    shortcut_if: Expr | None
    span: Span | None = field(default=None, compare=False)
    shortcut_span: Span | None = field(default=None, compare=False)
    args: list[Arg] = field(default_factory=list)  # the sum's own arguments: `residual partial=true { }`


@dataclass
class Merge(_Node):
    """`add|concat|multiply { branch {..} ... }`: branches all take the current tensor."""

    op: str
    branches: list[list[Stmt]]
    span: Span | None = field(default=None, compare=False)
    branch_spans: list[Span] = field(default_factory=list, compare=False)
    close: Span | None = field(default=None, compare=False)  # its `}`, for the printer's comments
    args: list[Arg] = field(default_factory=list)  # the merge's own arguments: `add partial=true { }`


@dataclass
class MergeWith(_Node):
    """`concat e1 e2`: merges the current tensor with named outputs (`in`: the block's input)."""

    op: str
    names: list[Name]
    span: Span | None = field(default=None, compare=False)
    args: list[Arg] = field(default_factory=list)


@dataclass
class From(_Node):
    """`from e1`: a named output (`in`: the block's input) becomes the current tensor."""

    name: Name
    span: Span | None = field(default=None, compare=False)


@dataclass
class Let(_Node):
    name: str
    value: Expr
    span: Span | None = field(default=None, compare=False)


@dataclass
class Labeled(_Node):
    """`e1: conv 64 ...`: names the statement's output (and its scope in the report)."""

    label: str
    stmt: Stmt
    span: Span | None = field(default=None, compare=False)
    more: list[str] = field(default_factory=list)  # `hi, lo: fuse ...`: the names of a block's other outputs


@dataclass
class Frozen(_Node):
    """`frozen stmt`: the parameters the statement makes are not trainable."""

    body: list[Stmt]
    span: Span | None = field(default=None, compare=False)


@dataclass
class Outputs(_Node):
    """A block's last statement `return a, b`: the tensors it gives its caller (the first is the current one)."""

    names: list[Name]
    span: Span | None = field(default=None, compare=False)


@dataclass
class Return(_Node):
    """A function's last statement: `return expr`."""

    value: Expr
    span: Span | None = field(default=None, compare=False)


Stmt = Call | Repeat | If | Residual | Merge | MergeWith | From | Let | Labeled | Frozen | Outputs | Return

# ---- top level ------------------------------------------------------------------------------


@dataclass
class Param(_Node):
    name: str
    default: Expr | None
    span: Span | None = field(default=None, compare=False)


@dataclass
class Definition(_Node):
    """A `network`, a `block` or a function (`def`): a named, parameterised list of statements.

    A function's statements are `let`s and a final `return`."""

    kind: str  # "network" | "block" | "function"
    name: str
    params: list[Param]
    body: list[Stmt]
    span: Span | None = field(default=None, compare=False)  # the name
    close: Span | None = field(default=None, compare=False)  # its `}`, for the printer's comments
    inputs: list[str] = field(default_factory=list)  # a block's `with lo`: tensors it takes besides `in`


@dataclass
class Use(_Node):
    path: str
    span: Span | None = field(default=None, compare=False)


@dataclass
class Module(_Node):
    """One parsed file."""

    uses: list[Use]
    definitions: list[Definition]
    statements: int = field(default=0, compare=False)  # as counted for the statement limit


# ---- expressions as spec text ------------------------------------------------------------------

PRECEDENCE = {"if": 0.5, "or": 1, "and": 2, "not": 3, "==": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4, "+": 5,
              "-": 5, "*": 6, "/": 6, "//": 6, "%": 6, "neg": 7, "**": 8}


def walk(e: Expr | None):
    """Every expression within `e`, `e` first, without recursion (an expression may be thousands deep)."""
    stack = [e] if e is not None else []
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, Func):
            stack += [*node.args, *(k.value for k in node.keywords)]
        elif isinstance(node, Unary):
            stack.append(node.operand)
        elif isinstance(node, BinOp):
            stack += [node.left, node.right]
        elif isinstance(node, Cond):
            stack += [node.then, node.cond, node.orelse]
        elif isinstance(node, TupleExpr):
            stack += node.items


def show(e: Expr, prec: int = 0) -> str:
    """An expression as spec text, rebuilt from the tree (comments and spacing are not kept)."""
    if isinstance(e, Const):
        return _const(e.value)
    if isinstance(e, Name):
        return e.id
    if isinstance(e, InAttr):
        return f"in.{e.attr}"
    if isinstance(e, TupleExpr):
        return "(" + ", ".join(show(x) for x in e.items) + ("," if len(e.items) == 1 else "") + ")"
    if isinstance(e, Func):
        args = [show(x) for x in e.args] + [f"{k.name}={show(k.value)}" for k in e.keywords]
        return f"{e.name}({', '.join(args)})"
    if isinstance(e, Missing):
        return "…"
    if isinstance(e, Cond):  # right-associative: `a if c else b if d else e` needs no parentheses
        p = PRECEDENCE["if"]
        text = f"{show(e.then, p + 0.5)} if {show(e.cond, p + 0.5)} else {show(e.orelse, p)}"
        return f"({text})" if p < prec else text
    if isinstance(e, Unary):
        p = PRECEDENCE["not" if e.op == "not" else "neg"]
        text = ("not " if e.op == "not" else e.op) + show(e.operand, p)
    else:
        p = PRECEDENCE[e.op]
        # `**` groups to the right; a comparison inside a comparison needs parentheses (`a < b < c` is a chain)
        left, right = (p + 1, p) if e.op == "**" else (p + 1, p + 1) if p == PRECEDENCE["=="] else (p, p + 1)
        text = f"{show(e.left, left)} {e.op} {show(e.right, right)}"
    return f"({text})" if p < prec else text


def _const(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):  # a size such as 3x224x224; else a tuple, as `(1,)`
        if len(value) > 1 and all(type(v) is int and v >= 0 for v in value):
            return "x".join(map(str, value))
        return "(" + ", ".join(map(_const, value)) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, str):
        return '"' + value + '"'
    if isinstance(value, float):  # Python's shortest form, its exponent without padding: 1e-6, not 1e-06
        return re.sub(r"e\+?(-?)0*(\d)", r"e\1\2", repr(value))
    return str(value)


def signature(d: Definition) -> str:
    """`name(a, b = 2)`, as the definition declares it."""
    params = [p.name if p.default is None else f"{p.name} = {show(p.default)}" for p in d.params]
    inputs = f" with {' '.join(d.inputs)}" if d.inputs else ""
    return f"{d.name}({', '.join(params)}){inputs}"


def statements(body: list[Stmt]):
    """Every statement in a body, nested ones included (without recursion: bodies nest deep)."""
    stack = list(reversed(body))
    while stack:
        s = stack.pop()
        yield s
        if isinstance(s, Labeled):
            inner = [s.stmt]
        elif isinstance(s, (Frozen, Repeat)):
            inner = s.body
        elif isinstance(s, Residual):
            inner = s.body + (s.shortcut or [])
        elif isinstance(s, If):
            inner = [x for arm in s.arms for x in arm.body] + s.orelse
        elif isinstance(s, Merge):
            inner = [x for branch in s.branches for x in branch]
        else:
            inner = []
        stack += reversed(inner)
