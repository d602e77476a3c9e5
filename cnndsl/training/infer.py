"""Trained weights at work: `cnndsl eval` on a dataset's test split, `cnndsl predict` on image files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cnndsl import memory
from cnndsl.build import scores
from cnndsl.data.datasets import apply_normalization, input_image, load_dataset
from cnndsl.errors import CnnError
from cnndsl.optional import require
from cnndsl.saved import Checkpoint, classes_of, normalization_of, weights_of
from cnndsl.training.device import pick_device
from cnndsl.training.epoch import evaluate_pass

# eval and predict run with --weights on the command line, where strict=False is no option
TRAIN_WITH = ("give the spec and --set values the weights were trained with; to train this network from them, use "
              "`cnndsl train SPEC --init CKPT`")


def _model(weights, device):
    """The network with the weights loaded exactly, on `device`, and its scores (before a final softmax)."""
    model = weights.build(TRAIN_WITH).to(device)
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
    _, forward = _model(w, dev)
    split = dataset.test
    split.x = apply_normalization(split.x, normalization_of(w.saved, report.input, w.where))
    split.x, split.y = split.x.to(dev), split.y.to(dev)
    loss, accuracy = evaluate_pass(forward, split, batch, torch.nn.CrossEntropyLoss())
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
    require("PIL.Image", "reading images")  # before torch loads, the weights are read and the network built
    import torch

    dev = pick_device(device)
    batch = min(256, max(1, len(images)))
    if spec is not None:  # a network too large is refused before the weights are read
        memory.check_inference(spec.check(), batch, dev)
    w = weights_of(weights, spec)
    report = w.spec.check()
    batch = memory.check_inference(report, batch, dev)
    classes = classes_of(w.saved, report.output[0])
    stats = normalization_of(w.saved, report.input, w.where)
    _, forward = _model(w, dev)
    out = []
    for start in range(0, len(images), batch):
        x = torch.cat([input_image(Path(p), report.input) for p in images[start:start + batch]])
        with torch.no_grad():
            probs = torch.softmax(forward(apply_normalization(x, stats).to(dev)), dim=1)
        best = probs.topk(min(top, probs.shape[1]), dim=1)
        out += [[(classes[int(i)], float(p)) for p, i in zip(ps, idx)] for ps, idx in zip(best.values, best.indices)]
    return out
