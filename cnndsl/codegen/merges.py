"""Residuals and merges: modules for the shortcut and the branches, and a forward that shows the sum or cat.

Names follow the report (cnndsl/elaborate/core.py): a residual's body layers are named in the block, as if
written there; its shortcut is the module `shortcut` (None where its `if` fails); the sum is the layer
`add1`, which the forward computes (`out += identity`). A merge's branches are modules `branch1`,
`branch2`... (an empty one takes its number and no module), and the merge is the layer `concat1`, which
the forward computes (`torch.cat([branch1, branch2], dim=1)`). A shortcut or branch whose layers follow
one another is an nn.Sequential (`nn.Sequential(OrderedDict(conv1=..., batchnorm1=...))`); else its
children are wired by the forward of the class.
"""

from __future__ import annotations

import re
from dataclasses import replace

from cnndsl.codegen.context import Box, Ctx, Retry
from cnndsl.codegen.forward import Branch, Join, Merge, Ref, Sum, sequential
from cnndsl.codegen.lines import Lines
from cnndsl.codegen.naming import Names, decision_attribute, name_text
from cnndsl.codegen.statements import overwritable
from cnndsl.codegen.symbolic import evaluate
from cnndsl.ops import REGISTRY, CodeArgs
from cnndsl.ops.source import Src, py
from cnndsl.syntax import ast

# how a branch's module may be written, in the order tried: (access, naming)
_BRANCH_FORMS = [("whole", "static"), ("attr", "static"), ("whole", "counted"), ("whole", "acts"),
                 ("whole", "tracked"), ("iter", "counted"), ("iter", "acts"), ("iter", "tracked")]


