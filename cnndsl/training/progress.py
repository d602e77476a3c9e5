"""The progress of an epoch's batches on a terminal or in a notebook.

Batches done of the epoch's total, the running loss and accuracy, the rate and the time left. On a terminal,
one rich line that fits the width, transient, so the epoch's log line that follows is the same with or
without it. In a Jupyter kernel, an HTML bar that IPython's display protocol updates in place (a display_id:
no ipywidgets needed, and the notebook keeps each epoch's finished bar, as Keras' do). Off when stderr is a
file or a pipe outside a notebook: logs stay clean, and neither rich nor IPython is imported.
"""

from __future__ import annotations

import html
import os
import sys
import time

from cnndsl.errors import terminal

REFRESH = 0.1  # seconds between reads of the running sums: each read waits for the device


def where() -> str | None:
    """"terminal" (a terminal on stderr), "notebook" (a Jupyter kernel, whose stderr is no terminal) or None;
    under torchrun only the first process draws, as only it logs."""
    if os.environ.get("RANK", "0") != "0":
        return None
    if sys.stderr.isatty():
        return "terminal"
    return "notebook" if _in_kernel() else None


def _in_kernel() -> bool:
    """Whether this process is a Jupyter kernel: ipykernel imported (by a test, say) is not enough."""
    if "ipykernel" not in sys.modules:
        return False
    from IPython import get_ipython  # (imported already where ipykernel is)

    return getattr(get_ipython(), "kernel", None) is not None


def showing() -> bool:
    return where() is not None


class Progress:
    """A bar of `total` batches labelled `label` (e.g. "epoch 3/10"): rich's on a terminal, HTML in a notebook."""

    def __init__(self, total: int, label: str):
        self.total, self.label = total, label
        place = where()
        self.on = place is not None
        self._read = 0.0
        if place == "terminal":
            self._bar, self._task = _start(total, label)
        elif place == "notebook":
            self._bar = NotebookBar(total, label)
            self._task = None

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


class NotebookBar:
    """The epoch's bar in a notebook: an HTML <progress> and the figures beside it, one display updated in place
    (at most every REFRESH seconds: each update is a message to the browser). It has rich's methods that
    Progress calls. IPython is there already: the kernel runs on it."""

    def __init__(self, total: int, label: str):
        from IPython.display import HTML, display

        self.total, self.label, self._html = total, label, HTML
        self.done, self.fields = 0, {"loss": "loss -", "acc": "acc -"}
        self.started = self._shown = time.perf_counter()
        self.handle = display(HTML(self.html()), display_id=True)

    def update(self, task=None, completed: int = 0, **fields) -> None:
        self.done = completed
        self.fields.update(fields)
        now = time.perf_counter()
        if now - self._shown >= REFRESH:
            self._shown = now
            self.refresh()

    def refresh(self) -> None:
        self.handle.update(self._html(self.html()))

    def stop(self) -> None:
        pass

    def html(self) -> str:
        elapsed = time.perf_counter() - self.started
        rate = self.done / elapsed if self.done and elapsed > 0 else 0.0
        if self.done >= self.total:
            timing = f"{elapsed:.1f}s"
        else:
            timing = f"{(self.total - self.done) / rate:.0f}s left" if rate else "- left"
        figures = " · ".join([f"{self.done}/{self.total}", self.fields["loss"], self.fields["acc"],
                              f"{rate:.1f} batch/s" if rate else "- batch/s", timing])
        return (f'<div class="cnndsl-progress" style="font-family:monospace;font-size:12px">{html.escape(self.label)} '
                f'<progress value="{self.done}" max="{self.total}" style="width:16em;vertical-align:middle">'
                f"</progress> {html.escape(figures)}</div>")


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
