"""Training recipes: defaults, a YAML file (`yaml.safe_load`), and command-line flags over both."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from cnndsl.errors import CnnError, UsageError, did_you_mean
from cnndsl.files import Missing, read_text
from cnndsl.limits import NUMBER

CHOICES = {"optimizer": ("sgd", "adam", "adamw", "rmsprop", "nadam", "adamax", "adagrad", "adadelta"),
           "optimizer_defaults": ("pytorch", "keras"),
           "schedule": ("none", "cosine", "step", "onecycle", "plateau"),
           "initializer": ("pytorch", "keras"), "monitor": ("val_accuracy", "val_loss"),
           "frozen_batchnorm": ("inference", "train")}
NORMALIZE_PRESETS = ("imagenet", "inception", "keras_xception")  # data/datasets.py PRESETS
AMP_MODES = ("off", "bf16", "fp16", "auto")  # training/accel.py: auto is bf16 where the device has it, else fp16
AUGMENT_KEYS = {"hflip": bool, "crop": int, "rotate": float, "shear": float, "resized_crop": float, "color": float}


@dataclass
class Recipe:
    data: str = "digits"
    epochs: int = 10
    batch_size: int = 32
    lr: float | str = 1e-3  # or "auto": the learning-rate range test's suggestion (training/lrfind.py)
    optimizer: str = "adam"  # sgd, adam, adamw, rmsprop, nadam, adamax, adagrad, adadelta: torch.optim's
    optimizer_defaults: str = "pytorch"  # keras: Keras' epsilon (1e-7), rho and initial accumulator (phases.py)
    momentum: float = 0.9  # sgd and rmsprop
    nesterov: bool = False
    weight_decay: float = 0.0
    schedule: str = "none"  # cosine, step (x0.1 every step_size epochs), onecycle, plateau
    step_size: int = 10
    plateau_patience: int = 3  # epochs without a better validation loss before plateau divides the rate by 10
    warmup_epochs: int = 0  # linear warm-up of the rate over the first epochs
    clip_grad_norm: float = 0.0  # 0 is off
    label_smoothing: float = 0.0
    monitor: str = "val_accuracy"  # what makes an epoch the best, for best.pt and early stopping
    patience: int = 0  # early stopping after this many epochs without a better `monitor`; 0 is off
    restore_best: bool = True  # test (and leave in memory) the best epoch's weights, not the last
    augment: dict = field(default_factory=dict)  # hflip: true, crop: 4
    splits: dict = field(default_factory=dict)  # train: "train[:10%]", val: ..., test: ...
    phases: list = field(default_factory=list)  # [{epochs: 3, lr: 0.01, freeze: [stage1]}, {epochs: 10, ...}]
    normalize: bool | str = False  # true: each channel to mean 0, deviation 1 (training images' statistics);
    # or a preset of pretrained weights: imagenet (torchvision), inception / keras_xception (to [-1, 1])
    frozen_batchnorm: str = "inference"  # frozen layers' batchnorm keeps its statistics (Keras); train: PyTorch's
    amp: str = "off"  # mixed precision (training/accel.py): bf16, fp16 (with a gradient scaler), auto, off
    compile: bool = False  # torch.compile the model
    channels_last: bool = False
    data_on_device: bool = True  # false: the training images stay in (pinned) host memory, copied batch by batch
    tensorboard: bool = False  # RUN/tensorboard/: each epoch's figures for TensorBoard (the tensorboard package)
    init: str = ""  # weights to start from: a run's checkpoint or any state_dict file
    initializer: str = "pytorch"  # keras: Glorot-uniform weights and zero biases, as Keras layers start
    seed: int = 0
    overfit_batches: int = 0  # train on this many batches only, validated on the same images (0: off)

    def to_dict(self) -> dict:
        return asdict(self)


def load_recipe(path: str | Path | None, flags: dict | None = None, **values) -> Recipe:
    """The recipe file's values over the defaults, then `values`, then every flag that is not None.

    `flags` are command-line values (`{"lr": 0.1}` is `--lr 0.1`): a bad one is a UsageError naming the
    flag. A bad value in the file names the file and the key.
    """
    where = str(path) if path is not None else "recipe"
    merged = _read(Path(path)) if path is not None else {}
    merged.update(values)
    given = {k: v for k, v in (flags or {}).items() if v is not None}
    for key, value in given.items():  # each flag on its own, so that the error names it
        _validated({key: value}, f"--{key.replace('_', '-')}", flag=True)
    merged.update(given)
    return _validated(merged, where)


def recipe_of_checkpoint(saved, where: str) -> Recipe:
    """The recipe a run saved in its checkpoint, checked like a file's."""
    if not isinstance(saved, dict):
        raise CnnError(f"{where} holds no recipe", hint="--resume takes the folder of a run of `cnndsl train`")
    return _validated(saved, where)


MAX_RECIPE_BYTES = 1 << 20  # a recipe is a few lines; a bigger file is a mistake (or /dev/zero)


