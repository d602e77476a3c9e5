"""Statements of a class body: layers, block calls, `let` and `from`, written into the constructor.

A layer is a child of the module being filled (`self.conv1 = nn.Conv2d(...)`, or `add_module` where its
name is computed) and a step of the forward. A block call's output shape is a formula of the caller's
values where that is short (`filters * 4`); else the caller reads what the block's module records
(`channels = self.stage1.out_channels`), as torchvision's ResNet keeps `self.inplanes`.
"""

from __future__ import annotations

import re
from dataclasses import replace

from cnndsl.codegen import layout
from cnndsl.codegen.context import Ctx, Opaque, Retry, Slot, Unsupported, size_marker
from cnndsl.codegen.forward import Call, Choice, Load, Ref, Returns, Save
from cnndsl.codegen.lines import Lines
from cnndsl.codegen.naming import ACTIVATION_KINDS, decision_attribute, pyname
from cnndsl.codegen.symbolic import WHOLE, evaluate
from cnndsl.elaborate.args import UNBOUND, coerce, held_activation
from cnndsl.elaborate.binding import Slot as ArgSlot
from cnndsl.elaborate.binding import bind
from cnndsl.elaborate.validate import applies_variable
from cnndsl.errors import CnnError, Span
from cnndsl.ops import REGISTRY, Args, CodeArgs, lookup
from cnndsl.ops.source import ATOM, Src, as_int, is_known, is_real, literal, py
from cnndsl.syntax import ast

SHORT = 40  # a block's output channels as a formula of the caller's values at most this long; else read back
UNKNOWN = Src("__unknown__")  # a size a caller's view cannot write (a loop over an argument changes it)
_CALL = re.compile(r"(?<![\w.])(?!(?:round|int|float|max|min|abs)\()\w+\(")  # a call of a spec's function


def unknown(v) -> bool:
    return isinstance(v, Src) and UNKNOWN.text in v.text


