"""Callbacks of one's own, with Keras' method names: `cnndsl.train(spec, ..., callbacks=[...])`.

The runner calls, on each callback that has them (subclass Callback, or write any object with some of them):

    set_model(model)                  before the run: the nn.Module being trained (Callback keeps it as self.model)
    on_train_begin(logs)              logs: {}
    on_epoch_begin(epoch, logs)       epoch counts from 0, as in Keras; logs: {}
    on_train_batch_end(batch, logs)   logs: the epoch's running loss and accuracy
    on_epoch_end(epoch, logs)         logs: loss, accuracy, val_loss, val_accuracy, lr, seconds
    on_train_end(logs)                logs: the last epoch's, and test_loss, test_accuracy, best_epoch

A callback stops the run as in Keras: `self.model.stop_training = True`. The epoch in progress ends there (its
batches stop, then it is validated, saved and handed to on_epoch_end) and no other begins; the test follows.
The runner's own steps (training/steps.py: logging, checkpoints, early stopping) see each epoch first.

`EarlyStopping` is Keras' name for the runner's own early stopping: given as a callback, it sets the recipe's
`monitor`, `patience` and `restore_best`, so it keeps its state in the checkpoints as the recipe's does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cnndsl.errors import CnnError
from cnndsl.training.recipe import CHOICES

HOOKS = ("on_train_begin", "on_epoch_begin", "on_train_batch_end", "on_epoch_end", "on_train_end")


class Callback:
    """Keras' Callback: override the methods you need; `self.model` is the nn.Module being trained."""

    model = None

    def set_model(self, model) -> None:
        self.model = model

    def on_train_begin(self, logs: dict | None = None) -> None:
        pass

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        pass

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        pass

    def on_train_end(self, logs: dict | None = None) -> None:
        pass


@dataclass
class EarlyStopping:
    """Keras' EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True): stops the run after
    `patience` epochs without a better `monitor` (val_loss or val_accuracy), and with restore_best_weights tests
    (and leaves in the model) the best epoch's weights, else the last's. It is the recipe's early stopping."""

    monitor: str = "val_loss"
    patience: int = 0
    restore_best_weights: bool = False

    def recipe(self) -> dict:
        """The recipe keys it stands for. Keras stops at the first epoch without improvement with patience 0 as
        with 1; the recipe's patience 0 is no early stopping, so 0 becomes 1."""
        if self.monitor not in CHOICES["monitor"]:
            raise CnnError(f"EarlyStopping monitors {' or '.join(CHOICES['monitor'])}, not {self.monitor!r}")
        # (a patience of another type goes to the recipe as it is, which says what it takes)
        patience = max(self.patience, 1) if type(self.patience) is int else self.patience
        return {"monitor": self.monitor, "patience": patience, "restore_best": self.restore_best_weights}


def split(callbacks) -> tuple[list, dict]:
    """(the callbacks the loop calls, the recipe keys of an EarlyStopping among them), each one checked."""
    if callbacks is None:
        return [], {}
    if not isinstance(callbacks, (list, tuple)):
        raise CnnError(f"callbacks takes a list, got a {type(callbacks).__name__}: callbacks=[...]")
    own, keys = [], {}
    for i, callback in enumerate(callbacks):
        if isinstance(callback, EarlyStopping):
            if keys:
                raise CnnError("callbacks holds two EarlyStopping: give one")
            keys = callback.recipe()
        elif isinstance(callback, type):
            raise CnnError(f"callbacks[{i}] is the class {callback.__name__}, not one: give {callback.__name__}()")
        elif not any(callable(getattr(callback, hook, None)) for hook in HOOKS):
            raise CnnError(f"callbacks[{i}] (a {type(callback).__name__}) has none of the methods {', '.join(HOOKS)}")
        else:
            own.append(callback)
    return own, keys


class Callbacks:
    """The run's callbacks, called in their order; `stopped` once one sets model.stop_training."""

    def __init__(self, callbacks: list, model, log: Callable[[str], None]):
        self.callbacks, self.model, self.log = list(callbacks), model, log
        self.stopped = False
        self.batches = any(_has(c, "on_train_batch_end") for c in self.callbacks)  # running figures cost a read
        model.stop_training = False  # as Keras' fit starts
        for callback in self.callbacks:
            if callable(getattr(callback, "set_model", None)):
                callback.set_model(model)

    def call(self, hook: str, *args) -> bool:
        """`hook` of every callback that has it; True once the run is to stop."""
        for callback in self.callbacks:
            method = getattr(callback, hook, None)
            if callable(method):
                method(*args)
                if getattr(self.model, "stop_training", False) and not self.stopped:
                    self.stopped = True
                    self.log(f"stopped by a callback: {type(callback).__name__}.{hook} set model.stop_training")
        return self.stopped

    def batch_end(self, step: int, loss_sum, correct, seen: int) -> bool:
        """After each training batch: the running loss and accuracy (read from the device only when a callback
        asks for them); True to end the epoch there."""
        if not self.batches:
            return self.stopped
        logs = {"loss": float(loss_sum) / seen, "accuracy": float(correct) / seen}
        return self.call("on_train_batch_end", step, logs)


def _has(callback, hook: str) -> bool:
    """Whether the callback does something at `hook` (Callback's own methods do nothing)."""
    method = getattr(type(callback), hook, None)
    return callable(getattr(callback, hook, None)) and method is not getattr(Callback, hook, None)


def epoch_logs(row: dict) -> dict:
    """An epoch's row as Keras' logs: its figures without the epoch's number."""
    return {k: v for k, v in row.items() if k != "epoch"}
