"""Building a spec's syntax tree from an imported model: the helpers every importer shares (PyTorch's, Keras').

An importer finds the layers (registry kinds and their argument values) and the structure (blocks, residuals,
merges); these helpers turn them into AST nodes (cnndsl/syntax/ast.py) and print them through the printer:

- `call`, `labeled`: one layer, its arguments at their registry defaults left out;
- `repeats`: equal consecutive statements folded into `repeat n { }`;
- `generalise`: the instances of one block (a class used several times) made one parameterised `block`,
  whose constants that differ between instances become parameters (`filters`, `stride`), and whose
  residual shortcut present in some instances only becomes `shortcut if project { }`;
- `spec_text`: the module printed, after a comment naming the source.
"""

from __future__ import annotations

import keyword
import re
from collections import Counter
from dataclasses import dataclass, field

from cnndsl.ops import REGISTRY
from cnndsl.ops.base import PAIRED
from cnndsl.syntax import ast
from cnndsl.syntax.printer import KEYWORDS, print_module

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def const(value) -> ast.Const:
    """A value as the spec writes it: a pair with equal sides as one number."""
    if isinstance(value, tuple) and len(value) == 2 and value[0] == value[1]:
        value = value[0]
    return ast.Const(value)


def is_name(text: str) -> bool:
    """Whether `text` can be a label, a block or a parameter name in a spec."""
    return bool(_WORD.match(text)) and text not in KEYWORDS and not keyword.iskeyword(text)


def call(kind: str, values: dict[str, object] | None = None, lead: bool = False) -> ast.Call:
    """The layer `kind` with its argument values (registry names): defaults left out, the positional first.

    A word (`padding="same"`, `activation="relu"`) is written as a name: `padding=same`. `lead` writes the
    leading positional argument even at its default (Keras' importer writes `dropout 0.5` as Keras states it).
    """
    op = REGISTRY[kind]
    args: list[ast.Arg] = []
    for spec in op.args:
        if spec.name not in (values or {}):
            continue
        value = values[spec.name]
        if spec.kind in PAIRED and isinstance(value, int) and not isinstance(value, bool):
            value = (value, value)
        positional = spec.positional and not args and spec is op.args[0]
        if _is_default(value, spec) and not (lead and positional):
            continue
        args.append(ast.Arg(None if positional else spec.name, word(value) if isinstance(value, str) else const(value)))
    return ast.Call(kind, args)


def _is_default(value, spec) -> bool:
    """Whether a spec leaves `value` out: it is the default, of its type (no padding is `valid`)."""
    if spec.kind == "padding" and spec.default == "valid" and value in ((0, 0), 0):
        return True
    return value == spec.default and type(value) is type(spec.default)


def word(value: str) -> ast.Expr:
    """A word value as the spec writes it: a name where it can be one (`same`), else quoted."""
    return ast.Name(value) if is_name(value) else ast.Const(value)


def labeled(label: str | None, stmt: ast.Stmt) -> ast.Stmt:
    return ast.Labeled(label, stmt) if label else stmt


def repeats(body: list[ast.Stmt]) -> list[ast.Stmt]:
    """Runs of two or more equal statements as one `repeat n { stmt }` (a label's run is left alone: a
    repeated label would name two layers alike)."""
    out: list[ast.Stmt] = []
    i = 0
    while i < len(body):
        j = i + 1
        while j < len(body) and body[j] == body[i] and not isinstance(body[i], ast.Labeled):
            j += 1
        out.append(ast.Repeat(None, None, ast.Const(j - i), [body[i]]) if j - i > 1 else body[i])
        i = j
    return out


# ---- one block for the instances of a class ----------------------------------------------------------------------


