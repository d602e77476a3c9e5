"""The training loop: one runner for every spec, with in-memory data on the device.

Batches are index slices of tensors already on the device, so the loop does no per-sample Python
work. A network ending in softmax is trained on its logits. Each epoch ends with an atomic `last.pt`
(and `best.pt` when validation accuracy improves), so a run killed at any moment resumes from the
last finished epoch and ends with the same number of epochs.
"""

from __future__ import annotations

import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from cnndsl.errors import CnnError
from cnndsl.train import plots
from cnndsl.train.checkpoint import load_checkpoint, save_checkpoint, write_metrics
from cnndsl.train.data import Split, load_dataset
from cnndsl.train.recipe import Recipe


@dataclass
class RunResult:
    out: Path
    history: list[dict]
    test_accuracy: float
    test_loss: float
    best_epoch: int


def pick_device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise CnnError("--device cuda: no CUDA device is available", hint="use --device cpu or auto")
    return torch.device(name)


def make_optimizer(recipe: Recipe, params):
    import torch

    kind = recipe.optimizer
    if kind == "sgd":
        return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.nesterov,
                               weight_decay=recipe.weight_decay)
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    cls = torch.optim.AdamW if kind == "adamw" else torch.optim.Adam
    return cls(params, lr=recipe.lr, weight_decay=recipe.weight_decay)


def make_scheduler(recipe: Recipe, optimizer):
    import torch

    if recipe.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=recipe.epochs)
    if recipe.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=recipe.step_size, gamma=0.1)
    return None


class Progress:
    """A one-line progress bar on a terminal; silent when stderr is a file or a pipe."""

    def __init__(self, total: int, label: str):
        self.total, self.label = total, label
        self.on = sys.stderr.isatty()

    def update(self, done: int) -> None:
        if self.on:
            filled = int(30 * done / max(1, self.total))
            sys.stderr.write(f"\r{self.label} [{'=' * filled}{'.' * (30 - filled)}] {done}/{self.total}")
            sys.stderr.flush()

    def close(self) -> None:
        if self.on:
            sys.stderr.write("\r" + " " * (len(self.label) + 50) + "\r")


def run_epoch(forward, split: Split, batch_size: int, loss_fn, optimizer=None, generator=None,
              progress: Progress | None = None) -> tuple[float, float]:
    """Mean loss and accuracy over a split; trains when an optimizer is given.

    Sums stay on the device and are read once at the end, so batches run without waiting for the
    device; a loss that is not finite is caught then, with the step where it first happened.
    """
    import torch

    n = len(split)
    device = split.y.device
    order = torch.randperm(n, generator=generator, device="cpu").to(device) if optimizer else None
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    first_bad = torch.full((), -1, dtype=torch.int64, device=device)
    with torch.set_grad_enabled(optimizer is not None):
        for step, start in enumerate(range(0, n, batch_size)):
            index = order[start:start + batch_size] if order is not None else slice(start, start + batch_size)
            x, y = split.x[index], split.y[index]
            logits = forward(x)
            loss = loss_fn(logits, y)
            if optimizer is not None:
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                bad = (first_bad < 0) & ~torch.isfinite(loss.detach())
                first_bad = torch.where(bad, torch.full_like(first_bad, step), first_bad)
            total_loss += loss.detach() * len(y)
            correct += (logits.argmax(1) == y).sum()
            if progress:
                progress.update(min(start + batch_size, n))
    if int(first_bad) >= 0:
        raise NonFinite(int(first_bad))
    return total_loss.item() / max(1, n), correct.item() / max(1, n)


def predictions(forward, split: Split, batch_size: int):
    """The predicted class of every example of a split."""
    import torch

    with torch.no_grad():
        return torch.cat([forward(split.x[i:i + batch_size]).argmax(1) for i in range(0, len(split), batch_size)])


class NonFinite(Exception):
    def __init__(self, step: int):
        super().__init__(step)
        self.step = step


def seed_all(seed: int) -> None:
    import torch

    random.seed(seed)
    torch.manual_seed(seed)


