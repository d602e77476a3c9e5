"""What holds of a program whatever its parameters, checked before anything is expanded.

Elaboration follows only the branches the parameters take; the code generator writes every branch
whose condition depends on a constructor argument. So that `compile` and `build` accept whatever
`check` accepts, every statement of every definition the network can reach is checked here, taken
or not: calls name a layer or a block, arguments bind, constant values have the right kind, blocks do
not call themselves, and braces and block calls nest at most `limits.DEPTH` deep along any path.

Errors are collected, not raised at the first: each statement is checked on its own, so a spec with
an unknown layer, a misspelt argument and a bad value reports all three (`CnnErrors`). A statement
whose check fails adds nothing that later checks depend on (a block call that does not bind reaches
no block), so one mistake is reported once. Shapes are not checked here: the elaborator, which
follows the tensor, still stops at its first error, since the layers after it have no input shape.
"""

from __future__ import annotations

import keyword
from dataclasses import dataclass, field

from cnndsl import limits
from cnndsl.elaborate import functions
from cnndsl.elaborate.args import coerce, held_activation, op_slots
from cnndsl.elaborate.binding import Slot, bind
from cnndsl.elaborate.expr import BUILTINS, Env, Work, evaluate, functions_of
from cnndsl.errors import CnnError, did_you_mean, raise_all
from cnndsl.ops import ALIASES, REGISTRY, Op, lookup, plugins
from cnndsl.ops.foreign import foreign_call, suggestion
from cnndsl.ops.source import MODULE_ATTRIBUTES
from cnndsl.syntax import ast
from cnndsl.syntax.loader import Program


@dataclass
class _Body:
    """What one definition's body holds: its block calls with the brace level they sit at, and the functions
    its expressions call."""

    calls: list[tuple[ast.Definition, int, ast.Call]] = field(default_factory=list)
    nesting: int = 1
    functions: list[tuple[ast.Definition, ast.Func]] = field(default_factory=list)


COLLECTED = 1000  # errors collected at most: past them the check stops (MAX_ERRORS of them are shown)


def validate(program: Program, network: ast.Definition, work: Work | None = None) -> None:
    """Raises the CnnError found in the definitions `network` can reach, or CnnErrors if several (in source
    order)."""
    raise_all(program.in_source_order(collect(program, [network], work)))


def collect(program: Program, roots: list[ast.Definition], work: Work | None = None) -> list[CnnError]:
    """The errors of the definitions the roots can reach (a network, or every definition of a file whose
    network cannot be told), in the order found. The functions they call share `work`."""
    work = work or Work()
    bodies: dict[str, _Body] = {}
    reached: dict[str, tuple[str, ast.Call | ast.Func]] = {}  # block or function → (caller, call) first reaching it
    errors: list[CnnError] = _builtin_names(program)
    variables = functions.variables_of(program.definitions.values())
    todo = list(reversed(roots))
    while todo and len(errors) < COLLECTED:  # every reachable definition once, without recursion
        d = todo.pop()
        if d.name in bodies:
            continue
        bodies[d.name] = body = _Body()
        scanner = _Scanner(program, d, body, work)
        scanner.check(_signature, d)
        if d.kind == "function":
            scanner.check(functions.check_function, d, variables)
        scanner.defaults()
        scanner.check(_returns, d)
        scanner.stmts(d.body, 1)
        errors += (_noted(e, d.name, reached, program) for e in scanner.errors)
        for callee, call in [(c, call) for c, _, call in body.calls] + body.functions:
            if callee.name not in bodies:
                reached.setdefault(callee.name, (d.name, call))
                todo.append(callee)
    for root in roots:
        try:
            _check_depth(root, bodies)
        except _At as at:
            errors.append(_noted(at.error, at.block, reached, program))
            break
    found = {(e.message, str(e.span)): e for e in errors + _function_chains(program, bodies, reached)}
    return list(found.values())  # a constant call is evaluated too: its binding error is found twice


