"""`repeat` and `if` in a class body: folded where the value is known now, else Python `for` and `if`.

In a fixed class a known count is written out, and an `if` decided at construction makes attributes that
may be None (`self.se1 = None`, then `if se_ratio > 0: self.se1 = Se(...)`) and a guarded forward step.
"""

from __future__ import annotations

from dataclasses import replace

from cnndsl.codegen.context import Ctx, Dynamic, Unsupported
from cnndsl.codegen.forward import Guarded, first_attribute
from cnndsl.codegen.lines import Lines
from cnndsl.codegen.naming import pyname
from cnndsl.codegen.statements import overwritable
from cnndsl.codegen.symbolic import evaluate
from cnndsl.ops.source import Src, as_int, is_known, is_real, py
from cnndsl.syntax import ast

UNROLL = 16  # a `repeat` with a known count up to this many turns is written out in a fixed class


class ControlFlow:
    """The control-flow writers of the Generator (a mixin)."""

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
        fixed = ctx.fixed and not ctx.loop
        if count is not None and (lines.scratch or (fixed and count <= UNROLL)):
            self.unroll(s, ctx, lines, range(start, stop))
            return
        start, stop = as_int(start), as_int(stop)
        loop = f"for {var} in range({py(stop)})" if start == 0 else f"for {var} in range({py(start)}, {py(stop)})"
        ctx.made_by = None
        inner = replace(ctx, names=dict(ctx.names), dynamic=True, loop=True)
        if s.var:
            inner.names[s.var] = Src(var)
            lines.taken.add(var)
        trial = replace(inner, names=dict(inner.names), labels=dict(ctx.labels))
        self.body(s.body, trial, Lines(scratch=True, taken=set(lines.taken)))
        self.carry_lets(s, ctx, inner, trial, lines)
        self.loop(s, ctx, inner, trial, lines, loop)

    def unroll(self, s: ast.Repeat, ctx: Ctx, lines: Lines, turns: range) -> None:
        """Shapes only, or a fixed class: every turn written out."""
        saved = ctx.names.get(s.var, _UNSET) if s.var else _UNSET
        for i in turns:
            if s.var:
                ctx.names[s.var] = i
            self.body(s.body, ctx, lines)
        if s.var:
            ctx.names.pop(s.var, None) if saved is _UNSET else ctx.names.__setitem__(s.var, saved)

    def carry_lets(self, s: ast.Repeat, ctx: Ctx, inner: Ctx, trial: Ctx, lines: Lines) -> None:
        """A `let` in the loop carries its value from turn to turn: a Python variable."""
        rebound = [n for n in trial.names if n != s.var and trial.names[n] != inner.names.get(n, _UNSET)]
        if rebound and lines.exact:
            raise Unsupported("compile cannot yet follow a `let` through this `repeat` (its count is a parameter)",
                              s.span)
        for name in rebound:
            local = pyname(name)
            lines.taken.add(local)
            before = ctx.names.get(name, _UNSET)  # (a name new in the loop is defined after it if it ran)
            if before is not _UNSET and before != Src(local):
                lines.add(f"{local} = {py(before)}")
            real = is_real(before) or is_real(trial.names[name])
            ctx.names[name] = inner.names[name] = Src(local, real=real)
        inner.assign = frozenset(rebound)

    def loop(self, s: ast.Repeat, ctx: Ctx, inner: Ctx, trial: Ctx, lines: Lines, loop: str) -> None:
        """The `for` loop; the sizes its body changes are variables carried from turn to turn."""
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
        pos, placed = len(lines.lines), len(ctx.cls.attrs) if ctx.fixed else 0
        for i, (cond, stmts) in enumerate([*arms, (None, orelse)]):
            sub = replace(ctx, names=dict(ctx.names), dynamic=True, conditional=True,
                          steps=[] if ctx.fixed else ctx.steps)
            outs.append(sub)
            if cond is None and not stmts:
                ends.append(None)
                continue
            with lines.nested(f"{'if' if i == 0 else 'elif'} {py(cond)}:" if cond is not None else "else:"):
                self.body(stmts, sub, lines)
                ends.append((len(lines.lines), lines.indent))
        if ctx.fixed:
            self.guard(outs, ctx, lines, pos, placed)
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
        safe = all(overwritable(o.made_by) for o in outs)
        ctx.made_by = outs[0].made_by if safe else None
        ctx.shape = tuple(self.bound_size(size, k, outs, lines) for k, size in enumerate(ctx.shape))  # after
        # the `else:` that current_tensor may add

    def bound_size(self, size, k: int, outs: list[Ctx], lines: Lines):
        """A size the arms of an `if` give differently, as a local variable: the layers after the `if` read
        `hidden` rather than `in_channels * expand if expand != 1 else in_channels` each time, as
        torchvision's InvertedResidual reads `hidden_dim`. (A caller's view keeps the expression.)"""
        if lines.scratch or lines.exact or all(o.shape[k] == outs[0].shape[k] for o in outs):
            return size
        rank = len(outs[0].shape)
        name = lines.local(("channels", "height", "width")[k] if rank == 3 else "features")
        lines.carried.append(name)  # dropped again if no later layer reads it
        lines.add(f"{name} = {py(size)}")
        return Src(name, real=is_real(size))

    def guard(self, outs: list[Ctx], ctx: Ctx, lines: Lines, pos: int, placed: int) -> None:
        """The forward step of an `if` in a fixed class; its arms' attributes start as None."""
        arms = []
        for o in outs:
            if o.steps and not o.dead:  # an arm that raises at construction never runs forward
                attr = first_attribute(o.steps)
                if attr is None:  # nothing tells whether this arm was taken (`residual { }` alone)
                    raise Dynamic()
                arms.append((attr, o.steps))
        new = [a for a in ctx.cls.attrs[placed:] if a not in ctx.cls.nulled]
        ctx.cls.nulled.update(new)
        lines.insert(pos, [f"self.{a} = None" for a in new])
        if arms:
            ctx.steps.append(Guarded(arms))

    def current_tensor(self, outs: list[Ctx], ends: list, ctx: Ctx, lines: Lines) -> str:
        """A variable naming what the next layer reads, where arms differ (`if skip { from e1 }`):
        each arm sets it, "" meaning the last layer added. Only a Chain can wire at construction."""
        if ctx.fixed:
            raise Dynamic()
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



def _chosen(conds: list, values: list):
    """`a if c1 else b if c2 else d`: the value of the first arm whose condition holds (values has one
    more, for none of them); the value itself where all arms agree."""
    out = values[-1]
    for cond, value in zip(reversed(conds), reversed(values[:-1])):
        if value != out:
            real = is_real(value) or is_real(out)
            out = Src(f"{py(value, 1)} if {py(cond, 1)} else {py(out, 1)}", 0, real)
    return out


_UNSET = object()
