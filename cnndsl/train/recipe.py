"""Training recipes: defaults, a YAML file (`yaml.safe_load`), and command-line flags over both."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

from cnndsl.errors import CnnError, did_you_mean

CHOICES = {"optimizer": ("sgd", "adam", "adamw", "rmsprop"), "schedule": ("none", "cosine", "step")}


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
    schedule: str = "none"  # cosine: to 0 over the run; step: x0.1 every step_size epochs
    step_size: int = 10
    label_smoothing: float = 0.0
    patience: int = 0  # early stopping on validation loss; 0 is off
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
    return Recipe(**out)
