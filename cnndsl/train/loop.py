"""The training loop: one runner for every spec, with in-memory data on the device.

Batches are index slices of tensors already on the device, so the loop does no per-sample Python
work. A network ending in softmax is trained on its logits. Each epoch ends with an atomic `last.pt`
(and `best.pt` when the monitored metric improves), so a run killed at any moment resumes from the
last finished epoch and ends with the same number of epochs.
"""

from __future__ import annotations

import math
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cnndsl import memory
from cnndsl.errors import CnnError
from cnndsl.train import distributed, plots, runs
from cnndsl.train.augment import Augment
from cnndsl.train.checkpoint import atomic_write, load_checkpoint, save_checkpoint, write_metrics
from cnndsl.train.data import Split, load_dataset, normalize
from cnndsl.train.recipe import Recipe
from cnndsl.train.schedule import Schedule


@dataclass
class RunResult:
    out: Path
    history: list[dict]
    test_accuracy: float
    test_loss: float
    best_epoch: int


def pick_device(name: str):
    import torch

    mps = getattr(torch.backends, "mps", None)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise CnnError("--device cuda: no CUDA device is available", hint="use --device cpu or auto")
    if name == "mps" and not (mps is not None and mps.is_available()):
        raise CnnError("--device mps: Apple's Metal backend is not available here", hint="use --device cpu or auto")
    return torch.device(name)


def make_optimizer(recipe: Recipe, params, lr: float | None = None):
    import torch

    kind, lr = recipe.optimizer, lr or recipe.lr
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=recipe.momentum, nesterov=recipe.nesterov,
                               weight_decay=recipe.weight_decay)
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    cls = torch.optim.AdamW if kind == "adamw" else torch.optim.Adam
    return cls(params, lr=lr, weight_decay=recipe.weight_decay)


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


@dataclass
class Batches:
    """How training batches are handled beyond forward, loss and step."""

    augment: Augment | None = None
    generator: object = None  # draws the augmentations
    clip: float = 0.0
    lr: Callable[[int], float] | None = None  # the learning rate for each step of the epoch
    amp: bool = False
    world: distributed.World = field(default_factory=distributed.World)


def run_epoch(forward, split: Split, batch_size: int, loss_fn, optimizer=None, generator=None,
              progress: Progress | None = None, how: Batches | None = None) -> tuple[float, float]:
    """Mean loss and accuracy over a split; trains when an optimizer is given.

    Sums stay on the device and are read once at the end, so batches run without waiting for the
    device; a loss that is not finite is caught then, with the step where it first happened.
    """
    import torch

    how = how or Batches()
    device = split.y.device
    order = None
    if optimizer is not None:  # each process trains on its share of the same shuffled order
        order = torch.randperm(len(split), generator=generator, device="cpu")
        order = order[how.world.rank::how.world.size].to(device)
    n = len(split) if order is None else len(order)
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    first_bad = torch.full((), -1, dtype=torch.int64, device=device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16 if device.type == "cpu" else torch.float16,
                              enabled=how.amp)
    with torch.set_grad_enabled(optimizer is not None):
        for step, start in enumerate(range(0, n, batch_size)):
            index = order[start:start + batch_size] if order is not None else slice(start, start + batch_size)
            x, y = split.x[index], split.y[index]
            if optimizer is not None and how.augment:
                x = how.augment(x, how.generator)
            with autocast:
                logits = forward(x)
                loss = loss_fn(logits.float(), y)
            if optimizer is not None:
                _step(optimizer, loss, how, step)
                bad = (first_bad < 0) & ~torch.isfinite(loss.detach())
                first_bad = torch.where(bad, torch.full_like(first_bad, step), first_bad)
            total_loss += loss.detach() * len(y)
            correct += (logits.argmax(1) == y).sum()
            if progress:
                progress.update(min(start + batch_size, n))
    count = torch.tensor(n, device=device)
    if optimizer is not None:
        distributed.all_sum(total_loss, correct, count)
    if int(first_bad) >= 0:
        raise NonFinite(int(first_bad))
    return total_loss.item() / max(1, int(count)), correct.item() / max(1, int(count))


