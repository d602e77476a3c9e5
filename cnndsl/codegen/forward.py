"""The `forward` of a generated class, written from the steps its constructor recorded.

Reads as torchvision's resnet.py: `x = self.conv1(x)` line by line; a named output is a local variable
(`e1 = self.e1(x)`) and `from e1` reads it again; a residual saves `identity = x`, runs its body into
`out`, applies the shortcut where there is one and adds (`out += identity` where the body's last layer
allows it); a merge names its branches and shows the `torch.cat`. A layer under an `if` decided at
construction is an attribute that may be None; where the arms make the same attributes, the constructor
keeps its decision in an attribute the forward tests, as torchvision's InvertedResidual keeps
`use_res_connect` (`if self.use_residual:`; an int where an `if` has more than two arms: `if self.arm ==
1:`). Where children are named at construction (a loop over an argument), the forward walks them in order
(`next(layers)`); it tests the decisions made once as above, and replays the loops' turns and the
decisions made in a loop as the constructor recorded them in the list `self._plan`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cnndsl.codegen.context import Box, Slot
from cnndsl.codegen.naming import claim_local, pyname
from cnndsl.ops import REGISTRY


@dataclass
class Ref:
    """A child module: by its attribute where its module's children are attributes, else the next one."""

    box: Box
    name: str | None = None


@dataclass
class Call:
    """A child applied to the current tensor; a block's with the tensors it takes besides (`inputs`), giving
    `returns` tensors, the first the current one and the others into `outputs` (those the caller names)."""

    ref: Ref
    inputs: list[Slot] = field(default_factory=list)
    returns: int = 1
    outputs: list[Slot] = field(default_factory=list)


@dataclass
class Inputs:
    """A block's tensors besides the current one: the forward's parameters (`def forward(self, x, lo)`)."""

    slots: list[Slot]


@dataclass
class Returns:
    """A block's `return a, b`: the forward returns these."""

    slots: list[Slot]


@dataclass
class Save:
    """A named output: the current tensor, kept in the slot's variable."""

    slot: Slot


@dataclass
class Load:
    """`from e1`: the named output becomes the current tensor."""

    slot: Slot


@dataclass
class Merge:
    """`concat e1`, `add e1`: the current tensor (None) and named outputs, joined by the op's expression."""

    op: str
    inputs: list[Slot | None]
    ranks: list[int]
    args: dict = field(default_factory=dict)  # the merge's own arguments (add's `partial`)


@dataclass
class Branch:
    """A shortcut or a merge's branch: a module the forward calls whole (box None), or whose children
    the forward wires itself (its steps)."""

    ref: Ref
    box: Box | None
    steps: list
    hint: str


@dataclass
class Sum:
    """A residual: body(x) + shortcut(x); the shortcut may be absent (test "none": an attribute that may be
    None; "attr": the class's bool attribute `attr` says; "plan": recorded in a loop), and the sum may
    overwrite the body's output (`out += identity`)."""

    body: list
    shortcut: Branch | None
    test: str | None
    inplace: bool
    attr: str | None = None
    args: dict = field(default_factory=dict)  # the sum's own arguments (`residual partial=true`)


@dataclass
class Join:
    """A merge of branches that all read the current tensor (None: the tensor itself)."""

    op: str
    branches: list[Branch | None]
    ranks: list[int]
    args: dict = field(default_factory=dict)


@dataclass
class Permute:
    """`x = x.permute(0, 2, 3, 1)` and back, around a run of layers applied at each position (codegen/layout.py)."""

    dims: tuple[int, ...]


@dataclass
class Loop:
    """A loop the constructor ran a number of turns it recorded."""

    body: list


@dataclass
class Choice:
    """An `if` whose arm the constructor recorded: in the class's attribute `attr` (a bool where there are
    two arms, true for the first; else the arm's index), or, where attr is None, in `self._plan`."""

    arms: list[list]
    attr: str | None = None


@dataclass
class Guarded:
    """An `if` decided at construction, in a class with attributes: an arm ran when its first attribute
    is not None."""

    arms: list[tuple[Ref, list]]


