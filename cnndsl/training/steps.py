"""What happens at the end of each epoch: a fixed list of small steps, each consuming the epoch's row.

As Keras' callbacks and Lightning's: the loop only makes the row of metrics (epoch, loss, accuracy,
val_loss, val_accuracy, lr, seconds) and hands it to each step in turn; a step that keeps something
from epoch to epoch says what in `state()`, which goes into the checkpoint (by the step's `name`) and
comes back through `load()` on resume. Steps that update come before the steps that write, so the
checkpoints hold this epoch's states. `on_train_end` gets the test figures once the run is over, and
`check()`, called as the run is set up, says what a step would lack (a package) before any work.

A caller may add steps of its own after these (any object with the methods of EpochStep): cnndsl.train
adds the run's page, viz/runpage.py's ReportPage, so that training never imports pictures.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from cnndsl import saved
from cnndsl.errors import CnnError, printable
from cnndsl.files import atomic_write, read_bytes
from cnndsl.optional import require
from cnndsl.training import plots, scores
from cnndsl.training.epoch import predictions
from cnndsl.training.monitor import Monitor

if TYPE_CHECKING:
    from cnndsl.training.setup import Run


class EpochStep(Protocol):
    name: str
    writes: tuple[str, ...]  # the files it adds to a run's (FILES), for the log's last line

    def check(self) -> None: ...
    def on_epoch_end(self, row: dict, run: Run) -> None: ...
    def on_train_end(self, final: dict, run: Run) -> None: ...
    def state(self) -> dict: ...
    def load(self, state: dict) -> None: ...


class Step:
    """Does nothing and keeps nothing: steps override what they need."""

    name = ""
    writes: tuple[str, ...] = ()

    def check(self) -> None:
        pass

    def on_epoch_end(self, row: dict, run: Run) -> None:
        pass

    def on_train_end(self, final: dict, run: Run) -> None:
        pass

    def state(self) -> dict:
        return {}

    def load(self, state: dict) -> None:
        pass


class Logger(Step):
    name = "logger"

    def on_epoch_end(self, row: dict, run: Run) -> None:
        run.log(f"epoch {row['epoch']}/{run.recipe.epochs}  loss {row['loss']:.4f}  acc {row['accuracy']:.4f}  "
                f"val_loss {row['val_loss']:.4f}  val_acc {row['val_accuracy']:.4f}  {row['seconds']:.1f}s")

    def on_train_end(self, final: dict, run: Run) -> None:
        run.log(f"test accuracy {final['test_accuracy']:.4f} (loss {final['test_loss']:.4f}) with the weights of "
                f"epoch {final['best_epoch']}")
        added = [name for step in run.steps for name in step.writes]
        board = ["tensorboard/"] if run.recipe.tensorboard else []
        run.log(f"wrote {printable(str(run.out))}: {', '.join([*FILES, *added, *board])}")


class PlateauLR(Step):
    """Divides the rate by 10 when the validation loss stops improving (its state is the schedule's)."""

    name = "plateau"

    def on_epoch_end(self, row: dict, run: Run) -> None:
        note = run.phases.schedule.end_epoch(row[run.phases.schedule.watch.monitor])
        if note:
            run.log(note)


class EarlyStopping(Step):
    """Stops the run after `patience` epochs without a better `monitor` (0: never)."""

    name = "early_stopping"

    def __init__(self, monitor: Monitor, patience: int):
        self.monitor, self.patience = monitor, patience
        self.best, self.wait = None, 0

    def on_epoch_end(self, row: dict, run: Run) -> None:
        value = row[self.monitor.monitor]
        if self.monitor.improved(value, self.best):
            self.best, self.wait = value, 0
        else:
            self.wait += 1
        if self.patience and self.wait >= self.patience:
            run.log(f"early stop: {self.monitor.monitor} has not improved for {self.wait} epochs")
            run.stop = True

    def state(self) -> dict:
        return {"best": self.best, "wait": self.wait}

    def load(self, state: dict) -> None:
        self.best, self.wait = state["best"], state["wait"]


class RecipeFile(Step):
    """recipe.yaml, with the first checkpoint: a run that saved nothing leaves none. A resumed run rewrites
    it if its recipe differs (--resume may turn `tensorboard` on or off)."""

    name = "recipe_file"

    def __init__(self):
        self.checked = False  # once per process: the recipe does not change within one

    def on_epoch_end(self, row: dict, run: Run) -> None:
        if run.world.main and not self.checked:
            path, text = run.out / "recipe.yaml", yaml_text(run.recipe.to_dict())
            if _contents(path, len(text)) != text:
                atomic_write(path, text)
            self.checked = True

    def on_train_end(self, final: dict, run: Run) -> None:
        self.on_epoch_end({}, run)  # a finished run resumed trains no epoch


def _contents(path: Path, limit: int) -> bytes | None:
    """What a file of the run holds, if it is a readable file of at most `limit` bytes."""
    try:
        return read_bytes(path, limit=limit)
    except CnnError:
        return None


class BestCheckpoint(Step):
    """best.pt: the run as it was at the epoch with the best `monitor`."""

    name = "best_checkpoint"

    def __init__(self, monitor: Monitor):
        self.monitor = monitor
        self.value, self.epoch = None, 0

    def on_epoch_end(self, row: dict, run: Run) -> None:
        if not self.monitor.improved(row[self.monitor.monitor], self.value):
            return
        self.value, self.epoch = row[self.monitor.monitor], row["epoch"]
        if run.world.main:
            saved.save(run.out / "best.pt", run.checkpoint())

    def state(self) -> dict:
        return {"value": self.value, "epoch": self.epoch}

    def load(self, state: dict) -> None:
        self.value, self.epoch = state["value"], state["epoch"]


class LastCheckpoint(Step):
    """last.pt: every finished epoch, so a run killed at any moment resumes from the last one."""

    name = "last_checkpoint"

    def on_epoch_end(self, row: dict, run: Run) -> None:
        if run.world.main:
            saved.save(run.out / "last.pt", run.checkpoint())


def summary_writer() -> type:
    """torch's SummaryWriter, or a CnnError saying how to install TensorBoard (checked when a run is set up)."""
    # imports the tensorboard package: only when asked for
    return require("torch.utils.tensorboard", "the recipe's TensorBoard logs (`tensorboard: true` or --tensorboard)",
                   package="tensorboard", hint="or train without them (--no-tensorboard)").SummaryWriter


# Keras' TensorBoard callback's layout: a run folder per split, the same `epoch_*` tags in each, so that
# TensorBoard draws one chart per figure with a curve per split
SCALARS = {"train": {"epoch_loss": "loss", "epoch_accuracy": "accuracy", "epoch_learning_rate": "lr",
                     "epoch_seconds": "seconds"},
           "validation": {"epoch_loss": "val_loss", "epoch_accuracy": "val_accuracy"}}


class TensorBoard(Step):
    """RUN/tensorboard/{train,validation}/: each epoch's figures at step = epoch, flushed every epoch so that
    a running `tensorboard --logdir runs` draws them live; RUN/tensorboard/test/ gets the test figures (at the
    tested epoch) and a line of text saying which epoch's weights they are.

    Its state is the last epoch written. A resumed run writes a new events file per folder, which starts by
    purging the steps after that epoch (SummaryWriter's purge_step: what a killed run wrote past its last
    checkpoint); the epochs the folder lacks (TensorBoard turned on at --resume) are written first."""

    name = "tensorboard"

    def __init__(self):
        self.written = 0  # the last epoch in the event files, as of the checkpoint
        self.writers: dict | None = None

    def check(self) -> None:
        summary_writer()

    def on_epoch_end(self, row: dict, run: Run) -> None:
        if run.world.main:
            self._catch_up(run)

    def _catch_up(self, run: Run) -> None:
        """Every epoch of the history after the last one written: this epoch's row, and on the first call
        those the folder lacks."""
        if self.writers is None:
            folder = run.out / "tensorboard"
            purge = None
            if folder.exists():  # a resumed run's: TensorBoard hides the steps after the checkpoint's epoch
                purge = self.written + 1
            else:  # a new run's, or TensorBoard turned on at --resume: every epoch goes in
                self.written = 0
            SummaryWriter = summary_writer()
            self.writers = {split: SummaryWriter(str(folder / split), purge_step=purge) for split in SCALARS}
        for row in run.history:
            if row["epoch"] > self.written:
                self._write(row)

    def _write(self, row: dict) -> None:
        for split, tags in SCALARS.items():
            for tag, key in tags.items():
                self.writers[split].add_scalar(tag, row[key], global_step=row["epoch"])
            self.writers[split].flush()
        self.written = row["epoch"]

    def on_train_end(self, final: dict, run: Run) -> None:
        if not run.world.main:
            return
        self._catch_up(run)  # (a finished run resumed with TensorBoard turned on trains no epoch)
        # a finished run resumed again rewrites its test figures: the purge from step 1 hides the earlier ones
        folder = run.out / "tensorboard" / "test"
        test = summary_writer()(str(folder), purge_step=1 if folder.exists() else None)
        epoch = final["best_epoch"]
        test.add_scalar("epoch_accuracy", final["test_accuracy"], global_step=epoch)
        test.add_scalar("epoch_loss", final["test_loss"], global_step=epoch)
        test.add_text("test", f"test accuracy {final['test_accuracy']:.4f} (loss {final['test_loss']:.4f}) with the "
                      f"weights of epoch {epoch}", global_step=epoch)
        test.close()
        for writer in (self.writers or {}).values():
            writer.close()
        self.writers = None

    def state(self) -> dict:
        return {"written": self.written}

    def load(self, state: dict) -> None:
        self.written = state["written"]


class MetricsFiles(Step):
    """metrics.json and metrics.csv: every epoch's row, and the test figures at the end."""

    name = "metrics_files"

    def on_epoch_end(self, row: dict, run: Run) -> None:
        if run.world.main:
            write_metrics(run.out, run.history, {})

    def on_train_end(self, final: dict, run: Run) -> None:
        if run.world.main:
            write_metrics(run.out, run.history, final)


class ClassScores(Step):
    """Precision, recall and F1 of each class on the test set: printed, and into metrics.json (`final`)."""

    name = "class_scores"

    def __init__(self):
        self.predicted = None  # the test set's predicted classes, which the plots reuse

    def on_train_end(self, final: dict, run: Run) -> None:
        import torch

        if run.world.main:  # the test pass's scores where the run kept them, rather than a pass of its own
            self.predicted = (torch.cat(run.test_scores).argmax(1) if run.test_scores
                              else predictions(run.net.evaluate, run.data.test, run.recipe.batch_size))
            final.update(scores.per_class(run.data.test.y, self.predicted, run.data.classes))
            for line in scores.lines(final):
                run.log(line)


class Plots(Step):
    """curves.png (the best epoch and the phases marked) and confusion.png, once the run is over."""

    name = "plots"

    def check(self) -> None:
        require("matplotlib.figure", "the run's plots (curves.png, confusion.png)")

    def on_train_end(self, final: dict, run: Run) -> None:
        if run.world.main:
            starts = [run.phases.start(i) for i in range(1, len(run.phases.plan))]
            plots.curves(run.history, run.out / "curves.png", final["best_epoch"], starts)
            predicted = run.step("class_scores").predicted
            if predicted is None:
                predicted = predictions(run.net.evaluate, run.data.test, run.recipe.batch_size)
            plots.confusion(run.data.test.y, predicted, run.data.classes, run.out / "confusion.png")


def standard(monitor: Monitor, patience: int, tensorboard: bool = False) -> list[Step]:
    """The steps of every run, in their order: those that update, then those that write (the class scores
    come first so that their table precedes the test accuracy and that metrics.json holds them; TensorBoard
    writes before last.pt, so that a run killed between them rewrites an epoch there, which the purge on
    resume hides, rather than miss one). A caller's steps come after these (the page embeds the plots)."""
    board = [TensorBoard()] if tensorboard else []
    return [ClassScores(), Logger(), PlateauLR(), EarlyStopping(monitor, patience), RecipeFile(),
            BestCheckpoint(monitor), *board, LastCheckpoint(), MetricsFiles(), Plots()]


# what the standard steps write into every run's folder (and tensorboard/ when asked)
FILES = ("best.pt", "last.pt", "metrics.csv", "metrics.json", "curves.png", "confusion.png", "recipe.yaml")


def write_metrics(out: Path, history: list[dict], final: dict) -> None:
    atomic_write(out / "metrics.json", json.dumps({"epochs": history, **final}, indent=2).encode())
    text = io.StringIO()
    if history:
        writer = csv.DictWriter(text, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    atomic_write(out / "metrics.csv", text.getvalue().encode())


def yaml_text(values: dict) -> bytes:
    return require("yaml", "writing recipe.yaml").safe_dump(values, sort_keys=False).encode()
