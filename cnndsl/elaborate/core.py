"""AST → layer graph: evaluates parameters, expands block calls, repeat, if, merges and names.

Shapes are inferred here, layer by layer, because `in.channels` and `if` conditions may depend on
them; the registry's shape rule is the only place a shape comes from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from cnndsl import limits
from cnndsl.elaborate.args import UNBOUND, held_activation, is_activation, layer_args
from cnndsl.elaborate.binding import Slot, bind
from cnndsl.elaborate.expr import Env, Work, describe, evaluate, functions_of
from cnndsl.elaborate.ranks import check_ranks
from cnndsl.elaborate.validate import applies_variable, bound_names, callee, validate
from cnndsl.errors import CnnError, Diagnostic, Span, TooSmallError, UsageError, did_you_mean
from cnndsl.graph import Graph, Group, Layer, build_graph, numbered, unused_layers
from cnndsl.ops import REGISTRY, Args, Symbol
from cnndsl.ops.base import fmt_shape
from cnndsl.syntax import ast
from cnndsl.syntax.loader import Program


@dataclass
class Frame:
    """One block call (or the network body): its variables, named outputs and place in the report."""

    vars: dict[str, object]
    labels: dict[str, str]
    in_shape: tuple | None
    scope: str  # id prefix of the layers made here ("" at the network's top level)
    groups: tuple[str, ...]
    frozen: bool = False
    block: str | None = None
    outside: frozenset[str] = frozenset()  # names of outputs outside the branch we are in, for a hint
    bound: frozenset[str] = frozenset()  # the names the definition binds: `act` alone applies one
    functions: dict = field(default_factory=dict)  # the program's functions (`def`), by name
    work: Work = field(default_factory=Work)  # the elaboration's, shared by every frame
    input: str | None = None  # the layer `in` names as a tensor (`from in`): the block's input; None in a branch
    returned: list[str] | None = None  # `return a, b`: the layers the block gives its caller
    inside: bool = False  # in a branch or a residual's body

    def env(self) -> Env:
        return Env(self.vars, self.in_shape, self.functions, work=self.work)


@dataclass
class Elaborated:
    graph: Graph
    warnings: list[Diagnostic] = field(default_factory=list)


def elaborate(program: Program, network: str | None = None, overrides: dict | None = None,
              max_layers: int = limits.LAYERS) -> Elaborated:
    """Elaborates one network of the program (the only one, or the one named)."""
    definition = pick_network(program, network)
    validate(program, definition, Work(limits.WORK * max_layers))  # each pass may do as much work
    check_ranks(program, definition, Work(limits.WORK * max_layers))
    return _Elaborator(program, max_layers).network(definition, overrides or {})


def pick_network(program: Program, name: str | None) -> ast.Definition:
    networks = [d for d in program.main if d.kind == "network"]
    if name is not None:
        found = program.definitions.get(name)
        if found is None or found.kind != "network":
            choices = [d.name for d in program.definitions.values() if d.kind == "network"]
            raise UsageError(f"no network `{name}` in the spec",
                             hint=did_you_mean(name, choices) or f"networks: {', '.join(choices) or 'none'}")
        return found
    if len(networks) == 1:
        return networks[0]
    if not networks:
        raise CnnError("the spec defines no network",
                       hint="add `network name { input 3x32x32 ... }`; blocks alone describe no model")
    names = ", ".join(d.name for d in networks)
    raise UsageError(f"the spec defines several networks ({names})", hint="pick one with --network NAME")


class _Elaborator:
    def __init__(self, program: Program, max_layers: int):
        self.program = program
        self.max_layers = max_layers
        self.layers: list[Layer] = []
        self.by_id: dict[str, Layer] = {}
        self.groups: dict[str, Group] = {}
        self.counters: dict[tuple[str, str], int] = {}
        self.calls: list[tuple[str, Span]] = []
        self.work = Work(limits.WORK * max_layers)  # bounded even where the calls make no layers
        self.warnings: list[Diagnostic] = []
        self.branch_labels: dict[str, str] = {}  # outputs named inside branches, for a hint
        self.bound_cache: dict[str, frozenset[str]] = {}
        self.functions = functions_of(program)
        self.outputs: list[str] | None = None  # the layers the last block call returned (`a, b: fuse ...`)

    # ---- the network ------------------------------------------------------------------------------

    def network(self, d: ast.Definition, overrides: dict) -> Elaborated:
        params = self._network_params(d, overrides)
        frame = Frame(dict(params), {}, None, "", (), bound=frozenset(bound_names(d)), functions=self.functions,
                      work=self.work)
        cur = self.body(d.body, frame, None)
        if cur is None:
            raise CnnError(f"network `{d.name}` has no layers", d.span, "start it with `input 3x224x224`")
        graph = build_graph(d.name, params, self.layers, self.groups, cur)
        for layer in unused_layers(graph):
            self.warnings.append(Diagnostic(f"the output of `{layer.id}` is never used", layer.span,
                                            severity="warning"))
        return Elaborated(graph, self.warnings)

    def _network_params(self, d: ast.Definition, overrides: dict) -> dict[str, object]:
        known = [p.name for p in d.params]
        for key in overrides:
            if key not in known:
                raise UsageError(f"network `{d.name}` has no parameter `{key}`",
                                 hint=did_you_mean(key, known) or f"its parameters: {', '.join(known) or 'none'}")
        values: dict[str, object] = {}
        for p in d.params:
            if p.name in overrides:
                values[p.name] = _override(d.name, p, overrides[p.name], values, self.functions)
            elif p.default is None:
                raise UsageError(f"network parameter `{p.name}` has no default",
                                 hint=f"set it: --set {p.name}=...")
            else:
                values[p.name] = evaluate(p.default, Env(values, None, self.functions, work=self.work))
        return values

    # ---- statements -------------------------------------------------------------------------------

    def body(self, stmts: list[ast.Stmt], frame: Frame, cur: str | None) -> str | None:
        for stmt in stmts:
            cur = self.stmt(stmt, frame, cur, None)
        return cur

    def stmt(self, s: ast.Stmt, frame: Frame, cur: str | None, label: str | None) -> str | None:
        self.step(s.span)
        if isinstance(s, ast.Labeled):
            self.outputs = None
            cur = self.stmt(s.stmt, frame, cur, s.label)
            frame.labels[s.label] = cur
            if s.more:
                self.name_outputs(s, frame)
            return cur
        if isinstance(s, ast.Call):
            return self.call(s, frame, cur, label)
        if label is not None and not isinstance(s, (ast.Residual, ast.Merge, ast.MergeWith, ast.Frozen)):
            raise CnnError(f"a name can label a layer, a block call or a merge, not `{_keyword(s)}`", s.span)
        if isinstance(s, ast.Frozen):
            inner = replace(frame, frozen=True)
            cur = self.body(s.body[:-1], inner, cur)
            return self.stmt(s.body[-1], inner, cur, label) if s.body else cur
        if isinstance(s, ast.Repeat):
            return self.repeat(s, frame, cur)
        if isinstance(s, ast.If):
            taken = next((arm.body for arm in s.arms if self.condition(arm.cond, frame)), s.orelse)
            return self.body(taken, frame, cur)
        if isinstance(s, ast.Let):
            frame.vars[s.name] = evaluate(s.value, frame.env())
            return cur
        if isinstance(s, ast.From):
            return self.named(s.name, frame)
        if isinstance(s, ast.Outputs):
            frame.returned = [self.named(n, frame) for n in s.names]
            return frame.returned[0]
        self.need_input(cur, s.span)
        if isinstance(s, ast.Residual):
            return self.residual(s, frame, cur, label)
        if isinstance(s, ast.Merge):
            return self.merge(s, frame, cur, label)
        return self.merge_with(s, frame, cur, label)

    def name_outputs(self, s: ast.Labeled, frame: Frame) -> None:
        """`hi, lo: fuse ...`: one name for each tensor the block returns."""
        names = [s.label, *s.more]
        outs = self.outputs or []
        if len(outs) != len(names):
            what = f"returns {len(outs)} tensor{'s' * (len(outs) != 1)}" if outs else "is not a block call"
            raise CnnError(f"{len(names)} names for a statement that {what}", s.span,
                           "a block gives several tensors with `return a, b` as its last statement; name as many")
        for name, lid in zip(names[1:], outs[1:]):
            frame.labels[name] = lid

    def condition(self, e: ast.Expr, frame: Frame) -> bool:
        value = evaluate(e, frame.env())
        if not isinstance(value, bool):
            raise CnnError(f"a condition must be true or false, got {describe(value)}", e.span,
                           "compare values: `if stride != 1 { ... }`")
        return value

    def repeat(self, s: ast.Repeat, frame: Frame, cur: str | None) -> str | None:
        env = frame.env()
        start = 0 if s.start is None else self.count(s.start, env, "a range start")
        stop = self.count(s.stop, env, "a repeat count" if s.start is None else "a range end")
        if stop - start > self.max_layers:
            raise CnnError(f"repeat would run {stop - start:,} times, more than the limit of "
                           f"{self.max_layers:,}", s.span, "raise the limit with --max-layers if this is meant")
        saved = frame.vars.get(s.var, _MISSING) if s.var else _MISSING
        for i in range(start, stop):
            self.step(s.span)
            if s.var:
                frame.vars[s.var] = i
            cur = self.body(s.body, frame, cur)
        if s.var:
            if saved is _MISSING:
                frame.vars.pop(s.var, None)
            else:
                frame.vars[s.var] = saved
        return cur

    def step(self, span: Span) -> None:
        """Counts one statement run or one repeat iteration against the work a network may take."""
        self.work.spend(span)

    def count(self, e: ast.Expr, env: Env, what: str) -> int:
        value = evaluate(e, env)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise CnnError(f"{what} must be a whole number, 0 or more; got {describe(value)}", e.span)
        return value

    def named(self, name: ast.Name, frame: Frame) -> str:
        if name.id == "in":
            if frame.input is None and not frame.inside:
                self.need_input(None, name.span)
            if frame.input is None:
                raise CnnError("`in` names the input of the block, which a branch or a residual's body does not see",
                               name.span, "name it after the merge or residual, or name an output inside the branch")
            return frame.input
        if name.id in frame.outside and name.id not in frame.labels:
            raise CnnError(f"`{name.id}` is named outside this branch; a branch sees only the outputs named in it",
                           name.span, "use it after the merge or residual, or name an output inside the branch")
        if name.id in self.branch_labels and name.id not in frame.labels:
            raise CnnError(f"`{name.id}` is named inside a branch; it is seen only there", name.span,
                           "name the merge or residual instead (`e1: concat {...}`), or use it inside the branch")
        if name.id not in frame.labels:
            hint = did_you_mean(name.id, frame.labels) or (
                "name an output first: `e1: conv 64 kernel=3`; names are local to their block")
            raise CnnError(f"no output is named `{name.id}` here", name.span, hint)
        return frame.labels[name.id]

    def need_input(self, cur: str | None, span: Span) -> None:
        if cur is None:
            raise CnnError("there is no input yet", span, "a network starts with `input`, e.g. `input 3x224x224`")

    # ---- calls --------------------------------------------------------------------------------------

    def bound(self, d: ast.Definition) -> frozenset[str]:
        if d.name not in self.bound_cache:
            self.bound_cache[d.name] = frozenset(bound_names(d))
        return self.bound_cache[d.name]

    def call(self, c: ast.Call, frame: Frame, cur: str | None, label: str | None) -> str:
        if applies_variable(self.program, c, frame.bound):
            return self.apply(c, frame, cur, label)
        if c.name in frame.bound and not c.args and is_activation(frame.vars.get(c.name)):
            self.warnings.append(Diagnostic(
                f"`{c.name}` here is the {'block' if c.name in self.program.definitions else 'layer'} of that "
                f"name, not the variable `{c.name}` (which holds `{frame.vars[c.name]}`)", c.span,
                severity="warning", hint="rename the variable to apply the activation it holds"))
        op = callee(self.program, c)
        if isinstance(op, ast.Definition):
            self.need_input(cur, c.span)
            return self.block_call(op, c, frame, cur, label)
        if c.inputs:
            raise CnnError(f"`{op.name}` is a layer: only a block takes tensors with `with`", c.inputs[0].span,
                           "merge named outputs with `add`, `concat` or `multiply`: `concat e1 e2`")
        if op.name == "input":
            return self.input(c, frame, cur, label)
        self.need_input(cur, c.span)
        values = layer_args(op, c, frame.env())
        activation = values.pop("activation", "none")
        cur = self.add_layer(op.name, values, [cur], c.span, frame, label)
        if activation != "none":
            act_span = next((a.value.span for a in c.args if a.name == "activation"), c.span)
            cur = self.add_layer(activation, REGISTRY[activation].defaults(), [cur], act_span, frame, None)
            self.by_id[cur].fused = True
        return cur

    def apply(self, c: ast.Call, frame: Frame, cur: str | None, label: str | None) -> str | None:
        """`act`, a variable holding an activation: that activation's layer (none for `none`)."""
        kind = held_activation(c, frame.vars.get(c.name, UNBOUND))
        self.need_input(cur, c.span)
        if kind == "none":
            return cur
        return self.add_layer(kind, REGISTRY[kind].defaults(), [cur], c.span, frame, label)

    def input(self, c: ast.Call, frame: Frame, cur: str | None, label: str | None) -> str:
        if cur is not None or frame.block is not None:
            raise CnnError("`input` must come once, first in the network", c.span,
                           "blocks take the current tensor; only a network has an input")
        values = layer_args(REGISTRY["input"], c, frame.env())
        try:
            cur = self.add_layer("input", values, [], c.span, frame, label)
        except CnnError as e:
            if e.span == c.span and c.args:  # what is wrong is the shape: `input 32x32x3` underlines `32x32x3`
                e.diagnostic.span = c.args[0].value.span
            raise
        frame.in_shape = self.by_id[cur].shape
        frame.input = cur
        return cur

    def block_call(self, d: ast.Definition, c: ast.Call, frame: Frame, cur: str, label: str | None) -> str:
        chain = [name for name, _ in self.calls]
        if d.name in chain and len(chain) >= limits.RECURSION:
            start = chain.index(d.name)
            shown = chain[start:][:8] + (["…"] if len(chain) - start > 8 else [])
            raise CnnError(f"block `{d.name}` calls itself more than {limits.RECURSION} levels deep "
                           f"({' → '.join([*shown, d.name])})", c.span,
                           "a block that calls itself needs a parameter that ends it: "
                           "`if levels > 1 { tree (levels - 1) }`")
        given = bind(c, [Slot(p.name, required=p.default is None) for p in d.params], f"block `{d.name}`")
        if len(c.inputs) != len(d.inputs):
            wanted = f"`with {' '.join(d.inputs)}`" if d.inputs else "none"
            raise CnnError(f"block `{d.name}` takes {len(d.inputs)} tensor{'s' * (len(d.inputs) != 1)} besides the "
                           f"current one, given {len(c.inputs)}", c.span, f"its definition names {wanted}: give "
                           "as many named outputs after `with`, in that order")
        ins = [self.named(n, frame) for n in c.inputs]
        in_shape = self.by_id[cur].shape
        env = Env({}, in_shape, self.functions, work=self.work)
        for p in d.params:  # a default may use earlier parameters and `in`
            arg = given.get(p.name)
            env.vars[p.name] = evaluate(arg.value, frame.env()) if arg else evaluate(p.default, env)
        gid = self.name(frame, d.name, label)
        self.groups[gid] = Group(gid, _title(c, env.vars), "block", c.span)
        inner = Frame(env.vars, {}, in_shape, gid, (*frame.groups, gid), frame.frozen, d.name,
                      bound=self.bound(d), functions=self.functions, work=self.work, input=cur)
        inner.labels.update(zip(d.inputs, ins))
        self.calls.append((d.name, c.span))
        try:
            out = self.body(d.body, inner, cur)
        except CnnError as e:
            raise e.note(f"in block `{d.name}` called here", c.span) from None
        finally:
            self.calls.pop()
        self.outputs = inner.returned or [out]
        return out

    # ---- merges -------------------------------------------------------------------------------------

    def branch(self, stmts, frame: Frame, cur: str, kind: str, label: str | None, span: Span) -> str:
        """A shortcut or a merge's branch: a module of its own, named in the block (`shortcut`, `branch2`)."""
        bid = self.name(frame, kind, label)
        self.groups[bid] = Group(bid, bid.rpartition(".")[2], "branch", span)
        return self.inner(stmts, frame, cur, scope=bid, groups=(*frame.groups, bid))

    def inner(self, stmts, frame: Frame, cur: str, **changes) -> str:
        """A residual's body or a branch: it sees the variables around it (a `let` in it stays in it) and
        only the outputs named in it, as the generated code does."""
        sub = replace(frame, vars=dict(frame.vars), labels={}, outside=frame.outside | set(frame.labels), input=None,
                      inside=True, **changes)
        out = self.body(stmts, sub, cur)
        self.branch_labels.update(sub.labels)
        return out

    def residual(self, s: ast.Residual, frame: Frame, cur: str, label: str | None) -> str:
        """The body's layers are named as if written in the block (conv1, relu1...), the shortcut is the
        module `shortcut`, and the sum is a layer `add1` (or the label)."""
        body = self.inner(s.body, frame, cur)
        short, short_label = cur, "the identity shortcut"
        if s.shortcut is not None and (s.shortcut_if is None or self.condition(s.shortcut_if, frame)):
            short = self.branch(s.shortcut, frame, cur, "shortcut", "shortcut", s.shortcut_span or s.span)
            short_label = "shortcut"
        values = self.merge_args("add", s.args, s.span, frame)
        try:
            return self.add_layer("add", values, [body, short], s.span, frame, label, ["body", short_label])
        except CnnError as e:
            if (s.shortcut is None or short == cur) and not values["partial"]:
                e.diagnostic.hint = _shortcut_hint(self.by_id[cur].shape, self.by_id[body].shape,
                                                   self.size_names(frame, s.body))
            raise

    def size_names(self, frame: Frame, body: list[ast.Stmt]) -> dict[int, str]:
        """Inside a block, its integer parameters by value, those the body's layers are given first: a hint there
        writes `conv filters` where `conv 128` would break the block's other calls. None at the top level."""
        d = self.program.definitions.get(frame.block) if frame.block else None
        if d is None:
            return {}
        params = {p.name for p in d.params}
        used = [a.value.id for c in ast.statements(body) if isinstance(c, ast.Call) for a in c.args
                if isinstance(a.value, ast.Name)]
        names: dict[int, str] = {}
        for name in [*used, *(p.name for p in d.params)]:
            value = frame.vars.get(name)
            if name in params and isinstance(value, int) and not isinstance(value, bool):
                names.setdefault(value, name)
        return names

    def merge(self, s: ast.Merge, frame: Frame, cur: str, label: str | None) -> str:
        """Each branch is a module `branch1`, `branch2`... numbered through the block; the merge is a layer
        `concat1` (or the label)."""
        if len(s.branches) < 2:
            raise CnnError(f"{s.op} needs at least two branches, got {len(s.branches)}", s.span,
                           "an empty `branch { }` stands for the input itself")
        ends = [self.branch(b, frame, cur, "branch", None, s.branch_spans[i] if s.branch_spans else s.span)
                for i, b in enumerate(s.branches)]
        names = [f"branch {i}" for i in range(1, len(ends) + 1)]
        return self.add_layer(s.op, self.merge_args(s.op, s.args, s.span, frame), ends, s.span, frame, label, names)

    def merge_with(self, s: ast.MergeWith, frame: Frame, cur: str, label: str | None) -> str:
        ins = [cur, *(self.named(n, frame) for n in s.names)]
        names = ["the current tensor", *(f"`{n.id}`" for n in s.names)]
        return self.add_layer(s.op, self.merge_args(s.op, s.args, s.span, frame), ins, s.span, frame, label, names)

    def merge_args(self, op: str, args: list[ast.Arg], span: Span, frame: Frame) -> dict:
        """A merge's own arguments (`add partial=true`), bound as a layer's."""
        return layer_args(REGISTRY[op], ast.Call(op, args, span), frame.env())

    # ---- layers -------------------------------------------------------------------------------------

    def name(self, frame: Frame, kind: str, label: str | None) -> str:
        """A unique id: the label if given, else kind + a counter per scope (conv1, conv2...)."""
        prefix = f"{frame.scope}." if frame.scope else ""
        if label is not None:
            lid, n = prefix + label, 1
            while lid in self.by_id or lid in self.groups:
                n += 1
                lid = f"{prefix}{label}_{n}"
            return lid
        while True:
            key = (frame.scope, kind)
            self.counters[key] = self.counters.get(key, 0) + 1
            lid = prefix + numbered(kind, self.counters[key])
            if lid not in self.by_id and lid not in self.groups:
                return lid

    def add_layer(self, op_name: str, values: dict, inputs: list[str], span: Span, frame: Frame,
                  label: str | None, input_names: list[str] | None = None, id: str | None = None) -> str:
        if len(self.layers) >= self.max_layers:
            raise CnnError(f"the network has more than {self.max_layers:,} layers", span,
                           "check the repeat counts, or raise the limit with --max-layers")
        op = REGISTRY[op_name]
        args = Args(values, input_names or [])
        try:
            shape = op.shape(args, [self.by_id[i].shape for i in inputs])
        except CnnError as e:
            if e.span is None:
                e.diagnostic.span = span
            if isinstance(e, TooSmallError) and inputs:
                trail = self.trail(inputs[0])
                if trail:
                    e.note(trail)
            raise
        for text in args.warnings:
            self.warnings.append(Diagnostic(text, span, severity="warning"))
        lid = id or self.name(frame, op_name, label)
        layer = Layer(lid, op_name, values, inputs, shape, span, frame.groups, frame.frozen)
        self.layers.append(layer)
        self.by_id[lid] = layer
        return lid

    def trail(self, lid: str) -> str | None:
        """`the map's size on the way here: 28 (input) → 14 (maxpool1) → 7 (maxpool2)`: each size the map had on its
        way to layer `lid` (along each layer's first input) and the layer that made it; None where it never changed."""
        path = [self.by_id[lid]]
        while path[-1].inputs:
            path.append(self.by_id[path[-1].inputs[0]])
        steps: list[tuple[tuple, str]] = []
        for layer in reversed(path):
            if len(layer.shape) != 3:  # a flat vector: the map starts again at a reshape
                steps = []
            elif not steps or steps[-1][0] != layer.shape[1:]:
                steps.append((layer.shape[1:], "input" if layer.op == "input" else layer.id))
        if len(steps) < 2:
            return None
        square = all(h == w for (h, w), _ in steps)
        shown = [f"{h if square else f'{h}x{w}'} ({name})" for (h, w), name in steps]
        if len(shown) > MAX_TRAIL:
            shown = [*shown[:2], "…", *shown[-(MAX_TRAIL - 2):]]
        return "the map's size on the way here: " + " → ".join(shown)


