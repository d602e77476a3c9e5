"""Whether each tensor is an image (CxHxW) or a flat vector, whatever the parameters: one compiled class.

The compiled module is one class per block (and one for the network), serving every value of its
parameters: an `if` whose condition a parameter decides is written with all its arms, and a `repeat`
whose count a parameter gives is a Python loop. Such an `if` must leave the same rank in every arm, and
such a loop's body must keep its input's rank, since the layers after them are written once. Elaboration
follows only the arms and turns these parameters take, so this walk, over the ranks alone, finds the ones
it does not see. A rank is worked out as the code generator works it out: by the registry's `sym_shape`
of each layer, over sizes it does not know; an arm where a layer cannot take the rank (a conv on a
vector) is one compile writes as a `raise`, and is left out.
"""

from __future__ import annotations

from cnndsl.elaborate.args import op_slots
from cnndsl.elaborate.binding import bind
from cnndsl.elaborate.expr import Env, Work, evaluate, functions_of
from cnndsl.elaborate.validate import _closed, applies_variable, bound_names, callee
from cnndsl.errors import CnnError
from cnndsl.ops import CodeArgs
from cnndsl.ops.source import Src
from cnndsl.syntax import ast
from cnndsl.syntax.loader import Program

_NAMES = {1: "a flat vector", 2: "tokens (L x D)", 3: "an image (CxHxW)"}
_UNKNOWN = Src("_")


def check_ranks(program: Program, network: ast.Definition, work: Work | None = None) -> None:
    """Raises a located CnnError for an `if` or `repeat` that a parameter decides and that would change the
    rank of what follows."""
    _Walk(program, work or Work()).definition(network, None)