class Statements:
    """The statement writers of the Generator (a mixin: `self` is the Generator)."""

    def body(self, stmts: list[ast.Stmt], ctx: Ctx, lines: Lines) -> None:
        for i, s in enumerate(stmts):
            layout.before(self, stmts, i, ctx)
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
        layout.close(ctx)

    def stmt(self, s: ast.Stmt, ctx: Ctx, lines: Lines, label: str | None) -> None:
        if isinstance(s, ast.Labeled):
            self.returned = None
            self.stmt(s.stmt, ctx, lines, s.label)
            self.save(ctx, s.label)
            if s.more:
                self.name_outputs(s, ctx)
            return
        if isinstance(s, ast.Frozen):
            inner = replace(ctx, frozen=True)
            for i, sub in enumerate(s.body):
                self.stmt(sub, inner, lines, label if i == len(s.body) - 1 else None)
            _carry(inner, ctx)
            return
        handler = {ast.Call: self.call, ast.Let: self.let, ast.Repeat: self.repeat, ast.If: self.if_,
                   ast.Residual: self.residual, ast.Merge: self.merge, ast.MergeWith: self.merge_with,
                   ast.From: self.from_, ast.Outputs: self.outputs}[type(s)]
        handler(s, ctx, lines, label)

    def name_outputs(self, s: ast.Labeled, ctx: Ctx) -> None:
        """`hi, lo: fuse ...`: the call's other tensors, each a variable of the forward (`x, lo = ...`)."""
        step, shapes = self.returned
        for name, shape in zip(s.more, shapes[1:]):
            slot = ctx.slots.setdefault(name, Slot(name))
            step.outputs.append(slot)
            ctx.labels[name] = (slot, shape)

    def outputs(self, s: ast.Outputs, ctx: Ctx, lines: Lines, label) -> None:
        """`return a, b`: what the forward returns."""
        self.wiring(ctx)
        refs = [self.label_ref(n, ctx) for n in s.names]
        ctx.steps.append(Returns([slot for slot, _ in refs]))
        ctx.shape, ctx.made_by, ctx.moved = refs[0][1], None, True
        ctx.returned = [shape for _, shape in refs]

    def save(self, ctx: Ctx, label: str) -> None:
        """`label:` names the current tensor: a variable of the forward, seen by later statements."""
        slot = ctx.slots.setdefault(label, Slot(label))
        ctx.steps.append(Save(slot))
        ctx.labels[label] = (slot, ctx.shape)
        ctx.made_by = None

    def let(self, s: ast.Let, ctx: Ctx, lines: Lines, label) -> None:
        value = evaluate(s.value, ctx.names, ctx.in_shape)
        alias = isinstance(value, Src) and value.text.isidentifier()  # a variable's value is that variable
        if is_known(value) or lines.exact or alias:  # (and a caller's view keeps the expression)
            ctx.names[s.name] = value
            return
        var = pyname(s.name)
        if var in lines.taken:  # `let c = c + 8`: the variable again, unless a value still reads its old value
            held = ctx.names.get(s.name)
            if held == Src(var) and not _live(var, ctx, s.name):
                lines.reassigned.add(var)
            else:
                var = lines.local(var)
        lines.taken.add(var)
        lines.add(f"{var} = {py(value)}")
        ctx.names[s.name] = Src(var, real=is_real(value), word=getattr(value, "word", True))

    def from_(self, s: ast.From, ctx: Ctx, lines: Lines, label) -> None:
        slot, shape = self.label_ref(s.name, ctx)
        ctx.steps.append(Load(slot))
        ctx.shape, ctx.made_by, ctx.moved = shape, None, True

    def label_ref(self, name: ast.Name, ctx: Ctx) -> tuple[Slot, tuple]:
        if name.id not in ctx.labels:  # check scopes names (and `in`) as this does: only where check never went
            raise CnnError(f"no output is named `{name.id}` here", name.span)
        return ctx.labels[name.id]

    # -- children

    def child(self, ctx: Ctx, lines: Lines, kind: str, src: str, shape: tuple, label: str | None,
              keep: bool = False) -> str:
        """Makes `src` the next child of the module being filled; gives the child in __init__'s terms
        (`self.stage1`, or a local variable where its name is computed and `keep` asks for one)."""
        box = ctx.box
        if ctx.frozen:
            src = f"frozen({src})"
        acts = box.names.acts
        if acts and label is None and kind in ACTIVATION_KINDS:  # counted at construction, as the others
            lines.add(f"{acts}[{literal(kind)}] = {acts}.get({literal(kind)}, 0) + 1")
            sep = "_" if kind[-1].isdigit() else ""
            name = Src(f"f\"{kind}{sep}{{{acts}['{kind}']}}\"")
        else:
            name = box.names.claim(kind, label)
        if isinstance(name, str):
            lines.add(f"{box.expr}.{name} = {src}")
            handle = f"{box.expr}.{name}"
            box.names.attrs.append(name)
        elif box.access == "attr":
            raise Retry("a computed name in a module whose forward names its children")
        elif keep:
            handle = lines.local(pyname(label or kind))
            lines.add(f"{handle} = {src}")
            lines.add(f"{box.expr}.add_module({name.text}, {handle})")
        else:
            handle = ""
            lines.add(f"{box.expr}.add_module({name.text}, {src})")
        ctx.steps.append(Call(Ref(box, name if box.access == "attr" else None)))
        ctx.shape, ctx.moved = shape, False
        ctx.made_by = kind if label is None else None
        return handle

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
            self.input(op, c, ctx, lines)
            return
        values = self.layer_values(op, c, ctx)
        activation = values.pop("activation", "none")
        g = CodeArgs(values, [ctx.shape], channels_last=ctx.channels_last)
        self.child(ctx, lines, op.name, _inplace(op.torch(g), op.name, ctx), self.out_shape(op, g), label)
        self.activation(activation, ctx, lines)

    def input(self, op, c: ast.Call, ctx: Ctx, lines: Lines) -> None:
        value = self.layer_values(op, c, ctx)["shape"]
        if isinstance(value, Src):  # `input shape`, a network parameter: its rank is its value's
            example = evaluate(c.args[0].value, self.examples, ())
            rank = len(example) if isinstance(example, tuple) else 1
            value = tuple(Src(f"{py(value, ATOM)}[{i}]") for i in range(rank)) if rank > 1 else value
        ctx.shape = ctx.in_shape = value if isinstance(value, tuple) else (value,)
        if "in" in ctx.labels:  # `from in` at the network's top level: its input
            ctx.labels["in"] = (ctx.labels["in"][0], ctx.shape)
        lines.add(f"self.input_shape = {py(ctx.shape)}")

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
            self.child(ctx, lines, act.name, src, ctx.shape, None)

    def activation_argument(self, activation: Src, ctx: Ctx, lines: Lines) -> None:
        """`activation=act` where `act` is a parameter: the layer `make_activation` makes, named by its kind."""
        box = ctx.box
        if box.names.mode not in ("tracked", "acts"):
            raise Retry("a child whose kind is a constructor argument")
        arm = [Call(Ref(box))]
        cond = f"{py(activation, 5)} not in (\"none\", \"linear\")"
        attr = decision_attribute("use_activation", ctx.cls) if self.records(ctx) and not ctx.looped else None
        if attr is not None:  # decided once: kept in a bool attribute the forward tests
            lines.add(f"self.{attr} = {cond}")
        with lines.nested(f"if {cond if attr is None else 'self.' + attr}:"):
            if attr is None:
                self.record(ctx, lines, 0)
            if box.names.acts:
                lines.add(f"{box.expr}.add_module(*make_activation({py(activation)}, {box.names.acts}))")
            else:
                names, counts = box.names.locals
                kind, layer = lines.local("kind"), lines.local("layer")
                lines.add(f"{kind}, {layer} = make_activation({py(activation)})")
                lines.add(f"{box.expr}.add_module(child_name({names}, {counts}, {kind}), {layer})")
        if self.records(ctx) and attr is None:
            with lines.nested("else:"):
                self.record(ctx, lines, 1)
        ctx.steps.append(Choice([arm, []], attr))
        ctx.made_by = None

    def records(self, ctx: Ctx) -> bool:
        """Whether the forward replays what this module decides at construction: where it walks the
        children in order, it must know which arms and how many turns the constructor took."""
        return ctx.box.access == "iter"

    def record(self, ctx: Ctx, lines: Lines, value) -> None:
        """`self._plan.append(value)`: a decision made in a loop (an arm taken) or a loop's turns, for the
        forward to replay; a decision made once is an attribute instead (`decision_attribute`)."""
        if self.records(ctx):
            lines.add(f"self._plan.append({value})")
            ctx.cls.plan = True

    def consume(self, ctx: Ctx, lines: Lines, kind: str, label: str | None) -> None:
        """A layer without a module (a sum, a merge) still takes its name, as in the report."""
        name = ctx.box.names.claim(kind, label)
        if not isinstance(name, str) and ctx.box.names.mode == "tracked":
            lines.add(name.text)

    def layer_values(self, op, c: ast.Call, ctx: Ctx) -> dict:
        given = bind(c, [ArgSlot(a.name, a.aliases, a.positional, False) for a in op.args], f"`{op.name}`")
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

    # -- block calls

    def block_call(self, d: ast.Definition, c: ast.Call, ctx: Ctx, lines: Lines, label: str | None) -> None:
        rank = len(ctx.shape)
        given_ins = [self.label_ref(n, ctx) for n in c.inputs]
        if given_ins or _returns(d):
            self.wiring(ctx)
        cls = self.block_class(d, rank, c.span, tuple(len(shape) for _, shape in given_ins))
        given = bind(c, [ArgSlot(p.name, required=p.default is None) for p in d.params], f"block `{d.name}`")
        values = {p.name: evaluate(given[p.name].value, ctx.names, ctx.in_shape) for p in d.params
                  if p.name in given}
        if rank == 2:  # L x D tokens: the class takes D, and L as its in_size
            parts = [py(ctx.shape[1]) + size_marker(cls.name, py(ctx.shape[0]))]
        else:
            parts = [py(ctx.shape[0]) + (size_marker(cls.name, _size(ctx.shape[1:])) if rank == 3 else "")]
        for (_, shape), (_, size) in zip(given_ins, cls.inputs):  # `lo_channels`, and `lo_size` where it is read
            parts.append(py(shape[0]) + (size_marker(f"{cls.name}.{size}", _size(shape[1:])) if size else ""))
        floats = cls.floats
        positional = sum(1 for a in c.args if a.name is None)
        parts += [py(_whole(values[p.name], p.name in floats)) for p in d.params[:positional]]
        parts += [f"{pyname(a.name)}={py(_whole(values[a.name], a.name in floats))}" for a in c.args
                  if a.name is not None]
        src = f"{cls.name}({', '.join(parts)})"
        try:
            shape, made_by, shapes = self.block_shape(d, ctx.shape, values, c.span, [s for _, s in given_ins])
        except Opaque:
            if _returns(d):
                raise Unsupported(f"the sizes of the tensors block `{d.name}` returns cannot be written as formulas "
                                  "of its arguments (a loop over an argument changes them)", c.span,
                                  "return only the current tensor from a block whose loop changes sizes") from None
            shape, made_by, shapes = (UNKNOWN,) * cls.out_rank, None, []
        hidden = [k for k, v in enumerate(shape) if unknown(v) or (k == 0 and not _short(v))]
        if hidden and lines.exact:  # a caller's view: what the block's module records, it cannot know
            shape = tuple(UNKNOWN if k in hidden else v for k, v in enumerate(shape))
            hidden = []
        handle = self.child(ctx, lines, d.name, src, (), label, keep=bool(hidden))
        step = ctx.steps[-1]
        step.inputs, step.returns = [slot for slot, _ in given_ins], max(len(shapes), 1)
        self.returned = (step, shapes)
        if hidden:
            shape = self.read_back(cls, handle, shape, hidden, ctx, lines)
        ctx.shape = shape
        if label is None and overwritable(made_by):
            ctx.made_by = made_by  # what the block's own last layer is

    def read_back(self, cls, handle: str, shape: tuple, hidden: list[int], ctx: Ctx, lines: Lines) -> tuple:
        """The sizes of a block's output that the caller cannot write as formulas of its values, as the
        block's module records them: `channels = self.stage1.out_channels`, `self.stage1.out_size[0]`."""
        attrs = {1: ["out_features"], 2: ["out_size", "out_channels"]}.get(  # 2: L x D tokens
            cls.out_rank, ["out_channels", "out_size[0]", "out_size[1]"])
        shape = tuple(Src(f"{handle}.{attrs[k]}") if k in hidden else v for k, v in enumerate(shape))
        self.reads.append((handle, cls))
        if 0 not in hidden or ctx.dynamic or lines.scratch or not handle.startswith("self."):
            return shape
        var = "features" if cls.out_rank == 1 else "channels"
        if var in lines.taken and not (var in lines.running and not _live(var, ctx)):
            var = lines.local(var)
        lines.taken.add(var)
        lines.running.add(var)
        lines.optional.append(var)
        lines.add(f"{var} = {shape[0].text}")
        return (Src(var), *shape[1:])

    def block_shape(self, d: ast.Definition, in_shape: tuple, values: dict, span: Span, ins: list = ()
                    ) -> tuple[tuple, str | None, list]:
        """The block's output shape for these arguments, what made it, and the shapes of the tensors it returns
        (`return a, b`; none without): its body run for shapes only."""
        names: dict = {WHOLE: self.whole}
        for p in d.params:
            names[p.name] = values[p.name] if p.name in values else evaluate(p.default, dict(names), in_shape)
        if d.name in self.shaping and not is_known((tuple(names.get(p.name) for p in d.params), in_shape)):
            raise Opaque()  # a tree: its depth is a constructor argument here; the caller reads the size back
        ctx = self.scratch_ctx(d, in_shape, names, tuple(ins))
        self.shaping.append(d.name)
        try:
            self.body(d.body, ctx, Lines(scratch=True, exact=True))
        except Unsupported as e:
            raise e.note(f"in block `{d.name}` called here", span) from None
        except Retry:
            raise Opaque() from None
        finally:
            self.shaping.pop()
        return ctx.shape, ctx.made_by, ctx.returned or []


