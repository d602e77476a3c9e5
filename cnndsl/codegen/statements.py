"""Statements of a class body: layers, block calls, `let` and `from`, written into the constructor.

In a fixed class a layer is an attribute (`self.conv1 = nn.Conv2d(...)`) and a step of the forward; in a
Chain it is `chain.add(kind, module)`, which names it at construction as `cnndsl check` does.
"""

from __future__ import annotations

from dataclasses import replace

from cnndsl.codegen.context import Ctx, Dynamic, Unsupported
from cnndsl.codegen.forward import INPUT, Call
from cnndsl.codegen.lines import Lines
from cnndsl.codegen.naming import pyname
from cnndsl.codegen.symbolic import evaluate
from cnndsl.elaborate.args import UNBOUND, coerce, held_activation
from cnndsl.elaborate.binding import Slot, bind
from cnndsl.elaborate.validate import applies_variable, bound_names
from cnndsl.errors import CnnError, Span
from cnndsl.ops import REGISTRY, Args, CodeArgs, lookup
from cnndsl.ops.source import ATOM, MODULE_ATTRIBUTES, Src, as_int, is_known, is_real, literal, py
from cnndsl.syntax import ast


class Statements:
    """The statement writers of the Generator (a mixin: `self` is the Generator)."""

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
        if ctx.fixed:
            name = self.fixed_name(ctx, kind, label)
            lines.add(f"self.{name} = {src}")
            ctx.steps.append(Call(name, inputs))
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

    def fixed_name(self, ctx: Ctx, kind: str, label: str | None, attribute: bool = True) -> str:
        """The name of a child of a fixed class, as the report names its layer."""
        if ctx.loop or (ctx.conditional and label is not None):  # a label under an `if` is seen after it
            raise Dynamic()
        return ctx.cls.claim(kind, label, ctx.conditional, attribute)

    def call(self, c: ast.Call, ctx: Ctx, lines: Lines, label: str | None) -> None:
        if applies_variable(self.program, c, ctx.bound):
            self.apply(c, ctx, lines)
            return
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
                ctx.labels[label] = (INPUT if ctx.fixed else literal(INPUT), ctx.shape)
            return
        values = self.layer_values(op, c, ctx)
        activation = values.pop("activation", "none")
        g = CodeArgs(values, [ctx.shape])
        src = _inplace(op.torch(g), op.name, ctx)
        self.add(ctx, lines, op.name, src, self.out_shape(op, g), label)
        self.activation(activation, ctx, lines)

    def apply(self, c: ast.Call, ctx: Ctx, lines: Lines) -> None:
        """`act` alone, a variable holding an activation: as `activation=act` on the layer before it."""
        value = ctx.names.get(c.name, UNBOUND)
        self.activation(held_activation(c, value) if is_known(value) else value, ctx, lines)

    def activation(self, activation, ctx: Ctx, lines: Lines) -> None:
        """The layer an activation names ("none": none), or, for a constructor argument, the one it names."""
        if not is_known(activation):  # a constructor argument: its kind, and so the child's name, vary
            self.activation_argument(activation, ctx, lines)
        elif activation != "none":
            act = REGISTRY[activation]
            src = _inplace(act.torch(CodeArgs(act.defaults(), [ctx.shape])), act.name, ctx)
            self.add(ctx, lines, act.name, src, ctx.shape, None)

    def activation_argument(self, activation: Src, ctx: Ctx, lines: Lines) -> None:
        """`activation=act` where `act` is a parameter: a child made by `make_activation` in a Chain."""
        if ctx.fixed:
            raise Dynamic()
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
        if label is None and overwritable(made_by):
            ctx.made_by = made_by  # what the block's own last layer is

    def block_shape(self, d: ast.Definition, in_shape: tuple, values: dict, span: Span) -> tuple[tuple, str | None]:
        """The block's output shape for these arguments, and what made it: its body run for shapes only."""
        names: dict = {}
        for p in d.params:
            names[p.name] = values[p.name] if p.name in values else evaluate(p.default, dict(names), in_shape)
        ctx = Ctx("_", in_shape, names, in_shape, bound=frozenset(bound_names(d)))
        try:
            self.body(d.body, ctx, Lines(scratch=True, exact=True))
        except Unsupported as e:
            raise e.note(f"in block `{d.name}` called here", span) from None
        return ctx.shape, ctx.made_by

    # -- control flow


_INT_KINDS = {"int", "pair", "ints", "shape", "padding"}


def _whole(value):
    """A block's argument: 2 for 2.0, and `whole(f / 2)` where a float may come, as the checker does."""
    if isinstance(value, tuple):
        return tuple(_whole(v) for v in value)
    if isinstance(value, Src) and value.real:
        return Src(f"whole({value.text})")
    return as_int(value) if isinstance(value, float) else value


def _located(e: Exception, s: ast.Stmt) -> str:
    if isinstance(e, CnnError):
        return f"{e.span or s.span}: {e.message}"
    return f"{s.span}: this cannot be built for these arguments (check them with `cnndsl check --set`)"


def overwritable(kind: str | None) -> bool:
    """Whether the output of a layer of this kind may be overwritten in place (see Op.output_saved)."""
    op = REGISTRY.get("add" if kind == "residual" else kind or "")
    return op is not None and not op.output_saved


def _inplace(src: str, kind: str, ctx: Ctx) -> str:
    if kind == "relu" and src == "nn.ReLU()" and overwritable(ctx.made_by) and ctx.pending is None:
        return "nn.ReLU(inplace=True)"
    return src

