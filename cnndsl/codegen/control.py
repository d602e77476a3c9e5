"""`repeat` and `if` in a class body: folded where the value is known now, else Python `for` and `if`.

A known count up to UNROLL turns is written out. Any other is a Python loop whose turns carry what they
change as variables, as torchvision carries `input_channel`: the current size (`channels = channels * 2`),
a `let` rebinding a name, a named output's size. An `if` decided at construction is a Python `if`; where
the class's children are attributes, each arm's attributes start as None and the forward tests them
(`if self.se1 is not None`). Else the constructor keeps the arm it took in an attribute the forward tests,
as torchvision's InvertedResidual keeps `use_res_connect`: a bool set from the condition
(`self.use_residual = stride == 1 and in_channels == filters`, then `if self.use_residual:` in both
methods), or an int each arm sets where there are more than two (`self.arm = 2`). An `if` in a loop
written as a Python `for` decides afresh each turn: there the constructor appends the arm to the list
`self._plan` (`self._plan.append(0)`), as it does each loop's turns, and the forward replays them in order.
"""

from __future__ import annotations

import re
from dataclasses import replace

from cnndsl.codegen.context import Ctx, Retry, Unsupported
from cnndsl.codegen.forward import Choice, Guarded, Loop, Sum, first_attribute
from cnndsl.codegen.linear import Lin, linear
from cnndsl.codegen.lines import Lines
from cnndsl.codegen.naming import attribute_free, decision_attribute, pyname
from cnndsl.codegen.statements import UNKNOWN, overwritable
from cnndsl.codegen.symbolic import evaluate
from cnndsl.ops.source import Src, as_int, binop, call, is_known, is_real, py
from cnndsl.syntax import ast

UNROLL = 16  # a `repeat` with a known count up to this many turns is written out
_SIZES = ("channels", "height", "width")