def _function_chains(program: Program, bodies: dict[str, _Body], reached: dict) -> list[CnnError]:
    """Functions that call themselves, and expressions too deep with the functions they call."""
    kinds = {name: getattr(program.definitions.get(name), "kind", None) for name in bodies}
    calls = {name: [(d.name, f) for d, f in body.functions] for name, body in bodies.items()
             if kinds[name] == "function"}
    cycle, order = functions.recursion(calls)
    if cycle is not None:
        return [cycle]
    depths = functions.Depths(program.definitions, order)
    errors = []
    for name in bodies:
        d = program.definitions.get(name)
        if d is None:
            continue
        exprs = [p.default for p in d.params if p.default is not None] + \
            [e for s in ast.statements(d.body) for e in functions.expressions_of(s)]
        for e in exprs:
            try:
                depths.check(e)
            except CnnError as error:
                errors.append(_noted(error, name, reached, program))
                break
    return errors


def _builtin_names(program: Program) -> list[CnnError]:
    errors = [CnnError(f"{d.kind} `{d.name}` has the name of a built-in layer", d.span, "pick another name")
              for d in program.definitions.values() if d.name in REGISTRY or d.name in ALIASES]
    return errors + [CnnError(f"a function cannot be named `{d.name}`: that is a built-in function", d.span,
                              "rename it") for d in program.definitions.values()
                     if d.kind == "function" and d.name in BUILTINS]


def _noted(e: CnnError, block: str, reached: dict[str, tuple[str, ast.Call | ast.Func]], program: Program
           ) -> CnnError:
    """`in block b called here` notes (`in function f`), from where the error is up to the network."""
    seen = set()
    while block in reached and block not in seen:
        seen.add(block)
        caller, call = reached[block]
        kind = program.definitions[block].kind if block in program.definitions else "block"
        e.note(f"in {kind} `{block}` called here", call.span)
        block = caller
    return e


class _At(Exception):
    """An error found in block `block`, to be noted with the calls that lead there."""

    def __init__(self, error: CnnError, block: str):
        self.error, self.block = error, block


