"""Weights from other models: match tensors by name where names agree, else by order and shape.

Transfer learning starts from a pretrained network whose names are not ours (torchvision's
`layer1.0.conv1.weight` is our `stage1.basic1.conv1.weight`), but whose tensors come
in the same order with the same shapes. Nothing loads silently: the result says what was loaded,
skipped and missing, and a strict load that does not fit completely is an error naming each tensor.

A module that fits no other exactly may still take one that holds the same values in the same order
under another shape or name: torchvision's ConvNeXt applies nn.Linear to the channels at every position
(weight (out, in)) where a spec writes a 1x1 conv (weight (out, in, 1, 1)), and keeps its layer scale
as `layer_scale` (C, 1, 1) where ours is `gamma`. Such tensors are reported as reshaped.
"""

from __future__ import annotations

import re
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
    from cnndsl.interop.keras_import import spec_name

    named = sum(1 for ours, theirs in loaded if spec_name(theirs.split("/")[0]) in ours.split(".")[:-1])
    if not named:
        return "by kind and order"
    if named == len(loaded):
        return "by layer name"
    return f"{named} by layer name, {len(loaded) - named} by kind and order"


@dataclass
class LoadReport:
    loaded: list[tuple[str, str]] = field(default_factory=list)  # (our name, their name)
    skipped: list[str] = field(default_factory=list)  # their tensors that went nowhere
    missing: list[str] = field(default_factory=list)  # our tensors that got nothing
    reshaped: list[str] = field(default_factory=list)  # ours that got a tensor of another shape, same values
    notes: list[str] = field(default_factory=list)  # what the values do not show (Keras' batchnorm epsilon...)
    keras: bool = False  # from a Keras file: paired by kind in order, transposed to PyTorch's layouts

    @property
    def complete(self) -> bool:
        return not self.skipped and not self.missing

    def summary(self) -> str:
        by_name = sum(1 for ours, theirs in self.loaded if ours == theirs)
        how = (f"from Keras, {_keras_pairing(self.loaded)}, in PyTorch's layouts" if self.keras else
               f"{by_name} by name, {len(self.loaded) - by_name} by order and shape")
        lines = [f"loaded {len(self.loaded)} tensors ({how}), skipped {len(self.skipped)}, "
                 f"missing {len(self.missing)}"]
        if self.reshaped:
            lines[0] += f"; {len(self.reshaped)} reshaped (same values, e.g. a Linear's (out, in) into a 1x1 conv)"
        lines += [f"  skipped {name}" for name in self.skipped[:20]]
        lines += [f"  missing {name}" for name in self.missing[:20]]
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


def natural(name: str) -> list:
    """`layer10` after `layer2`: the order a file sorted by name had before sorting."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _squeezed(shape) -> tuple:
    """The shape without its 1-sized axes: tensors equal under it hold the same values in the same order."""
    return tuple(n for n in shape if n != 1)


def _fit(ours: dict, mine: dict[str, str], theirs: dict, candidates: dict[str, str]) -> dict | None:
    """Our tensors → theirs when the two modules hold the same values: same kinds (weight, bias...) with
    shapes equal once 1-sized axes are dropped (a 1x1 conv's (out, in, 1, 1) and a Linear's (out, in)), or
    one tensor each under other names (our layer scale's `gamma`, torchvision's `layer_scale`)."""
    a = {k: n for k, n in mine.items() if k != OPTIONAL}
    b = {k: n for k, n in candidates.items() if k != OPTIONAL}
    if a.keys() == b.keys():
        pairs = {a[k]: b[k] for k in a}
    elif len(a) == len(b) == 1:
        pairs = {next(iter(a.values())): next(iter(b.values()))}
    else:
        return None
    if not all(_squeezed(ours[o].shape) == _squeezed(theirs[t].shape) for o, t in pairs.items()):
        return None
    pairs.update({mine[OPTIONAL]: candidates[OPTIONAL]} if OPTIONAL in mine and OPTIONAL in candidates else {})
    return pairs


def match(ours: dict, theirs: dict) -> LoadReport:
    """Pairs tensors: same name and shape first; then whole modules, in order, each with the first module
    left of theirs that holds the same values (the same shapes, or a Linear's weight for a 1x1 conv's)."""
    pairs = {n: n for n, t in ours.items() if n in theirs and tuple(theirs[n].shape) == tuple(t.shape)}
    taken = set(pairs.values())
    their_modules = _modules(theirs, [n for n in theirs if n not in taken])
    used: set[str] = set()
    for tensors in _modules(ours, [n for n in ours if n not in pairs]).values():
        for other, candidates in their_modules.items():
            found = None if other in used else _fit(ours, tensors, theirs, candidates)
            if found is not None:
                used.add(other)
                pairs.update(found)
                break
    taken = set(pairs.values())
    return LoadReport(
        loaded=[(n, pairs[n]) for n in ours if n in pairs],
        skipped=[n for n in theirs if n not in taken and _split(n)[1] != OPTIONAL],
        missing=[n for n in ours if n not in pairs and _split(n)[1] != OPTIONAL],
        reshaped=[n for n in ours if n in pairs and tuple(ours[n].shape) != tuple(theirs[pairs[n]].shape)],
    )


@clear_imports
def load_weights(module, source, strict: bool = True) -> LoadReport:
    """Copies matching tensors from `source` into `module` and reports what happened.

    `source` is a state_dict, a module, a weights file (torch.save, safetensors, a cnndsl checkpoint) or a Keras
    file (.keras, .weights.h5, Keras 2's .h5: see cnndsl.keras_weights). strict=True (the default) refuses a load
    that leaves any of our tensors or theirs unmatched; strict=False loads what fits. A load where nothing fits
    is always an error.
    """
    import torch

    ours = module.state_dict()
    if is_keras_file(source):
        theirs, result = _from_keras(module, Path(source), strict)
    else:
        theirs = read_state_dict(source)
        result = match(ours, theirs)
    if not result.loaded:
        raise CnnError("no tensor of the weights fits this model",
                       hint=f"the model has {len(ours)} tensors, the weights {len(theirs)}; are they the same "
                       "architecture?")
    if strict and not result.complete:
        details = [f"  ours   {n} {tuple(ours[n].shape)}: no tensor of the same shape left" for n in result.missing]
        details += [f"  theirs {n} {tuple(theirs[n].shape)}: fits nothing" for n in result.skipped]
        raise CnnError("the weights do not fit the model exactly:\n" + "\n".join(details[:40]),
                       hint="pass strict=False to load the tensors that fit (e.g. a new head for other classes)")
    with torch.no_grad():
        for name, other in result.loaded:
            ours[name].copy_(theirs[other].reshape(ours[name].shape))  # a no-op unless reported as reshaped
    return result
