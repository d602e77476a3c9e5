"""The checkpoint format (best.pt, last.pt): what is in one, its version, and how it is written and read.

Every reader goes through here: `--resume`, `eval`, `predict`, `--init` and `load_weights`. A checkpoint
is a `torch.save` dict of tensors and plain values, read back with `weights_only=True`:

    version        2 (a checkpoint without it is version 1, written before the field existed)
    model          the network's state_dict
    spec, params   the spec's text and its --set values: the network the weights belong to
    classes        the class names, in label order
    normalization  {"mean": [...], "std": [...]} per input channel, or {} when the run did not normalise
    data           what the run trained on: name, splits, seed, input (the spec's input shape) and notes
                   (how the images were adapted to it), so that eval can default to them
    recipe         the resolved recipe
    history        one row of metrics per finished epoch
    resume         what continues the run exactly: phase, optimizer, schedule, rng (shuffle, augment,
                   torch) and steps (each epoch-end step's own state, by its name)

Version 1 kept the resume parts at the top level (`phase`, `optimizer`, `schedule`, `shuffle_rng`,
`augment_rng`, `torch_rng`) with `best` ({value, epoch}) and `stale` for the steps; it is still read.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

from cnndsl.errors import CnnError
from cnndsl.train.files import atomic_write, torch_load

__all__ = ["VERSION", "Checkpoint", "atomic_write", "from_dict", "load", "read_weights", "save", "state_dict_of",
           "torch_load"]

VERSION = 2
RESUME_KEYS = ("phase", "optimizer", "schedule", "rng", "steps")
_V1_KEYS = ("model", "optimizer", "schedule", "phase", "shuffle_rng", "augment_rng", "torch_rng", "history", "best",
            "stale", "recipe")


@dataclass
class Checkpoint:
    model: dict
    spec: str = ""
    params: dict = field(default_factory=dict)
    classes: list = field(default_factory=list)
    normalization: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    recipe: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    resume: dict = field(default_factory=dict)
    version: int = VERSION

    @property
    def best_epoch(self):
        """The epoch best.pt holds (or "?" when the file does not say)."""
        best = self.resume.get("steps", {}).get("best_checkpoint")
        return best.get("epoch", "?") if isinstance(best, dict) else "?"

    def to_dict(self) -> dict:
        return {"version": self.version, "model": self.model, "spec": self.spec, "params": self.params,
                "classes": self.classes, "normalization": self.normalization, "data": self.data,
                "recipe": self.recipe, "history": self.history, "resume": self.resume}


def save(path: Path, checkpoint: Checkpoint) -> None:
    """Writes the checkpoint atomically: the file is whole or as it was."""
    import torch

    buffer = io.BytesIO()
    torch.save(checkpoint.to_dict(), buffer)
    atomic_write(path, buffer.getvalue())


def load(path: Path) -> Checkpoint:
    """A checkpoint that can resume its run, or an error saying what the file is instead."""
    if not Path(path).exists():
        raise CnnError(f"no checkpoint at {path}", hint="--resume takes the folder of a run that saved last.pt")
    data = torch_load(path, "the checkpoint")
    version = _version(data, path)
    needed = _V1_KEYS if version == 1 else ("model", "recipe", "history", "resume")
    missing = [k for k in needed if not isinstance(data, dict) or k not in data]
    if version > 1 and not missing:
        missing = [f"resume.{k}" for k in RESUME_KEYS if not isinstance(data["resume"], dict)
                   or k not in data["resume"]]
    if missing:
        raise CnnError(f"{path} is not a checkpoint of `cnndsl train`: it has no {', '.join(missing[:3])}")
    return from_dict(data, path)


def from_dict(data: dict, where) -> Checkpoint:
    """The checkpoint a dict holds, whatever its version; fields a file lacks are empty."""
    version = _version(data, where)
    if version == 1:
        data = _upgrade_v1(data)
    recipe = data.get("recipe", {})  # as saved: recipe_of_checkpoint says when it is not one
    provenance = data.get("data") or _data_of(recipe if isinstance(recipe, dict) else {})
    return Checkpoint(model=data["model"], spec=data.get("spec", ""), params=data.get("params", {}),
                      classes=data.get("classes", []), normalization=data.get("normalization") or {},
                      data=provenance, recipe=recipe, history=data.get("history", []),
                      resume=data.get("resume") or {}, version=version)


def _version(data, where) -> int:
    version = data.get("version", 1) if isinstance(data, dict) else 1
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CnnError(f"{where}: its format version is {version!r}, not a whole number of at least 1")
    if version > VERSION:
        raise CnnError(f"{where} was written by a newer cnndsl (checkpoint format {version}); this one reads "
                       f"formats 1 to {VERSION}", hint="upgrade cnndsl to read it")
    return version


def _upgrade_v1(data: dict) -> dict:
    """Version 1's top-level resume parts, gathered as version 2 has them."""
    best = data.get("best") if isinstance(data.get("best"), dict) else {}
    steps = {"best_checkpoint": best,
             "early_stopping": {"best": best.get("value"), "wait": data.get("stale", 0)}}
    resume = {"phase": data.get("phase"), "optimizer": data.get("optimizer"), "schedule": data.get("schedule"),
              "rng": {"shuffle": data.get("shuffle_rng"), "augment": data.get("augment_rng"),
                      "torch": data.get("torch_rng")}, "steps": steps}
    return {**data, "resume": resume}


def _data_of(recipe: dict) -> dict:
    """What a version 1 checkpoint says of its data: only what its recipe holds."""
    return {"name": recipe.get("data"), "splits": recipe.get("splits", {}), "seed": recipe.get("seed"),
            "input": None, "notes": []}


def state_dict_of(data):
    """The weights of what a file held: a checkpoint's `model`, or the file itself (a state_dict)."""
    if isinstance(data, dict) and isinstance(data.get("model"), dict):
        return data["model"]
    return data


def read_weights(source) -> tuple[dict, Checkpoint | None]:
    """(a state_dict, the checkpoint it came from or None), reading a file once.

    `source` is a path (a checkpoint, a `torch.save` state_dict or a .safetensors file), a dict or a module.
    """
    from cnndsl.weights import read_state_dict

    where = source
    if isinstance(source, (str, Path)) and Path(source).suffix != ".safetensors":
        if not Path(source).exists():
            raise CnnError(f"no such weights file: {source}")
        source = torch_load(Path(source), "weights from")
    is_checkpoint = isinstance(source, dict) and state_dict_of(source) is not source
    return read_state_dict(source), from_dict(source, where) if is_checkpoint else None