class _Scanner:
    def __init__(self, program: Program, d: ast.Definition, out: _Body, work: Work):
        self.program, self.d, self.out = program, d, out
        self.bound = bound_names(d)  # other names are words such as `same` or `relu`: constants
        self.errors: list[CnnError] = []
        self.functions = functions_of(program)
        # the bound names, made once (a network of 40,000 parameters has as many defaults), for "did you mean"
        self.names = Env(dict.fromkeys(self.bound), None, self.functions, work=work)

    def check(self, test, *args) -> None:
        """Runs one check; its error is kept, and the checks of the other parts go on."""
        try:
            test(*args)
        except CnnError as e:
            if len(self.errors) < COLLECTED:
                self.errors.append(e)

    def stmts(self, stmts: list[ast.Stmt], level: int) -> None:
        self.out.nesting = max(self.out.nesting, level)
        for s in stmts:
            self.stmt(s, level)

    def stmt(self, s: ast.Stmt, level: int) -> None:  # recursion bounded by limits.NESTING
        for e in functions.expressions_of(s):
            self.calls(e)
        if isinstance(s, ast.Labeled):
            self.check(_label, s, self.program, self.bound)
            self.stmt(s.stmt, level)
        elif isinstance(s, ast.Frozen):
            for sub in s.body:
                self.stmt(sub, level + 1)
        elif isinstance(s, ast.Call):
            self.check(self.call, s, level)
        elif isinstance(s, ast.Repeat):
            self.check(_binder, s.var, s.span)
            for e, what in ((s.start, "a range start"), (s.stop, "a repeat count")):
                self.check(self._count, e, what)
            self.stmts(s.body, level + 1)
        elif isinstance(s, ast.If):
            for arm in s.arms:
                self.check(self._condition, arm.cond)
                self.stmts(arm.body, level + 1)
            self.stmts(s.orelse, level + 1)
        elif isinstance(s, ast.MergeWith):
            self.check(self.merge_args, s, s.op)
        elif isinstance(s, ast.Residual):
            self.check(self.merge_args, s, "add")
            self.check(self._condition, s.shortcut_if)
            self.stmts(s.body, level + 1)
            self.stmts(s.shortcut or [], level + 1)
        elif isinstance(s, ast.Merge):
            self.check(self.merge_args, s, s.op)
            for branch in s.branches:
                self.stmts(branch, level + 1)
        elif isinstance(s, ast.Let):
            self.check(_binder, s.name, s.span)
            self.check(self._constant, s.value)

    def defaults(self) -> None:
        for p in self.d.params:
            self.calls(p.default)
            self.check(self._constant, p.default)

    def calls(self, e: ast.Expr | None) -> None:
        """The calls in an expression name functions and bind; the functions are checked in turn."""
        for f in functions.calls_in(e):
            try:
                functions.check_call(f, self.program.definitions, lambda d, f=f: self.out.functions.append((d, f)))
            except CnnError as error:
                if len(self.errors) < COLLECTED:
                    self.errors.append(error)

    def _count(self, e: ast.Expr | None, what: str) -> None:
        value = self._constant(e)
        if value is not _UNKNOWN and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or value < 0 or value != int(value)):
            raise CnnError(f"{what} must be a whole number, 0 or more", e.span)

    def _constant(self, e: ast.Expr | None):
        """The value of an expression that names no variable (errors such as 1/0 located); else _UNKNOWN."""
        if e is None or not _closed(e, self.bound):
            return _UNKNOWN
        if any(f.name not in BUILTINS and f.name not in self.functions for f in functions.calls_in(e)):
            return _UNKNOWN  # not a function: its call's error is reported already
        return evaluate(e, self.names)  # the bound names, for "did you mean"

    def _condition(self, e: ast.Expr | None) -> None:
        value = self._constant(e)
        if value is not _UNKNOWN and not isinstance(value, bool):
            raise CnnError("a condition must be true or false", e.span, "compare values: `if stride != 1 { ... }`")

    def merge_args(self, s, op: str) -> None:
        """A merge's own arguments (`add partial=true`) exist, and are written out: the forward computes the
        merge, and one forward serves every value of the block's parameters."""
        if not s.args:
            return
        entry = REGISTRY[op]
        given = bind(ast.Call(op, s.args, s.span), op_slots(entry), f"`{op}`")
        for spec in entry.args:
            arg = given.get(spec.name)
            value = _UNKNOWN if arg is None else self._constant(arg.value)
            if arg is not None and value is _UNKNOWN:
                raise CnnError(f"`{spec.name}` of {op} must be written out (`{spec.name}=true`), not taken from a "
                               "variable", arg.value.span, "the generated forward computes the merge: one form "
                               "serves every call; use an `if` with a merge in each arm")
            if arg is not None:
                coerce(value, spec, arg.value.span, op)

    def call(self, c: ast.Call, level: int) -> None:
        if applies_variable(self.program, c, self.bound):  # `act`: the activation the variable holds
            if c.args:
                held_activation(c, None)
            return
        op = callee(self.program, c)
        if isinstance(op, ast.Definition):
            bind(c, [Slot(p.name, required=p.default is None) for p in op.params], f"block `{op.name}`")
            self.out.calls.append((op, level, c))
            return
        if op.name == "input" and (self.d.kind == "block" or level > 1):  # not in an `if` either
            raise CnnError("`input` must come once, first in the network", c.span,
                           "blocks take the current tensor; only a network has an input")
        given = bind(c, op_slots(op), f"`{op.name}`")
        for spec in op.args:
            arg = given.get(spec.name)
            value = _UNKNOWN if arg is None else self._constant(arg.value)
            if value is not _UNKNOWN:
                coerce(value, spec, arg.value.span, op.name)
            elif arg is not None and spec.rank and not isinstance(arg.value, ast.TupleExpr):
                raise CnnError(f"`{spec.name}` of {op.name} decides the rank of its output: write it out, "
                               "not through a variable", arg.value.span,
                               "compile writes one class for every value of a parameter, so the rank must be "
                               "the same for all of them")