def _step(optimizer, loss, how: Batches, step: int) -> None:
    import torch

    if how.lr is not None:
        for group in optimizer.param_groups:
            group["lr"] = how.lr(step)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if how.clip:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(params, how.clip)
    optimizer.step()


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


@dataclass
class Run:
    """Everything a training run holds while it goes."""

    recipe: Recipe
    out: Path
    data: object
    model: object
    forward: Callable
    loss_fn: object
    optimizer: object
    schedule: Schedule
    shuffle: object
    augment_rng: object
    world: distributed.World = field(default_factory=distributed.World)
    evaluate: Callable | None = None  # the model without DDP, for validation and test on rank 0
    phases: list[dict] = field(default_factory=list)  # epochs, lr, freeze; one phase without `phases:`
    phase: int = -1
    spec_frozen: frozenset = frozenset()  # parameters the spec itself marks frozen
    history: list[dict] = field(default_factory=list)
    best: dict = field(default_factory=lambda: {"value": None, "epoch": 0})
    stale: int = 0


def train(spec, recipe: Recipe, out: Path, resume: bool = False, device: str = "auto", log=print) -> RunResult:
    """Trains `spec` (a cnndsl.Spec) with `recipe`, writing checkpoints and metrics into `out`.

    Under torchrun every process runs this; only rank 0 logs and writes. A new run (not `resume`) needs a
    folder that does not exist or is empty: a run already there is never replaced.
    """
    out = Path(out)
    if not resume and distributed.world().main:
        runs.check_new(out)
    dev = distributed.device_for(device) or pick_device(device)
    here = distributed.start(dev)
    log = log if here.main else (lambda line: None)
    try:
        run = _setup(spec, recipe, out, dev, log, here)
        if resume:
            _resume(run, spec, log)
        for epoch in range(len(run.history) + 1, recipe.epochs + 1):
            phase = _phase_of(run, epoch)
            if phase != run.phase:
                _enter_phase(run, phase, log)
            _epoch(run, spec, epoch, log)
            if recipe.patience and run.stale >= recipe.patience:
                log(f"early stop: {recipe.monitor} has not improved for {run.stale} epochs")
                break
        return _finish(run, log)
    finally:
        distributed.finish()


def _setup(spec, recipe: Recipe, out: Path, dev, log, here: distributed.World) -> Run:
    import torch

    report = spec.check()
    _check_crop(recipe, report.input)
    # refused before anything is allocated; processes on one CPU each hold the model and a batch
    need = memory.check_training(report, recipe.batch_size, dev, copies=1 if dev.type == "cuda" else here.size)
    seed_all(recipe.seed)
    data = load_dataset(recipe.data, report.input, recipe.seed, splits=recipe.splits,
                        reserve=0 if dev.type == "cuda" else need.total)
    _check_classes(report.output, data.classes, recipe.data)
    if dev.type == "cuda":
        _check_device_room(data, need, dev)
    if recipe.normalize:
        data.normalization = normalize(data)
        data.notes.append("channels normalised to mean 0 and deviation 1 with the training images' statistics")
    for note in data.notes:
        log(f"data: {note}")
    layout = torch.channels_last if recipe.channels_last and len(report.input) == 3 else torch.contiguous_format
    for split in (data.train, data.val, data.test):
        split.x, split.y = split.x.to(dev, memory_format=layout), split.y.to(dev)
    model = spec.build(channels_last=recipe.channels_last).to(dev)
    if recipe.initializer == "keras":
        keras_initialization(model)
    if recipe.init:
        from cnndsl.weights import load_weights

        log(f"init from {recipe.init}: " + load_weights(model, recipe.init, strict=False).summary())
    evaluate = scores(model)
    forward = evaluate
    if here.size > 1:
        from torch.nn.parallel import DistributedDataParallel

        forward = DistributedDataParallel(_Scores(model) if evaluate is not model else model)
    if recipe.compile:
        forward = torch.compile(forward)
    if here.main:
        runs.make(out)
    processes = f" x {here.size} processes" if here.size > 1 else ""
    log(f"training {report.analysis.graph.name} ({report.params:,} parameters) on {recipe.data}: "
        f"{len(data.train)} train, {len(data.val)} validation, {len(data.test)} test images; device {dev}{processes}")
    phases = recipe.phases or [{"epochs": recipe.epochs, "lr": None, "freeze": []}]
    _check_phase_names(model, phases)
    return Run(recipe, out, data, model, forward, torch.nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing),
               None, None, torch.Generator().manual_seed(recipe.seed),
               torch.Generator().manual_seed(recipe.seed + 1 + here.rank), here, evaluate, phases,
               spec_frozen=frozenset(n for n, p in model.named_parameters() if not p.requires_grad))


