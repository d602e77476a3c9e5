"""The `forward` of a class with fixed children, written from the steps its constructor recorded.

Reads as torchvision's resnet.py: `x = self.conv1(x)` line by line; a residual saves `identity = x`, runs
its body into `out`, applies the shortcut where there is one and adds (`out += identity` where the body's
last layer allows it); a merge names its branches and shows the `torch.cat`; a layer under an `if` decided
at construction is an attribute that may be None.
"""

from __future__ import annotations

from dataclasses import dataclass

from cnndsl.codegen.naming import claim_local, pyname

INPUT = "<input>"  # how wiring names the network's input (`x: input 3x32x32`); no child can have this name


@dataclass
class Call:
    name: str
    inputs: list[str] | None = None  # None: the previous output ("" in the list too), INPUT: the class's input


@dataclass
class Guarded:
    """An `if` decided at construction: each arm's attribute is None unless the arm was taken."""

    arms: list[tuple[str, list]]  # (an attribute the arm always sets, the arm's steps)


@dataclass
class Sum:
    """A residual: body(x) + shortcut(x), the shortcut an optional module or none (the identity)."""

    name: str  # the sum's layer (`add1`)
    start: str | None  # the input, when not the previous output (`from e1`)
    body: list
    end: str | None  # the body's output, when not its last step's (it ends in `from`)
    shortcut: str | None
    optional: bool  # the shortcut may be None
    inplace: bool  # the body's output may be overwritten (`out += identity`)


@dataclass
class Join:
    """A merge: branches that take the same input (None: the input itself), joined by add, concat, multiply."""

    name: str
    op: str
    start: str | None
    branches: list[str | None]
    ranks: list[int]  # of each branch's output: a per-channel gate (rank 1) scales every position


def first_attribute(steps: list) -> str | None:
    """An attribute the steps always set, to test whether an arm was taken."""
    for s in steps:
        if isinstance(s, Call):
            return s.name
        if isinstance(s, Sum):
            found = first_attribute(s.body) or (None if s.optional else s.shortcut)
        elif isinstance(s, Join):
            found = next((b for b in s.branches if b is not None), None)
        else:
            found = None
        if found is not None:
            return found
    return None


def _refs(steps: list, out: set[str]) -> set[str]:
    """The outputs that steps name as inputs: those keep a variable of their own."""
    for s in steps:
        if isinstance(s, Call):
            out.update(s.inputs or ())
        elif isinstance(s, Guarded):
            for _, arm in s.arms:
                _refs(arm, out)
        elif isinstance(s, Sum):
            out.update(r for r in (s.start, s.end) if r)
            _refs(s.body, out)
        else:
            out.update([s.start] if s.start else [])
    return out


