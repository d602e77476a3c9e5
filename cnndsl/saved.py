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
                   torch) and steps (each epoch-end step's own state, by its name); with `amp: fp16`,
                   scaler (the GradScaler's state: its loss scale and growth tracker)

Version 1 kept the resume parts at the top level (`phase`, `optimizer`, `schedule`, `shuffle_rng`,
`augment_rng`, `torch_rng`) with `best` ({value, epoch}) and `stale` for the steps; it is still read.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cnndsl.errors import CnnError, UsageError
from cnndsl.files import Missing, atomic_write, torch_load
from cnndsl.spec import Spec, loads
from cnndsl.weights import load_weights, read_state_dict

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
    try:
        data = torch_load(path, "the checkpoint")
    except Missing:
        raise CnnError(f"no checkpoint at {path}", hint="--resume takes the folder of a run that saved last.pt"
                       ) from None
    version = _version(data, path)
    if isinstance(data, dict):  # a damaged field is named before a missing one
        _check_fields(_upgrade_v1(data) if version == 1 else data, path)
    needed = _V1_KEYS if version == 1 else ("model", "recipe", "history", "resume")
    missing = [k for k in needed if not isinstance(data, dict) or k not in data]
    if version > 1 and not missing:
        missing = [f"resume.{k}" for k in RESUME_KEYS if not isinstance(data["resume"], dict)
                   or k not in data["resume"]]
    if missing:
        raise CnnError(f"{path} is not a checkpoint of `cnndsl train`: it has no {', '.join(missing[:3])}")
    return from_dict(data, path)


def from_dict(data: dict, where) -> Checkpoint:
    """The checkpoint a dict holds, whatever its version, each field checked (see FIELDS); fields a file lacks
    are empty."""
    version = _version(data, where)
    if version == 1:
        data = _upgrade_v1(data)
    _check_fields(data, where)
    recipe = data.get("recipe", {})  # as saved: recipe_of_checkpoint says when it is not one
    provenance = data.get("data") or _data_of(recipe if isinstance(recipe, dict) else {})
    return Checkpoint(model=data["model"], spec=data.get("spec", ""), params=data.get("params", {}),
                      files=data.get("files") or {}, network=data.get("network") or "",
                      classes=data.get("classes", []), normalization=data.get("normalization") or {},
                      data=provenance, recipe=recipe, history=data.get("history", []),
                      resume=data.get("resume") or {}, version=version)


# -- each field of a checkpoint, of the type its readers take: a file damaged, or another program's, is refused as
# it is read, naming the field, rather than failing where a reader uses it ("Boolean value of Tensor...")


class _Wrong(Exception):
    """A value that breaks a rule: the value itself (the field, or an item deep in it)."""

    def __init__(self, value):
        super().__init__()
        self.value = value


Rule = Callable[[object], None]
MAX_ITEMS = 1_000_000  # class names, rows of history: past any run (data.datasets.MAX_CLASSES classes at most)
MAX_NAME = 1_000  # characters of a class name, which predict and the run's log print
MAX_DEPTH = 32  # nesting of a recipe's values: a YAML recipe is a few levels deep


def _type(*types: type) -> Rule:
    def check(value) -> None:
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise _Wrong(value)
    return check


def _optional(rule: Rule) -> Rule:
    return lambda value: None if value is None else rule(value)


def _list_of(rule: Rule, most: int = MAX_ITEMS) -> Rule:
    def check(value) -> None:
        if not isinstance(value, list) or len(value) > most:
            raise _Wrong(value)
        for item in value:
            rule(item)
    return check


def _dict_of(rule: Rule) -> Rule:
    def check(value) -> None:
        if not isinstance(value, dict):
            raise _Wrong(value)
        for key, item in value.items():
            _text(key)
            rule(item)
    return check


def _plain(value, depth: int = 0) -> None:
    """What a recipe holds: numbers, booleans, text, None, and lists and mappings of them."""
    if depth > MAX_DEPTH:
        raise _Wrong(value)
    if isinstance(value, list):
        for item in value:
            _plain(item, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            _text(key)
            _plain(item, depth + 1)
    elif value is not None and not isinstance(value, (bool, int, float, str)):
        raise _Wrong(value)


def _name(value) -> None:
    if not isinstance(value, str) or len(value) > MAX_NAME:
        raise _Wrong(value)


def _tensor(value) -> None:
    import torch

    if not isinstance(value, torch.Tensor):
        raise _Wrong(value)


def _state(value) -> None:
    """An optimizer's state_dict: tensors, numbers and plain values, in mappings (by number) and lists."""
    import torch

    if isinstance(value, (list, tuple)):
        for item in value:
            _state(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _type(str, int)(key)
            _state(item)
    elif value is not None and not isinstance(value, (bool, int, float, str, torch.Tensor)):
        raise _Wrong(value)


_text, _whole, _number = _type(str), _type(int), _type(int, float)

# dotted: a field within a field, checked when the outer one is there (and right)
FIELDS: dict[str, tuple[Rule, str]] = {
    "model": (_dict_of(_tensor), "a state_dict (names to tensors)"),
    "spec": (_text, "the spec's text"),
    "params": (_dict_of(_type(bool, int, float, str)), "--set values (names to numbers, booleans or words)"),
    "files": (_dict_of(_text), "the spec's files (names to texts)"),
    "network": (_text, "a network's name"),
    "classes": (_list_of(_name), f"a list of class names (at most {MAX_ITEMS:,}, of {MAX_NAME:,} characters)"),
    "normalization": (_dict_of(_list_of(_number)), "per-channel statistics (mean and std: lists of numbers)"),
    "data": (_dict_of(_plain), "what the run trained on (a mapping)"),
    "data.name": (_optional(_text), "a dataset's name"),
    "data.splits": (_dict_of(_text), "splits (train, val, test: expressions such as train[:10%])"),
    "data.seed": (_optional(_whole), "a seed (a whole number)"),
    "data.input": (_optional(_list_of(_whole)), "an input shape (whole numbers)"),
    "data.notes": (_list_of(_text), "notes (a list of sentences)"),
    "recipe": (_dict_of(_plain), "a recipe (names to plain values)"),
    "recipe.data": (_text, "a dataset's name"),
    "recipe.seed": (_whole, "a seed (a whole number)"),
    "recipe.splits": (_optional(_dict_of(_text)), "splits (train, val, test: expressions such as train[:10%])"),
    "history": (_list_of(_dict_of(_number)), "one row of metrics per epoch (names to numbers)"),
    "resume": (_dict_of(lambda value: None), "what resumes the run (a mapping)"),
    "resume.phase": (_optional(_whole), "a phase number"),
    "resume.optimizer": (_optional(_state), "an optimizer's state_dict"),
    "resume.schedule": (_optional(_dict_of(_plain)), "a schedule's state (names to plain values)"),
    "resume.rng": (_optional(_dict_of(_optional(_tensor))), "random states (tensors)"),
    "resume.steps": (_dict_of(_dict_of(_optional(_type(bool, int, float)))), "the steps' states (names to numbers)"),
    "resume.scaler": (_dict_of(_number), "a gradient scaler's state (names to numbers)"),
}


def _check_fields(data: dict, where) -> None:
    """Refuses a field that is not what FIELDS says, naming it, the file, and what the field held."""
    for path, (rule, what) in FIELDS.items():
        outer, _, inner = path.rpartition(".")
        holder = data.get(outer) if outer else data
        if not isinstance(holder, dict) or inner not in holder:
            continue
        value = holder[inner]
        try:
            rule(value)
        except _Wrong as wrong:
            held = _described(value)
            if wrong.value is not value:
                held += f" holding {_described(wrong.value)}"
            raise CnnError(f"{where}: the checkpoint's `{path}` is {held}, not {what}: it is damaged or not "
                           "cnndsl's", hint="use another checkpoint of the run (best.pt or last.pt), or train again"
                           ) from None


def _described(value) -> str:
    """What a value is, in words."""
    if type(value).__name__ == "Tensor":
        return f"a tensor of shape {tuple(value.shape)}"
    if isinstance(value, str) and len(value) > MAX_NAME:
        return f"text of {len(value):,} characters"
    if isinstance(value, list) and len(value) > MAX_ITEMS:
        return f"a list of {len(value):,} items"
    kinds = [(bool, "a boolean"), ((int, float), "a number"), (str, "text"), (list, "a list"), (tuple, "a tuple"),
             (dict, "a mapping"), (type(None), "empty (None)")]
    return next((name for kind, name in kinds if isinstance(value, kind)), f"a {type(value).__name__}")


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
        try:
            source = torch_load(Path(source), "weights from")
        except Missing:
            raise CnnError(f"no such weights file: {source}") from None
    if not _is_checkpoint(source):
        return read_state_dict(source), None
    saved = from_dict(source, where)  # its fields checked before its weights are used
    return read_state_dict(saved.model), saved


def _is_checkpoint(data) -> bool:
    """A cnndsl checkpoint, intact or not: weights under `model`, beside what only a checkpoint holds."""
    return isinstance(data, dict) and "model" in data and any(k in data for k in ("version", "recipe", "resume"))


def find(run) -> Path:
    """RUN: a run folder (its best.pt, else last.pt) or a checkpoint file."""
    path = Path(run)
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / name).is_file():
                return path / name
        raise UsageError(f"{path} holds no best.pt or last.pt",
                         hint="give the folder of a `cnndsl train` run, or a checkpoint file")
    if not (path.exists() or path.is_symlink()):  # (a link loop: reading it says so)
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
