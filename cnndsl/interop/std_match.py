"""A block the importer made that the standard library already has: `use "std/resnet"` and `bottleneck ...`.

A block of the library stands for the imported one when, at every call (its arguments and the shape entering
it), the two elaborate to the same layers: the same kinds with the same arguments and shapes, wired alike, in
the same order (so that the built modules hold the same tensors in the same order). The library block's
arguments are the imported block's parameters of the same names; its other parameters keep their defaults.
"""

from __future__ import annotations

import functools

from cnndsl.errors import CnnError
from cnndsl.interop import emit
from cnndsl.syntax import ast
from cnndsl.syntax.loader import STD_DIR
from cnndsl.syntax.parser import parse


@functools.cache
def library() -> tuple[tuple[str, ast.Definition], ...]:
    """Every block of the standard library, with the `use` path of its file."""
    found = []
    for path in sorted(STD_DIR.glob("*.cnn")):
        module = parse(path.read_text(), path.name)
        found += [(f"std/{path.stem}", d) for d in module.definitions if d.kind == "block"]
    return tuple(found)


def names_of(use: str) -> set[str]:
    """The names a `use` of this library file brings into scope (its own and those of the files it uses)."""
    text = (STD_DIR / f"{use[len('std/'):]}.cnn").read_text()
    module = parse(text, use)
    names = {d.name for d in module.definitions}
    for u in module.uses:
        names |= names_of(u.path)
    return names


def match(definition: ast.Definition, calls: list[ast.Call], shapes: list[tuple[int, ...]],
          made: dict[str, ast.Definition], uses: list[str]) -> tuple[str, ast.Definition, list[ast.Call]] | None:
    """The library block that stands for `definition` at each of its calls (`shapes`: what enters each), and
    the calls of it; None where none does."""
    ours = {p.name for p in definition.params}
    for use, std in library():
        required = {p.name for p in std.params if p.default is None}
        shared = [p.name for p in std.params if p.name in ours]
        if not required <= ours or not shared or not _kinds(definition) <= _kinds(std):
            continue
        theirs = [_call(std, c, definition) for c in calls]
        if all(_same(definition, c, use, t, shape, made, uses) for c, t, shape in _unique(calls, theirs, shapes)):
            return use, std, theirs
    return None


def _kinds(d: ast.Definition) -> set[str]:
    """The layers and blocks a definition's body calls (an `if` arm's too): a library block that lacks one of
    ours cannot stand for it, and is not elaborated to find that out."""
    return {s.name for s in ast.statements(d.body) if isinstance(s, ast.Call)}


def _call(std: ast.Definition, call: ast.Call, definition: ast.Definition) -> ast.Call:
    given = {a.name: a.value for a in call.args}
    defaults = {p.name: p.default for p in definition.params}
    args = []
    for p in std.params:
        if p.name in defaults:
            value = given.get(p.name, defaults[p.name])
            if p.default is None or value != p.default:
                positional = p is std.params[0] and p.default is None  # `basic 64 stride=2`
                args.append(ast.Arg(None if positional else p.name, value))
    return ast.Call(std.name, args)


def _unique(calls, theirs, shapes):
    seen = set()
    for c, t, shape in zip(calls, theirs, shapes):
        key = (repr(c), tuple(shape))
        if key not in seen:
            seen.add(key)
            yield c, t, shape


def _same(definition, call, use, theirs, shape, made, uses) -> bool:
    from cnndsl.spec import loads

    helpers = [d for d in made.values() if d is not definition]
    ours_text = emit.spec_text([*helpers, definition, emit.network("t", shape, [call])], [], uses)
    std_text = emit.spec_text([emit.network("t", shape, [theirs])], [], [use])
    try:
        return _layers(loads(ours_text).graph) == _layers(loads(std_text).graph)
    except CnnError:
        return False


def _layers(graph) -> list[tuple]:
    index = {layer.id: i for i, layer in enumerate(graph.layers)}
    return [(layer.op, sorted(layer.args.items(), key=str), tuple(index[i] for i in layer.inputs), layer.shape)
            for layer in graph.layers]
