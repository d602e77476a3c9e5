"""The syntax tree: plain dataclasses, each node with the span it came from."""

from __future__ import annotations

from dataclasses import dataclass, field

from cnndsl.errors import Span

# ---- expressions ----------------------------------------------------------------------------


@dataclass
class Const:
    """A literal: int, float, str, bool, or a size such as 3x224x224 (a tuple of ints)."""

    value: object
    span: Span


@dataclass
class Name:
    id: str
    span: Span


@dataclass
class InAttr:
    """`in.channels`: a property of the shape entering the enclosing block."""

    attr: str
    span: Span


@dataclass
class Unary:
    op: str  # "-", "+", "not"
    operand: Expr
    span: Span


@dataclass
class BinOp:
    op: str  # + - * / // % ** == != < <= > >= and or
    left: Expr
    right: Expr
    span: Span


@dataclass
class Func:
    name: str
    args: list[Expr]
    span: Span


@dataclass
class TupleExpr:
    items: list[Expr]
    span: Span


Expr = Const | Name | InAttr | Unary | BinOp | Func | TupleExpr

# ---- statements -----------------------------------------------------------------------------


@dataclass
class Arg:
    name: str | None  # None for a positional argument
    value: Expr
    span: Span


@dataclass
class Call:
    """A layer or a block call: `conv 64 kernel=3`."""

    name: str
    args: list[Arg]
    span: Span


@dataclass
class Repeat:
    """`repeat n { }` (var is None) or `repeat i in a..b { }`."""

    var: str | None
    start: Expr | None
    stop: Expr
    body: list[Stmt]
    span: Span


@dataclass
class Arm:
    """`if cond { body }`, or one `else if cond { body }` of a chain."""

    cond: Expr
    body: list[Stmt]
    span: Span


@dataclass
class If:
    """`if a { } else if b { } else { }`: the first arm whose condition holds, else `orelse`."""

    arms: list[Arm]
    orelse: list[Stmt]
    span: Span


@dataclass
class Residual:
    """`residual { body } shortcut [if cond] { ... }`: the sum of body(x) and shortcut(x)."""

    body: list[Stmt]
    shortcut: list[Stmt] | None
    shortcut_if: Expr | None
    span: Span
    shortcut_span: Span | None = None


@dataclass
class Merge:
    """`add|concat|multiply { branch {..} ... }`: branches all take the current tensor."""

    op: str
    branches: list[list[Stmt]]
    span: Span
    branch_spans: list[Span] = field(default_factory=list)


@dataclass
class MergeWith:
    """`concat e1 e2`: merges the current tensor with named outputs."""

    op: str
    names: list[Name]
    span: Span


@dataclass
class From:
    name: Name
    span: Span


@dataclass
class Let:
    name: str
    value: Expr
    span: Span


@dataclass
class Labeled:
    """`e1: conv 64 ...`: names the statement's output (and its scope in the report)."""

    label: str
    stmt: Stmt
    span: Span


@dataclass
class Frozen:
    """`frozen stmt`: the parameters the statement makes are not trainable."""

    body: list[Stmt]
    span: Span


Stmt = Call | Repeat | If | Residual | Merge | MergeWith | From | Let | Labeled | Frozen

# ---- top level ------------------------------------------------------------------------------


@dataclass
class Param:
    name: str
    default: Expr | None
    span: Span


@dataclass
class Definition:
    """A `network` or a `block`: a named, parameterised list of statements."""

    kind: str  # "network" | "block"
    name: str
    params: list[Param]
    body: list[Stmt]
    span: Span


@dataclass
class Use:
    path: str
    span: Span


@dataclass
class Module:
    """One parsed file."""

    uses: list[Use]
    definitions: list[Definition]
    statements: int = 0  # as counted for the statement limit


# ---- expressions as spec text ------------------------------------------------------------------

PRECEDENCE = {"or": 1, "and": 2, "not": 3, "==": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4, "+": 5, "-": 5,
              "*": 6, "/": 6, "//": 6, "%": 6, "neg": 7, "**": 8}


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
        return f"{e.name}({', '.join(show(x) for x in e.args)})"
    if isinstance(e, Unary):
        p = PRECEDENCE["not" if e.op == "not" else "neg"]
        text = ("not " if e.op == "not" else e.op) + show(e.operand, p)
    else:
        p = PRECEDENCE[e.op]
        left, right = (p + 1, p) if e.op == "**" else (p, p + 1)
        text = f"{show(e.left, left)} {e.op} {show(e.right, right)}"
    return f"({text})" if p < prec else text


def _const(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    if isinstance(value, str):
        return '"' + value + '"'
    return repr(value) if isinstance(value, float) else str(value)


def signature(d: Definition) -> str:
    """`name(a, b = 2)`, as the definition declares it."""
    params = [p.name if p.default is None else f"{p.name} = {show(p.default)}" for p in d.params]
    return f"{d.name}({', '.join(params)})"


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
