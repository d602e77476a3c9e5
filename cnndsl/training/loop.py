"""The training loop: one runner for every spec, shaped as Keras' `fit` and Lightning's Trainer.

Each epoch trains and validates (training/epoch.py's two passes) and makes its row of metrics; a fixed
list of epoch-end steps (training/steps.py), and any the caller adds, consumes the row: logging, the plateau
schedule, early stopping, the checkpoints and the metrics files (cnndsl.train adds the run's page,
viz/runpage.py). Each epoch ends with an atomic `last.pt` (and `best.pt` when the monitored metric
improves), so a run killed at any moment resumes from the last finished epoch and ends with the same
number of epochs. The parts of a run are made in training/setup.py.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from cnndsl import saved
from cnndsl.errors import CnnError
from cnndsl.training import distributed, runs, summary
from cnndsl.training.augment import Augment
from cnndsl.training.callbacks import Callbacks, epoch_logs
from cnndsl.training.device import pick_device
from cnndsl.training.epoch import Batches, NonFinite, evaluate_pass, train_pass
from cnndsl.training.guard import Guard, Preflight, prepare
from cnndsl.training.monitor import Monitor
from cnndsl.training.phases import train_mode
from cnndsl.training.progress import Progress
from cnndsl.training.recipe import Recipe
from cnndsl.training.resume import restore
from cnndsl.training.setup import Run, setup
from cnndsl.training.steps import EpochStep, standard


@dataclass
class RunResult:
    """What a run did: its folder, one row of metrics per epoch, and the test figures of `best_epoch`'s weights."""

    out: Path
    history: list[dict]
    test_accuracy: float
    test_loss: float
    best_epoch: int
    monitor: str = "val_accuracy"  # what made best_epoch the best
    notes: list[str] = field(default_factory=list)  # what the checks before epoch 1 found, the data cut

    @property
    def best(self) -> Path:
        """The best epoch's checkpoint (what `cnndsl eval RUN` reads)."""
        return self.out / "best.pt"

    @property
    def last(self) -> Path:
        """The last finished epoch's checkpoint (what --resume continues)."""
        return self.out / "last.pt"

    def summary(self) -> None:
        """Prints every epoch's figures (the best marked) and the test's."""
        print(summary.text(self))

    def __repr__(self) -> str:
        return f"<Run {summary.headline(self)}>"

    def _repr_html_(self) -> str:
        """Jupyter's display: the epochs' table and the learning curves."""
        return summary.html(self)


def train(spec, recipe: Recipe, out: Path, resume: bool = False, device: str = "auto", log=print,
          steps: list[EpochStep] = (), named: bool = True, data=None, callbacks: list = (),
          guard: Guard | None = None) -> RunResult:
    """Trains `spec` (a cnndsl.Spec) with `recipe`, writing checkpoints and metrics into `out`.

    Under torchrun every process runs this; only rank 0 logs, writes, and claims the folder. A new run (not
    `resume`) needs a folder that does not exist or is empty, and claims it before it starts (runs.claim): a run
    already there, or one starting there at the same moment, is never written over; `named` false lets a
    default name take -2, -3... when another run has it. `steps` run after the standard ones at each epoch's end
    (cnndsl.train adds the run's page). `data` is data given in Python (data.arrays.Given) instead of the
    recipe's dataset; `callbacks` are the caller's own, with Keras' methods (training/callbacks.py). `guard` says
    what runs before epoch 1 (training/guard.py: the preflight checks by default, the range test when asked).
    """
    out = Path(out)
    kept = Preflight()  # keeps what the checks before epoch 1 found; before the caller's steps (the page shows it)
    epoch_steps = standard(Monitor(recipe.monitor), recipe.patience, recipe.tensorboard) + [kept] + list(steps)
    for step in epoch_steps:
        step.check()  # a missing package (tensorboard, matplotlib) is said now, not after the first epoch
    claim = runs.claim(out, resume, named) if distributed.world().main else runs.Claim(out)
    try:
        dev = distributed.device_for(device) or pick_device(device)
        here = distributed.start(dev)
        log = log if here.main else (lambda line: None)
        try:
            run = setup(spec, recipe, claim.folder, dev, here, log, epoch_steps, data)
            if resume:
                restore(run, runs.last_checkpoint(claim.folder))
            checked = prepare(run, guard or Guard(), resume, kept)
            run.callbacks = Callbacks(callbacks, run.net.model, log)
            run.callbacks.call("on_train_begin", {})
            fit(run)
            result = finish(run)
            result.notes = checked.notes()
            return result
        finally:
            distributed.finish()
    finally:
        claim.release()  # the lock goes; a run that saved nothing leaves no folder it made