def first_attribute(steps: list) -> Ref | None:
    """A child the steps always make, to tell whether an arm ran."""
    for s in steps:
        found = None
        if isinstance(s, Call):
            found = s.ref
        elif isinstance(s, Sum):
            found = first_attribute(s.body) or (s.shortcut.ref if s.shortcut and not s.test else None)
        elif isinstance(s, Join):
            found = next((b.ref for b in s.branches if b is not None), None)
        if found is not None:
            return found if found.name is not None else None
    return None


def _sums(steps: list) -> bool:
    """Whether the steps hold a residual that writes the running `out` (a branch's has its own)."""
    return any(isinstance(s, Sum) or any(_sums(inner) for inner in _inner(s, wired=True)
                                         if not isinstance(s, Join)) for s in steps)


def uses_plan(steps: list) -> bool:
    """Whether the forward replays decisions recorded in `self._plan` (a loop's turns, an arm taken in a
    loop): a module it calls whole replays none of its own."""
    for s in steps:
        if isinstance(s, Loop) or (isinstance(s, Choice) and s.attr is None):
            return True
        if isinstance(s, Sum) and s.test == "plan":
            return True
        if any(uses_plan(inner) for inner in _inner(s, wired=True)):
            return True
    return False


def sequential(steps: list) -> bool:
    """Whether the steps only ever apply each child to the previous output: an nn.Sequential's forward."""
    for s in steps:
        if isinstance(s, (Load, Merge, Sum, Join, Guarded, Inputs, Returns, Permute)) or (
                isinstance(s, Call) and (s.inputs or s.returns > 1)):
            return False
        if isinstance(s, (Loop, Choice)) and not all(sequential(inner) for inner in _inner(s)):
            return False
    return True


def _inner(s, wired: bool = False) -> list[list]:
    """The steps inside a step (`wired`: only those the forward writes itself)."""
    if isinstance(s, Loop):
        return [s.body]
    if isinstance(s, Choice):
        return s.arms
    if isinstance(s, Guarded):
        return [steps for _, steps in s.arms]
    branches = [s.shortcut] if isinstance(s, Sum) else s.branches if isinstance(s, Join) else []
    inner = [b.steps for b in branches if b is not None and (b.box is not None or not wired)]
    return [s.body, *inner] if isinstance(s, Sum) else inner


