"""Checked program → readable PyTorch source: a class per block definition, one for the network.

Each class mirrors its definition: parameters become constructor arguments, `if` and `repeat` become
Python `if` and `for`, and layers are added through `Chain.add(kind, module)`, which names them as
`cnndsl check` does, so a module's path in the built network is the layer's name in the report.
Values known at generation time are folded (`3 * 4` → 12); the rest stays Python source.
"""

from __future__ import annotations

import builtins
import keyword
import re
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from cnndsl.build import FORBIDDEN
from cnndsl.codegen import prelude
from cnndsl.codegen.symbolic import evaluate
from cnndsl.elaborate.args import Slot, bind, coerce
from cnndsl.errors import CnnError, Span
from cnndsl.ops import REGISTRY, Args, CodeArgs, lookup
from cnndsl.ops.source import ATOM, MODULE_ATTRIBUTES, Src, as_int, docstring, is_known, is_real, literal, py
from cnndsl.syntax import ast
from cnndsl.syntax.loader import Program

# Names the generated code uses itself, Python's builtins, and what build.vet refuses: a spec name equal to
# one of them gets a trailing `_` (a parameter `eval` is `eval_`).
RESERVED = {"self", "nn", "torch", "F", "math", "in_channels", "in_features", "in_size", "in_height", "in_width",
            "x", "x_in", "current", "frozen", *prelude.HELPERS, *dir(builtins), *FORBIDDEN}


def pyname(name: str) -> str:
    return name + "_" if keyword.iskeyword(name) or name in RESERVED else name


def camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part) or "Block"


class Unsupported(CnnError):
    """A construct `cnndsl check` accepts but the code generator cannot write yet."""


# ---- writing lines --------------------------------------------------------------------------------------


@dataclass
class Lines:
    """Lines of one function body, with indentation and fresh local names."""

    lines: list[str] = field(default_factory=list)
    indent: int = 2
    taken: set[str] = field(default_factory=set)
    carried: list[str] = field(default_factory=list)  # shape variables of loops, dropped if never read
    scratch: bool = False  # only the shapes are wanted: lines are thrown away
    exact: bool = False  # the shapes must not name this function's variables (a caller wants them)

    def add(self, text: str) -> None:
        if not self.scratch:
            self.lines.append("    " * self.indent + text)

    @contextmanager
    def nested(self, header: str):
        """An indented block under `header`; `pass` if its statements wrote no line (`let` alone)."""
        self.add(header)
        before = len(self.lines)
        self.indent += 1
        yield
        if len(self.lines) == before:
            self.add("pass")
        self.indent -= 1

    def drop_unread(self, names: list[str]) -> None:
        """Removes `name = ...` lines of variables no other line reads (sizes nothing needed)."""
        for name in names:
            pattern = re.compile(rf"\b{name}\b")
            assigned = re.compile(rf"^\s*{name} = ")
            if not any(pattern.search(line) and not assigned.match(line) for line in self.lines):
                self.lines = [line for line in self.lines if not assigned.match(line)]

    def local(self, base: str) -> str:
        name, n = base, 1
        while name in self.taken:
            n += 1
            name = f"{base}_{n}"
        self.taken.add(name)
        return name


@dataclass
class Ctx:
    """Where statements go and what they see: the chain being filled, the current shape, names."""

    chain: str  # Python expression of the Chain being filled
    shape: tuple  # current output shape: ints, or Src
    names: dict  # spec variables → values or Src
    in_shape: tuple  # `in`
    labels: dict = field(default_factory=dict)  # named output → (Python expr of its child name, shape)
    pending: list | None = None  # inputs of the next layer, after `from`
    frozen: bool = False
    # the kind of layer that made the current tensor in straight-line code of this chain, when nothing
    # else reads it: a relu may then overwrite it in place, as torchvision's do
    made_by: str | None = None
    cls: ClassState | None = None  # set where `chain` is the class itself
    dynamic: bool = False  # inside an `if` or a loop decided at construction
    assign: frozenset[str] = frozenset()  # names a `let` must assign as Python variables (a loop carries them)
    dead: bool = False  # this code raises at construction (see Generator.body)


class _Dynamic(Exception):
    """The class's own children depend on constructor arguments: write it as a Chain instead."""


UNROLL = 16  # a `repeat` with a known count up to this many turns is written out in a fixed class