def train(spec, recipe: Recipe, out: Path, resume: bool = False, device: str = "auto", log=print) -> RunResult:
    """Trains `spec` (a cnndsl.Spec) with `recipe`, writing checkpoints and metrics into `out`."""
    import torch

    report = spec.check()
    dev = pick_device(device)
    seed_all(recipe.seed)
    data = load_dataset(recipe.data, report.input, recipe.seed)
    _check_classes(report.output, data.classes, recipe.data)
    for note in data.notes:
        log(f"data: {note}")
    for split in (data.train, data.val, data.test):
        split.x, split.y = split.x.to(dev), split.y.to(dev)
    model = spec.build().to(dev)
    forward = model.logits if getattr(model, "ends_in_softmax", False) else model
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    optimizer = make_optimizer(recipe, [p for p in model.parameters() if p.requires_grad])
    scheduler = make_scheduler(recipe, optimizer)
    shuffle = torch.Generator().manual_seed(recipe.seed)
    history: list[dict] = []
    best = {"val_accuracy": -1.0, "epoch": 0}
    out.mkdir(parents=True, exist_ok=True)
    if resume:
        state = load_checkpoint(out / "last.pt")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state.get("scheduler"):
            scheduler.load_state_dict(state["scheduler"])
        shuffle.set_state(state["shuffle_rng"])
        torch.set_rng_state(state["torch_rng"])
        history, best = state["history"], state["best"]
        log(f"resuming {out} after epoch {len(history)} of {recipe.epochs}")
    log(f"training {report.analysis.graph.name} ({report.params:,} parameters) on {recipe.data}: "
        f"{len(data.train)} train, {len(data.val)} validation, {len(data.test)} test images; device {dev}")
    stale = 0
    for epoch in range(len(history) + 1, recipe.epochs + 1):
        started = time.perf_counter()
        model.train()
        progress = Progress(math.ceil(len(data.train) / recipe.batch_size), f"epoch {epoch}/{recipe.epochs}")
        try:
            loss, acc = run_epoch(forward, data.train, recipe.batch_size, loss_fn, optimizer, shuffle, progress)
        except NonFinite as e:
            progress.close()
            raise CnnError(f"the loss became NaN or infinite at epoch {epoch}, step {e.step}; stopped. The last "
                           f"good checkpoint is {out / 'last.pt'}",
                           hint="lower the learning rate (--lr) or add batchnorm") from None
        progress.close()
        model.eval()
        val_loss, val_acc = run_epoch(forward, data.val, recipe.batch_size, loss_fn)
        if scheduler is not None:
            scheduler.step()
        row = {"epoch": epoch, "loss": round(loss, 6), "accuracy": round(acc, 6), "val_loss": round(val_loss, 6),
               "val_accuracy": round(val_acc, 6), "lr": optimizer.param_groups[0]["lr"],
               "seconds": round(time.perf_counter() - started, 3)}
        history.append(row)
        log(f"epoch {epoch}/{recipe.epochs}  loss {loss:.4f}  acc {acc:.4f}  val_loss {val_loss:.4f}  "
            f"val_acc {val_acc:.4f}  {row['seconds']:.1f}s")
        improved = val_acc > best["val_accuracy"]
        if improved:
            best = {"val_accuracy": val_acc, "epoch": epoch}
        state = _state(spec, recipe, model, optimizer, scheduler, shuffle, history, best)
        state["classes"] = data.classes
        if improved:
            save_checkpoint(out / "best.pt", state)
        save_checkpoint(out / "last.pt", state)
        write_metrics(out, history, {})
        stale = 0 if improved else stale + 1
        if recipe.patience and stale >= recipe.patience:
            log(f"early stop: validation accuracy has not improved for {stale} epochs")
            break
    model.load_state_dict(load_checkpoint(out / "best.pt")["model"])
    model.eval()
    test_loss, test_acc = run_epoch(forward, data.test, recipe.batch_size, loss_fn)
    write_metrics(out, history, {"test_accuracy": test_acc, "test_loss": test_loss, "best_epoch": best["epoch"]})
    plots.curves(history, out / "curves.png")
    plots.confusion(data.test.y, predictions(forward, data.test, recipe.batch_size), data.classes,
                    out / "confusion.png")
    log(f"test accuracy {test_acc:.4f} (loss {test_loss:.4f}) with the weights of epoch {best['epoch']}")
    log(f"wrote {out}: best.pt, last.pt, metrics.csv, metrics.json, curves.png, confusion.png, recipe.yaml")
    return RunResult(out, history, test_acc, test_loss, best["epoch"])


def _state(spec, recipe, model, optimizer, scheduler, shuffle, history, best) -> dict:
    import torch

    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else {},
        "shuffle_rng": shuffle.get_state(),
        "torch_rng": torch.get_rng_state(),
        "history": history,
        "best": best,
        "recipe": recipe.to_dict(),
        "spec": _spec_text(spec),
        "params": {k: str(v) if not isinstance(v, (int, float, bool, str)) else v for k, v in spec.params.items()},
    }


def _spec_text(spec) -> str:
    graph = spec.graph
    return graph.input.span.source.text


def _check_classes(output: tuple, classes: list[str], data: str) -> None:
    if len(output) != 1:
        raise CnnError(f"the network's output is {'x'.join(map(str, output))}, not one score per class",
                       hint="end the network with `flatten` or `globalavgpool` and `dense classes`")
    if output[0] != len(classes):
        raise CnnError(f"the network has {output[0]} outputs but {data} has {len(classes)} classes",
                       hint=f"--set classes={len(classes)} (if the network takes a `classes` parameter)")
