"""A block the importer made that the standard library already has: `use "std/resnet"` and `bottleneck ...`.

A block of the library stands for the imported one when, at every call (its arguments and the shape entering
it), the two elaborate to the same layers: the same kinds with the same arguments and shapes, wired alike, in
the same order (so that the built modules hold the same tensors in the same order). The library block's
arguments are the imported block's parameters of the same names; its other parameters keep their defaults.
"""

from __future__ import annotations

import dataclasses
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
    return _by_shapes(definition, calls, shapes, made, uses)


# ---- a library block found from what each call computes -------------------------------------------------------

_MEASURED = ("filters", "stride", "expand")  # the arguments read off an instance's layers


def _by_shapes(definition, calls, shapes, made, uses):
    """A library block whose parameters are `filters`, `stride` and `expand` (the others defaulted), with each
    call's values read off the layers the imported block makes there (MobileNetV2's inverted residual, whose
    imported parameters are channel counts, not its expansion): output channels, the stride of the spatial
    size, the first layer's channels over the input's. Kept only where the two elaborate to the same layers."""
    ours = _reach(definition, made)
    for use, std in library():
        names = [p.name for p in std.params]
        if "filters" not in names or any(p.default is None and p.name not in _MEASURED for p in std.params) \
                or not ours <= _reach(std):
            continue
        theirs = []
        for call, shape in zip(calls, shapes):
            layers = _elaborated(definition, call, shape, made, uses)
            measured = _measure(layers, shape) if layers else None
            if measured is None:
                break
            theirs.append(_measured_call(std, measured))
        else:
            if all(_same(definition, c, use, t, shape, made, uses) for c, t, shape in _unique(calls, theirs, shapes)):
                return use, std, theirs
    return None


@functools.cache
def _library_blocks() -> dict[str, ast.Definition]:
    return {d.name: d for _, d in library()}


def _reach(std: ast.Definition, blocks: dict[str, ast.Definition] | None = None) -> set[str]:
    """The layers a block makes, through the blocks it calls (the library's, else those of `blocks`)."""
    blocks = blocks if blocks is not None else _library_blocks()
    found, todo, seen = set(), [std], set()
    while todo:
        d = todo.pop()
        for kind in _kinds(d):
            if kind in blocks and kind not in seen:
                seen.add(kind)
                todo.append(blocks[kind])
            elif kind not in blocks:
                found.add(kind)
    return found | {"conv"} if "dwconv" in found else found  # a depthwise conv is a conv with groups


def _elaborated(definition, call, shape, made, uses):
    from cnndsl.spec import loads

    try:
        return loads(_probe(definition, call, shape, made, uses)).graph.layers
    except CnnError:
        return None


def _measure(layers, shape) -> dict[str, object] | None:
    made = [x for x in layers if x.op != "input"]
    if len(shape) != 3 or not made or len(made[-1].shape) != 3 or made[-1].shape[1] == 0:
        return None
    out = made[-1].shape
    if shape[1] % out[1]:
        return None
    expand = made[0].shape[0] / shape[0]
    return {"filters": out[0], "stride": shape[1] // out[1], "expand": int(expand) if expand.is_integer() else expand}


def _measured_call(std: ast.Definition, measured: dict[str, object]) -> ast.Call:
    args = []
    for p in std.params:
        if p.name in measured and not (isinstance(p.default, ast.Const) and measured[p.name] == p.default.value):
            positional = p is std.params[0] and p.default is None
            args.append(ast.Arg(None if positional else p.name, emit.const(measured[p.name])))
    return ast.Call(std.name, args)


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

    ours_text = _probe(definition, call, shape, made, uses)
    std_text = emit.spec_text([emit.network("t", shape, [theirs])], [], [use])
    try:
        return _layers(loads(ours_text).graph) == _layers(loads(std_text).graph)
    except CnnError:
        return False


def _probe(definition, call, shape, made, uses) -> str:
    """A spec of one call of the imported block, the block renamed so that it is no library block's name (an
    imported `inverted_residual` beside `use "std/mobilenet"`)."""
    taken = {d.name for _, d in library()} | set(made)
    name = next(f"{definition.name}_{n}" for n in range(1, len(taken) + 2) if f"{definition.name}_{n}" not in taken)
    renamed = dataclasses.replace(definition, name=name)
    return emit.spec_text([*_helpers(made, definition), renamed,
                           emit.network("t", shape, [dataclasses.replace(call, name=name)])], [], uses)


def _helpers(made: dict[str, ast.Definition], definition: ast.Definition) -> list[ast.Definition]:
    """The imported blocks a block may call: a library block matched before comes with its `use`."""
    library_blocks = [d for _, d in library()]
    return [d for d in made.values() if d is not definition and not any(d is b for b in library_blocks)]


def _layers(graph) -> list[tuple]:
    index = {layer.id: i for i, layer in enumerate(graph.layers)}
    shapes = {layer.id: layer.shape for layer in graph.layers}
    return [(*_canonical(layer, shapes), tuple(index[i] for i in layer.inputs), layer.shape) for layer in graph.layers]


def _canonical(layer, shapes) -> tuple[str, list]:
    """A layer's kind and arguments, written one way where two ways build the same module: `padding=valid` is
    padding 0, and `dwconv` (multiplier m) a `conv` of in.channels * m filters in in.channels groups."""
    op, args = layer.op, dict(layer.args)
    if args.get("padding") == "valid":
        args["padding"] = (0, 0)
    if op == "dwconv" and layer.inputs:
        channels = shapes[layer.inputs[0]][0]
        op = "conv"
        args["filters"] = channels * args.pop("multiplier", 1)
        args["groups"] = channels
    return op, sorted(args.items(), key=str)