class ControlFlow:
    """The control-flow writers of the Generator (a mixin)."""

    def repeat(self, s: ast.Repeat, ctx: Ctx, lines: Lines, label) -> None:
        start = 0 if s.start is None else evaluate(s.start, ctx.names, ctx.in_shape)
        stop = evaluate(s.stop, ctx.names, ctx.in_shape)
        count = stop - start if is_known((start, stop)) else None
        if not (isinstance(count, int) and not isinstance(count, bool) and isinstance(start, int)):
            count = None  # not a count check could take (an untaken branch): written as a loop, never folded
        elif count <= 0:  # `repeat i in 5..3` runs no turn, as in check
            return
        if count is not None and (lines.scratch or count <= UNROLL):
            self.unroll(s, ctx, lines, range(start, stop))
            return
        if ctx.box.names.mode == "static":
            raise Retry("a loop over an argument names its children at construction")
        self.loop(s, ctx, lines, as_int(start), as_int(stop), count)

    def unroll(self, s: ast.Repeat, ctx: Ctx, lines: Lines, turns: range) -> None:
        saved = ctx.names.get(s.var, _UNSET) if s.var else _UNSET
        for i in turns:
            if s.var:
                ctx.names[s.var] = i
            self.body(s.body, ctx, lines)
        if s.var:
            ctx.names.pop(s.var, None) if saved is _UNSET else ctx.names.__setitem__(s.var, saved)

    # -- loops

    def loop(self, s: ast.Repeat, ctx: Ctx, lines: Lines, start, stop, count: int | None = None) -> None:
        """A Python loop: what a turn changes is carried in variables from turn to turn."""
        box = ctx.box
        var = lines.local(pyname(s.var)) if s.var else None
        carried: dict[tuple, str] = {}
        counts = box.names.counts
        while True:  # the trial runs: what a turn changes, given what is carried already
            trial = self.turn(s, ctx, lines.view(), var, carried)
            changed = [k for k in _keys(trial) if k != ("name", s.var)
                       and _value(trial, k) != self.turn_start(ctx, k, carried)]
            fresh = [k for k in changed if k not in carried]
            if not fresh:
                break
            for k in fresh:  # one variable for what starts and ends alike (`let c = c * 2` and the channels)
                same = next((v for j, v in carried.items() if _value(ctx, j) == _value(ctx, k)
                             and _value(trial, j) == _value(trial, k)), None)
                carried[k] = same or lines.local(_carried_name(k))
        deltas = {}
        if box.names.mode in ("counted", "acts"):  # each turn names the same children: i + 2
            for key, end in trial.box_counts.items():
                delta = Lin.of(end) - Lin.of(counts.get(key, 0))
                if key in trial.box_unsure or not delta.known():
                    raise Retry("a loop's turns name a varying number of children")
                if delta.const:
                    deltas[key] = delta.const
        index = var
        if deltas and index is None:
            index = lines.local("i")
        if len(trial.ctx_shape) != len(ctx.shape) and count is not None:  # a known count: written out
            self.unroll(s, ctx, lines, range(start, stop))
            return
        if len(trial.ctx_shape) != len(ctx.shape):  # (check refuses these: elaborate/ranks.py)
            raise Unsupported("compile cannot yet write a `repeat` whose body changes the rank of its input", s.span)
        if lines.exact:  # a caller's view: what the loop carries is what the block's module records
            for k in carried:
                _set(ctx, k, UNKNOWN)
            for label, (slot, shape) in trial.ctx.labels.items():
                ctx.labels.setdefault(label, (slot, (UNKNOWN,) * len(shape)))
            return
        self.write_loop(s, ctx, lines, start, stop, index, carried, deltas)

    def turn(self, s: ast.Repeat, ctx: Ctx, lines: Lines, var: str | None, carried: dict) -> _Trial:
        """One turn in a trial: the state it ends in."""
        inner = self.inner_loop_ctx(s, ctx, var, carried)
        names = ctx.box.names
        ctx.box.names = names.copy()
        try:
            self.body(s.body, inner, lines)
            return _Trial(inner, dict(ctx.box.names.counts), set(ctx.box.names.unsure), inner.shape)
        finally:
            ctx.box.names = names

    def inner_loop_ctx(self, s: ast.Repeat, ctx: Ctx, var: str | None, carried: dict) -> Ctx:
        inner = replace(ctx, names=dict(ctx.names), labels=dict(ctx.labels), steps=[], dynamic=True,
                        looped=True, made_by=None)
        if s.var:
            inner.names[s.var] = Src(var)
        for k in carried:  # (a name new in the loop is not there yet when the first turn starts)
            if _value(ctx, k) is not _UNSET:
                _set(inner, k, self.turn_start(ctx, k, carried))
        return inner

    def turn_start(self, ctx: Ctx, k: tuple, carried: dict):
        """What a turn starts from: the carried variable, or the value before the loop."""
        before = _value(ctx, k)
        if k not in carried:
            return before
        word = before.word if isinstance(before, Src) else not isinstance(before, (int, float))
        return Src(carried[k], real=is_real(before), word=word)

    def write_loop(self, s: ast.Repeat, ctx: Ctx, lines: Lines, start, stop, index, carried: dict,
                   deltas: dict) -> None:
        box = ctx.box
        for k, name in _once(carried):  # a name new in the loop is defined after it if it ran
            before = _value(ctx, k)
            if before is not _UNSET and py(before) != name:
                lines.add(f"{name} = {py(before)}")
        if start == 0:
            turns = stop
            counted = linear(s.stop, lambda e: evaluate(e, ctx.names, ctx.in_shape)) or Lin.of(as_int(stop))
        else:
            turns = call("max", binop("-", stop, start), 0, numeric=max)  # (`repeat i in 5..3` runs none)
            counted = Lin.of(turns)
        recorded = lines.mark()
        self.record(ctx, lines, py(turns))
        head = f"range({py(stop)})" if start == 0 else f"range({py(start)}, {py(stop)})"
        inner = self.inner_loop_ctx(s, ctx, index if s.var else None, carried)
        base = dict(box.names.counts)
        step = Lin.of(Src(index)) - (start if s.var else 0) if index else None
        for key, delta in deltas.items():
            box.names.counts[key] = (Lin.of(base.get(key, 0)) + step * delta).value()
        with lines.nested(f"for {index or '_'} in {head}:"):
            self.body(s.body, inner, lines)
            ends = {k: _value(inner, k) for k in carried}
            for group in _updates([(name, py(ends[k])) for k, name in _once(carried) if py(ends[k]) != name]):
                lines.add(", ".join(n for n, _ in group) + " = " + ", ".join(v for _, v in group))
        lines.optional += carried.values()  # sizes no later line reads are dropped
        if not inner.steps and self.records(ctx) and not lines.scratch:
            del lines.lines[recorded]
        for k in carried:
            _set(ctx, k, self.turn_start(ctx, k, carried))
        for label, (slot, shape) in inner.labels.items():  # named in the loop: seen after it
            if label not in ctx.labels:
                ctx.labels[label] = (slot, tuple(self.turn_start(inner, ("label", label, i), carried)
                                                 for i in range(len(shape))))
        for key, delta in deltas.items():
            box.names.counts[key] = (Lin.of(base.get(key, 0)) + counted * delta).value()
        if inner.steps:  # (a loop that makes no child is not recorded, nor replayed)
            ctx.steps.append(Loop(inner.steps))
        ctx.made_by = None
        ctx.moved = ctx.moved or inner.moved

    # -- if

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
        box, base = ctx.box, ctx.box.names
        pos, placed = lines.mark(), len(base.attrs)
        outs, starts, ends, names = [], [], [], []
        for i, (cond, stmts) in enumerate([*arms, (None, orelse)]):
            box.names = base.copy()
            sub = replace(ctx, names=dict(ctx.names), labels=dict(ctx.labels), steps=[], dynamic=True)
            outs.append(sub)
            if cond is None and not stmts:
                starts.append(None)
                ends.append(None)
            else:
                with lines.nested(f"{'if' if i == 0 else 'elif'} {py(cond)}:" if cond is not None else "else:"):
                    starts.append((lines.mark(), lines.indent))
                    self.body(stmts, sub, lines)
                    ends.append((lines.mark(), lines.indent))
            names.append(box.names)
        box.names = base
        merge = _Arms([c for c, _ in arms], starts, ends, pos, lines)
        if base.mode in ("counted", "acts"):
            self.counts_after(names, merge, lines)
        base.merge(names)
        self.arms_step(outs, merge, ctx, lines, [n.attrs[placed:] for n in names], placed)
        self.join_arms(s, merge, outs, ctx, lines)

    def counts_after(self, names: list, merge: _Arms, lines: Lines) -> None:
        """A count of children the arms leave differently: a variable each arm sets (`batchnorms = 1`), which
        later names add to (`f"batchnorm{batchnorms + 1}"`); dropped where no later name reads it."""
        for key in dict.fromkeys(k for n in names for k in n.counts):
            values = [n.counts.get(key, 0) for n in names]
            if any(v != values[0] for v in values) and not any(key in n.unsure for n in names):
                var = merge.variable(values, f"{key.removeprefix('label:')}s")
                lines.optional.append(var)
                for n in names:
                    n.counts[key] = Lin.of(Src(var))

    def arms_step(self, outs: list[Ctx], arms: _Arms, ctx: Ctx, lines: Lines, made: list[list[str]],
                  placed: int) -> None:
        """The forward's view of the `if`: Guarded by attributes that may be None (one only its arm makes),
        or the recorded arm: in an attribute of the class (`self.use_residual`), in `self._plan` in a loop."""
        steps = [o.steps if not o.dead else [] for o in outs]
        if not any(steps):
            if not lines.scratch and all(_EMPTY.match(line) for line in lines.lines[arms.pos:]):
                arms.gone = True  # arms that wrote nothing (a `let` folded to a number)
            return
        if ctx.box.access == "whole":
            ctx.steps.append(Choice(steps))
            return
        if ctx.box.access == "attr":
            firsts = [(first_attribute(arm), k) for k, arm in enumerate(steps) if arm]
            if all(f is not None and f.box is ctx.box and not any(f.name in m for j, m in enumerate(made) if j != k)
                   for f, k in firsts):
                firsts = [f for f, _ in firsts]
                names = ctx.box.names
                new = [a for a in names.attrs[placed:] if a not in names.nulled]
                names.nulled.update(new)
                arms.before = [f"{ctx.box.expr}.{a} = None" for a in new]
                ctx.steps.append(Guarded([(f, arm) for f, arm in zip(firsts, (a for a in steps if a))]))
                return
        arms.record = True
        if ctx.looped:  # the arm taken in each turn, first thing in each arm (an `else:` where none was)
            ctx.cls.plan = True
            ctx.steps.append(Choice(steps))
            return
        arms.flag = len(steps) == 2  # a bool set before the `if`; else the arm's index, set in each arm
        arms.attr = decision_attribute(_decision_base(steps, arms.conds[0], ctx.cls), ctx.cls)
        ctx.steps.append(Choice(steps, arms.attr))

    def join_arms(self, s: ast.If, merge: _Arms, outs: list[Ctx], ctx: Ctx, lines: Lines) -> None:
        """What the statements after the `if` see: each value as the arm taken leaves it."""
        live = next((o for o in reversed(outs) if not o.dead), ctx)
        for o in outs:  # an arm that raises at construction leaves nothing after the `if`
            if o.dead:
                o.shape, o.names, o.labels, o.made_by = live.shape, live.names, live.labels, None
        if len({len(o.shape) for o in outs}) > 1:  # (check refuses these: elaborate/ranks.py)
            raise Unsupported("compile cannot yet write an `if` whose branches give different ranks", s.span)
        ctx.shape = tuple(merge.value([o.shape[k] for o in outs], _SIZES[k] if len(ctx.shape) == 3 else "features")
                          for k in range(len(outs[0].shape)))
        for name in dict.fromkeys(n for o in outs for n in o.names):  # a `let` in an arm binds it after the `if`
            known = next(o.names[name] for o in outs if name in o.names)  # (where an arm binds nothing,
            ctx.names[name] = merge.value([o.names.get(name, known) for o in outs], pyname(name))  # check fails)
        for label in dict.fromkeys(n for o in outs for n in o.labels):
            slot, known = next(o.labels[label] for o in outs if label in o.labels)
            shapes = [o.labels.get(label, (slot, known))[1] for o in outs]
            if len({len(x) for x in shapes}) == 1:
                ctx.labels[label] = (slot, tuple(merge.value([x[k] for x in shapes], f"{label}_{_SIZES[k]}")
                                                 for k in range(len(known))))
        merge.write()
        ctx.made_by = outs[0].made_by if all(overwritable(o.made_by) for o in outs) else None
        ctx.moved = any(o.moved for o in outs)
        ctx.dead = all(o.dead for o in outs)
        ctx.shape = tuple(self.bound_size(size, k, outs, lines) for k, size in enumerate(ctx.shape))

    def bound_size(self, size, k: int, outs: list[Ctx], lines: Lines):
        """A size the arms of an `if` give differently, as a local variable: the layers after the `if` read
        `channels` rather than `in_channels * expand if expand != 1 else in_channels` each time, as
        torchvision's InvertedResidual reads `hidden_dim`. (A caller's view keeps the expression.)"""
        if lines.scratch or lines.exact or all(o.shape[k] == outs[0].shape[k] for o in outs):
            return size
        rank = len(outs[0].shape)
        name = lines.local(_SIZES[k] if rank == 3 else "features")
        lines.optional.append(name)  # dropped again if no later layer reads it
        lines.add(f"{name} = {py(size)}")
        return Src(name, real=is_real(size))