_UNKNOWN = object()


def callee(program: Program, c: ast.Call) -> ast.Definition | Op:
    """The block or the registry entry a call names."""
    block = program.definitions.get(c.name)
    if block is not None:
        if block.kind == "function":
            raise CnnError(f"`{c.name}` is a function: it computes a value, and is called in an expression", c.span,
                           f"give its value to a layer: `conv {c.name}(...)`")
        if block.kind != "block":
            raise CnnError(f"`{c.name}` is a network; only blocks can be called", c.span,
                           f"turn it into `block {c.name}(...)`")
        return block
    op = lookup(c.name)
    if op is None:
        raise _unknown(program, c)
    return op


def _unknown(program: Program, c: ast.Call) -> CnnError:
    """An unknown layer: a pasted Keras or PyTorch call gets its cnndsl line (`MaxPooling2D(2)`: `maxpool 2`), a
    Keras or PyTorch class name the registry's kind, another name the closest layer or block."""
    enabling = plugins.enabling_hint(c.name)  # before any guess: an installed plugin that offers it
    if enabling is not None:
        return CnnError(f"unknown layer `{c.name}`: its plugin is not enabled", c.span, enabling)
    pasted = foreign_call(c.span.source, c.span.line, c.span.col)
    if pasted is not None:
        return pasted
    names = [*REGISTRY, *ALIASES, *(d.name for d in program.definitions.values() if d.kind == "block")]
    hint = suggestion(c.name) or did_you_mean(c.name, names)
    return CnnError(f"unknown layer or block `{c.name}`", c.span, hint or "`cnndsl layers` lists the built-in layers")


def _signature(d: ast.Definition) -> None:
    """Names that the generated Python can bind, and parameters in an order Python accepts."""
    _binder(d.name, d.span)
    if d.kind == "block" and d.name == "_":  # its calls would be named `__1`, `__2`: reserved names
        raise CnnError("a block cannot be named `_`: its calls would be named `__1`, `__2`..., which are reserved",
                       d.span, "give the block a name")
    defaulted = None
    for p in d.params:
        _binder(p.name, p.span)
        if p.default is not None:
            defaulted = p
        elif defaulted is not None:
            raise CnnError(f"parameter `{p.name}` has no default but follows `{defaulted.name}`, which has one",
                           p.span, f"give `{p.name}` a default, or move it before `{defaulted.name}`")


def _binder(name: str | None, span) -> None:
    if name is not None and name.startswith("__"):
        raise CnnError(f"`{name}`: names that start with `__` are reserved", span, "rename it")


def _label(s: ast.Labeled, program: Program, bound: set[str]) -> None:
    """An output's name is a module attribute in the generated code: `self.e1`."""
    if isinstance(s.stmt, ast.Call) and applies_variable(program, s.stmt, bound):
        raise CnnError(f"a name cannot label `{s.stmt.name}`: the activation the variable holds may be none, "
                       "which makes no layer", s.span, "label the layer before it, or write the activation itself")
    for name in [s.label, *s.more]:
        _output_name(name, s.span, "an output")
    if s.more and not isinstance(s.stmt, ast.Call):
        raise CnnError(f"{len(s.more) + 1} names for a statement that gives one tensor", s.span,
                       "only a block call gives several, where the block ends in `return a, b`")


def _output_name(name: str, span, what: str) -> None:
    why = ("every PyTorch module has an attribute of that name" if name in MODULE_ATTRIBUTES
           else "it is a Python keyword" if keyword.iskeyword(name)
           else "it starts with `_`" if name.startswith("_") else None)
    if why:
        raise CnnError(f"`{name}` cannot name {what}: {why}", span, "pick another name")