@dataclass
class ClassState:
    """The children of the class being written, when they are fixed (`self.conv1 = ...` and a forward).

    Names follow Chain.add: kind + a counter per kind, labels as given (`_2` on a repeat).
    """

    static: bool
    counts: dict[str, int] = field(default_factory=dict)
    children: list[tuple[str, list[str] | None]] = field(default_factory=list)  # name, inputs ("" = previous)
    taken: set[str] = field(default_factory=set)  # the names in children
    result: str | None = None  # the child whose output the forward returns, when not the last (`from e1`)

    def add(self, name: str, inputs: list[str] | None) -> None:
        self.children.append((name, inputs))
        self.taken.add(name)

    def name(self, kind: str, label: str | None) -> str:
        taken = self.taken
        if label is not None:
            name, n = label, 1
            while name in taken:
                n += 1
                name = f"{label}_{n}"
            return name
        while True:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            name = f"{kind}{self.counts[kind]}"
            if name not in taken:
                return name


@dataclass
class BlockClass:
    name: str
    source: str
    needs_size: bool
    rank: int


# ---- the generator --------------------------------------------------------------------------------------


class Generator:
    def __init__(self, program: Program):
        self.program = program
        self.classes: dict[tuple[str, int], BlockClass] = {}
        self.generating: list[str] = []  # blocks whose class is being written, to refuse recursion
        self.class_names: set[str] = set(prelude.HELPERS)
        self.examples: dict[str, object] = {}  # the network's parameters as check saw them (the input's rank)
        self.numeric: dict[str, set[str]] = {}  # block → parameters only ever given numbers (numeric_params)

    # -- files

    def module(self, network: ast.Definition, header: str, overrides: dict, ends_in_softmax: bool = False
               ) -> tuple[str, str]:
        """The whole file, and the network's class name; `overrides` become the class's defaults.

        A network whose last top-level layer is a softmax also gets `logits()`: the runner trains on it.
        """
        net_name, net_source = self.network_class(network, overrides, ends_in_softmax)
        classes = [c.source for c in self.classes.values()] + [net_source]
        helpers = prelude.helpers_source(prelude.used(classes))
        main = _MAIN.format(name=net_name)
        parts = [header, prelude.imports(helpers + "".join(classes) + main), helpers]
        parts += ["\n" + c for c in classes]
        parts.append(main)
        return "\n".join(p.rstrip("\n") + "\n" for p in parts if p).replace("\n\n\n\n", "\n\n\n"), net_name

    def class_name(self, base: str) -> str:
        name, n = camel(base), 1
        while name in self.class_names or keyword.iskeyword(name) or name in RESERVED:  # not `None`, `F`
            n += 1
            name = f"{camel(base)}{n}"
        self.class_names.add(name)
        return name

    def network_class(self, d: ast.Definition, overrides: dict, ends_in_softmax: bool) -> tuple[str, str]:
        lines, params, state = self.write_class(d, (), set(), overrides)
        name = self.class_name(d.name)
        doc = docstring(f"network {ast.signature(d)} ({d.span.source.name}:{d.span.line}).")
        init = ["    def __init__(self" + "".join(f", {p}" for p in params) + ") -> None:",
                "        super().__init__()", *lines.lines]
        if ends_in_softmax:
            init.append("        self.ends_in_softmax = True  # model(x) gives probabilities; train on logits(x)")
        methods = _methods(state, ends_in_softmax)
        base = "nn.Module" if state.static else "Chain"
        src = "\n".join([f"class {name}({base}):", f"    {doc}", "", *init, *methods]) + "\n"
        return name, src

    def write_class(self, d: ast.Definition, in_shape: tuple, taken: set[str], overrides: dict | None = None
                    ) -> tuple[Lines, list[str], ClassState]:
        """The body of a class's __init__: with fixed children if it can, else as a Chain."""
        for static in (True, False):
            lines = Lines(taken=set(taken))
            params, names = self.signature(d, lines, {}, in_shape, overrides)
            state = ClassState(static)
            ctx = Ctx("self", in_shape, names, in_shape, cls=state)
            try:
                self.body(d.body, ctx, lines)
            except _Dynamic:
                continue
            if ctx.pending is not None:  # the body ends in `from e1`: e1 is the output
                if static:
                    state.result = ctx.pending[0]
                else:
                    lines.add(f"self.result = {ctx.pending[0]}")
            lines.drop_unread(lines.carried)
            return lines, params, state
        raise AssertionError("the Chain form always works")

    def signature(self, d: ast.Definition, lines: Lines, names: dict, in_shape: tuple,
                  overrides: dict | None = None) -> tuple[list[str], dict]:
        """Constructor parameters; defaults that are not literals are computed in the body."""
        params = []
        lines.taken.update(pyname(p.name) for p in d.params)
        for p in d.params:
            py_name = pyname(p.name)
            names[p.name] = Src(py_name)
            if overrides and p.name in overrides:
                value = overrides[p.name]
                params.append(f"{py_name}{_annotation(value)} = {py(value)}")
            elif p.default is None:
                params.append(py_name)
                value = None
            elif isinstance(p.default, ast.Const):
                value = p.default.value
                params.append(f"{py_name}{_annotation(value)} = {py(value)}")
            else:
                params.append(f"{py_name}=None")
                value = evaluate(p.default, dict(names), in_shape)
                with lines.nested(f"if {py_name} is None:"):
                    lines.add(f"{py_name} = {py(value)}")
            word = not _numeric(value) if overrides is not None else p.name not in self.numeric_params(d)
            names[p.name] = Src(py_name, real=is_real(value), word=word)  # q = 1.0: int(q) for a count
            if overrides is not None:  # the network's: the values check used
                self.examples[p.name] = value
        return params, names

    def numeric_params(self, d: ast.Definition) -> set[str]:
        """The block's parameters that every call in the program gives a number or a pair (and whose
        default is one): a `padding=padding` then goes to PyTorch as it is, never as `same`."""
        if d.name not in self.numeric:
            given = {p.name: [p.default] if p.default is not None else [] for p in d.params}
            slots = [Slot(p.name, required=p.default is None) for p in d.params]
            for other in self.program.definitions.values():
                for s in ast.statements(other.body):
                    if isinstance(s, ast.Call) and s.name == d.name:
                        for name, arg in bind(s, slots, f"block `{d.name}`").items():
                            given[name].append(arg.value)
            self.numeric[d.name] = {name for name, exprs in given.items() if all(map(_number_valued, exprs))}
        return self.numeric[d.name]

    def block_class(self, d: ast.Definition, rank: int, span: Span) -> BlockClass:
        key = (d.name, rank)
        if key in self.classes:
            return self.classes[key]
        if d.name in self.generating:
            cycle = " → ".join([*self.generating[self.generating.index(d.name):], d.name])
            raise CnnError(f"block `{d.name}` calls itself ({cycle})", span,
                           "blocks cannot be recursive, even in a branch not taken; use `repeat`")
        if any(k[0] == d.name for k in self.classes):
            raise Unsupported(f"block `{d.name}` is called on images and on flat vectors; compile cannot write "
                              "one class for both yet", span)
        self.generating.append(d.name)
        try:
            return self._block_class(d, rank, key)
        finally:
            self.generating.pop()

    def _block_class(self, d: ast.Definition, rank: int, key: tuple[str, int]) -> BlockClass:
        first = "in_channels" if rank == 3 else "in_features"
        in_shape = (Src("in_channels"), Src("in_height"), Src("in_width")) if rank == 3 else (Src("in_features"),)
        body, params, state = self.write_class(d, in_shape, {"in_channels", "in_height", "in_width",
                                                             "in_features", "in_size"})
        text = "\n".join(body.lines)
        needs_size = "in_height" in text or "in_width" in text
        head = [first + ": int"] + (["in_size: tuple[int, int]"] if needs_size else []) + params
        init = ["    def __init__(self, " + ", ".join(head) + ") -> None:", "        super().__init__()"]
        if needs_size:
            init.append("        in_height, in_width = in_size")
        doc = docstring(f"block {ast.signature(d)} ({d.span.source.name}:{d.span.line}).")
        name = self.class_name(d.name)
        base = "nn.Module" if state.static else "Chain"
        src = "\n".join([f"class {name}({base}):", f"    {doc}", "", *init, *body.lines, *_methods(state)]) + "\n"
        self.classes[key] = BlockClass(name, src, needs_size, rank)
        return self.classes[key]

    # -- statements

    def body(self, stmts: list[ast.Stmt], ctx: Ctx, lines: Lines) -> None:
        for s in stmts:
            try:
                self.stmt(s, ctx, lines, None)
            except (CnnError, IndexError, TypeError, ValueError) as e:
                if not ctx.dynamic or isinstance(e, Unsupported):
                    raise
                # an error in code decided at construction, where check never went (else it would have
                # failed; a layer given an input of the wrong rank fails in the registry's code): the
                # module raises it, should these arguments ever be given
                lines.add(f"raise ValueError({literal(_located(e, s))})")
                ctx.dead = True
                return

    def stmt(self, s: ast.Stmt, ctx: Ctx, lines: Lines, label: str | None) -> None:
        if isinstance(s, ast.Labeled):
            self.stmt(s.stmt, ctx, lines, s.label)
            return
        if isinstance(s, ast.Frozen):
            inner = replace(ctx, frozen=True)
            for i, sub in enumerate(s.body):
                self.stmt(sub, inner, lines, label if i == len(s.body) - 1 else None)
            ctx.shape, ctx.pending = inner.shape, inner.pending
            return
        handler = {ast.Call: self.call, ast.Let: self.let, ast.Repeat: self.repeat, ast.If: self.if_,
                   ast.Residual: self.residual, ast.Merge: self.merge, ast.MergeWith: self.merge_with,
                   ast.From: self.from_}[type(s)]
        handler(s, ctx, lines, label)

    def let(self, s: ast.Let, ctx: Ctx, lines: Lines, label) -> None:
        value = evaluate(s.value, ctx.names, ctx.in_shape)
        if s.name in ctx.assign:  # a variable the enclosing loop carries
            lines.add(f"{pyname(s.name)} = {py(value)}")
            return
        if is_known(value) or lines.exact:  # a caller's view keeps the expression, not a local name
            ctx.names[s.name] = value
        else:
            name = pyname(s.name)
            lines.taken.add(name)
            lines.add(f"{name} = {py(value)}")
            ctx.names[s.name] = Src(name, real=is_real(value))

    def from_(self, s: ast.From, ctx: Ctx, lines: Lines, label) -> None:
        ref, shape = self.label_ref(s.name, ctx)
        ctx.pending = [ref]
        ctx.shape = shape
        ctx.made_by = None

    def label_ref(self, name: ast.Name, ctx: Ctx) -> tuple[str, tuple]:
        if name.id not in ctx.labels:  # check scopes names as this does: only where check never went
            raise CnnError(f"no output is named `{name.id}` here", name.span)
        return ctx.labels[name.id]

    # -- layers

    def add(self, ctx: Ctx, lines: Lines, kind: str, src: str, shape: tuple, label: str | None,
            inputs: list[str] | None = None) -> None:
        """`chain.add(kind, module)`; a label names the child, and `from` wires it."""
        if ctx.pending is not None and inputs is None:
            inputs = ctx.pending
        ctx.pending = None
        if ctx.frozen:
            src = f"frozen({src})"
        if label in MODULE_ATTRIBUTES or (label or ' ').startswith('_'):
            raise Unsupported(f"`{label}` names an attribute every PyTorch module has; pick another name")
        if ctx.cls is not None and ctx.cls.static:
            if ctx.dynamic:
                raise _Dynamic()
            name = ctx.cls.name(kind, label)
            lines.add(f"self.{name} = {src}")
            ctx.cls.add(name, inputs)
            if label is not None:
                ctx.labels[label] = (name, shape)
        else:
            args = [literal(kind), src]
            if label is not None:
                args.append(f"name={literal(label)}")
            if inputs is not None:
                args.append("inputs=[" + ", ".join('""' if i == "" else i for i in inputs) + "]")
            call = f"{ctx.chain}.add({', '.join(args)})"
            if label is not None:
                var = lines.local(pyname(label) + "_out")
                lines.add(f"{var} = {call}")
                ctx.labels[label] = (var, shape)
            else:
                lines.add(call)
        ctx.shape = shape
        ctx.made_by = kind if label is None else None

    def call(self, c: ast.Call, ctx: Ctx, lines: Lines, label: str | None) -> None:
        block = self.program.definitions.get(c.name)
        if block is not None:
            self.block_call(block, c, ctx, lines, label)
            return
        op = lookup(c.name)
        if op.name == "input":
            value = self.layer_values(op, c, ctx)["shape"]
            if isinstance(value, Src):  # `input shape`, a network parameter: its rank is its value's
                example = evaluate(c.args[0].value, self.examples, ())
                rank = len(example) if isinstance(example, tuple) else 1
                value = tuple(Src(f"{py(value, ATOM)}[{i}]") for i in range(rank)) if rank > 1 else value
            ctx.shape = ctx.in_shape = value if isinstance(value, tuple) else (value,)
            lines.add(f"self.input_shape = {py(ctx.shape)}")
            if label is not None:  # `x: input ...` and later `from x`
                ctx.labels[label] = (INPUT if ctx.cls is not None and ctx.cls.static else literal(INPUT), ctx.shape)
            return
        values = self.layer_values(op, c, ctx)
        activation = values.pop("activation", "none")
        g = CodeArgs(values, [ctx.shape])
        src = _inplace(op.torch(g), op.name, ctx)
        self.add(ctx, lines, op.name, src, self.out_shape(op, g), label)
        if not is_known(activation):  # a constructor argument: its kind, and so the child's name, vary
            self.activation_argument(activation, ctx, lines)
        elif activation != "none":
            act = REGISTRY[activation]
            src = _inplace(act.torch(CodeArgs(act.defaults(), [ctx.shape])), act.name, ctx)
            self.add(ctx, lines, act.name, src, ctx.shape, None)

    def activation_argument(self, activation: Src, ctx: Ctx, lines: Lines) -> None:
        """`activation=act` where `act` is a parameter: a child made by `make_activation` in a Chain."""
        if ctx.cls is not None and ctx.cls.static:
            raise _Dynamic()
        with lines.nested(f"if {py(activation)} not in (\"none\", \"linear\"):"):
            lines.add(f"{ctx.chain}.add(*make_activation({py(activation)}))")
        ctx.made_by = None

    def layer_values(self, op, c: ast.Call, ctx: Ctx) -> dict:
        given = bind(c, [Slot(a.name, a.aliases, a.positional, False) for a in op.args], f"`{op.name}`")
        values = {}
        for spec in op.args:
            arg = given.get(spec.name)
            if arg is None:
                values[spec.name] = spec.default
                continue
            value = evaluate(arg.value, ctx.names, ctx.in_shape)
            if is_known(value):
                values[spec.name] = coerce(value, spec, arg.span, op.name)
            else:  # a whole float such as `filters / 2` is fine for check; PyTorch wants an int
                values[spec.name] = as_int(value) if spec.kind in _INT_KINDS else value
        return values

    def out_shape(self, op, g: CodeArgs) -> tuple:
        if is_known(tuple(g.values.values())) and all(is_known(s) for s in g.ins):
            return op.shape(Args(dict(g.values)), [tuple(s) for s in g.ins])
        return op.sym_shape(g) if op.sym_shape else g.ins[0]

    def block_call(self, d: ast.Definition, c: ast.Call, ctx: Ctx, lines: Lines, label: str | None) -> None:
        rank = len(ctx.shape)
        cls = self.block_class(d, rank, c.span)
        given = bind(c, [Slot(p.name, required=p.default is None) for p in d.params], f"block `{d.name}`")
        values = {p.name: evaluate(given[p.name].value, ctx.names, ctx.in_shape) for p in d.params
                  if p.name in given}
        parts = [py(ctx.shape[0])]
        if cls.needs_size:
            parts.append(py(ctx.shape[1:]))
        positional = sum(1 for a in c.args if a.name is None)
        parts += [py(_whole(values[p.name])) for p in d.params[:positional]]
        parts += [f"{pyname(a.name)}={py(_whole(values[a.name]))}" for a in c.args if a.name is not None]
        shape, made_by = self.block_shape(d, ctx.shape, values, c.span)
        self.add(ctx, lines, d.name, f"{cls.name}({', '.join(parts)})", shape, label)
        if label is None and _overwritable(made_by):
            ctx.made_by = made_by  # what the block's own last layer is

    def block_shape(self, d: ast.Definition, in_shape: tuple, values: dict, span: Span) -> tuple[tuple, str | None]:
        """The block's output shape for these arguments, and what made it: its body run for shapes only."""
        names: dict = {}
        for p in d.params:
            names[p.name] = values[p.name] if p.name in values else evaluate(p.default, dict(names), in_shape)
        ctx = Ctx("_", in_shape, names, in_shape)
        try:
            self.body(d.body, ctx, Lines(scratch=True, exact=True))
        except Unsupported as e:
            raise e.note(f"in block `{d.name}` called here", span) from None
        return ctx.shape, ctx.made_by

    # -- control flow

    def repeat(self, s: ast.Repeat, ctx: Ctx, lines: Lines, label) -> None:
        start = 0 if s.start is None else evaluate(s.start, ctx.names, ctx.in_shape)
        stop = evaluate(s.stop, ctx.names, ctx.in_shape)
        var = "_"
        if s.var:  # a loop inside a loop over the same name must not overwrite the outer one
            var = lines.local(pyname(s.var)) if s.var in ctx.names else pyname(s.var)
        count = stop - start if is_known((start, stop)) else None
        if not (isinstance(count, int) and not isinstance(count, bool) and isinstance(start, int)):
            count = None  # not a count check could take (an untaken branch): written as a loop, never folded
        elif count <= 0:  # `repeat i in 5..3` runs no turn, as in check
            return
        fixed = ctx.cls is not None and ctx.cls.static and not ctx.dynamic
        if count is not None and (lines.scratch or (fixed and count <= UNROLL)):
            saved = ctx.names.get(s.var, _UNSET) if s.var else _UNSET
            for i in range(start, stop):  # shapes only, or a fixed class: write out every turn
                if s.var:
                    ctx.names[s.var] = i
                self.body(s.body, ctx, lines)
            if s.var:
                ctx.names.pop(s.var, None) if saved is _UNSET else ctx.names.__setitem__(s.var, saved)
            return
        start, stop = as_int(start), as_int(stop)
        loop = f"for {var} in range({py(stop)})" if start == 0 else f"for {var} in range({py(start)}, {py(stop)})"
        ctx.made_by = None
        inner = replace(ctx, names=dict(ctx.names), dynamic=True)
        if s.var:
            inner.names[s.var] = Src(var)
            lines.taken.add(var)
        trial = replace(inner, names=dict(inner.names), labels=dict(ctx.labels))
        self.body(s.body, trial, Lines(scratch=True, taken=set(lines.taken)))
        rebound = [n for n in trial.names if n != s.var and trial.names[n] != inner.names.get(n, _UNSET)]
        if rebound and lines.exact:
            raise Unsupported("compile cannot yet follow a `let` through this `repeat` (its count is a parameter)",
                              s.span)
        for name in rebound:  # a `let` in the loop carries its value from turn to turn: a Python variable
            local = pyname(name)
            lines.taken.add(local)
            before = ctx.names.get(name, _UNSET)  # (a name new in the loop is defined after it if it ran)
            if before is not _UNSET and before != Src(local):
                lines.add(f"{local} = {py(before)}")
            real = is_real(before) or is_real(trial.names[name])
            ctx.names[name] = inner.names[name] = Src(local, real=real)
        inner.assign = frozenset(rebound)
        carried = [i for i, (a, b) in enumerate(zip(ctx.shape, trial.shape)) if a != b]
        if len(trial.shape) != len(ctx.shape):
            raise Unsupported("compile cannot yet write a `repeat` whose body changes the rank of its input",
                              s.span)
        if carried:
            names = [lines.local(("channels", "height", "width")[i] if len(ctx.shape) == 3 else "features")
                     for i in carried]
            lines.carried += names
            for i, name in zip(carried, names):
                lines.add(f"{name} = {py(ctx.shape[i])}")
            inner.shape = tuple(Src(names[carried.index(i)]) if i in carried else d for i, d in enumerate(ctx.shape))
        with lines.nested(loop + ":"):
            self.body(s.body, inner, lines)
            for i, name in zip(carried, names if carried else []):
                if inner.shape[i] != Src(name):
                    lines.add(f"{name} = {py(inner.shape[i])}")
        if carried and not lines.exact:
            ctx.shape = tuple(Src(names[carried.index(i)]) if i in carried else d for i, d in enumerate(ctx.shape))
        elif carried:
            raise Unsupported("compile cannot yet follow the shape through this `repeat` (its count is a "
                              "parameter and its body changes the shape)", s.span)
        ctx.pending = inner.pending
        ctx.made_by = None

    def if_(self, s: ast.If, ctx: Ctx, lines: Lines, label) -> None:
        arms, orelse = [], s.orelse
        for arm in s.arms:  # conditions known now are folded away
            cond = evaluate(arm.cond, ctx.names, ctx.in_shape)
            if not is_known(cond):
                arms.append((cond, arm.body))
            elif cond:
                orelse = arm.body
                break
        if not arms:
            self.body(orelse, ctx, lines)
            return
        outs, ends = [], []  # ends: where each arm's lines end, and their indent (None: no `else:` written)
        for i, (cond, stmts) in enumerate([*arms, (None, orelse)]):
            sub = replace(ctx, names=dict(ctx.names), dynamic=True)
            outs.append(sub)
            if cond is None and not stmts:
                ends.append(None)
                continue
            with lines.nested(f"{'if' if i == 0 else 'elif'} {py(cond)}:" if cond is not None else "else:"):
                self.body(stmts, sub, lines)
                ends.append((len(lines.lines), lines.indent))
        live = next((o for o in reversed(outs) if not o.dead), ctx)
        for o in outs:  # an arm that raises at construction leaves nothing after the `if`
            if o.dead:
                o.shape, o.names, o.made_by, o.pending = live.shape, live.names, None, live.pending
        if len({len(o.shape) for o in outs}) > 1:
            raise Unsupported("compile cannot yet write an `if` whose branches give different ranks", s.span)
        conds = [cond for cond, _ in arms]
        ctx.shape = tuple(_chosen(conds, [o.shape[k] for o in outs]) for k in range(len(outs[0].shape)))
        for name in dict.fromkeys(n for o in outs for n in o.names):  # a `let` in an arm binds it after the `if`
            known = next(o.names[name] for o in outs if name in o.names)  # (where an arm binds nothing,
            ctx.names[name] = _chosen(conds, [o.names.get(name, known) for o in outs])  # check fails there)
        if all(o.pending == outs[0].pending for o in outs):
            ctx.pending = outs[0].pending
        else:
            ctx.pending = [self.current_tensor(outs, ends, ctx, lines)]
        safe = all(_overwritable(o.made_by) for o in outs)
        ctx.made_by = outs[0].made_by if safe else None

    def current_tensor(self, outs: list[Ctx], ends: list, ctx: Ctx, lines: Lines) -> str:
        """A variable naming what the next layer reads, where arms differ (`if skip { from e1 }`):
        each arm sets it, "" meaning the last layer added. Only a Chain can wire at construction."""
        if ctx.cls is not None and ctx.cls.static:
            raise _Dynamic()
        var = lines.local("current")
        refs = [o.pending[0] if o.pending else '""' for o in outs]
        if lines.scratch:
            return var
        for end, ref in reversed(list(zip(ends, refs))):
            if end is not None:
                pos, pad = end[0], "    " * end[1]
                if lines.lines[pos:pos + 1] == [pad + "pass"]:  # the arm's only line was a `pass`
                    del lines.lines[pos]
                lines.lines.insert(pos, pad + f"{var} = {ref}")
        if ends[-1] is None:
            with lines.nested("else:"):
                lines.add(f"{var} = {refs[-1]}")
        return var

    # -- merges

    def branch(self, stmts, ctx: Ctx, lines: Lines, local: str) -> tuple[str, Ctx]:
        """A Chain in local variable `local`, filled with the statements."""
        lines.add(f"{local} = Chain()")
        sub = Ctx(local, ctx.shape, dict(ctx.names), ctx.in_shape)
        self.body(stmts, sub, lines)
        if sub.pending is not None:  # the branch ends in `from e1`
            lines.add(f"{local}.result = {sub.pending[0]}")
        return local, sub

    def residual(self, s: ast.Residual, ctx: Ctx, lines: Lines, label: str | None) -> None:
        body, sub = self.branch(s.body, ctx, lines, lines.local("body"))
        shortcut = "None"
        if s.shortcut is not None:
            cond = True if s.shortcut_if is None else evaluate(s.shortcut_if, ctx.names, ctx.in_shape)
            if cond is True:
                shortcut, _ = self.branch(s.shortcut, ctx, lines, lines.local("shortcut"))
            elif cond is not False:
                shortcut = lines.local("shortcut")
                lines.add(f"{shortcut} = None")
                with lines.nested(f"if {py(cond)}:"):
                    self.branch(s.shortcut, ctx, lines, shortcut)
        inplace = ", inplace=True" if _overwritable(sub.made_by) and sub.made_by != "residual" else ""
        self.add(ctx, lines, "residual", f"Residual({body}, {shortcut}{inplace})", sub.shape, label)

    def merge(self, s: ast.Merge, ctx: Ctx, lines: Lines, label: str | None) -> None:
        names, shapes = [], []
        for i, stmts in enumerate(s.branches, 1):
            local, sub = self.branch(stmts, ctx, lines, lines.local(f"branch{i}"))
            names.append(local)
            shapes.append(sub.shape)
        op = REGISTRY[s.op]
        shape = self.out_shape(op, CodeArgs({}, shapes))
        self.add(ctx, lines, s.op, f"Merge({literal(s.op)}, [{', '.join(names)}])", shape, label)

    def merge_with(self, s: ast.MergeWith, ctx: Ctx, lines: Lines, label: str | None) -> None:
        refs = [self.label_ref(n, ctx) for n in s.names]
        op = REGISTRY[s.op]
        g = CodeArgs({}, [ctx.shape, *(shape for _, shape in refs)])
        src = op.torch(g)
        inputs = ["" if ctx.pending is None else ctx.pending[0], *(ref for ref, _ in refs)]
        ctx.pending = None
        self.add(ctx, lines, s.op, src, self.out_shape(op, g), label, inputs)