@dataclass
class _Params:
    """The parameters found while unifying instances: one per distinct column of values across instances."""

    blocks: dict[str, ast.Definition] = field(default_factory=dict)  # blocks made so far (for their defaults)
    count: int = 0  # instances
    order: list[str] = field(default_factory=list)
    values: dict[str, tuple] = field(default_factory=dict)  # parameter → its value in each instance

    def find(self, values: tuple, among: tuple[int, ...]) -> str | None:
        for name in self.order:
            if all(self.values[name][i] == v and type(self.values[name][i]) is type(v) for i, v in zip(among, values)):
                return name
        return None

    def name_for(self, values: tuple, base: str, among: tuple[int, ...]) -> str:
        """The parameter whose values in the instances `among` are `values` (those of a shortcut that some
        instances lack are free in the others), else a new one named after `base`."""
        known = self.find(values, among)
        if known:
            return known
        name, n = base, 1
        while name in self.values:
            n += 1
            name = f"{base}{n}"
        common = Counter(values).most_common(1)[0][0]
        full = [common] * self.count
        for i, v in zip(among, values):
            full[i] = v
        self.order.append(name)
        self.values[name] = tuple(full)
        return name


class _Differ(Exception):
    """Instances whose structure differs (not only in constants): they cannot be one block."""


def generalise(name: str, bodies: list[list[ast.Stmt]], blocks: dict[str, ast.Definition] | None = None
               ) -> tuple[ast.Definition, list[ast.Call]]:
    """One block `name` for instances with these bodies, and the call that makes each instance.

    Constants that differ become parameters (named after the argument they are: `filters`, `stride`), one per
    distinct column of values; the most frequent value is the default, left out of calls. A residual whose
    shortcut some instances lack gets `shortcut if project`. Raises ValueError where the bodies differ in
    more than that (the caller then makes a block per structure). `blocks` are the blocks the bodies call.
    """
    params = _Params(dict(blocks or {}), len(bodies))
    try:
        body = _unify_list(bodies, params, "value", tuple(range(len(bodies))))
    except _Differ:
        raise ValueError("the instances differ in structure") from None
    defaults = {p: Counter(params.values[p]).most_common(1)[0][0] for p in params.order}
    definition = ast.Definition("block", name, [ast.Param(p, const(defaults[p])) for p in params.order], body)
    calls = []
    for i in range(len(bodies)):
        args = [ast.Arg(p, const(params.values[p][i])) for p in params.order
                if params.values[p][i] != defaults[p]]
        calls.append(ast.Call(name, args))
    return definition, calls


def _unify_list(lists: list[list], params: _Params, base: str, among: tuple[int, ...]) -> list:
    if len({len(x) for x in lists}) != 1:
        raise _Differ
    return [_unify([x[i] for x in lists], params, base, among) for i in range(len(lists[0]))]


def _unify(nodes: list, params: _Params, base: str, among: tuple[int, ...]):
    first = nodes[0]
    if any(type(n) is not type(first) for n in nodes):
        raise _Differ
    if isinstance(first, ast.Const):
        values = tuple(n.value for n in nodes)
        if len(among) < params.count:  # in a shortcut some lack: a parameter that holds these values
            known = params.find(values, among)
            if known:
                return ast.Name(known)
        if all(v == first.value and type(v) is type(first.value) for v in values):
            return first
        if len({type(v) for v in values}) != 1:
            raise _Differ
        return ast.Name(params.name_for(values, base, among))
    if isinstance(first, ast.Call):
        if any(n.name != first.name or [a.name for a in n.args] != [a.name for a in first.args] for n in nodes):
            return _unify_args(nodes, params, among)
        op = REGISTRY.get(first.name)
        args = []
        for i, a in enumerate(first.args):
            arg_name = a.name or (next(s.name for s in op.args if s.positional) if op else "value")
            args.append(ast.Arg(a.name, _unify([n.args[i].value for n in nodes], params, arg_name, among)))
        return ast.Call(first.name, args)
    if isinstance(first, ast.Labeled):
        if any(n.label != first.label for n in nodes):
            raise _Differ
        return ast.Labeled(first.label, _unify([n.stmt for n in nodes], params, base, among))
    if isinstance(first, ast.Repeat):
        stop = _unify([n.stop for n in nodes], params, "blocks", among)
        return ast.Repeat(None, None, stop, _unify_list([n.body for n in nodes], params, base, among))
    if isinstance(first, ast.Residual):
        body = _unify_list([n.body for n in nodes], params, base, among)
        having = [k for k, n in enumerate(nodes) if n.shortcut is not None]
        shortcut = None
        if having:
            shortcut = _unify_list([nodes[k].shortcut for k in having], params, base, tuple(among[k] for k in having))
        cond = None
        if having and len(having) < len(nodes):
            cond = ast.Name(params.name_for(tuple(n.shortcut is not None for n in nodes), "project", among))
        return ast.Residual(body, shortcut, cond)
    if isinstance(first, ast.Merge):
        if any(n.op != first.op or len(n.branches) != len(first.branches) for n in nodes):
            raise _Differ
        branches = [_unify_list([n.branches[i] for n in nodes], params, base, among)
                    for i in range(len(first.branches))]
        return ast.Merge(first.op, branches)
    if any(n != first for n in nodes):
        raise _Differ
    return first


