"""A saved run: the checkpoint format (best.pt, last.pt), how it is written and read, and what a run's
checkpoint gives back (its network, weights, classes and normalisation).

Every reader goes through here: `--resume`, `eval`, `predict`, `show` and `export` (`--init` and
`load_weights` read any weights file through `weights.read_state_dict`, which knows where a checkpoint keeps
them). Training, pictures and export share this module; it imports only the core. A checkpoint is a
`torch.save` dict of tensors and plain values, read back with `weights_only=True`:

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

from cnndsl.errors import CnnError, UsageError
from cnndsl.files import atomic_write, torch_load
from cnndsl.spec import Spec, loads
from cnndsl.weights import load_weights, read_state_dict, state_dict_of

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


def read_weights(source) -> tuple[dict, Checkpoint | None]:
    """(a state_dict, the checkpoint it came from or None), reading a file once.

    `source` is a path (a checkpoint, a `torch.save` state_dict or a .safetensors file), a dict or a module.
    """
    where = source
    if isinstance(source, (str, Path)) and Path(source).suffix != ".safetensors":
        if not Path(source).exists():
            raise CnnError(f"no such weights file: {source}")
        source = torch_load(Path(source), "weights from")
    is_checkpoint = isinstance(source, dict) and state_dict_of(source) is not source
    return read_state_dict(source), from_dict(source, where) if is_checkpoint else None


def find(run) -> Path:
    """RUN: a run folder (its best.pt, else last.pt) or a checkpoint file."""
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


def spec_of(saved: Checkpoint | None, where, network: str | None = None, sets: dict | None = None,
            limits=None) -> Spec:
    """The network a checkpoint was trained with, rebuilt from its spec text, files and --set values.

    Nothing is read from disk but the standard library: the saved file names are only names. `sets` are
    --set values over the run's own. A bare state_dict, or a checkpoint without spec text, is an error
    that asks for the spec file.
    """
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


# -- a run's weights at work: what eval, predict, show and export read of a checkpoint

TRAINED_WITH = "give the spec and --set values the weights were trained with"


@dataclass
class Weights:
    """Weights to use, with the checkpoint they came from (None for a bare state_dict) and their network."""

    state: dict
    saved: Checkpoint | None
    spec: Spec
    where: object  # the file read, for messages

    def build(self, hint: str = TRAINED_WITH):
        """The network with these weights loaded exactly, in eval mode on the CPU; a mismatch is an error
        that says `hint` (which spec to give)."""
        model = self.spec.build()
        try:
            load_weights(model, self.state)
        except CnnError as e:  # its own hint is for Python callers (strict=False); a trained run's is `hint`
            raise CnnError(f"{self.where}: {e.message}", hint=hint) from None
        return model.eval()


def weights_of(weights, spec: Spec | None = None, network: str | None = None, sets: dict | None = None,
               limits=None) -> Weights:
    """`weights` (a run folder, a checkpoint or a state_dict file, or a dict) read once, with the network: `spec`
    when given, else the one the checkpoint holds (see spec_of; `network`, `sets` and `limits` are for it)."""
    if isinstance(weights, Weights):
        return weights
    where = find(weights) if isinstance(weights, (str, Path)) else weights
    state, saved = read_weights(where)
    if spec is None:
        spec = spec_of(saved, where, network, sets, limits)
    return Weights(state, saved, spec, where)


def classes_of(saved: Checkpoint | None, outputs: int) -> list[str]:
    """The class names the run saved, when they fit the network's outputs; else the label numbers."""
    classes = saved.classes if saved else None
    if isinstance(classes, list) and len(classes) == outputs and all(isinstance(c, str) for c in classes):
        return classes
    return [str(i) for i in range(outputs)]


def normalization_of(saved: Checkpoint | None, shape: tuple[int, ...], where) -> dict:
    """The per-channel statistics a run trained with, checked against the input's channels ({}: none)."""
    stats = (saved.normalization if saved else None) or {}
    if not stats:
        return {}
    channels = shape[0]  # channels of an image input, features of a flat one
    ok = isinstance(stats, dict) and all(
        isinstance(stats.get(k), list) and len(stats[k]) == channels
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in stats[k]) for k in ("mean", "std"))
    if not ok or not all(v > 0 for v in stats["std"]):
        raise CnnError(f"{where}: its saved normalisation does not fit this network's {channels} input channels",
                       hint="give the spec and --set values the weights were trained with")
    return stats