_INT_KINDS = {"int", "pair", "ints", "shape", "padding"}


def _whole(value):
    """A block's argument: 2 for 2.0, and `whole(f / 2)` where a float may come, as the checker does."""
    if isinstance(value, tuple):
        return tuple(_whole(v) for v in value)
    if isinstance(value, Src) and value.real:
        return Src(f"whole({value.text})")
    return as_int(value) if isinstance(value, float) else value


def _numeric(v) -> bool:
    if isinstance(v, tuple):
        return all(map(_numeric, v))
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _number_valued(e: ast.Expr) -> bool:
    """Whether an expression gives a number or a pair whatever the parameters: arithmetic does
    (`k // 2`, `in.channels`), a bare name may hold a word such as `same`."""
    if isinstance(e, ast.Const):
        return _numeric(e.value)
    if isinstance(e, ast.TupleExpr):
        return all(map(_number_valued, e.items))
    if isinstance(e, ast.BinOp):
        return e.op in ("+", "-", "*", "/", "//", "%", "**")
    if isinstance(e, ast.Unary):
        return e.op == "-"
    return isinstance(e, (ast.Func, ast.InAttr))


def _located(e: Exception, s: ast.Stmt) -> str:
    if isinstance(e, CnnError):
        return f"{e.span or s.span}: {e.message}"
    return f"{s.span}: this cannot be built for these arguments (check them with `cnndsl check --set`)"