def _check_crop(recipe: Recipe, shape: tuple[int, ...]) -> None:
    """A crop pads each side by its value: more than the image's own size is a mistake (and memory)."""
    crop = recipe.augment.get("crop", 0)
    if len(shape) == 3 and crop > max(shape[1:]):
        raise CnnError(f"`augment.crop: {crop}` pads the {shape[1]}x{shape[2]} images by more than their size",
                       hint=f"use at most {max(shape[1:])}; 4 is usual for 32x32 images")


def _check_device_room(data, need: memory.Need, dev) -> None:
    """The data goes onto the GPU beside the model: both must fit in its free memory."""
    images = sum(split.x.numel() * split.x.element_size() for split in (data.train, data.val, data.test))
    memory.ensure_fits(need.total + images, f"training on {dev} ({need.describe()}, and "
                       f"{memory.size(images)} of images)", "lower --batch-size, the input size or the layer "
                       "widths, or train on fewer images", dev)


def scores(model):
    """What to train on: the network, or its scores before a final softmax (cross-entropy wants those)."""
    return model.logits if getattr(model, "ends_in_softmax", False) else model


def keras_initialization(model) -> None:
    """Glorot-uniform weights and zero biases for convolutions and dense layers: Keras' defaults."""
    import torch

    for module in model.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            torch.nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)


def _phase_of(run: Run, epoch: int) -> int:
    end = 0
    for i, phase in enumerate(run.phases):
        end += phase["epochs"]
        if epoch <= end:
            return i
    return len(run.phases) - 1


def _phase_start(run: Run, index: int) -> int:
    """The epoch before the phase's first."""
    return sum(p["epochs"] for p in run.phases[:index])


def _enter_phase(run: Run, index: int, log) -> None:
    """Freezes what the phase says (and what the spec does), with a fresh optimizer and schedule."""
    recipe, phase = run.recipe, run.phases[index]
    for name, param in run.model.named_parameters():
        frozen = name in run.spec_frozen or any(name == f or name.startswith(f + ".") for f in phase["freeze"])
        param.requires_grad_(not frozen)
    lr = phase["lr"] or recipe.lr
    trainable = [p for p in run.model.parameters() if p.requires_grad]
    if not trainable:
        where = (f"phase {index + 1} freezes {', '.join(phase['freeze'])}" if phase["freeze"]
                 else "the spec has none, or freezes them all")
        raise CnnError(f"nothing to train: no trainable parameters ({where})",
                       hint="add a layer with weights (conv, dense...), or freeze less")
    run.optimizer = make_optimizer(recipe, trainable, lr)
    steps = math.ceil(len(run.data.train) / run.world.size / recipe.batch_size)
    run.schedule = Schedule(recipe.schedule, lr, phase["epochs"], steps, recipe.warmup_epochs, recipe.step_size,
                            recipe.plateau_patience)
    run.phase = index
    if len(run.phases) > 1:
        frozen = ", ".join(phase["freeze"]) or "nothing"
        log(f"phase {index + 1}/{len(run.phases)}: {phase['epochs']} epochs at lr {lr:g}, frozen: {frozen}")