class Merges:
    """The residual and merge writers of the Generator (a mixin)."""

    def wiring(self, ctx: Ctx) -> None:
        """A statement that reads named outputs: not for an nn.Sequential."""
        if ctx.box.access == "whole":
            raise Retry("wiring in a module written as an nn.Sequential")

    def scope(self, ctx: Ctx, **changes) -> Ctx:
        """A residual body or a branch: the names around it, only the outputs named in it."""
        outer = tuple(shape for _, shape in ctx.labels.values()) + tuple(ctx.names.values())
        return replace(ctx, names=dict(ctx.names), labels={}, slots={}, made_by=None, moved=False, steps=[],
                       pinned=(*ctx.pinned, *outer), **changes)

    def branch(self, stmts: list, ctx: Ctx, lines: Lines, kind: str, label: str | None) -> tuple[Branch, Ctx]:
        """A shortcut or a merge's branch: a module of its own, written in the first form that can."""
        parent = ctx.box
        name = parent.names.claim(kind, label)
        static = isinstance(name, str)
        held = list(ctx.cls.attrs), ctx.cls.plan
        for access, mode in _BRANCH_FORMS:
            if access == "attr" and not (static and parent.access == "attr"):
                continue
            ctx.cls.attrs[:], ctx.cls.plan = held  # what a form given up decided is not the class's
            sub_lines = Lines(indent=lines.indent, taken=lines.taken, optional=lines.optional,
                              running=lines.running, reassigned=lines.reassigned, scratch=lines.scratch,
                              exact=lines.exact)
            expr = f"{parent.expr}.{name}" if static else lines.local(kind)
            box = Box(expr, Names(mode), access, f"{parent.path}.{name}" if access == "attr" else None)
            self.start_names(box, sub_lines)
            sub = self.scope(ctx, box=box)
            try:
                self.body(stmts, sub, sub_lines)
                if access == "whole" and not sequential(sub.steps):
                    raise Retry("a branch that is not a sequence")
            except Retry:
                continue
            break
        self.place(box, sub_lines, lines, static, name, parent)
        if static:
            parent.names.attrs.append(name)
        ref = Ref(parent, name if parent.access == "attr" else None)
        ctx.dead = ctx.dead or sub.dead
        return Branch(ref, None if access == "whole" else box, sub.steps, name if static else kind), sub

    def place(self, box: Box, sub: Lines, lines: Lines, static: bool, name, parent: Box) -> None:
        """The branch's module in __init__: an nn.Sequential of named layers where it can be one line."""
        if lines.scratch:
            return
        pad = "    " * lines.indent
        child = re.compile(rf"^{re.escape(pad + box.expr)}\.(\w+) = (.*)$")
        found = [child.match(line) for line in sub.lines]
        if box.access == "whole" and found and all(found):
            items = ", ".join(f"{m.group(1)}={m.group(2)}" for m in found)
            lines.add(f"{box.expr} = nn.Sequential(OrderedDict({items}))")
        else:
            lines.add(f"{box.expr} = {'nn.Sequential()' if box.access == 'whole' else 'nn.Module()'}")
            lines.lines += sub.lines
        if not static:
            lines.add(f"{parent.expr}.add_module({name_text(name)}, {box.expr})")

    def merge_args(self, op: str, s, ctx: Ctx) -> dict:
        """A merge's own arguments (`add partial=true`): written out, so known here (check refuses a variable)."""
        return self.layer_values(REGISTRY[op], ast.Call(op, s.args, s.span), ctx)

    def shortcut_if(self, s: ast.Residual, ctx: Ctx):
        """True, False, or the condition's source: whether the residual has a shortcut."""
        if s.shortcut is None:
            return False
        return True if s.shortcut_if is None else evaluate(s.shortcut_if, ctx.names, ctx.in_shape)

    # -- residual

    def residual(self, s: ast.Residual, ctx: Ctx, lines: Lines, label: str | None) -> None:
        self.wiring(ctx)
        body = self.scope(ctx)
        self.body(s.body, body, lines)
        ctx.dead = ctx.dead or body.dead
        cond = self.shortcut_if(s, ctx)
        shortcut, test, attr = None, None, None
        if cond is True:
            shortcut, _ = self.branch(s.shortcut, ctx, lines, "shortcut", "shortcut")
        elif cond is not False:
            shortcut, test, attr = self.optional_shortcut(s, cond, ctx, lines)
        self.consume(ctx, lines, "add", label)
        inplace = overwritable(body.made_by) and body.made_by != "residual" and not body.moved
        ctx.steps.append(Sum(body.steps, shortcut, test, inplace, attr, self.merge_args("add", s, ctx)))
        ctx.shape, ctx.moved = body.shape, False
        ctx.made_by = "residual" if label is None else None

    def optional_shortcut(self, s: ast.Residual, cond: Src, ctx: Ctx, lines: Lines) -> tuple[Branch, str, str | None]:
        """`shortcut if cond { }` decided at construction: an attribute that may be None (test "none"); where
        the forward walks the children, a bool attribute set from the condition (test "attr":
        `self.use_shortcut = cond`, `if self.use_shortcut:`), or, in a loop, the arm recorded ("plan")."""
        box, base = ctx.box, ctx.box.names
        attr = None
        if box.access == "attr":
            lines.add(f"{box.expr}.{_peek(base)} = None")
        elif self.records(ctx) and not ctx.looped:
            attr = decision_attribute("use_shortcut", ctx.cls)
            lines.add(f"self.{attr} = {py(cond)}")
        taken = base.copy()
        box.names = taken
        with lines.nested(f"if {py(cond) if attr is None else 'self.' + attr}:"):
            if attr is None:
                self.record(ctx, lines, 0)
            shortcut, _ = self.branch(s.shortcut, ctx, lines, "shortcut", "shortcut")
        if self.records(ctx) and attr is None:
            with lines.nested("else:"):
                self.record(ctx, lines, 1)
        box.names = base
        base.merge([taken, base.copy()])
        if box.access == "attr":
            base.nulled.add(shortcut.ref.name)
        return shortcut, "none" if box.access == "attr" else "plan" if attr is None else "attr", attr

    # -- merges

    def merge(self, s: ast.Merge, ctx: Ctx, lines: Lines, label: str | None) -> None:
        self.wiring(ctx)
        refs, shapes = [], []
        for stmts in s.branches:
            if stmts:
                branch, sub = self.branch(stmts, ctx, lines, "branch", None)
                refs.append(branch)
                shapes.append(sub.shape)
            else:
                self.consume(ctx, lines, "branch", None)
                refs.append(None)
                shapes.append(ctx.shape)
        op = REGISTRY[s.op]
        values = self.merge_args(s.op, s, ctx)
        shape = self.out_shape(op, CodeArgs(values, shapes))
        self.consume(ctx, lines, s.op, label)
        ctx.steps.append(Join(s.op, refs, [len(x) for x in shapes], values))
        ctx.shape, ctx.moved = shape, False
        ctx.made_by = s.op if label is None else None

    def merge_with(self, s: ast.MergeWith, ctx: Ctx, lines: Lines, label: str | None) -> None:
        self.wiring(ctx)
        refs = [self.label_ref(n, ctx) for n in s.names]
        op = REGISTRY[s.op]
        values = self.merge_args(s.op, s, ctx)
        shapes = [ctx.shape, *(shape for _, shape in refs)]
        shape = self.out_shape(op, CodeArgs(values, shapes))
        self.consume(ctx, lines, s.op, label)
        ctx.steps.append(Merge(s.op, [None, *(slot for slot, _ in refs)], [len(x) for x in shapes], values))
        ctx.shape, ctx.moved = shape, False
        ctx.made_by = s.op if label is None else None


def _peek(names: Names) -> str:
    """The name the next shortcut of a module with static names takes."""
    name = names.copy().claim("shortcut", "shortcut")
    assert isinstance(name, str)
    return name


__all__ = ["Merges"]
