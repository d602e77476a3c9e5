"""Trained weights at work: `cnndsl eval` on a dataset's test split, `cnndsl predict` on image files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cnndsl import memory
from cnndsl.build import scores
from cnndsl.errors import CnnError
from cnndsl.training.checkpoint import Checkpoint, find, read_weights, spec_of
from cnndsl.training.data import adapt, apply_normalization, load_dataset
from cnndsl.training.device import pick_device
from cnndsl.training.epoch import run_epoch


def _model(spec, state: dict, weights, device):
    """The network with the weights loaded exactly; a mismatch says to use the training run's spec."""
    from cnndsl.weights import load_weights

    model = spec.build()
    try:
        load_weights(model, state)
    except CnnError as e:  # its hint is for Python callers (strict=False); the command line has no such option
        raise CnnError(f"{weights}: {e.message}", hint="give the spec and --set values the weights were trained "
                       "with; to train this network from them, use `cnndsl train SPEC --init CKPT`") from None
    model.to(device).eval()
    return model, scores(model)


@dataclass
class Evaluation:
    """What `evaluate` measured, and on what: the data, split and seed (the run's own unless asked)."""

    loss: float
    accuracy: float
    data: str
    seed: int
    splits: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # where this differs from the run's data, for the log
    weights: str = ""


@dataclass
class Weights:
    """Weights to use, with the checkpoint they came from (None for a bare state_dict) and their network."""

    state: dict
    saved: Checkpoint | None
    spec: object  # a cnndsl.Spec
    where: object  # the file read, for messages


def weights_of(weights, spec=None, network: str | None = None, sets: dict | None = None, limits=None) -> Weights:
    """`weights` (a run folder, a checkpoint or a state_dict file, or a dict) read once, with the network: `spec`
    when given (a cnndsl.Spec), else the one the checkpoint holds (see checkpoint.spec_of)."""
    if isinstance(weights, Weights):
        return weights
    where = find(weights) if isinstance(weights, (str, Path)) and Path(weights).is_dir() else weights
    state, saved = read_weights(where)
    if spec is None:
        spec = spec_of(saved, where, network, sets, limits)
    return Weights(state, saved, spec, where)


def evaluation(spec, weights, data: str | None = None, seed: int | None = None, batch_size: int = 256,
               device: str = "auto", log=None) -> Evaluation:
    """Test loss and accuracy of the weights; `spec` None takes the network from the checkpoint.

    The dataset, its splits and seed default to those the checkpoint's run trained on, so a run's own test
    split is measured again exactly; another `data` is allowed, and a note (to `log`) says that it differs.
    """
    import torch

    dev = pick_device(device)
    if spec is not None:  # a network too large is refused before the weights are read
        memory.check_inference(spec.check(), batch_size, dev)
    w = weights_of(weights, spec)
    name, seed, splits, notes = _data(w.saved, data, seed)
    for note in notes:
        (log or (lambda line: None))(f"note: {note}")
    report = w.spec.check()
    batch = memory.check_inference(report, batch_size, dev)
    reserve = memory.need(report, batch).total if dev.type == "cpu" else 0
    dataset = load_dataset(name, report.input, seed, splits=splits, reserve=reserve)
    if len(dataset.classes) > report.output[0]:  # labels beyond the network's scores cannot be scored
        raise CnnError(f"the network has {report.output[0]} outputs but {name} has {len(dataset.classes)} classes",
                       hint="evaluate on the dataset the weights were trained on (--data), with the spec and --set "
                       "values of that run")
    _, forward = _model(w.spec, w.state, w.where, dev)
    split = dataset.test
    split.x = apply_normalization(split.x, _normalization(w.saved, report.input, w.where))
    split.x, split.y = split.x.to(dev), split.y.to(dev)
    loss, accuracy = run_epoch(forward, split, batch, torch.nn.CrossEntropyLoss())
    return Evaluation(loss, accuracy, name, seed, splits, notes, str(w.where))


def evaluate(spec, weights, data: str | None = None, seed: int | None = None, batch_size: int = 256,
             device: str = "auto") -> tuple[float, float]:
    """(test loss, test accuracy) of the weights: `evaluation` without the notes."""
    done = evaluation(spec, weights, data, seed, batch_size, device)
    return done.loss, done.accuracy


