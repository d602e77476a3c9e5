"""Training recipes: defaults, a YAML file (`yaml.safe_load`), and command-line flags over both."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from cnndsl.errors import CnnError, did_you_mean

CHOICES = {"optimizer": ("sgd", "adam", "adamw", "rmsprop"),
           "schedule": ("none", "cosine", "step", "onecycle", "plateau"),
           "initializer": ("pytorch", "keras"), "monitor": ("val_accuracy", "val_loss")}
AUGMENT_KEYS = {"hflip": bool, "crop": int, "rotate": float, "shear": float, "resized_crop": float, "color": float}


@dataclass
class Recipe:
    data: str = "digits"
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    optimizer: str = "adam"
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
    normalize: bool = False  # scale each channel to mean 0 and deviation 1 (statistics of the training images)
    amp: bool = False  # mixed precision: bfloat16 on the CPU, float16 on CUDA
    compile: bool = False  # torch.compile the model
    channels_last: bool = False
    init: str = ""  # weights to start from: a run's checkpoint or any state_dict file
    initializer: str = "pytorch"  # keras: Glorot-uniform weights and zero biases, as Keras layers start
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def load_recipe(path: str | Path | None, **flags) -> Recipe:
    """The recipe file's values over the defaults, then every flag that is not None over those."""
    values: dict = {}
    if path is not None:
        values = _read(Path(path))
    values.update({k: v for k, v in flags.items() if v is not None})
    return _validated(values, str(path or "flags"))


def _read(path: Path) -> dict:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise CnnError(f"no such recipe: {path}") from None
    except yaml.YAMLError as e:
        raise CnnError(f"{path} is not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CnnError(f"{path}: a recipe is a mapping of keys to values, e.g. `epochs: 10`")
    return data


def _validated(values: dict, where: str) -> Recipe:
    known = {f.name: f for f in fields(Recipe)}
    out = {}
    for key, value in values.items():
        if key not in known:
            raise CnnError(f"{where}: unknown recipe key `{key}`",
                           hint=did_you_mean(key, known) or f"keys: {', '.join(known)}")
        default = known[key].default
        if key == "augment":
            out[key] = _augment(value, where)
            continue
        if key == "splits":
            out[key] = _splits(value, where)
            continue
        if key == "phases":
            out[key] = _phases(value, where)
            continue
        if isinstance(default, str) and not isinstance(value, str):
            raise CnnError(f"{where}: `{key}` takes a string, got {value!r}")
        if isinstance(default, bool) and not isinstance(value, bool):
            raise CnnError(f"{where}: `{key}` takes true or false, got {value!r}")
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise CnnError(f"{where}: `{key}` takes a number, got {value!r}")
            if isinstance(default, int) and not float(value).is_integer():
                raise CnnError(f"{where}: `{key}` takes a whole number, got {value!r}")
            value = type(default)(value)
            if value < 0 or (key in ("epochs", "batch_size", "step_size") and value < 1):
                raise CnnError(f"{where}: `{key}` must be {'at least 1' if value < 1 else 'positive'}, got {value}")
        if key in CHOICES and value not in CHOICES[key]:
            raise CnnError(f"{where}: `{key}` takes one of {', '.join(CHOICES[key])}, got {value!r}",
                           hint=did_you_mean(str(value), CHOICES[key]))
        out[key] = value
    if out.get("phases"):  # the phases say how long the run is
        out["epochs"] = sum(phase["epochs"] for phase in out["phases"])
    return Recipe(**out)


def _augment(value, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CnnError(f"{where}: `augment` is a mapping, e.g. `augment: {{hflip: true, crop: 4}}`")
    for key, item in value.items():
        if key not in AUGMENT_KEYS:
            raise CnnError(f"{where}: unknown key `augment.{key}`",
                           hint=did_you_mean(str(key), AUGMENT_KEYS) or f"keys: {', '.join(AUGMENT_KEYS)}")
        kind = AUGMENT_KEYS[key]
        number = isinstance(item, (int, float)) and not isinstance(item, bool)
        ok = isinstance(item, bool) if kind is bool else number and item >= 0 and (
            kind is float or float(item).is_integer())
        if key == "resized_crop" and ok and item > 1:
            ok = False
        if not ok:
            wanted = {bool: "true or false", int: "a whole number", float: "a number, 0 or more"}[kind]
            raise CnnError(f"{where}: `augment.{key}` takes {wanted}"
                           + (" up to 1" if key == "resized_crop" else "") + f", got {item!r}")
    return {k: AUGMENT_KEYS[k](v) for k, v in value.items()}


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
        epochs, lr, freeze = phase.get("epochs"), phase.get("lr"), phase.get("freeze", [])
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise CnnError(f"{where}: phase {i} needs `epochs`, a whole number of at least 1")
        if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float)) or lr <= 0):
            raise CnnError(f"{where}: `lr` of phase {i} takes a positive number, got {lr!r}")
        if isinstance(freeze, str):
            freeze = [freeze]
        if not isinstance(freeze, list) or not all(isinstance(name, str) for name in freeze):
            raise CnnError(f"{where}: `freeze` of phase {i} takes layer names, e.g. [stem1, stage1]")
        out.append({"epochs": epochs, "lr": None if lr is None else float(lr), "freeze": freeze})
    return out