def _read(path: Path) -> dict:
    import yaml

    try:
        text = read_text(path, MAX_RECIPE_BYTES, f"the recipe {path}", "a recipe is a short YAML file of training "
                         "settings, e.g. `epochs: 10`")
    except Missing:
        raise CnnError(f"no such recipe: {path}") from None
    try:
        data = yaml.load(text, Loader=_loader())  # noqa: S506 (a SafeLoader, see _loader)
    except yaml.constructor.ConstructorError as e:  # tags such as !!python/object: never constructed
        raise CnnError(f"{path}: {e.problem} (line {e.problem_mark.line + 1 if e.problem_mark else '?'})",
                       hint="a recipe holds plain values (numbers, strings, lists, mappings); YAML tags such "
                       "as !!python/... are not read") from None
    except yaml.YAMLError as e:
        raise CnnError(f"{path} is not valid YAML: {e}") from None
    except RecursionError:
        raise CnnError(f"{path} is nested too deeply to be a recipe") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CnnError(f"{path}: a recipe is a mapping of keys to values, e.g. `epochs: 10`")
    return data


_FLOAT_12 = r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$"


def _loader():
    """yaml.SafeLoader with YAML 1.2's floats: `1e-3` is a number (YAML 1.1 makes it a string)."""
    import re

    import yaml

    class Loader(yaml.SafeLoader):
        pass

    # add_implicit_resolver copies the resolvers into the subclass: SafeLoader itself is unchanged
    Loader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(_FLOAT_12), list("-+0123456789."))
    return Loader


FLOAT_MAX = 3.4028234663852886e38  # float32's largest: the optimizers multiply the weights by these values


@dataclass(frozen=True)
class Range:
    """The values a number may take; every bound is finite (NaN and infinities are never meaningful). Without
    `high`, a number is at most what the weights' float32 holds (a whole number: limits.NUMBER)."""

    whole: bool
    low: float
    high: float | None = None
    low_open: bool = False  # `low` itself excluded
    high_open: bool = False

    @property
    def top(self) -> float:
        return self.high if self.high is not None else NUMBER if self.whole else FLOAT_MAX

    def holds(self, value: float) -> bool:
        if isinstance(value, float) and not math.isfinite(value):  # (ints compare exactly, however large)
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.top if self.high_open else value <= self.top
        return above and below

    def __str__(self) -> str:
        what = "a whole number" if self.whole else "a number"
        low, high = _show(self.low), _show(self.top)
        if self.high is None:
            return f"{what} {'greater than' if self.low_open else 'of at least'} {low}"
        if self.high_open:
            return f"{what} from {low} up to (not including) {high}"
        return f"{what} from {low} to {high}"