def _chosen(conds: list, values: list):
    """`a if c1 else b if c2 else d`: the value of the first arm whose condition holds (values has one
    more, for none of them); the value itself where all arms agree."""
    out = values[-1]
    for cond, value in zip(reversed(conds), reversed(values[:-1])):
        if value != out:
            real = is_real(value) or is_real(out)
            out = Src(f"{py(value, 1)} if {py(cond, 1)} else {py(out, 1)}", 0, real)
    return out


def _overwritable(kind: str | None) -> bool:
    """Whether the output of a layer of this kind may be overwritten in place (see Op.output_saved)."""
    op = REGISTRY.get("add" if kind == "residual" else kind or "")
    return op is not None and not op.output_saved


def _inplace(src: str, kind: str, ctx: Ctx) -> str:
    if kind == "relu" and src == "nn.ReLU()" and _overwritable(ctx.made_by) and ctx.pending is None:
        return "nn.ReLU(inplace=True)"
    return src


_UNSET = object()


def _methods(state: ClassState, ends_in_softmax: bool = False) -> list[str]:
    """`forward` (and `logits`) of a class with fixed children; a Chain has its own."""
    if not state.static:
        if not ends_in_softmax:
            return []
        return ["", "    def logits(self, x):",
                '        """The scores before the final softmax, for training with cross-entropy."""',
                "        return super().forward(x, skip_last=True)"]
    children = state.children
    if ends_in_softmax and children and children[-1][1] is None:
        *head, (last, _) = children
        return (["", "    def forward(self, x):", f"        return self.{last}(self.logits(x))", "",
                 "    def logits(self, x):",
                 '        """The scores before the final softmax, for training with cross-entropy."""']
                + _calls(head))
    return ["", "    def forward(self, x):", *_calls(children, state.result)]