def _unify_args(nodes: list[ast.Call], params: _Params, among: tuple[int, ...]) -> ast.Call:
    """Calls of one kind whose arguments left out differ (one instance's stride is the default): each written
    with every argument the others give, then unified."""
    first = nodes[0]
    if any(n.name != first.name for n in nodes):
        raise _Differ
    if first.name in params.blocks:
        d = params.blocks[first.name]
        defaults = {p.name: p.default.value for p in d.params}
        full = [{a.name: a.value.value for a in n.args} for n in nodes]
        names = [p.name for p in d.params if any(p.name in f for f in full)]
    elif first.name in REGISTRY:
        op = REGISTRY[first.name]
        full = [_all_args(n, op) for n in nodes]
        defaults = {s.name: s.default for s in op.args}
        names = [s.name for s in op.args if any(s.name in f for f in full)]
    else:
        raise _Differ
    args = []
    for arg_name in names:
        values = [f.get(arg_name, defaults[arg_name]) for f in full]
        unified = _unify([const(v) for v in values], params, arg_name, among)
        positional = not args and first.name in REGISTRY and REGISTRY[first.name].args[0].name == arg_name \
            and REGISTRY[first.name].args[0].positional
        args.append(ast.Arg(None if positional else arg_name, unified))
    return ast.Call(first.name, args)


def _all_args(c: ast.Call, op) -> dict[str, object]:
    out = {}
    positional = [s.name for s in op.args if s.positional]
    for i, a in enumerate(c.args):
        if not isinstance(a.value, ast.Const):
            raise _Differ
        key = a.name or positional[i]
        value = a.value.value
        spec = op.arg(key)
        if spec.kind in PAIRED and isinstance(value, int) and not isinstance(value, bool):
            value = (value, value)
        out[spec.name] = value
    return out


# ---- the file --------------------------------------------------------------------------------------------------


def network(name: str, input_shape: tuple[int, ...], body: list[ast.Stmt]) -> ast.Definition:
    shape = tuple(input_shape)
    value = ast.Const(shape[0] if len(shape) == 1 else shape)  # a flat input is `input 784`
    return ast.Definition("network", name, [], [ast.Call("input", [ast.Arg(None, value)]), *body])


def spec_text(definitions: list[ast.Definition], comment: list[str], uses: list[str] = ()) -> str:
    """The spec printed by the printer, after `comment` (lines, `# ` added)."""
    module = ast.Module([ast.Use(u) for u in uses], definitions)
    lines = [re.sub(r"[\x00-\x1f\x7f\u2028\u2029\x85]", "?", line) for line in comment]  # one comment line each
    head = "".join(f"# {line}\n" if line else "#\n" for line in lines)
    return head + print_module(module)
