"""Weights from other models: match tensors by name where names agree, else by order and shape.

Transfer learning starts from a pretrained network whose names are not ours (torchvision's
`layer1.0.conv1.weight` is our `stage1.basic1.conv1.weight`), but whose tensors come
in the same order with the same shapes. Nothing loads silently: the result says what was loaded,
skipped and missing, and a strict load that does not fit completely is an error naming each tensor.

Nothing loads silently wrong either. Where the source registers modules of equal shapes in another order
than ours (RegNet's shortcut before its body), order cannot tell which is which: `match` finds such pairs
and reports them as ambiguous instead of loading them (a strict load refuses). Given the source module
itself, the two networks are paired by the structure of their dataflow (weights_graph) and run on one
random input to check that they now compute the same function.

A module that fits no other exactly may still take one that holds the same values in the same order
under another shape or name: torchvision's ConvNeXt applies nn.Linear to the channels at every position
(weight (out, in)) where a spec writes a 1x1 conv (weight (out, in, 1, 1)), and keeps its layer scale
as `layer_scale` (C, 1, 1) where ours is `gamma`. Such tensors are reported as reshaped.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from cnndsl import keras_weights
from cnndsl.errors import CnnError
from cnndsl.files import name_of, open_file, torch_load
from cnndsl.keras_weights import is_keras_file
from cnndsl.optional import clear_imports, require


def _keras_pairing(loaded: list[tuple[str, str]]) -> str:
    """How Keras' tensors were paired: by the layer names a spec that `cnndsl import` wrote bears, else by kind
    and order (keras_weights.by_name)."""
    from cnndsl.keras_summary import spec_name

    named = sum(1 for ours, theirs in loaded if spec_name(theirs.split("/")[0]) in ours.split(".")[:-1])
    if not named:
        return "by kind and order"
    if named == len(loaded):
        return "by layer name"
    return f"{named} by layer name, {len(loaded) - named} by kind and order"


@dataclass
class LoadReport:
    """What `load_weights` did: which tensors went where, and what it could not pair.

    Names are state_dict names: ours are the module's the weights went into, theirs the source's.

    - `loaded`: (ours, theirs) for each tensor copied, one entry per tensor (a conv with a bias counts 2, a
      batchnorm 5 with its `num_batches_tracked` counter when both have one), in our state_dict's order.
      An entry whose two names are equal was paired by name; `structural` of them were paired along the
      two networks' dataflow graphs, the rest by order and shape.
    - `skipped`: their tensors that went nowhere; `missing`: ours that got nothing (kept as they were).
      Neither lists `num_batches_tracked`, which many checkpoints lack.
    - `ambiguous`: (ours, theirs) that order and shape would pair, but that a module of equal shapes could
      take instead, and the order around them does not settle which (see `match`): not loaded.
    - `reshaped`: ours that took a tensor of another shape holding the same values (a Linear's (out, in)
      into a 1x1 conv's (out, in, 1, 1)).
    - `structural`: how many of `loaded` were paired by structure (the source was a module; 0 otherwise).
    - `max_difference`: where the source was a module, the largest absolute difference between the two
      networks' outputs on one random input in eval mode after the load; None where not measured (no
      `input_shape` on either module). `tolerance`: the most it may be for a strict load, 1e-4 times the
      largest output (at least 1e-4): float32 rounding in another order of operations stays far below.
    - `notes`: what the values do not show (Keras' batchnorm epsilon, a fallback from structure to order).
    - `keras`: from a Keras file, paired by kind in order, transposed to PyTorch's layouts.
    """

    loaded: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    reshaped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    keras: bool = False
    ambiguous: list[tuple[str, str]] = field(default_factory=list)
    structural: int = 0
    max_difference: float | None = None
    tolerance: float | None = None

    @property
    def complete(self) -> bool:
        return not self.skipped and not self.missing and not self.ambiguous

    def summary(self) -> str:
        by_name = sum(1 for ours, theirs in self.loaded if ours == theirs)
        rest = len(self.loaded) - self.structural  # beside a structural match: what no traced unit holds
        if self.keras:
            how = f"from Keras, {_keras_pairing(self.loaded)}, in PyTorch's layouts"
        elif self.structural:
            how = f"{self.structural} by structure" + (f", {rest} by name, order and shape" if rest else "")
        else:
            how = f"{by_name} by name, {rest - by_name} by order and shape"
        lines = [f"loaded {len(self.loaded)} tensors ({how}), skipped {len(self.skipped)}, "
                 f"missing {len(self.missing)}"]
        if self.ambiguous:
            lines[0] += f", ambiguous {len(self.ambiguous)} (not loaded)"
        if self.reshaped:
            lines[0] += f"; {len(self.reshaped)} reshaped (same values, e.g. a Linear's (out, in) into a 1x1 conv)"
        if self.max_difference is not None:
            lines.append(f"  outputs on a random input differ by at most {self.max_difference:.3g}")
        lines += [f"  skipped {name}" for name in self.skipped[:20]]
        lines += [f"  missing {name}" for name in self.missing[:20]]
        lines += [f"  ambiguous {ours} <-> {theirs}" for ours, theirs in self.ambiguous[:20]]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def _from_keras(module, path: Path, strict: bool) -> tuple[dict, LoadReport]:
    if not (path.exists() or path.is_symlink()):
        raise CnnError(f"no such weights file: {path}")
    found = keras_weights.load(module, path, strict)
    return found.theirs, LoadReport(found.loaded, found.skipped, found.missing, notes=found.notes, keras=True)


def read_state_dict(source) -> dict:
    """A state_dict from a dict, a module, a `torch.save` file, a safetensors file or a cnndsl checkpoint.

    Files are read without running anything they hold: torch.load(weights_only=True) or safetensors.
    """
    import torch

    if isinstance(source, torch.nn.Module):
        return source.state_dict()
    if isinstance(source, dict):
        return _tensors(state_dict_of(source))
    if not isinstance(source, (str, Path)):
        raise CnnError(f"the weights are a {type(source).__name__}, not a state_dict (names to tensors)",
                       hint="save the weights with torch.save(model.state_dict(), PATH)")
    path = Path(source)
    if not (path.exists() or path.is_symlink()):  # (a link loop: open_file says so)
        raise CnnError(f"no such weights file: {path}")
    if path.suffix == ".safetensors":
        return _safetensors(path)
    return read_state_dict(torch_load(path, "weights from"))


def state_dict_of(data):
    """The weights of what a file held: a cnndsl checkpoint's `model` (see cnndsl.saved), or the file itself."""
    if isinstance(data, dict) and isinstance(data.get("model"), dict):
        return data["model"]
    return data


def _tensors(state: dict) -> dict:
    """The tensors of a state_dict; a dict that holds none is not one."""
    import torch

    tensors = {k: v for k, v in state.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if not tensors:
        raise CnnError("the weights hold no tensors: not a state_dict",
                       hint="save the weights with torch.save(model.state_dict(), PATH)")
    return tensors


def _safetensors(path: Path) -> dict:
    load_file = require("safetensors.torch", "reading .safetensors weights").load_file
    try:
        with open_file(path, f"weights from {path}") as f:
            tensors = load_file(name_of(f, path))  # safetensors takes a name: the file checked, by its descriptor
    except CnnError:
        raise
    except Exception as e:  # safetensors raises its own error types for files that are not safetensors
        raise CnnError(f"{path} is not a valid safetensors file: {str(e).strip().splitlines()[0]}",
                       hint="a .safetensors file comes from safetensors.torch.save_file; a torch.save file "
                       "ends in .pt") from None
    if not tensors:
        raise CnnError(f"{path} holds no tensors")
    return {name: tensors[name] for name in sorted(tensors, key=natural)}  # stored sorted: the natural order


OPTIONAL = "num_batches_tracked"  # a counter; absent from many foreign checkpoints


def _split(name: str) -> tuple[str, str]:
    prefix, _, kind = name.rpartition(".")
    return prefix, kind


def _modules(state: dict, names) -> dict[str, dict[str, str]]:
    """Tensors grouped by module, in order of first appearance: prefix → kind → full name."""
    out: dict[str, dict[str, str]] = {}
    for name in names:
        prefix, kind = _split(name)
        out.setdefault(prefix, {})[kind] = name
    return out


def _children_first(names: list[str]) -> list[str]:
    """The names with a module's own tensors after its children's. A state_dict lists a module's own
    parameters first, wherever its forward uses them: torchvision's ConvNeXt block keeps `layer_scale` on
    itself and applies it after its `block` of layers, where a spec writes `layerscale` last."""
    first: dict[tuple, int] = {}  # module path → where a name under it first appears
    for i, name in enumerate(names):
        parts = tuple(name.split("."))
        for depth in range(1, len(parts) + 1):
            first.setdefault(parts[:depth], i)

    def key(name: str) -> list:
        parts = tuple(name.split("."))
        return [(0, first[parts[:depth]]) for depth in range(1, len(parts))] + [(1, first[parts])]

    return sorted(names, key=key)


def natural(name: str) -> list:
    """`layer10` after `layer2`: the order a file sorted by name had before sorting."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _squeezed(shape) -> tuple:
    """The shape without its 1-sized axes: tensors equal under it hold the same values in the same order."""
    return tuple(n for n in shape if n != 1)


def signature(shapes: dict[str, tuple]) -> tuple:
    """What a module's tensors (kind → shape) can be paired with: `_fit` pairs two modules exactly when their
    signatures are equal (the kinds and their shapes without 1-sized axes; a lone tensor by its shape alone)."""
    shapes = {k: _squeezed(v) for k, v in shapes.items() if k != OPTIONAL}
    if len(shapes) == 1:
        return ("one", next(iter(shapes.values())))
    return ("kinds", tuple(sorted(shapes.items())))


def _signature(state: dict, tensors: dict[str, str]) -> tuple:
    return signature({kind: tuple(state[name].shape) for kind, name in tensors.items()})


def _fit(ours: dict, mine: dict[str, str], theirs: dict, candidates: dict[str, str]) -> dict | None:
    """Our tensors → theirs when the two modules hold the same values: same kinds (weight, bias...) with
    shapes equal once 1-sized axes are dropped (a 1x1 conv's (out, in, 1, 1) and a Linear's (out, in)), or
    one tensor each under other names (our layer scale's `gamma`, torchvision's `layer_scale`)."""
    if _signature(ours, mine) != _signature(theirs, candidates):
        return None
    a = {k: n for k, n in mine.items() if k != OPTIONAL}
    b = {k: n for k, n in candidates.items() if k != OPTIONAL}
    pairs = {a[k]: b[k] for k in a} if a.keys() == b.keys() else {next(iter(a.values())): next(iter(b.values()))}
    pairs.update({mine[OPTIONAL]: candidates[OPTIONAL]} if OPTIONAL in mine and OPTIONAL in candidates else {})
    return pairs


@dataclass
class _Pair:
    ours: str  # module names (state_dict prefixes)
    theirs: str
    kind: tuple  # their signature
    where: int  # their module's place in their order


def match(ours: dict, theirs: dict) -> LoadReport:
    """Pairs tensors: same name and shape first; then whole modules, in order, each with the first module
    left of theirs that holds the same values (the same shapes, or a Linear's weight for a 1x1 conv's).

    Order decides only among modules of equal shapes, and only where it can: two of ours of one signature
    that took two of theirs are confirmed when the modules between them are the same on both sides, or when
    one of those modules in both stretches is itself certain. Otherwise (a source that registers a block's
    shortcut before its body) they are reported as ambiguous and not loaded.
    """
    pairs = {n: n for n, t in ours.items() if n in theirs and tuple(theirs[n].shape) == tuple(t.shape)}
    taken = set(pairs.values())
    their_modules = _modules(theirs, _children_first([n for n in theirs if n not in taken]))
    queues: dict[tuple, list[tuple[int, str]]] = {}  # signature → their modules of it, in order
    for where, (other, candidates) in enumerate(their_modules.items()):
        queues.setdefault(_signature(theirs, candidates), []).append((where, other))
    our_modules = _modules(ours, _children_first([n for n in ours if n not in pairs]))
    order: list[_Pair] = []
    for mine, tensors in our_modules.items():
        kind = _signature(ours, tensors)
        if queues.get(kind):
            where, other = queues[kind].pop(0)
            order.append(_Pair(mine, other, kind, where))
    doubtful = _doubtful(order)
    ambiguous: list[tuple[str, str]] = []
    for i, pair in enumerate(order):
        found = _fit(ours, our_modules[pair.ours], theirs, their_modules[pair.theirs])
        if i in doubtful:
            ambiguous.extend(found.items())
        else:
            pairs.update(found)
    taken = set(pairs.values()) | {t for _, t in ambiguous}
    held = {o for o, _ in ambiguous}
    return LoadReport(
        loaded=[(n, pairs[n]) for n in ours if n in pairs],
        skipped=[n for n in theirs if n not in taken and _split(n)[1] != OPTIONAL],
        missing=[n for n in ours if n not in pairs and n not in held and _split(n)[1] != OPTIONAL],
        reshaped=[n for n in ours if n in pairs and tuple(ours[n].shape) != tuple(theirs[pairs[n]].shape)],
        ambiguous=[(o, t) for o, t in ambiguous if _split(o)[1] != OPTIONAL],
    )


def _doubtful(order: list[_Pair]) -> set[int]:
    """The pairs (indices into `order`, our order) that a module of equal shapes could have taken instead.

    Within one signature the i-th of ours took the i-th of theirs. Two neighbours of a signature are
    confirmed when the pairs between them are the same in our order and in theirs, or when one pair lies
    between them on both sides and is not itself doubtful (what sits between two modules on both sides pins
    their order). Both of an unconfirmed two are doubtful, which may unconfirm others: repeated to the end.
    """
    rank = {i: r for r, i in enumerate(sorted(range(len(order)), key=lambda i: order[i].where))}
    by_rank = sorted(rank, key=rank.get)
    members: dict[tuple, list[int]] = {}
    for i, pair in enumerate(order):
        members.setdefault(pair.kind, []).append(i)
    checks = []  # (a, b, the pairs between them on both sides)
    for same in members.values():
        for a, b in zip(same, same[1:]):
            mine, theirs = set(range(a + 1, b)), set(by_rank[rank[a] + 1:rank[b]])
            if mine != theirs:
                checks.append((a, b, mine & theirs))
    doubtful: set[int] = set()
    changed = True
    while changed:
        changed = False
        for a, b, between in checks:
            if not {a, b} <= doubtful and between <= doubtful:
                doubtful |= {a, b}
                changed = True
    return doubtful


TRIES = 8  # isomorphisms of the dataflow graphs tried until one gives the source's outputs


@clear_imports
def load_weights(module, source, strict: bool = True) -> LoadReport:
    """Copies matching tensors from `source` into `module` and reports what happened (see LoadReport).

    `source` is a state_dict, a module, a weights file (torch.save, safetensors, a cnndsl checkpoint) or a Keras
    file (.keras, .weights.h5, Keras 2's .h5: see cnndsl.keras_weights). Tensors pair by name, else by order
    and shape; where `source` is a module, by structure: both are traced into dataflow graphs and matched,
    and both are run on one random input to check (report.max_difference). strict=True (the default)
    refuses a load that leaves any of our tensors or theirs unmatched, pairs that order cannot settle, or
    outputs that differ; strict=False loads what fits and warns about what is ambiguous. A load where
    nothing fits is always an error.
    """
    import torch

    ours = module.state_dict()
    if isinstance(source, torch.nn.Module):
        result = _from_module(module, source, ours, strict)
    else:
        if is_keras_file(source):
            theirs, result = _from_keras(module, Path(source), strict)
        else:
            theirs = read_state_dict(source)
            result = match(ours, theirs)
        _refuse(result, ours, theirs, strict)
        _copy(ours, theirs, result.loaded)
    _warn(result)
    return result


def _from_module(module, source, ours: dict, strict: bool) -> LoadReport:
    """By name where every name agrees, else by structure; then both run, and a refused load undone."""
    theirs = source.state_dict()
    before = {name: tensor.clone() for name, tensor in ours.items()}
    try:
        result = match(ours, theirs) if _by_name(ours, theirs) else _by_structure(module, source, ours, theirs)
        _refuse(result, ours, theirs, strict)
        _copy(ours, theirs, result.loaded)
        if not result.structural:  # by name, or by order where structure failed: measured now
            _measure(result, module, source)
        if strict and not _close(result):
            raise CnnError(f"after the load the outputs differ from the source's by {result.max_difference:.3g} "
                           f"on a random input (tolerance {result.tolerance:.3g}: {TOLERANCE:g} times the largest "
                           "output)", hint="the two networks do not compute the same function; "
                           "strict=False keeps the load and reports the difference (report.max_difference)")
    except BaseException:
        _copy(ours, before, [(name, name) for name in before])  # a refused load leaves the module as it was
        raise
    return result


def _warn(result: LoadReport) -> None:  # stacklevel 4: past load_weights and clear_imports, to its caller
    if result.ambiguous:
        warnings.warn(f"load_weights left {len(result.ambiguous)} tensors unloaded: modules of equal shapes "
                      "that order cannot pair (report.ambiguous)", stacklevel=4)
    if not _close(result):
        warnings.warn(f"after load_weights the outputs differ from the source's by {result.max_difference:.3g} "
                      "(report.max_difference)", stacklevel=4)


def _by_name(ours: dict, theirs: dict) -> bool:
    return ours.keys() == theirs.keys() and all(ours[n].shape == theirs[n].shape for n in ours)


def _refuse(result: LoadReport, ours: dict, theirs: dict, strict: bool) -> None:
    if not result.loaded:
        raise CnnError("no tensor of the weights fits this model",
                       hint=f"the model has {len(ours)} tensors, the weights {len(theirs)}; are they the same "
                       "architecture?")
    if strict and result.ambiguous:
        raise _ambiguity(result.ambiguous, ours)
    if strict and not result.complete:
        details = [f"  ours   {n} {tuple(ours[n].shape)}: no tensor of the same shape left" for n in result.missing]
        details += [f"  theirs {n} {tuple(theirs[n].shape)}: fits nothing" for n in result.skipped]
        raise CnnError("the weights do not fit the model exactly:\n" + "\n".join(details[:40]),
                       hint="pass strict=False to load the tensors that fit (e.g. a new head for other classes)")


SHOWN = 5  # ambiguous pairs named in the error


def _ambiguity(ambiguous: list[tuple[str, str]], ours: dict) -> CnnError:
    modules = list(dict.fromkeys((_split(o)[0], _split(t)[0]) for o, t in ambiguous))
    shapes = {_split(o)[0]: tuple(ours[o].shape) for o, _ in ambiguous if _split(o)[1] == "weight"}
    lines = [f"  ours {mine or '(top)'} <-> theirs {other or '(top)'}" + (f"  {shapes[mine]}" if mine in shapes
             else "") for mine, other in modules[:SHOWN]]
    if len(modules) > SHOWN:
        lines.append(f"  ... and {len(modules) - SHOWN} more")
    return CnnError(f"{len(modules)} modules pair by order and shape only ambiguously: modules of equal shapes "
                    "that the source registers in another order could change places without a sign, e.g.\n"
                    + "\n".join(lines),
                    hint="pass the source module itself (load_weights(model, their_module)) so that it pairs "
                    "by structure, or rename the tensors to our names so that they pair by name; strict=False "
                    "loads the rest")


def _copy(ours: dict, theirs: dict, pairs: list[tuple[str, str]]) -> None:
    import torch

    with torch.no_grad():
        for name, other in pairs:
            ours[name].copy_(theirs[other].reshape(ours[name].shape))  # a no-op unless reported as reshaped


def _by_structure(module, source, ours: dict, theirs: dict) -> LoadReport:
    """Pairs along an isomorphism of the two dataflow graphs (weights_graph) whose load gives the source's
    outputs; the tensors no unit holds pair by name or order. Falls back to `match` where either network
    cannot be traced or the graphs differ, and says so in the report's notes."""
    from cnndsl import weights_graph  # networkx: only here, so that `check` does not import it

    try:
        mine = weights_graph.dataflow(module, _label)
        other = weights_graph.dataflow(source, _label)
    except Exception as e:  # torch.fx raises what the traced code raises: any error means "cannot trace"
        return _fallback(ours, theirs, f"the networks could not be traced ({_first_line(e)})")
    best: LoadReport | None = None
    for tries, mapping in enumerate(weights_graph.isomorphisms(mine, other)):
        report = _along(mapping, mine, other, ours, theirs)
        _copy(ours, theirs, report.loaded)
        _measure(report, module, source)
        if best is None or (report.max_difference or 0) < (best.max_difference or 0):
            best = report
        if _close(best) or tries + 1 == TRIES:
            break
    if best is None:
        return _fallback(ours, theirs, f"the dataflow graphs differ ({len(mine.units)} modules with weights in "
                         f"ours and {len(other.units)} in theirs, not of the same shapes and connections)")
    _copy(ours, theirs, best.loaded)
    return best


def _along(mapping: dict[str, str], mine, other, ours: dict, theirs: dict) -> LoadReport:
    pairs: dict[str, str] = {}
    for unit, partner in mapping.items():
        pairs.update(_fit(ours, _counted(mine.units[unit], unit, ours), theirs,
                          _counted(other.units[partner], partner, theirs)))
    taken = set(pairs.values())
    rest = match({n: t for n, t in ours.items() if n not in pairs}, {n: t for n, t in theirs.items()
                                                                    if n not in taken})
    pairs.update(rest.loaded)
    return LoadReport(
        loaded=[(n, pairs[n]) for n in ours if n in pairs], skipped=rest.skipped, missing=rest.missing,
        reshaped=[n for n in ours if n in pairs and tuple(ours[n].shape) != tuple(theirs[pairs[n]].shape)],
        ambiguous=rest.ambiguous, structural=len(pairs) - len(rest.loaded))


def _counted(tensors: dict[str, str], unit: str, state: dict) -> dict[str, str]:
    """A unit's tensors with its batchnorm counter, which a traced batchnorm's code does not read in eval."""
    counter = f"{unit}.{OPTIONAL}"
    return {**tensors, OPTIONAL: counter} if counter in state and OPTIONAL not in tensors else tensors


def _fallback(ours: dict, theirs: dict, why: str) -> LoadReport:
    report = match(ours, theirs)
    report.notes.append(f"paired by order and shape, not by structure: {why}")
    return report


def _label(tensors: dict) -> tuple:
    return signature({kind: tuple(t.shape) for kind, t in tensors.items()})


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0][:200]}" if text else type(error).__name__


TOLERANCE = 1e-4  # times the largest output (at least 1): float32 rounding in other orders stays far below


def _close(report: LoadReport) -> bool:
    return report.max_difference is None or report.max_difference <= report.tolerance


def _measure(report: LoadReport, module, source) -> None:
    """Sets the report's max_difference and tolerance, or notes why the two networks could not be run."""
    shape = getattr(module, "input_shape", None) or getattr(source, "input_shape", None)
    if shape is None:
        report.notes.append("outputs not compared: neither module has an `input_shape`")
        return
    try:
        report.max_difference, report.tolerance = _difference(module, source, tuple(shape))
    except Exception as e:  # the source is the user's code: whatever it raises, the load itself stands
        report.notes.append(f"outputs not compared: running the networks failed ({_first_line(e)})")


def _difference(module, source, shape: tuple) -> tuple[float, float]:
    """The largest absolute difference between the two networks' outputs on one random input (eval mode,
    seeded), and the most a strict load allows."""
    import torch

    from cnndsl.weights_graph import evaluating

    x = torch.randn((1, *shape), generator=torch.Generator().manual_seed(0))  # one: the check runs once per load
    with evaluating(module, source), torch.no_grad():
        want = _outputs(source(_like(x, source)))
        runs = [module] + ([module.logits] if getattr(module, "ends_in_softmax", False) else [])
        scale = max([1.0] + [float(y.abs().max()) for y in want if y.numel()])
        return min(_apart(_outputs(run(_like(x, module))), want) for run in runs), TOLERANCE * scale


def _like(x, module):
    first = next(iter(module.parameters()), None)
    return x if first is None else x.to(device=first.device, dtype=first.dtype)


def _outputs(value) -> list:
    import torch

    if isinstance(value, torch.Tensor):
        return [value.detach().float().cpu()]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _outputs(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _outputs(v)]
    return []


def _apart(a: list, b: list) -> float:
    if len(a) != len(b) or any(x.shape != y.shape for x, y in zip(a, b)) or not a:
        return float("inf")
    return max(float((x - y).abs().max()) if x.numel() else 0.0 for x, y in zip(a, b))