_INT_KINDS = {"int", "pair", "ints", "shape", "padding"}


def _returns(d: ast.Definition) -> bool:
    """Whether the block ends in `return a, b` with several tensors."""
    return bool(d.body) and isinstance(d.body[-1], ast.Outputs) and len(d.body[-1].names) > 1


def _carry(inner: Ctx, ctx: Ctx) -> None:
    """What a `frozen { }` leaves for the statements after it."""
    ctx.shape, ctx.made_by, ctx.moved, ctx.dead = inner.shape, inner.made_by, inner.moved, inner.dead


def _size(hw: tuple) -> str:
    """A block's `in_size`: `self.stem1.out_size` where both sizes are what a block recorded."""
    texts = [py(v) for v in hw]
    if texts[0].endswith(".out_size[0]") and texts[1] == texts[0][:-2] + "1]":
        return texts[0][:-3]
    return py(hw)


def _short(v) -> bool:
    """Whether a caller writes a block's output size as a formula (`filters * 4`) rather than reading it back:
    a choice or a call (`make_divisible(c * width)`) is the block's own to compute, as torchvision's
    network keeps `input_channel = output_channel` rather than rounding again."""
    return is_known(v) or (" if " not in v.text and not _CALL.search(v.text) and len(v.text) <= SHORT)


