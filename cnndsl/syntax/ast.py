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
class If:
    cond: Expr
    then: list[Stmt]
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