def _returns(d: ast.Definition) -> None:
    """`return a, b` ends a block (its top level: one forward returns it), and a block's inputs are distinct names."""
    seen: set[str] = set()
    for name in d.inputs:
        _output_name(name, d.span, "a block's input")
        if name in seen:
            raise CnnError(f"block `{d.name}` takes the input `{name}` twice", d.span, "name each input once")
        seen.add(name)
    for s in ast.statements(d.body):
        if isinstance(s, ast.Outputs) and (d.kind != "block" or s is not d.body[-1]):
            where = "a network: its output is its last tensor" if d.kind == "network" else (
                "its block's last statement, outside `if`, `repeat`, merges and residuals")
            raise CnnError(f"`return` here: it may only be {where}", s.span,
                           "name the tensors and return them at the end: `return a, b`"
                           if d.kind == "block" else "end the network with the layer that gives its output")


def applies_variable(program: Program, c: ast.Call, bound: set[str]) -> bool:
    """Whether the statement `c` applies the activation a variable holds (`act`, a parameter): it names a
    variable of its definition (`bound`) and no layer or block. Layers and blocks come first, so that no
    spec written before activations were values changes meaning."""
    return c.name in bound and c.name not in program.definitions and lookup(c.name) is None


def bound_names(d: ast.Definition) -> set[str]:
    """The names a definition binds anywhere: its parameters, `let`s and loop variables."""
    names = {p.name for p in d.params}
    for s in ast.statements(d.body):
        if isinstance(s, ast.Let):
            names.add(s.name)
        elif isinstance(s, ast.Repeat) and s.var:
            names.add(s.var)
    return names


def _closed(e: ast.Expr, bound: set[str]) -> bool:
    """Whether an expression's value is the same wherever it stands: no variable, no `in`."""
    return not any(isinstance(node, ast.InAttr) or (isinstance(node, ast.Name) and node.id in bound)
                   for node in ast.walk(e))


def _check_depth(network: ast.Definition, bodies: dict[str, _Body]) -> None:
    """Refuses paths of braces and calls deeper than limits.DEPTH.

    A depth-first walk with its own stack: a chain of a thousand blocks is refused, not a RecursionError.
    depth[b] is how deep b's body reaches: its own braces, plus, at each call, the callee's depth. A block that
    calls itself (a tree) is left to elaboration, which follows its calls only as deep as its parameters take them
    and refuses them past limits.RECURSION; here a call back up the path counts its own braces alone.
    """
    depth: dict[str, int] = {}
    path: list[tuple[ast.Definition, int, ast.Call | None]] = [(network, 0, None)]  # with how it was called
    pending = [iter(bodies[network.name].calls)]
    while pending:
        d = path[-1][0]
        step = next(pending[-1], None)
        if step is None:  # d is done
            pending.pop()
            _, level, call = path.pop()
            body = bodies[d.name]
            depth[d.name] = max([body.nesting] + [lv + depth.get(b.name, 0) for b, lv, _ in body.calls])
            if call is not None:
                _deep_enough(level + depth[d.name], call, path[-1][0].name)
            continue
        callee, level, call = step
        on_path = [p.name for p, _, _ in path]
        if callee.name in on_path:  # recursion
            continue
        if callee.name in depth:
            _deep_enough(level + depth[callee.name], call, d.name)
            continue
        _deep_enough(level + len(path), call, d.name)  # at least this deep already: stop a long chain early
        path.append((callee, level, call))
        pending.append(iter(bodies[callee.name].calls))


def _deep_enough(depth: int, call: ast.Call, block: str) -> None:
    if depth > limits.DEPTH:
        raise _At(CnnError(f"braces and block calls nest more than {limits.DEPTH} levels deep through this "
                           "call", call.span, "flatten the chain of blocks calling blocks"), block)