MAX_TRAIL = 12  # sizes shown of a map's way to a layer too large for it: the first two and the last ones
_MISSING = object()


def _keyword(s: ast.Stmt) -> str:
    return {ast.Repeat: "repeat", ast.If: "if", ast.Let: "let", ast.From: "from"}.get(type(s), "this statement")


def _title(c: ast.Call, values: dict) -> str:
    """`stage 128 (blocks=4, stride=2)`: the call with its evaluated arguments."""
    positional = [describe(values[k]) for k in list(values)[: sum(1 for a in c.args if a.name is None)]]
    keywords = [f"{a.name}={describe(values[a.name])}" for a in c.args if a.name is not None]
    text = " ".join([c.name, *positional])
    text = f"{text} ({', '.join(keywords)})" if keywords else text
    return " ".join([text, "with", *(n.id for n in c.inputs)]) if c.inputs else text


def _shortcut_hint(in_shape: tuple, out_shape: tuple, names: dict[int, str]) -> str | None:
    """A shortcut that makes the identity fit the body; its sizes by the names in `names` (number → name)."""
    if len(in_shape) != 3 or len(out_shape) != 3:
        return None
    stride = in_shape[1] // out_shape[1] if out_shape[1] and in_shape[1] % out_shape[1] == 0 else 1
    changes = []
    if in_shape[0] != out_shape[0]:
        changes.append(f"channels {in_shape[0]} → {out_shape[0]}")
    if stride != 1:
        changes.append(f"stride {stride}")
    what = " and ".join(changes) or f"the shape {fmt_shape(in_shape)} → {fmt_shape(out_shape)}"
    stride_text = f" stride={names.get(stride, stride)}" if stride != 1 else ""
    return (f"the body changes {what}; add a shortcut such as\n"
            f"`shortcut {{ conv {names.get(out_shape[0], out_shape[0])} kernel=1{stride_text} }}`")