class _Arms:
    """The lines an `if`'s arms get once all of it is written: the arm recorded for the forward, as a bool
    attribute set from the condition before the `if`, which then tests it (`self.use_residual = stride == 1`,
    `if self.use_residual:`), or first thing in each arm, an int attribute (`self.arm = 0`) or, in a loop,
    `self._plan.append(0)`; the values the arms leave differently, as `a if cond else b` or, where an arm
    assigned a variable the condition reads (`c = c + 8`), a variable each arm sets last thing; attributes
    that start as None before the `if`; or nothing at all, where no arm wrote anything."""

    def __init__(self, conds: list, starts: list, ends: list, pos: int, lines: Lines):
        self.conds, self.starts, self.ends, self.pos, self.lines = conds, starts, ends, pos, lines
        reads = " ".join(py(c) for c in conds)
        self.phi = any(re.search(rf"\b{v}\b", reads) for v in lines.reassigned) and not lines.exact
        self.sets: list[tuple[str, list]] = []
        self.record = False
        self.attr: str | None = None  # the class's attribute that keeps the arm taken (None: self._plan)
        self.flag = False  # the attribute is a bool: the first arm taken, or not
        self.before: list[str] = []
        self.gone = False

    def value(self, values: list, base: str):
        if all(v == values[0] for v in values):
            return values[0]
        if not self.phi:
            return _chosen(self.conds, values)
        return Src(self.variable(values, base), real=any(is_real(v) for v in values))

    def variable(self, values: list, base: str) -> str:
        """A variable each arm sets to its value."""
        var = self.lines.local(base)
        self.sets.append((var, values))
        return var

    def write(self) -> None:
        lines = self.lines
        if lines.scratch:
            return
        if self.gone and not self.sets:
            del lines.lines[self.pos:]
            return
        if self.record and self.flag:  # `self.use_residual = cond` and `if self.use_residual:`
            pad = "    " * lines.indent
            assert lines.lines[self.pos] == f"{pad}if {py(self.conds[0])}:", lines.lines[self.pos]
            lines.lines[self.pos] = f"{pad}if self.{self.attr}:"
            self.before.append(f"self.{self.attr} = {py(self.conds[0])}")
            if self.same_arms():  # both arms make the same children: made once, only the forward differs
                (start, _), (end, _) = self.starts[0], self.ends[0]
                lines.lines[self.pos:self.ends[1][0]] = [line[4:] for line in lines.lines[start:end]]
                lines.insert(self.pos, self.before)
                return
        for k in reversed(range(len(self.ends))):
            head = [] if not self.record or self.flag else [
                f"self._plan.append({k})" if self.attr is None else f"self.{self.attr} = {k}"]
            tail = [f"{var} = {_source(values[k])}" for var, values in self.sets]
            if not head and not tail:
                continue
            if self.starts[k] is None:  # the `else:` the `if` did not have
                with lines.nested("else:"):
                    for text in head + tail:
                        lines.add(text)
                continue
            (start, indent), (end, _) = self.starts[k], self.ends[k]
            pad = "    " * indent
            body = lines.lines[start:end]
            lines.lines[start:end] = ([pad + t for t in head] + ([] if body == [pad + "pass"] else body)
                                      + [pad + t for t in tail])
        lines.insert(self.pos, self.before)

    def same_arms(self) -> bool:
        """An `if` and its `else` whose constructor lines are the same (InvertedResidual's two arms)."""
        if len(self.starts) != 2 or None in self.starts or self.sets:
            return False
        (s0, _), (e0, _) = self.starts[0], self.ends[0]
        (s1, _), (e1, _) = self.starts[1], self.ends[1]
        body = self.lines.lines[s0:e0]
        return body == self.lines.lines[s1:e1] and not any(line.strip() == "pass" for line in body)