class _Walk:
    def __init__(self, program: Program, work: Work):
        self.program, self.work = program, work
        self.functions = functions_of(program)
        self.done: dict[tuple, int | None] = {}
        self.returned: dict[tuple, list] = {}  # the ranks a block's `return a, b` gives
        self.outputs: list = []  # those of the last block call, for `hi, lo: fuse ...`

    def definition(self, d: ast.Definition, rank: int | None, ins: tuple = ()) -> int | None:
        key = (d.name, rank, ins)
        if key not in self.done:
            self.done[key] = None  # (a call cycle is refused elsewhere)
            params = _defaults(d, self.functions, self.work)
            scope = _Scope(bound_names(d), params, {"in": rank, **dict(zip(d.inputs, ins))}, self.functions,
                           self.work)
            self.done[key] = self.body(d.body, rank, scope)
            if d.body and isinstance(d.body[-1], ast.Outputs):
                self.returned[key] = [scope.labels.get(n.id) for n in d.body[-1].names]
        self.outputs = self.returned.get(key, [self.done[key]])
        return self.done[key]

    def body(self, stmts: list[ast.Stmt], rank: int | None, scope: _Scope) -> int | None:
        for s in stmts:
            rank = self.stmt(s, rank, scope)
        return rank

    def stmt(self, s: ast.Stmt, rank: int | None, scope: _Scope) -> int | None:
        if isinstance(s, ast.Labeled):
            self.outputs = []
            rank = self.stmt(s.stmt, rank, scope)
            scope.labels[s.label] = rank
            outs = self.outputs
            for k, name in enumerate(s.more, 1):
                scope.labels[name] = outs[k] if k < len(outs) else None
            return rank
        if isinstance(s, ast.Frozen):
            return self.body(s.body, rank, scope)
        if isinstance(s, ast.Call):
            return self.call(s, rank, scope)
        if isinstance(s, ast.From):
            return scope.labels.get(s.name.id)
        if isinstance(s, ast.Outputs):
            return scope.labels.get(s.names[0].id)
        if isinstance(s, ast.Repeat):
            return self.repeat(s, rank, scope)
        if isinstance(s, ast.If):
            return self.if_(s, rank, scope)
        if isinstance(s, ast.Residual):
            self.body(s.shortcut or [], rank, scope.inner())
            return self.body(s.body, rank, scope.inner())
        if isinstance(s, ast.Merge):
            ranks = [self.body(b, rank, scope.inner()) for b in s.branches]
            return _merged(s.op, ranks)
        if isinstance(s, ast.MergeWith):
            return _merged(s.op, [rank, *(scope.labels.get(n.id) for n in s.names)])
        return rank  # let

    def call(self, c: ast.Call, rank: int | None, scope: _Scope) -> int | None:
        if applies_variable(self.program, c, scope.bound):
            return rank
        op = callee(self.program, c)
        if isinstance(op, ast.Definition):
            try:
                return self.definition(op, rank, tuple(scope.labels.get(n.id) for n in c.inputs))
            except CnnError as e:
                raise e.note(f"in block `{op.name}` called here", c.span) from None
        given = bind(c, op_slots(op), f"`{op.name}`")
        if op.name == "input":  # (`input shape`: the rank of the network parameter's value)
            value = scope.constant(given["shape"].value, scope.params)
            return None if value is _NOT or value is None else len(value) if isinstance(value, tuple) else 1
        if rank is None:
            return None
        values = {}
        for spec in op.args:
            arg = given.get(spec.name)
            values[spec.name] = spec.default if arg is None else scope.constant(arg.value) if spec.rank else _UNKNOWN
            if values[spec.name] is _NOT:
                return None
        if op.sym_shape is None:
            return rank
        try:
            return len(op.sym_shape(CodeArgs(values, [(_UNKNOWN,) * rank])))
        except (CnnError, IndexError, TypeError, ValueError):  # the layer cannot take this rank
            return None

    def repeat(self, s: ast.Repeat, rank: int | None, scope: _Scope) -> int | None:
        counts = [scope.constant(e) for e in (s.start, s.stop) if e is not None]
        if all(c is not _NOT for c in counts):  # a known count: the turns, until the rank repeats
            turns = counts[-1] - (counts[0] if len(counts) == 2 else 0)
            seen: list[int | None] = []
            for _ in range(max(int(turns), 0)):
                if rank in seen:
                    period = len(seen) - seen.index(rank)
                    left = int(turns) - len(seen)
                    return seen[seen.index(rank) + left % period]
                seen.append(rank)
                rank = self.body(s.body, rank, scope)
            return rank
        after = self.body(s.body, rank, scope)
        if None not in (rank, after) and after != rank:
            raise CnnError(f"this `repeat`, whose count a parameter gives, turns {_NAMES[rank]} into "
                           f"{_NAMES[after]}", s.span,
                           "the compiled module is one class for every count: a body that keeps the rank, "
                           "or a count written out")
        return rank

    def if_(self, s: ast.If, rank: int | None, scope: _Scope) -> int | None:
        arms = []
        for arm in s.arms:
            cond = scope.constant(arm.cond)
            if cond is _NOT:
                arms.append(arm.body)
            elif cond is True:
                if not arms:
                    return self.body(arm.body, rank, scope)
                arms.append(arm.body)
                break
        else:
            if not arms:
                return self.body(s.orelse, rank, scope)
            arms.append(s.orelse)
        ranks = [self.body(body, rank, scope) for body in arms]
        known = {r for r in ranks if r is not None}
        if len(known) > 1:
            raise CnnError("the arms of this `if`, whose condition a parameter decides, give "
                           f"{' and '.join(_NAMES[r] for r in sorted(known, reverse=True))}", s.span,
                           "the compiled module is one class for every value of the condition: make every "
                           "arm end in the same rank (`flatten` or `globalavgpool` in each)")
        return known.pop() if known else None


class _NotConstant:
    pass


_NOT = _NotConstant()


class _Scope:
    """The names a definition binds (their values vary), the network's defaults, and named outputs' ranks."""

    def __init__(self, bound: set[str], params: dict, labels: dict, functions: dict, work: Work):
        self.bound, self.params, self.labels, self.functions, self.work = bound, params, labels, functions, work

    def inner(self) -> _Scope:
        return _Scope(self.bound, self.params, {}, self.functions, self.work)

    def constant(self, e: ast.Expr | None, known: dict | None = None):
        """The value of an expression every value of the parameters gives (or those `known` give), or _NOT."""
        known = known or {}
        if e is None or not _closed(e, self.bound - known.keys()):
            return _NOT
        try:
            return evaluate(e, Env(dict(known), None, self.functions, work=self.work))
        except CnnError:
            return _NOT


def _defaults(d: ast.Definition, functions: dict, work: Work) -> dict:
    """A network's parameters as their defaults give them (for `input shape`)."""
    values: dict = {}
    given = Env(values, None, functions, work=work)  # one table a default reads the earlier ones from: 40,000
    for p in d.params if d.kind == "network" else ():  # parameters copied at each would be 800 million steps
        try:
            values[p.name] = evaluate(p.default, given) if p.default is not None else None
        except CnnError:
            values[p.name] = None
    return values


def _merged(op: str, ranks: list[int | None]) -> int | None:
    if not ranks or ranks[0] is None:
        return None
    if op == "multiply":
        return None if None in ranks else max(ranks)
    return ranks[0]

