"""Trained weights at work: `cnndsl eval` on a dataset's test split, `cnndsl predict` on image files."""

from __future__ import annotations

from pathlib import Path

from cnndsl import memory
from cnndsl.build import scores
from cnndsl.errors import CnnError
from cnndsl.train.checkpoint import Checkpoint, read_weights
from cnndsl.train.data import adapt, apply_normalization, load_dataset
from cnndsl.train.device import pick_device
from cnndsl.train.epoch import run_epoch


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


def evaluate(spec, weights, data: str = "digits", seed: int = 0, batch_size: int = 256, device: str = "auto"):
    """(test loss, test accuracy) of the weights on the dataset's test split."""
    import torch

    dev = pick_device(device)
    report = spec.check()
    batch = memory.check_inference(report, batch_size, dev)
    state, saved = read_weights(weights)
    reserve = memory.need(report, batch).total if dev.type == "cpu" else 0
    dataset = load_dataset(data, report.input, seed, reserve=reserve)
    if len(dataset.classes) > report.output[0]:  # labels beyond the network's scores cannot be scored
        raise CnnError(f"the network has {report.output[0]} outputs but {data} has {len(dataset.classes)} classes",
                       hint="evaluate on the dataset the weights were trained on (--data), with the spec and --set "
                       "values of that run")
    _, forward = _model(spec, state, weights, dev)
    split = dataset.test
    split.x = apply_normalization(split.x, _normalization(saved, report.input, weights))
    split.x, split.y = split.x.to(dev), split.y.to(dev)
    return run_epoch(forward, split, batch, torch.nn.CrossEntropyLoss())


def predict(spec, weights, images: list[str], top: int = 3, device: str = "auto") -> list[list[tuple[str, float]]]:
    """The `top` classes of each image file, with their probabilities (in batches that fit in memory)."""
    import torch

    dev = pick_device(device)
    report = spec.check()
    batch = memory.check_inference(report, min(256, max(1, len(images))), dev)
    state, saved = read_weights(weights)
    classes = _classes(saved, report.output[0])
    stats = _normalization(saved, report.input, weights)
    _, forward = _model(spec, state, weights, dev)
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
    from cnndsl.train.images import read_image

    grey = len(shape) == 1 or shape[0] == 1
    side = round(shape[0] ** 0.5) if len(shape) == 1 else 0
    size = tuple(shape[1:]) if len(shape) == 3 else (side, side) if side * side == shape[0] else None
    x = read_image(path, grey, size).float() / 255.0
    adapted, _ = adapt(x.unsqueeze(0), shape)
    return adapted