class _Trial:
    def __init__(self, ctx: Ctx, counts: dict, unsure: set, shape: tuple):
        self.ctx, self.box_counts, self.box_unsure, self.ctx_shape = ctx, counts, unsure, shape


def _keys(trial: _Trial) -> list[tuple]:
    ctx = trial.ctx
    keys = [("name", n) for n in ctx.names]  # a name first: its variable is named after it
    keys += [("shape", k) for k in range(len(ctx.shape))]
    keys += [("label", n, k) for n, (_, shape) in ctx.labels.items() for k in range(len(shape))]
    return keys


def _value(ctx, k: tuple):
    ctx = ctx.ctx if isinstance(ctx, _Trial) else ctx
    if k[0] == "shape":
        return ctx.shape[k[1]] if k[1] < len(ctx.shape) else _UNSET
    if k[0] == "name":
        return ctx.names.get(k[1], _UNSET)
    label = ctx.labels.get(k[1])
    return label[1][k[2]] if label is not None and k[2] < len(label[1]) else _UNSET


def _set(ctx: Ctx, k: tuple, value) -> None:
    if k[0] == "shape":
        ctx.shape = tuple(value if i == k[1] else d for i, d in enumerate(ctx.shape))
    elif k[0] == "name":
        ctx.names[k[1]] = value
    elif k[1] in ctx.labels:
        slot, shape = ctx.labels[k[1]]
        ctx.labels[k[1]] = (slot, tuple(value if i == k[2] else d for i, d in enumerate(shape)))


