"""The checkpoint format (best.pt, last.pt): what is in one, its version, and how it is written and read.

Every reader goes through here: `--resume`, `eval`, `predict`, `--init` and `load_weights`. A checkpoint
is a `torch.save` dict of tensors and plain values, read back with `weights_only=True`:

    version        2 (a checkpoint without it is version 1, written before the field existed)
    model          the network's state_dict
    spec, params   the main spec file's text and its --set values: the network the weights belong to
    files          {name: text} of the relative files the spec `use`s, by their names relative to its folder
                   (standard library files come from the package); names only, never opened
    network        the network's name (for a file that defines several)
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
from cnndsl.training.files import atomic_write, torch_load

__all__ = ["VERSION", "Checkpoint", "atomic_write", "find", "from_dict", "load", "read_weights", "save", "spec_of",
           "state_dict_of", "torch_load"]

VERSION = 2
RESUME_KEYS = ("phase", "optimizer", "schedule", "rng", "steps")
_V1_KEYS = ("model", "optimizer", "schedule", "phase", "shuffle_rng", "augment_rng", "torch_rng", "history", "best",
            "stale", "recipe")


@dataclass
class Checkpoint:
    model: dict
    spec: str = ""
    params: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)
    network: str = ""
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
                "files": self.files, "network": self.network,
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
                      files=data.get("files") or {}, network=data.get("network") or "",
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


def find(run) -> Path:
    """RUN: a run folder (its best.pt, else last.pt) or a checkpoint file."""
    from cnndsl.errors import UsageError

    path = Path(run)
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / name).is_file():
                return path / name
        raise UsageError(f"{path} holds no best.pt or last.pt",
                         hint="give the folder of a `cnndsl train` run, or a checkpoint file")
    if not path.exists():
        raise UsageError(f"no such run or checkpoint: {path}", hint="`cnndsl train` prints the run folder it wrote")
    return path


def spec_of(saved: Checkpoint | None, where, network: str | None = None, sets: dict | None = None, limits=None):
    """The network a checkpoint was trained with, rebuilt from its spec text, files and --set values.

    Nothing is read from disk but the standard library: the saved file names are only names. `sets` are
    --set values over the run's own. A bare state_dict, or a checkpoint without spec text, is an error
    that asks for the spec file.
    """
    from cnndsl.api import loads
    from cnndsl.errors import UsageError

    text = saved.spec if saved is not None else None
    if not isinstance(text, str) or not text.strip():
        raise UsageError(f"{where} holds no spec text (a bare state_dict, or a checkpoint of an older cnndsl)",
                         hint="name the spec it was trained from: --spec FILE (and its --set values)")
    files = saved.files if isinstance(saved.files, dict) else {}
    files = {k: v for k, v in files.items() if isinstance(k, str) and isinstance(v, str)}
    trained = saved.params if isinstance(saved.params, dict) else {}
    params = {str(k): _param(v) for k, v in trained.items()}
    network = network or (saved.network if isinstance(saved.network, str) and saved.network else None)
    return loads(text, network, name=f"{where} (its spec)", limits=limits, files=files, **{**params, **(sets or {})})


def _param(value):
    """A --set value as the run saved it: numbers and booleans as they were, sizes and words as text."""
    import re

    from cnndsl.ops.base import Symbol

    if not isinstance(value, str):
        return value
    if re.match(r"^\((\d+, )*\d+,?\)$", value):
        return tuple(int(v) for v in value.strip("(),").split(","))
    return Symbol(value) if value.isidentifier() else value