def _live(var: str, ctx: Ctx, own: str | None = None) -> bool:
    """Whether a value something may still read (but the name `own`'s) is written with the variable `var`."""
    word = re.compile(rf"\b{var}\b")
    names = [v for n, v in ctx.names.items() if n != own]
    values = [*names, *(shape for _, shape in ctx.labels.values()), ctx.shape, ctx.in_shape, *ctx.pinned]
    return any(word.search(py(v)) for v in _flat(values))


def _flat(values):
    for v in values:
        if isinstance(v, tuple):
            yield from _flat(v)
        elif isinstance(v, Src):
            yield v


def _whole(value, real: bool = False):
    """A block's argument: 2 for 2.0, and `whole(f / 2)` where a float may come, as the checker does (not
    where the block's parameter is a float anyway: `width=width`)."""
    if isinstance(value, tuple):
        return tuple(_whole(v, real) for v in value)
    if isinstance(value, Src) and value.real and not real:
        return Src(f"whole({value.text})")
    return as_int(value) if isinstance(value, float) and not real else value


def _located(e: Exception, s: ast.Stmt) -> str:
    if isinstance(e, CnnError):
        return f"{_where(e.span or s.span)}: {e.message}"
    return f"{_where(s.span)}: this cannot be built for these arguments (check them with `cnndsl check --set`)"


def _where(span: Span) -> str:
    from cnndsl.codegen.files import shown

    return f"{shown(span.source.name)}:{span.line}:{span.col}"


def overwritable(kind: str | None) -> bool:
    """Whether the output of a layer of this kind may be overwritten in place (see Op.output_saved)."""
    op = REGISTRY.get("add" if kind == "residual" else kind or "")
    return op is not None and not op.output_saved


def _inplace(src: str, kind: str, ctx: Ctx) -> str:
    if kind == "relu" and src == "nn.ReLU()" and overwritable(ctx.made_by) and not ctx.moved:
        return "nn.ReLU(inplace=True)"
    return src


__all__ = ["Statements", "overwritable"]