class Forward:
    """Writes the lines of one method from its steps."""

    def __init__(self, steps: list, result: str | None = None):
        named = _refs(steps, {result} if result else set()) - {""}
        self.taken = {"x", "self"}
        self.vars: dict[str, str] = {}
        for name in sorted(named):
            self.vars[name] = self.local("x_in" if name == INPUT else pyname(name))
        self.out = None  # the running variable after the first residual
        self.lines: list[str] = []
        self.result = result

    def local(self, base: str) -> str:
        return claim_local(base, self.taken)

    def add(self, depth: int, text: str) -> None:
        self.lines.append("    " * (depth + 2) + text)

    def method(self, steps: list) -> list[str]:
        if INPUT in self.vars:  # the input is named: keep it in a variable of its own
            self.add(0, f"{self.vars[INPUT]} = x")
        cur = self.steps(steps, "x", "x", 0, False)
        if self.result is not None:
            self.add(0, f"return {self.vars[self.result]}")
        elif self.lines and self.lines[-1].startswith(f"        {cur} = "):
            self.lines[-1] = "        return " + self.lines[-1].split(" = ", 1)[1]
        else:
            self.add(0, f"return {cur}")
        return self.lines

    def steps(self, steps: list, cur: str, run: str, depth: int, guarded: bool) -> str:
        """Writes the steps; `cur` holds the input, `run` is the variable outputs go to; gives the output's."""
        for s in steps:
            if isinstance(s, Call):
                cur = self.call(s, cur, run, depth)
            elif isinstance(s, Guarded):
                cur = self.guarded(s, cur, run, depth)
            elif isinstance(s, Sum):
                cur = self.sum(s, cur, run, depth, guarded)
                run = cur if cur not in self.vars.values() else run
            else:
                cur = self.join(s, cur, run, depth)
        return cur

    def ref(self, name: str, cur: str) -> str:
        return cur if name == "" else self.vars[name]

    def call(self, s: Call, cur: str, run: str, depth: int) -> str:
        args = [cur] if s.inputs is None else [self.ref(i, cur) for i in s.inputs]
        var = self.vars.get(s.name, run)
        self.add(depth, f"{var} = self.{s.name}({', '.join(args)})")
        return var

    def guarded(self, s: Guarded, cur: str, run: str, depth: int) -> str:
        if cur != run:
            self.add(depth, f"{run} = {cur}")
        for i, (attr, arm) in enumerate(s.arms):
            self.add(depth, f"{'if' if i == 0 else 'elif'} self.{attr} is not None:")
            end = self.steps(arm, run, run, depth + 1, True)
            if end != run:
                self.add(depth + 1, f"{run} = {end}")
        return run

    def sum(self, s: Sum, cur: str, run: str, depth: int, guarded: bool) -> str:
        start = cur if s.start is None else self.ref(s.start, cur)
        if not guarded and self.out is None:
            self.out = self.local("out")
        body_run = run if guarded else self.out
        identity = self.local("identity")
        kept = start != body_run  # the body writes elsewhere: the input stays readable for the shortcut
        if s.shortcut is None or s.optional or not kept:
            self.add(depth, f"{identity} = {start}")
        end = self.steps(s.body, start, body_run, depth, guarded)
        end = end if s.end is None else self.ref(s.end, end)
        if s.shortcut is not None:
            line = f"{identity} = self.{s.shortcut}({start if kept else identity})"
            if s.optional:
                self.add(depth, f"if self.{s.shortcut} is not None:")
                self.add(depth + 1, line)
            else:
                self.add(depth, line)
        var = self.vars.get(s.name, body_run)
        if s.inplace and var == end:
            self.add(depth, f"{end} += {identity}")
        else:
            self.add(depth, f"{var} = {end} + {identity}")
        self.taken.discard(identity)
        return var

    def join(self, s: Join, cur: str, run: str, depth: int) -> str:
        start = cur if s.start is None else self.ref(s.start, cur)
        outs = []
        for attr in s.branches:
            if attr is None:
                outs.append(start)
                continue
            outs.append(self.local(attr))
            self.add(depth, f"{outs[-1]} = self.{attr}({start})")
        var = self.vars.get(s.name, run)
        if s.op == "concat":
            self.add(depth, f"{var} = torch.cat([{', '.join(outs)}], dim=1)")
        else:
            top = max(s.ranks)
            terms = [f"{o}[:, :, None, None]" if r == 1 and top == 3 else o for o, r in zip(outs, s.ranks)]
            self.add(depth, f"{var} = {(' + ' if s.op == 'add' else ' * ').join(terms)}")
        self.taken.difference_update(o for o in outs if o != start)
        return var


def methods(state, ends_in_softmax: bool = False) -> list[str]:
    """`forward` (and `logits`) of a class with fixed children; a Chain has its own."""
    if not state.static:
        if not ends_in_softmax:
            return []
        return ["", "    def logits(self, x):",
                '        """The scores before the final softmax, for training with cross-entropy."""',
                "        return super().forward(x, skip_last=True)"]
    steps = state.steps
    if ends_in_softmax and steps and isinstance(steps[-1], Call) and steps[-1].inputs is None:
        return (["", "    def forward(self, x):", f"        return self.{steps[-1].name}(self.logits(x))", "",
                 "    def logits(self, x):",
                 '        """The scores before the final softmax, for training with cross-entropy."""']
                + Forward(steps[:-1]).method(steps[:-1]))
    return ["", "    def forward(self, x):", *Forward(steps, state.result).method(steps)]