def _show(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


SEED_MAX = 2**32 - 1  # numpy's and most tools' seeds; torch takes these too
RANGES = {
    "epochs": Range(True, 1), "batch_size": Range(True, 1), "lr": Range(False, 0, low_open=True),
    "momentum": Range(False, 0, 1, high_open=True), "weight_decay": Range(False, 0),
    "step_size": Range(True, 1), "plateau_patience": Range(True, 1), "warmup_epochs": Range(True, 0),
    "clip_grad_norm": Range(False, 0), "label_smoothing": Range(False, 0, 1, high_open=True),
    "patience": Range(True, 0), "seed": Range(True, 0, SEED_MAX), "overfit_batches": Range(True, 0),
}
AUGMENT_RANGES = {"crop": Range(True, 0), "rotate": Range(False, 0, 180), "shear": Range(False, 0, 90, high_open=True),
                  "resized_crop": Range(False, 0, 1), "color": Range(False, 0, 1)}
PHASE_RANGES = {"epochs": Range(True, 1), "lr": Range(False, 0, low_open=True)}


def _number(value, rule: Range, what: str, error: type[CnnError]):
    """`value` as an int or a float within `rule`, or an error saying what `what` takes."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if number and rule.whole and isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        number = False
    if number and rule.high is None and math.isfinite(value) and value > rule.top:
        raise error(f"{what} takes at most {_show(rule.top)}, got {value!r}",
                    hint="float32, the weights' type, holds nothing larger" if not rule.whole else None)
    if not number or not rule.holds(value):
        raise error(f"{what} takes {rule}, got {value!r}")
    return int(value) if rule.whole else float(value)


def _validated(values: dict, where: str, flag: bool = False) -> Recipe:
    """A Recipe from `values`; errors name `where` (a file) and the key, or the flag itself."""
    error = UsageError if flag else CnnError
    known = {f.name: f for f in fields(Recipe)}
    out = {}
    for key, value in values.items():
        name = where if flag else f"{where}: `{key}`"
        if key not in known:
            raise error(f"{where}: unknown recipe key `{key}`",
                        hint=did_you_mean(str(key), known) or f"keys: {', '.join(known)}")
        default = known[key].default
        if key in ("augment", "splits", "phases"):
            out[key] = {"augment": _augment, "splits": _splits, "phases": _phases}[key](value, where)
            continue
        if key == "normalize":
            out[key] = _normalize(value, name, error)
            continue
        if key == "lr" and isinstance(value, str):  # auto: resolved by the range test as the run starts (guard.py)
            if value != "auto":
                raise error(f"{name} takes a number greater than 0, or auto (the range test's suggestion), "
                            f"got {value!r}")
            out[key] = value
            continue
        if key == "amp":
            out[key] = _amp(value, name, error)
            continue
        if isinstance(default, str) and not isinstance(value, str):
            raise error(f"{name} takes a string, got {value!r}")
        if isinstance(default, bool) and not isinstance(value, bool):
            raise error(f"{name} takes true or false, got {value!r}")
        if key in RANGES:
            value = _number(value, RANGES[key], name, error)
        if key in CHOICES and value not in CHOICES[key]:
            raise error(f"{name} takes one of {', '.join(CHOICES[key])}, got {value!r}",
                        hint=did_you_mean(str(value), CHOICES[key]))
        out[key] = value
    if out.get("phases"):  # the phases say how long the run is
        out["epochs"] = sum(phase["epochs"] for phase in out["phases"])
    recipe = Recipe(**out)
    if recipe.optimizer == "sgd" and recipe.nesterov and recipe.momentum == 0:
        raise error(f"{where}: `nesterov` needs a `momentum` greater than 0 (SGD's Nesterov momentum)")
    return recipe


def _normalize(value, name: str, error: type[CnnError]) -> bool | str:
    if isinstance(value, bool) or value in NORMALIZE_PRESETS:
        return value
    raise error(f"{name} takes true, false or a preset ({', '.join(NORMALIZE_PRESETS)}), got {value!r}",
                hint=did_you_mean(str(value), NORMALIZE_PRESETS) or "imagenet for torchvision's pretrained weights")


def _amp(value, name: str, error: type[CnnError]) -> str:
    """off, bf16, fp16 or auto; true and false are the older spellings (true: auto), as YAML reads on and off."""
    if isinstance(value, bool):
        return "auto" if value else "off"
    if value in AMP_MODES:
        return value
    raise error(f"{name} takes one of {', '.join(AMP_MODES)}, got {value!r}",
                hint=did_you_mean(str(value), AMP_MODES) or "bf16 on the CPU and recent GPUs; fp16 on older GPUs")


def _augment(value, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CnnError(f"{where}: `augment` is a mapping, e.g. `augment: {{hflip: true, crop: 4}}`")
    out = {}
    for key, item in value.items():
        if key not in AUGMENT_KEYS:
            raise CnnError(f"{where}: unknown key `augment.{key}`",
                           hint=did_you_mean(str(key), AUGMENT_KEYS) or f"keys: {', '.join(AUGMENT_KEYS)}")
        if AUGMENT_KEYS[key] is bool:
            if not isinstance(item, bool):
                raise CnnError(f"{where}: `augment.{key}` takes true or false, got {item!r}")
            out[key] = item
        else:
            out[key] = _number(item, AUGMENT_RANGES[key], f"{where}: `augment.{key}`", CnnError)
    return out


def _splits(value, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise CnnError(f"{where}: `splits` maps train, val and test to expressions such as \"train[:10%]\"")
    for key in value:
        if key not in ("train", "val", "test"):
            raise CnnError(f"{where}: unknown key `splits.{key}`",
                           hint=did_you_mean(str(key), ("train", "val", "test")) or "keys: train, val, test")
    return dict(value)


def _phases(value, where: str) -> list:
    """Stages of training: epochs (required), lr, and layer names to freeze (their name prefixes)."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(p, dict) for p in value):
        raise CnnError(f"{where}: `phases` is a list of mappings, e.g. `- {{epochs: 3, freeze: [stage1]}}`")
    out = []
    for i, phase in enumerate(value, 1):
        for key in phase:
            if key not in ("epochs", "lr", "freeze"):
                raise CnnError(f"{where}: unknown key `{key}` in phase {i}",
                               hint=did_you_mean(str(key), ("epochs", "lr", "freeze")) or "keys: epochs, lr, freeze")
        if "epochs" not in phase:
            raise CnnError(f"{where}: phase {i} needs `epochs`, {PHASE_RANGES['epochs']}")
        epochs = _number(phase["epochs"], PHASE_RANGES["epochs"], f"{where}: `epochs` of phase {i}", CnnError)
        lr = phase.get("lr")
        if lr is not None:
            lr = _number(lr, PHASE_RANGES["lr"], f"{where}: `lr` of phase {i}", CnnError)
        freeze = phase.get("freeze", [])
        if isinstance(freeze, str):
            freeze = [freeze]
        if not isinstance(freeze, list) or not all(isinstance(name, str) for name in freeze):
            raise CnnError(f"{where}: `freeze` of phase {i} takes layer names, e.g. [stem1, stage1]")
        out.append({"epochs": epochs, "lr": lr, "freeze": freeze})
    return out
