"""The progress of an epoch's batches on a terminal or in a notebook: one rich line that fits the width.

Batches done of the epoch's total, the running loss and accuracy, the rate and the time left. Off when
stderr is a file or a pipe (outside a notebook): logs stay clean, and rich is then never imported. The
line is transient, so the epoch's log line that follows is the same with or without it.
"""

from __future__ import annotations

import os
import sys
import time

from cnndsl.errors import terminal

REFRESH = 0.1  # seconds between reads of the running sums: each read waits for the device


def showing() -> bool:
    """A terminal on stderr, or a Jupyter kernel (whose stderr is no terminal; rich draws a widget there,
    with ipywidgets installed); under torchrun only the first process draws, as only it logs."""
    return os.environ.get("RANK", "0") == "0" and (sys.stderr.isatty() or "ipykernel" in sys.modules)


class Progress:
    """A bar of `total` batches labelled `label` (e.g. "epoch 3/10"), drawn by rich on stderr."""

    def __init__(self, total: int, label: str):
        self.total, self.label = total, label
        self.on = showing()
        self._read = 0.0
        if self.on:
            self._bar, self._task = _start(total, label)

    def update(self, done: int, loss_sum=None, correct=None, seen: int = 0) -> None:
        """`done` batches of `total`; the running sums (tensors on the device) are read every REFRESH seconds."""
        if not self.on:
            return
        now = time.perf_counter()
        fields = {}
        if loss_sum is not None and seen and (now - self._read >= REFRESH or done >= self.total):
            self._read = now
            fields = {"loss": f"loss {float(loss_sum) / seen:.4f}", "acc": f"acc {float(correct) / seen:.4f}"}
        self._bar.update(self._task, completed=done, **fields)

    def close(self) -> None:
        if self.on:
            self._bar.refresh()
            self._bar.stop()
            self.on = False


def _start(total: int, label: str):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, ProgressColumn, TextColumn, TimeRemainingColumn
    from rich.progress import Progress as Bar
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task) -> Text:
            return Text(f"{task.speed:.1f} batch/s" if task.speed else "- batch/s", style="progress.data.speed")

    bar = Bar(TextColumn("{task.description}"), BarColumn(bar_width=None), MofNCompleteColumn(),
              TextColumn("{task.fields[loss]}"), TextColumn("{task.fields[acc]}"), Rate(),
              TimeRemainingColumn(), console=Console(file=terminal(sys.stderr)), transient=True, expand=True)
    task = bar.add_task(label, total=total, loss="loss -", acc="acc -")
    bar.start()
    return bar, task