def fit(run: Run) -> None:
    """The epochs left, each one's row handed to every step; the phases change where they begin."""
    for epoch in range(len(run.history) + 1, run.recipe.epochs + 1):
        phase = run.phases.of(epoch)
        if phase != run.phases.index:
            run.enter_phase(phase)
        if run.callbacks and run.callbacks.call("on_epoch_begin", epoch - 1, {}):
            break
        row = train_epoch(run, epoch)
        run.history.append(row)
        for step in run.steps:
            step.on_epoch_end(row, run)
        distributed.barrier()  # every process sees the checkpoint of this epoch before the next
        if run.callbacks and run.callbacks.call("on_epoch_end", epoch - 1, epoch_logs(row)):
            run.stop = True
        if run.stop:
            break


def train_epoch(run: Run, epoch: int) -> dict:
    """One epoch of training, then validation: the epoch's row of metrics."""
    recipe, data, net, schedule = run.recipe, run.data, run.net, run.phases.schedule
    started = time.perf_counter()
    train_mode(net.model, run.phases, recipe)  # frozen batchnorm stays in inference mode (recipe.frozen_batchnorm)
    progress = Progress(schedule.steps_per_epoch, f"epoch {epoch}/{recipe.epochs}")
    in_phase = epoch - run.phases.start(run.phases.index)
    watch = run.callbacks.batch_end if run.callbacks and run.callbacks.batches else None
    batches = Batches(recipe.batch_size, run.rngs.shuffle, Augment(**recipe.augment), run.rngs.augment,
                      recipe.clip_grad_norm, lambda step: schedule.lr(in_phase, step), net.amp, run.world, watch,
                      device=run.data.val.y.device)  # the training images may be held elsewhere
    try:
        loss, acc = train_pass(net.forward, data.train, batches, net.loss_fn, run.phases.optimizer, progress)
    except NonFinite as e:
        raise CnnError(f"the loss became NaN or infinite at epoch {epoch}, step {e.step}; stopped. {_kept(run)}",
                       hint="lower the learning rate (--lr), clip gradients (clip_grad_norm), or add batchnorm"
                       ) from None
    finally:
        progress.close()
    net.model.eval()
    val_loss, val_acc = evaluate_pass(net.evaluate, data.val, recipe.batch_size, net.loss_fn, net.amp)
    return {"epoch": epoch, "loss": round(loss, 6), "accuracy": round(acc, 6), "val_loss": round(val_loss, 6),
            "val_accuracy": round(val_acc, 6), "lr": run.phases.optimizer.param_groups[0]["lr"],
            "seconds": round(time.perf_counter() - started, 3)}


def _kept(run: Run) -> str:
    """What the run has saved so far, for the message that stops it."""
    if run.history and (run.out / "last.pt").exists():
        return f"The last good checkpoint is {run.out / 'last.pt'} (epoch {len(run.history)})."
    return "No epoch finished, so nothing was saved."


def finish(run: Run) -> RunResult:
    """The test figures, with the best epoch's weights unless the recipe says otherwise; then the steps' ends."""
    recipe = run.recipe
    if recipe.restore_best:
        run.net.model.load_state_dict(saved.load(run.out / "best.pt").model)
    run.net.model.eval()
    scores = []  # the test set's scores, once: the class scores and the page's worst mistakes read them too
    test_loss, test_acc = evaluate_pass(run.net.evaluate, run.data.test, recipe.batch_size, run.net.loss_fn,
                                        run.net.amp, scores)
    run.test_scores = scores
    best_epoch = run.step("best_checkpoint").epoch if recipe.restore_best else len(run.history)
    final = {"test_accuracy": test_acc, "test_loss": test_loss, "best_epoch": best_epoch}
    logs = {**(epoch_logs(run.history[-1]) if run.history else {}), **final}  # before the class scores join it
    for step in run.steps:
        step.on_train_end(final, run)
    if run.callbacks:
        run.callbacks.call("on_train_end", logs)
    return RunResult(run.out, run.history, test_acc, test_loss, best_epoch, recipe.monitor)