def _once(carried: dict) -> list[tuple[tuple, str]]:
    """Each carried variable once, with the first thing it carries."""
    first: dict[str, tuple] = {}
    for k, name in carried.items():
        first.setdefault(name, k)
    return [(k, name) for name, k in first.items()]


def _updates(moves: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """The end-of-turn assignments, one a line in an order where each reads the others' old values (a
    variable is assigned after every value that reads it); together in one tuple where they read each other."""
    groups, left = [], list(moves)
    while left:
        free = [m for m in left if not any(re.search(rf"\b{m[0]}\b", v) for n, v in left if n != m[0])]
        if not free:
            return groups + [left]
        groups.append([free[0]])
        left.remove(free[0])
    return groups


def _carried_name(k: tuple) -> str:
    if k[0] == "shape":
        return _SIZES[k[1]] if k[1] < 3 else "size"
    if k[0] == "name":
        return pyname(k[1])
    return f"{k[1]}_{_SIZES[k[2]]}"


def _decision_base(arms: list[list], cond, cls) -> str:
    """What the attribute keeping an `if`'s arm is named after: `use_residual` where the first arm's forward
    begins with a residual; the condition where it is a variable (`if stacked`: `self.stacked`); else
    `choice`, or `arm` for an index."""
    if arms[0] and isinstance(arms[0][0], Sum):
        return "use_residual"
    if len(arms) > 2:
        return "arm"
    text = py(cond)
    return text if text.isidentifier() and attribute_free(text, cls) else "choice"


def _source(value) -> str:
    return value.source() if isinstance(value, Lin) else py(value)


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
_EMPTY = re.compile(r"^\s*(if .*:|elif .*:|else:|pass)$")