def _check_phase_names(model, phases: list[dict]) -> None:
    from cnndsl.errors import did_you_mean

    names = [n for n, _ in model.named_parameters()]
    for phase in phases:
        for prefix in phase["freeze"]:
            if not any(n == prefix or n.startswith(prefix + ".") for n in names):
                tops = sorted({n.split(".")[0] for n in names})
                raise CnnError(f"phase freezes `{prefix}`, which names no layer with parameters",
                               hint=did_you_mean(prefix, tops) or f"top-level layers: {', '.join(tops)}")


def _resume(run: Run, spec, log) -> None:
    import torch

    state = runs.last_checkpoint(run.out)
    _load_model_state(run, spec, state)
    _enter_phase(run, state["phase"], lambda line: None)  # the optimizer of the phase the run was in
    run.optimizer.load_state_dict(state["optimizer"])
    run.schedule.load(state["schedule"])
    run.shuffle.set_state(state["shuffle_rng"])
    run.augment_rng.set_state(state["augment_rng"])
    torch.set_rng_state(state["torch_rng"])
    run.history, run.best, run.stale = state["history"], state["best"], state["stale"]
    log(f"resuming {run.out} after epoch {len(run.history)} of {run.recipe.epochs}")


def _load_model_state(run: Run, spec, state: dict) -> None:
    """The checkpoint's weights, or an error saying that the run was trained with another network."""
    ours = run.model.state_dict()
    theirs = state["model"] if isinstance(state["model"], dict) else {}
    differences = [f"{name} is missing from the checkpoint" for name in ours if name not in theirs]
    differences += [f"{name} is {tuple(theirs[name].shape)} in the checkpoint, {tuple(t.shape)} here"
                    for name, t in ours.items() if name in theirs and tuple(theirs[name].shape) != tuple(t.shape)]
    differences += [f"the checkpoint has {name}, this network does not" for name in theirs if name not in ours]
    if not differences:
        run.model.load_state_dict(theirs)
        return
    trained = state.get("params") or {}
    sets = " ".join(f"--set {k}={v}" for k, v in trained.items()) if isinstance(trained, dict) else ""
    changed = " (and its spec text differs from this one)" if state.get("spec") != _spec_text(spec) else ""
    raise CnnError(f"{run.out} was trained with another network or other --set values{changed}: "
                   f"{differences[0]}" + (f" (and {len(differences) - 1} more)" if len(differences) > 1 else ""),
                   hint=f"resume with the spec file that run was trained with, and its --set values "
                   f"({sets or 'none'}); to train this network from its weights, start a new run with "
                   f"--init {run.out / 'best.pt'}")