class Forward:
    """Writes the lines of one method from its steps."""

    def __init__(self, root: Box, steps: list):
        self.root = root
        self.taken = {"x", "self"}
        self.lines: list[str] = []
        self.slots: dict[int, str] = {}
        self.iters: dict[int, str] = {}
        self.plan = self.local("plan") if uses_plan(steps) else None
        self.out: str | None = None  # the running variable after the first residual

    def local(self, base: str) -> str:
        return claim_local(base, self.taken)

    def add(self, depth: int, text: str) -> None:
        self.lines.append("    " * (depth + 2) + text)

    def method(self, steps: list) -> list[str]:
        if self.root.access == "iter":
            self.add(0, f"{self.walk(self.root)} = iter(self.children())")
        if self.plan:
            self.add(0, f"{self.plan} = iter(self._plan)")
        for s in steps[:1] if steps and isinstance(steps[0], Inputs) else []:
            for slot in s.slots:  # the forward's parameters
                self.slots[id(slot)] = self.local(pyname(slot.hint))
        cur = self.steps(steps, "x", "x", 0)
        last = f"        {cur} = "
        if self.lines and self.lines[-1].startswith(last):
            self.lines[-1] = "        return " + self.lines[-1][len(last):]
        else:
            self.add(0, f"return {cur}")
        return self.lines

    def walk(self, box: Box) -> str:
        """The variable of the iterator over a module's children."""
        if id(box) not in self.iters:
            self.iters[id(box)] = self.local("layers" if box is self.root else "children")
        return self.iters[id(box)]

    def var(self, slot: Slot) -> str:
        if id(slot) not in self.slots:
            self.slots[id(slot)] = self.local(pyname(slot.hint))
        return self.slots[id(slot)]

    def module(self, ref: Ref) -> str:
        if ref.box.access == "attr":
            return f"{ref.box.path}.{ref.name}"
        return f"next({self.walk(ref.box)})"

    def steps(self, steps: list, cur: str, run: str, depth: int) -> str:
        """Writes the steps; `cur` holds the input, `run` is where outputs go; gives the output's variable."""
        i = 0
        while i < len(steps):
            s = steps[i]
            if isinstance(s, (Call, Merge, Sum, Join)):
                saved = steps[i + 1] if i + 1 < len(steps) and isinstance(steps[i + 1], Save) else None
                if saved is not None:
                    target = self.var(saved.slot)
                elif isinstance(s, Sum):
                    self.out = self.out or self.local("out")
                    target = self.out
                else:
                    target = run
                cur = self.produce(s, cur, target, depth)
                if isinstance(s, Sum) and saved is None:
                    run = target  # as torchvision's `out`: what follows the sum writes there
                i += 2 if saved is not None else 1
                continue
            if isinstance(s, Save):
                var = self.var(s.slot)
                if var != cur:
                    self.add(depth, f"{var} = {cur}")
                cur = var
            elif isinstance(s, Load):
                cur = self.var(s.slot)
            elif isinstance(s, Returns):
                cur = ", ".join(self.var(x) for x in s.slots)
            elif isinstance(s, Inputs):
                pass
            elif isinstance(s, Permute):
                self.add(depth, f"{run} = {cur}.permute{s.dims}")
                cur = run
            elif isinstance(s, Loop):
                cur = self.loop(s, cur, run, depth)
            else:
                cur = self.choice(s, cur, run, depth)
            i += 1
        return cur

    def produce(self, s, cur: str, target: str, depth: int) -> str:
        """A step that makes a tensor, written into `target`."""
        if isinstance(s, Call):
            call = f"{self.module(s.ref)}({', '.join([cur, *(self.var(x) for x in s.inputs)])})"
            if s.outputs:  # `hi, lo = self.fuse1(x, lo)`
                outs = [target, *(self.var(x) for x in s.outputs)]
                outs += ["_"] * (s.returns - len(outs))
                self.add(depth, f"{', '.join(outs)} = {call}")
            else:
                self.add(depth, f"{target} = {call}" + ("[0]" if s.returns > 1 else ""))
        elif isinstance(s, Merge):
            args = [cur if x is None else self.var(x) for x in s.inputs]
            self.add(depth, f"{target} = {REGISTRY[s.op].expression(args, s.ranks, s.args)}")
        elif isinstance(s, Sum):
            self.sum(s, cur, target, depth)
        else:
            self.join(s, cur, target, depth)
        return target

    def settle(self, cur: str, run: str, depth: int) -> str:
        """Before a loop or an `if`: the current tensor in the variable every turn and arm ends in."""
        if cur != run:
            self.add(depth, f"{run} = {cur}")
        return run

    def loop(self, s: Loop, cur: str, run: str, depth: int) -> str:
        run = self.settle(cur, run, depth)
        self.add(depth, f"for _ in range(next({self.plan})):")
        self.body(s.body, run, depth + 1)
        return run

    def body(self, steps: list, run: str, depth: int) -> None:
        before = len(self.lines)
        end = self.steps(steps, run, run, depth)
        if end != run:
            self.add(depth, f"{run} = {end}")
        if len(self.lines) == before:
            self.add(depth, "pass")

    def choice(self, s, cur: str, run: str, depth: int) -> str:
        run = self.settle(cur, run, depth)
        if isinstance(s, Guarded):
            for k, (ref, arm) in enumerate(s.arms):
                self.add(depth, f"{'if' if k == 0 else 'elif'} {self.module(ref)} is not None:")
                self.body(arm, run, depth + 1)
            return run
        arms = [(k, arm) for k, arm in enumerate(s.arms) if arm]
        if s.attr is not None:
            return self.decided(s, arms, run, depth)
        if len(arms) == 1 or len(s.arms) == 2:  # `if next(plan) == 0:`, and the other arm its `else:`
            self.add(depth, f"if next({self.plan}) == {arms[0][0]}:")
            self.body(arms[0][1], run, depth + 1)
            if len(arms) == 2:
                self.add(depth, "else:")
                self.body(arms[1][1], run, depth + 1)
            return run
        arm_var = self.local("arm")
        self.add(depth, f"{arm_var} = next({self.plan})")
        for n, (k, arm) in enumerate(arms):
            self.add(depth, f"{'if' if n == 0 else 'elif'} {arm_var} == {k}:")
            self.body(arm, run, depth + 1)
        return run

    def decided(self, s: Choice, arms: list[tuple[int, list]], run: str, depth: int) -> str:
        """The arms of a Choice the class's attribute tells: `if self.use_residual:` (`if not ...` where only
        the second arm has steps) and `else:`, or `if self.arm == 0:`, `elif self.arm == 2:`..."""
        attr = f"self.{s.attr}"
        if len(s.arms) == 2:
            self.add(depth, f"if {attr}:" if arms[0][0] == 0 else f"if not {attr}:")
            self.body(arms[0][1], run, depth + 1)
            if len(arms) == 2:
                self.add(depth, "else:")
                self.body(arms[1][1], run, depth + 1)
            return run
        for n, (k, arm) in enumerate(arms):
            self.add(depth, f"{'if' if n == 0 else 'elif'} {attr} == {k}:")
            self.body(arm, run, depth + 1)
        return run

    def sum(self, s: Sum, start: str, target: str, depth: int) -> None:
        identity = self.local("identity")
        # the body writes elsewhere (a residual in it writes `out`): the input stays readable for the shortcut
        kept = start != target and not (start == self.out and _sums(s.body))
        if s.shortcut is None or s.test or not kept:
            self.add(depth, f"{identity} = {start}")
        end = self.steps(s.body, start, target, depth)
        if s.shortcut is not None:
            if s.test == "none":
                self.add(depth, f"if {self.module(s.shortcut.ref)} is not None:")
            elif s.test == "attr":
                self.add(depth, f"if self.{s.attr}:")
            elif s.test == "plan":
                self.add(depth, f"if next({self.plan}) == 0:")
            inner = depth + bool(s.test)
            self.add(inner, f"{identity} = {self.branch(s.shortcut, start if kept else identity, inner)}")
        if s.args.get("partial"):  # timm's ReXNet: the shortcut added to the first channels
            self.add(depth, f"{target} = {REGISTRY['add'].expression([end, identity], [], s.args)}")
        elif s.inplace and end == target:
            self.add(depth, f"{target} += {identity}")
        else:
            self.add(depth, f"{target} = {end} + {identity}")
        self.taken.discard(identity)

    def branch(self, b: Branch, start: str, depth: int) -> str:
        """The source of a branch's output: a call of the module, or the variable its steps end in."""
        if b.box is None:
            return f"{self.module(b.ref)}({start})"
        if b.box.access == "iter":
            self.add(depth, f"{self.walk(b.box)} = iter({self.module(b.ref)}.children())")
        var = self.local(b.hint)
        out, self.out = self.out, None  # a residual in the branch sums into a variable of its own
        end = self.steps(b.steps, start, var, depth)
        self.out = out
        return end

    def join(self, s: Join, cur: str, target: str, depth: int) -> None:
        outs = []
        for b in s.branches:
            if b is None:
                outs.append(cur)
            elif b.box is None:
                outs.append(self.local(b.hint))
                self.add(depth, f"{outs[-1]} = {self.module(b.ref)}({cur})")
            else:
                outs.append(self.branch(b, cur, depth))
        self.add(depth, f"{target} = {REGISTRY[s.op].expression(outs, s.ranks, s.args)}")
        self.taken.difference_update(o for o in outs if o != cur and o not in self.slots.values())


def methods(root: Box, steps: list, ends_in_softmax: bool = False) -> list[str]:
    """`forward` (and `logits`) of a class; an nn.Sequential's own forward needs no method."""
    last = steps[-1] if steps else None
    softmax = ends_in_softmax and isinstance(last, Call)
    out = []
    if root.access != "whole":
        head = steps[:-1] if softmax and root.access == "attr" else steps
        forward = Forward(root, head)
        body = forward.method(head)
        given = steps[0].slots if steps and isinstance(steps[0], Inputs) else []
        out = ["", f"    def forward(self, {', '.join(['x', *(forward.var(x) for x in given)])}):", *body]
        if softmax and root.access == "attr":
            out[2:] = [f"        return {Forward(root, []).module(last.ref)}(self.logits(x))"]
    if softmax:
        out += ["", "    def logits(self, x):",
                '        """The scores before the final softmax, for training with cross-entropy."""']
        out += (["        return self[:-1](x)"] if root.access == "whole"
                else Forward(root, steps[:-1]).method(steps[:-1]))
    return out