def _data(saved: Checkpoint | None, data: str | None, seed: int | None) -> tuple[str, int, dict, list[str]]:
    """(dataset, seed, splits, notes): the run's own by default; what differs from the run, said in the notes."""
    trained = saved.data if saved is not None and isinstance(saved.data, dict) else {}
    run_name = trained.get("name") if isinstance(trained.get("name"), str) else None
    run_seed = trained.get("seed") if isinstance(trained.get("seed"), int) else None
    run_splits = trained.get("splits") if isinstance(trained.get("splits"), dict) else {}
    name = data or run_name or "digits"
    notes = []
    if run_name and name != run_name:
        notes.append(f"evaluating on {name}; the weights were trained on {run_name}")
    elif run_name is None and data is None:
        notes.append("the weights do not say what they were trained on: evaluating on digits (--data NAME)")
    same = name == run_name
    if seed is None:
        seed = run_seed if same and run_seed is not None else 0
    elif same and run_seed is not None and seed != run_seed:
        notes.append(f"seed {seed}: the run split its data with seed {run_seed}, so this test split is another")
    return name, seed, dict(run_splits) if same else {}, notes


def predict(spec, weights, images: list[str], top: int = 3, device: str = "auto") -> list[list[tuple[str, float]]]:
    """The `top` classes of each image file, with their probabilities (in batches that fit in memory).

    `spec` None takes the network from the checkpoint; `weights` may be a run folder."""
    import torch

    dev = pick_device(device)
    batch = min(256, max(1, len(images)))
    if spec is not None:  # a network too large is refused before the weights are read
        memory.check_inference(spec.check(), batch, dev)
    w = weights_of(weights, spec)
    report = w.spec.check()
    batch = memory.check_inference(report, batch, dev)
    classes = _classes(w.saved, report.output[0])
    stats = _normalization(w.saved, report.input, w.where)
    _, forward = _model(w.spec, w.state, w.where, dev)
    out = []
    for start in range(0, len(images), batch):
        x = torch.cat([_read_image(Path(p), report.input) for p in images[start:start + batch]])
        with torch.no_grad():
            probs = torch.softmax(forward(apply_normalization(x, stats).to(dev)), dim=1)
        best = probs.topk(min(top, probs.shape[1]), dim=1)
        out += [[(classes[int(i)], float(p)) for p, i in zip(ps, idx)] for ps, idx in zip(best.values, best.indices)]
    return out


def _classes(saved: Checkpoint | None, outputs: int) -> list[str]:
    classes = saved.classes if saved else None
    if isinstance(classes, list) and len(classes) == outputs and all(isinstance(c, str) for c in classes):
        return classes
    return [str(i) for i in range(outputs)]


def _normalization(saved: Checkpoint | None, shape: tuple[int, ...], weights) -> dict:
    """The per-channel statistics a run trained with, checked against the input's channels."""
    stats = (saved.normalization if saved else None) or {}
    if not stats:
        return {}
    channels = shape[0]  # channels of an image input, features of a flat one
    ok = isinstance(stats, dict) and all(
        isinstance(stats.get(k), list) and len(stats[k]) == channels
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in stats[k]) for k in ("mean", "std"))
    if not ok or not all(v > 0 for v in stats["std"]):
        raise CnnError(f"{weights}: its saved normalisation does not fit this network's {channels} input channels",
                       hint="give the spec and --set values the weights were trained with")
    return stats


def _read_image(path: Path, shape: tuple[int, ...]):
    """One image as a float batch of one, fitted to the input (see images.read_image for the limits)."""
    from cnndsl.training.images import read_image

    grey = len(shape) == 1 or shape[0] == 1
    side = round(shape[0] ** 0.5) if len(shape) == 1 else 0
    size = tuple(shape[1:]) if len(shape) == 3 else (side, side) if side * side == shape[0] else None
    x = read_image(path, grey, size).float() / 255.0
    adapted, _ = adapt(x.unsqueeze(0), shape)
    return adapted