def _epoch(run: Run, spec, epoch: int, log) -> None:
    recipe, data = run.recipe, run.data
    started = time.perf_counter()
    run.model.train()
    progress = Progress(run.schedule.steps_per_epoch, f"epoch {epoch}/{recipe.epochs}")
    in_phase = epoch - _phase_start(run, run.phase)
    how = Batches(Augment(**recipe.augment), run.augment_rng, recipe.clip_grad_norm,
                  lambda step: run.schedule.lr(in_phase, step), recipe.amp, run.world)
    try:
        loss, acc = run_epoch(run.forward, data.train, recipe.batch_size, run.loss_fn, run.optimizer, run.shuffle,
                              progress, how)
    except NonFinite as e:
        raise CnnError(f"the loss became NaN or infinite at epoch {epoch}, step {e.step}; stopped. {_kept(run)}",
                       hint="lower the learning rate (--lr), clip gradients (clip_grad_norm), or add batchnorm"
                       ) from None
    finally:
        progress.close()
    run.model.eval()
    val_loss, val_acc = run_epoch(run.evaluate, data.val, recipe.batch_size, run.loss_fn, how=Batches(amp=recipe.amp))
    row = {"epoch": epoch, "loss": round(loss, 6), "accuracy": round(acc, 6), "val_loss": round(val_loss, 6),
           "val_accuracy": round(val_acc, 6), "lr": run.optimizer.param_groups[0]["lr"],
           "seconds": round(time.perf_counter() - started, 3)}
    run.history.append(row)
    log(f"epoch {epoch}/{recipe.epochs}  loss {loss:.4f}  acc {acc:.4f}  val_loss {val_loss:.4f}  "
        f"val_acc {val_acc:.4f}  {row['seconds']:.1f}s")
    note = run.schedule.end_epoch(val_loss)
    if note:
        log(note)
    value = row[recipe.monitor]
    previous = run.best["value"]
    improved = previous is None or (value < previous if recipe.monitor == "val_loss" else value > previous)
    run.stale = 0 if improved else run.stale + 1
    if improved:
        run.best = {"value": value, "epoch": epoch}
    if run.world.main:
        if not (run.out / "recipe.yaml").exists():  # with the first checkpoint: a run that saved nothing leaves none
            atomic_write(run.out / "recipe.yaml", yaml_text(run.recipe.to_dict()))
        state = _state(spec, run)
        if improved:
            save_checkpoint(run.out / "best.pt", state)
        save_checkpoint(run.out / "last.pt", state)
        write_metrics(run.out, run.history, {})
    distributed.barrier()  # every process sees the checkpoint of this epoch before the next


def _kept(run: Run) -> str:
    """What the run has saved so far, for the message that stops it."""
    if run.history and (run.out / "last.pt").exists():
        return f"The last good checkpoint is {run.out / 'last.pt'} (epoch {len(run.history)})."
    return "No epoch finished, so nothing was saved."


def yaml_text(values: dict) -> bytes:
    import yaml

    return yaml.safe_dump(values, sort_keys=False).encode()


def _finish(run: Run, log) -> RunResult:
    recipe, data, out = run.recipe, run.data, run.out
    if recipe.restore_best:
        run.model.load_state_dict(load_checkpoint(out / "best.pt")["model"])
    run.model.eval()
    test_loss, test_acc = run_epoch(run.evaluate, data.test, recipe.batch_size, run.loss_fn,
                                    how=Batches(amp=recipe.amp))
    best_epoch = run.best["epoch"] if recipe.restore_best else len(run.history)
    if not run.world.main:
        return RunResult(out, run.history, test_acc, test_loss, best_epoch)
    write_metrics(out, run.history, {"test_accuracy": test_acc, "test_loss": test_loss, "best_epoch": best_epoch})
    plots.curves(run.history, out / "curves.png")
    plots.confusion(data.test.y, predictions(run.evaluate, data.test, recipe.batch_size), data.classes,
                    out / "confusion.png")
    log(f"test accuracy {test_acc:.4f} (loss {test_loss:.4f}) with the weights of epoch {best_epoch}")
    log(f"wrote {out}: best.pt, last.pt, metrics.csv, metrics.json, curves.png, confusion.png, recipe.yaml")
    return RunResult(out, run.history, test_acc, test_loss, best_epoch)


def _scores_class():
    import torch

    class Scores(torch.nn.Module):
        """The scores before a final softmax as a module's forward, for DistributedDataParallel to wrap."""

        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model.logits(x)

    return Scores


def _Scores(model):  # noqa: N802 (a class made on first use, so that importing this module needs no torch)
    return _scores_class()(model)


def _state(spec, run: Run) -> dict:
    import torch

    return {
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "schedule": run.schedule.state(),
        "phase": run.phase,
        "shuffle_rng": run.shuffle.get_state(),
        "augment_rng": run.augment_rng.get_state(),
        "torch_rng": torch.get_rng_state(),
        "history": run.history,
        "best": run.best,
        "stale": run.stale,
        "recipe": run.recipe.to_dict(),
        "classes": run.data.classes,
        "normalization": run.data.normalization,
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
