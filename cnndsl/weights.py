"""Weights from other models: match tensors by name where names agree, else by order and shape.

Transfer learning starts from a pretrained network whose names are not ours (torchvision's
`layer1.0.conv1.weight` is our `stage1.basic1.conv1.weight`), but whose tensors come
in the same order with the same shapes. Nothing loads silently: the result says what was loaded,
skipped and missing, and a strict load that does not fit completely is an error naming each tensor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from cnndsl.errors import CnnError


@dataclass
class LoadReport:
    loaded: list[tuple[str, str]] = field(default_factory=list)  # (our name, their name)
    skipped: list[str] = field(default_factory=list)  # their tensors that went nowhere
    missing: list[str] = field(default_factory=list)  # our tensors that got nothing

    @property
    def complete(self) -> bool:
        return not self.skipped and not self.missing

    def summary(self) -> str:
        by_name = sum(1 for ours, theirs in self.loaded if ours == theirs)
        lines = [f"loaded {len(self.loaded)} tensors ({by_name} by name, {len(self.loaded) - by_name} by order "
                 f"and shape), skipped {len(self.skipped)}, missing {len(self.missing)}"]
        lines += [f"  skipped {name}" for name in self.skipped[:20]]
        lines += [f"  missing {name}" for name in self.missing[:20]]
        return "\n".join(lines)


def read_state_dict(source) -> dict:
    """A state_dict from a dict, a module, a `torch.save` file, a safetensors file or a cnndsl checkpoint.

    Files are read without running anything they hold: torch.load(weights_only=True) or safetensors.
    """
    import torch

    from cnndsl.train import checkpoint  # the format: where a checkpoint keeps its weights

    if isinstance(source, torch.nn.Module):
        return source.state_dict()
    if isinstance(source, dict):
        return _tensors(checkpoint.state_dict_of(source))
    if not isinstance(source, (str, Path)):
        raise CnnError(f"the weights are a {type(source).__name__}, not a state_dict (names to tensors)",
                       hint="save the weights with torch.save(model.state_dict(), PATH)")
    path = Path(source)
    if not path.exists():
        raise CnnError(f"no such weights file: {path}")
    if path.suffix == ".safetensors":
        return _safetensors(path)
    return read_state_dict(checkpoint.torch_load(path, "weights from"))


def _tensors(state: dict) -> dict:
    """The tensors of a state_dict; a dict that holds none is not one."""
    import torch

    tensors = {k: v for k, v in state.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if not tensors:
        raise CnnError("the weights hold no tensors: not a state_dict",
                       hint="save the weights with torch.save(model.state_dict(), PATH)")
    return tensors


def _safetensors(path: Path) -> dict:
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise CnnError("reading .safetensors needs the safetensors package", hint="pip install safetensors") from None
    try:
        tensors = load_file(str(path))
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


def _signature(state: dict, tensors: dict[str, str]) -> tuple:
    return tuple(sorted((k, tuple(state[n].shape)) for k, n in tensors.items() if k != OPTIONAL))


def natural(name: str) -> list:
    """`layer10` after `layer2`: the order a file sorted by name had before sorting."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def match(ours: dict, theirs: dict) -> LoadReport:
    """Pairs tensors: same name and shape first; then whole modules, in order, with the same shapes."""
    pairs = {n: n for n, t in ours.items() if n in theirs and tuple(theirs[n].shape) == tuple(t.shape)}
    taken = set(pairs.values())
    their_modules = _modules(theirs, [n for n in theirs if n not in taken])
    used: set[str] = set()
    for tensors in _modules(ours, [n for n in ours if n not in pairs]).values():
        signature = _signature(ours, tensors)
        for other, candidates in their_modules.items():
            if other not in used and _signature(theirs, candidates) == signature:
                used.add(other)
                pairs.update({name: candidates[kind] for kind, name in tensors.items() if kind in candidates})
                break
    taken = set(pairs.values())
    return LoadReport(
        loaded=[(n, pairs[n]) for n in ours if n in pairs],
        skipped=[n for n in theirs if n not in taken and _split(n)[1] != OPTIONAL],
        missing=[n for n in ours if n not in pairs and _split(n)[1] != OPTIONAL],
    )


def load_weights(module, source, strict: bool = True) -> LoadReport:
    """Copies matching tensors from `source` into `module` and reports what happened.

    strict=True (the default) refuses a load that leaves any of our tensors or theirs unmatched;
    strict=False loads what fits. A load where nothing fits is always an error.
    """
    import torch

    theirs = read_state_dict(source)
    ours = module.state_dict()
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
            ours[name].copy_(theirs[other])
    return result
