"""Residuals and merges: in a fixed class, named attributes and a forward that shows the sum or the cat.

Names follow the report (cnndsl/elaborate/core.py): a residual's body layers are named in the block, as if
written there; its shortcut is the module `shortcut` (None where its `if` fails); the sum is the layer
`add1`. A merge's branches are modules `branch1`, `branch2`... (an empty one takes its number and no
module), and the merge is the layer `concat1`. In a Chain the same names come from `Chain.add`, the
shortcut and branches wired to the input and the sum a `Join("add")` child.
"""

from __future__ import annotations

from dataclasses import replace

from cnndsl.codegen.context import Ctx, Dynamic
from cnndsl.codegen.forward import Join, Sum
from cnndsl.codegen.lines import Lines
from cnndsl.codegen.statements import overwritable
from cnndsl.codegen.symbolic import evaluate
from cnndsl.ops import REGISTRY, CodeArgs
from cnndsl.ops.source import literal, py
from cnndsl.syntax import ast


class Merges:
    """The residual and merge writers of the Generator (a mixin)."""

    def fill(self, stmts, ctx: Ctx, lines: Lines, chain: str) -> Ctx:
        """A Chain `chain` (an attribute or a local variable) filled with the statements of a branch."""
        lines.add(f"{chain} = Chain()")
        sub = Ctx(chain, ctx.shape, dict(ctx.names), ctx.in_shape, frozen=ctx.frozen, bound=ctx.bound)
        self.body(stmts, sub, lines)
        if sub.pending is not None:  # the branch ends in `from e1`
            lines.add(f"{chain}.result = {sub.pending[0]}")
        return sub

    def joined(self, ctx: Ctx, kind: str, shape: tuple, label: str | None, name: str) -> None:
        """After a sum or merge written into a fixed class's forward."""
        ctx.shape, ctx.pending = shape, None
        ctx.made_by = kind if label is None else None
        if label is not None:
            ctx.labels[label] = (name, shape)

    def shortcut_if(self, s: ast.Residual, ctx: Ctx):
        """True, False, or the condition's source: whether the residual has a shortcut."""
        if s.shortcut is None:
            return False
        return True if s.shortcut_if is None else evaluate(s.shortcut_if, ctx.names, ctx.in_shape)

    # -- residual

    def residual(self, s: ast.Residual, ctx: Ctx, lines: Lines, label: str | None) -> None:
        start = ctx.pending[0] if ctx.pending else None
        if ctx.fixed and ctx.loop:
            raise Dynamic()
        if not ctx.fixed and start is None:
            start = self.here(ctx, lines, "start")
        # the body sees the names around it and only the outputs named in it; its first layer may not
        # overwrite its input, which the sum still needs
        body = replace(ctx, names=dict(ctx.names), labels={}, made_by=None, steps=[] if ctx.fixed else None)
        self.body(s.body, body, lines)
        ctx.dead = ctx.dead or body.dead
        end = body.pending[0] if body.pending is not None else None
        if not ctx.fixed:
            end = end or self.here(ctx, lines, "body")
            short = self.shortcut_chain(s, ctx, lines, start)
            self.add(ctx, lines, "add", 'Join("add")', body.shape, label, [end, short])
            return
        shortcut, optional = self.shortcut_fixed(s, ctx, lines)
        name = self.fixed_name(ctx, "add", label, attribute=False)
        inplace = overwritable(body.made_by) and body.made_by != "residual" and end is None
        ctx.steps.append(Sum(name, start, body.steps, end, shortcut, optional, inplace))
        self.joined(ctx, "residual", body.shape, label, name)

    def shortcut_fixed(self, s: ast.Residual, ctx: Ctx, lines: Lines) -> tuple[str | None, bool]:
        """`self.shortcut = Chain()` and its layers, under the shortcut's `if` when that is not known now."""
        cond = self.shortcut_if(s, ctx)
        if cond is False:
            return None, False
        optional = cond is not True
        name = ctx.cls.claim("shortcut", "shortcut", ctx.conditional or optional)
        if not optional:
            self.fill(s.shortcut, ctx, lines, f"self.{name}")
            return name, False
        lines.add(f"self.{name} = None")
        ctx.cls.nulled.add(name)
        with lines.nested(f"if {py(cond)}:"):
            self.fill(s.shortcut, ctx, lines, f"self.{name}")
        return name, True

    def shortcut_chain(self, s: ast.Residual, ctx: Ctx, lines: Lines, start: str) -> str:
        """The shortcut as a child of a Chain, wired to the residual's input; what the sum adds."""
        cond = self.shortcut_if(s, ctx)
        if cond is False:
            return start
        if cond is True:
            return self.branch_child(s.shortcut, ctx, lines, "shortcut", start)[0]
        short = lines.local("short")
        lines.add(f"{short} = {start}")
        with lines.nested(f"if {py(cond)}:"):
            lines.add(f"{short} = {self.branch_child(s.shortcut, ctx, lines, 'shortcut', start)[0]}")
        return short

    def branch_child(self, stmts, ctx: Ctx, lines: Lines, kind: str, start: str) -> tuple[str, Ctx]:
        """A Chain added to the Chain being filled, reading `start`: the variable holding its name."""
        local = lines.local(kind)
        sub = self.fill(stmts, ctx, lines, local)
        name = f', name="{kind}"' if kind == "shortcut" else ""
        var = lines.local(f"{kind}_name")
        lines.add(f"{var} = {ctx.chain}.add({literal(kind)}, {local}{name}, inputs=[{start}])")
        return var, sub

    def here(self, ctx: Ctx, lines: Lines, base: str) -> str:
        var = lines.local(base)
        lines.add(f"{var} = {ctx.chain}.here()")
        return var

    # -- merges

    def merge(self, s: ast.Merge, ctx: Ctx, lines: Lines, label: str | None) -> None:
        start = ctx.pending[0] if ctx.pending else None
        if ctx.fixed and ctx.loop:
            raise Dynamic()
        if not ctx.fixed and start is None:
            start = self.here(ctx, lines, "start")
        refs, shapes = [], []
        for stmts in s.branches:
            if ctx.fixed:
                name = self.fixed_name(ctx, "branch", None, attribute=bool(stmts))
                sub = self.fill(stmts, ctx, lines, f"self.{name}") if stmts else ctx
                refs.append(name if stmts else None)
            elif stmts:
                ref, sub = self.branch_child(stmts, ctx, lines, "branch", start)
                refs.append(ref)
            else:
                lines.add(f'{ctx.chain}.claim("branch")')
                sub = ctx
                refs.append(start)
            shapes.append(sub.shape)
        op = REGISTRY[s.op]
        g = CodeArgs({}, shapes)
        shape = self.out_shape(op, g)
        if not ctx.fixed:
            self.add(ctx, lines, s.op, op.torch(g), shape, label, refs)
            return
        name = self.fixed_name(ctx, s.op, label, attribute=False)
        ctx.steps.append(Join(name, s.op, start, refs, [len(x) for x in shapes]))
        self.joined(ctx, s.op, shape, label, name)

    def merge_with(self, s: ast.MergeWith, ctx: Ctx, lines: Lines, label: str | None) -> None:
        refs = [self.label_ref(n, ctx) for n in s.names]
        op = REGISTRY[s.op]
        g = CodeArgs({}, [ctx.shape, *(shape for _, shape in refs)])
        src = op.torch(g)
        inputs = ["" if ctx.pending is None else ctx.pending[0], *(ref for ref, _ in refs)]
        ctx.pending = None
        self.add(ctx, lines, s.op, src, self.out_shape(op, g), label, inputs)