INPUT = "<input>"  # how wiring names the network's input (`x: input 3x32x32`); no child can have this name


def _calls(children: list[tuple[str, list[str] | None]], result: str | None = None) -> list[str]:
    """`x = self.conv1(x)` lines; outputs that later layers name keep a variable of their own."""
    named = {i for _, inputs in children for i in inputs or () if i} | ({result} if result else set())
    var_of: dict[str, str] = {}
    previous = "x"
    lines = []
    if INPUT in named:  # the input is named: keep it in a variable of its own
        var_of[INPUT] = previous = "x_in" if "x_in" not in {n for n, _ in children} else "x_in_"
        lines.append(f"        {previous} = x")
    for name, inputs in children:
        args = [previous] if inputs is None else [previous if i == "" else var_of[i] for i in inputs]
        var = (name if name not in ("x", "self") else name + "_") if name in named else "x"
        lines.append(f"        {var} = self.{name}({', '.join(args)})")
        var_of[name] = previous = var
    if result is not None:
        lines.append(f"        return {var_of[result]}")
    elif lines and previous == "x":
        lines[-1] = "        return " + lines[-1].split(" = ", 1)[1]
    else:
        lines.append(f"        return {previous}")
    return lines


def _annotation(value) -> str:
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return f": {kind.__name__}"
    return ""


_MAIN = '''

if __name__ == "__main__":
    model = {name}().eval()
    x = torch.randn(2, *model.input_shape)
    with torch.no_grad():
        y = model(x)
    params = sum(p.numel() for p in model.parameters())
    print(f"{name}: input {{tuple(x.shape)}} -> output {{tuple(y.shape)}}, {{params:,}} parameters")
'''
