"""A finished run as text and as HTML: what `print(run)`, `run.summary()` and a notebook show of a RunResult.

The table is metrics.csv's (one row per epoch, the best one marked); the notebook adds the learning curves the
run drew (curves.png, inline). User text (the folder's name) goes through esc.
"""

from __future__ import annotations

import base64

from cnndsl.errors import CnnError
from cnndsl.files import read_bytes
from cnndsl.report import esc

COLUMNS = (("epoch", "epoch"), ("loss", "loss"), ("accuracy", "acc"), ("val_loss", "val_loss"),
           ("val_accuracy", "val_acc"), ("lr", "lr"), ("seconds", "seconds"))


def headline(result) -> str:
    """`runs/x: 4 epochs, best epoch 3 val_loss 0.3012, test_accuracy 0.8950`."""
    best = next((row for row in result.history if row.get("epoch") == result.best_epoch), None)
    figure = f" {result.monitor} {best[result.monitor]:.4f}" if best and result.monitor in best else ""
    epochs = len(result.history)
    return (f"{result.out}: {epochs} epoch{'s' * (epochs != 1)}, best epoch {result.best_epoch}{figure}, "
            f"test_accuracy {result.test_accuracy:.4f}")


def cell(key: str, value) -> str:
    if key == "epoch":
        return str(value)
    if key == "lr":
        return f"{value:.3g}"
    if key == "seconds":
        return f"{value:.1f}"
    return f"{value:.4f}"


def text(result) -> str:
    """The epochs as a table (`*` at the best), then the test figures: what summary() prints."""
    shown = [(key, head) for key, head in COLUMNS if result.history and key in result.history[0]]
    rows = [[cell(key, row[key]) for key, _ in shown] for row in result.history]
    widths = [max(len(head), *(len(r[i]) for r in rows)) for i, (_, head) in enumerate(shown)]
    lines = [" ".join(head.rjust(w) for (_, head), w in zip(shown, widths))]
    for row, cells in zip(result.history, rows):
        mark = " *" if row.get("epoch") == result.best_epoch else ""
        lines.append(" ".join(c.rjust(w) for c, w in zip(cells, widths)) + mark)
    lines.append(f"test accuracy {result.test_accuracy:.4f} (loss {result.test_loss:.4f}) with the weights of epoch "
                 f"{result.best_epoch} (*); the run's folder: {result.out}")
    lines += [f"before epoch 1: {note}" for note in getattr(result, "notes", ())]  # training/guard.py
    return "\n".join(lines)


CSS = """<style>
.cnndsl-run table { border-collapse: collapse; font-size: 12px; }
.cnndsl-run th, .cnndsl-run td { padding: 1px 8px; text-align: right; font-family: monospace; white-space: nowrap; }
.cnndsl-run tr.best td { background: #fdecea; font-weight: 600; } .cnndsl-run img { max-width: 640px; height: auto; }
</style>"""


def html(result) -> str:
    """The headline, the epochs' table (the best row marked) and the learning curves."""
    shown = [(key, head) for key, head in COLUMNS if result.history and key in result.history[0]]
    head = "".join(f"<th>{esc(h)}</th>" for _, h in shown)
    body = "".join(f'<tr{" class=best" if row.get("epoch") == result.best_epoch else ""}>'
                   + "".join(f"<td>{esc(cell(key, row[key]))}</td>" for key, _ in shown) + "</tr>"
                   for row in result.history)
    notes = "".join(f"<p>before epoch 1: {esc(note)}</p>" for note in getattr(result, "notes", ()))
    return (f'<div class="cnndsl-run">{CSS}<p>Run <code>{esc(result.out)}</code>: test accuracy '
            f"<b>{result.test_accuracy:.4f}</b> (loss {result.test_loss:.4f}) with the weights of epoch "
            f"{result.best_epoch}; report.html in its folder has the rest.</p>{notes}"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{_curves(result)}</div>")


def _curves(result) -> str:
    try:
        data = read_bytes(result.out / "curves.png", limit=16 << 20)
    except CnnError:  # not drawn (the run's plots need matplotlib), or gone since
        return ""
    return (f'<img alt="learning curves" src="data:image/png;base64,{base64.b64encode(data).decode("ascii")}">')