def _override(network: str, p: ast.Param, value, earlier: dict, functions: dict):
    """A --set value, checked against the kind of the parameter's default."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not abs(value) <= limits.NUMBER:
        raise UsageError(f"`{p.name}` of network `{network}` is set to a number larger than {limits.NUMBER:,}")
    if p.default is None:
        return value
    default = evaluate(p.default, Env(earlier, None, functions))
    numeric = (int, float)
    bad = (isinstance(default, bool) and not isinstance(value, bool)) or (
        isinstance(default, numeric) and not isinstance(default, bool)
        and (isinstance(value, bool) or not isinstance(value, numeric)))
    if isinstance(default, int) and not isinstance(default, bool) and isinstance(value, float):
        bad = bad or not value.is_integer()
        value = int(value) if value.is_integer() else value
    if bad:
        raise UsageError(f"--set {p.name}={describe(value)}: `{p.name}` of network `{network}` takes "
                         f"a value like its default {describe(default)}")
    return value


def parse_value(text: str):
    """A --set value: a number, true/false, a size such as 3x224x224, or a word."""
    t = text.strip()
    if t in ("true", "false"):
        return t == "true"
    number = _number(t)
    if number is not None:
        if not abs(number) <= limits.NUMBER:  # nan and inf too
            raise UsageError(f"--set value `{t}` is not a number a spec can use (at most {limits.NUMBER:,})")
        return number
    parts = t.split("x")
    if len(parts) > 1 and all(p.isdigit() for p in parts):
        return tuple(int(p) for p in parts)
    if len(t) >= 2 and t[0] == t[-1] == '"':
        return t[1:-1]
    return Symbol(t)


def _number(t: str) -> int | float | None:
    digits = t.lstrip("+-").lstrip("0")
    if digits.isdigit() and len(digits) > len(str(limits.NUMBER)):
        return math.inf  # too large, said without converting 5,000 digits
    try:
        return int(t)
    except ValueError:
        pass
    try:
        return float(t)
    except ValueError:
        return None
