"""Pictures of a run: learning curves and the confusion matrix on the test set (matplotlib, no screen)."""

from __future__ import annotations

import io
from pathlib import Path

from cnndsl import fonts
from cnndsl.errors import label
from cnndsl.files import atomic_write

DPI = 110  # made at the dpi they are saved at: what a layout measures is what is drawn


def _new_figure(**options):
    """A Figure on Agg's canvas, without pyplot: no display, no figure manager to make and close."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(dpi=DPI, **options)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> None:
    # no bbox_inches="tight": it draws a figure twice; each figure has its margins (fixed, or its layout engine's)
    buffer = io.BytesIO()
    # zlib level 3, not 6: 40% less time to encode for about 10% more bytes (mostly flat colour)
    fig.savefig(buffer, format="png", dpi=DPI, pil_kwargs={"compress_level": 3})
    atomic_write(path, buffer.getvalue())


def curves(history: list[dict], path: Path, best_epoch: int = 0, phase_starts: list[int] = ()) -> None:
    """curves_figure's picture, written to `path`."""
    with fonts.pictures():  # made and saved with fonts for every script
        _save(curves_figure(history, best_epoch, phase_starts), path)


def curves_figure(history: list[dict], best_epoch: int = 0, phase_starts: list[int] = ()):
    """Loss, accuracy and learning rate per epoch, side by side; a dotted line at the best epoch (best.pt's)
    and dashed ones where a phase begins (after the epochs in `phase_starts`)."""
    epochs = [row["epoch"] for row in history]
    # fixed margins: the labels are short and the same every run, and a layout engine would draw it twice
    fig = _new_figure(figsize=(14, 4))
    axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": [3, 3, 2]})
    fig.subplots_adjust(left=0.045, right=0.99, bottom=0.13, top=0.92, wspace=0.22)
    for ax, key in zip(axes, ("loss", "accuracy")):
        ax.plot(epochs, [row[key] for row in history], marker="o", label="training")
        ax.plot(epochs, [row[f"val_{key}"] for row in history], marker="o", label="validation")
        ax.set_title(key)
    axes[2].plot(epochs, [row["lr"] for row in history], marker="o", color="tab:green", label="learning rate")
    axes[2].set_title("learning rate (at the epoch's end)")
    rates = {row["lr"] for row in history}
    if len(rates) > 1 and min(rates) > 0:
        axes[2].set_yscale("log")
    elif len(rates) == 1 and min(rates) > 0:  # a constant rate: one tick at its value, not matplotlib's ±4% spread
        axes[2].set_ylim(0, 2 * max(rates))
        axes[2].set_yticks([0, max(rates)], ["0", f"{max(rates):g}"])
    for ax in axes:
        _marks(ax, best_epoch, phase_starts)
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def _marks(ax, best_epoch: int, phase_starts: list[int]) -> None:
    if best_epoch:
        ax.axvline(best_epoch, color="tab:red", linestyle=":", label=f"best epoch ({best_epoch})")
    for i, start in enumerate(phase_starts):
        ax.axvline(start + 0.5, color="grey", linestyle="--", label="phase start" if i == 0 else None)


def confusion(truth, predicted, classes: list[str], path: Path, title: str = "test set") -> None:
    """confusion_figure's picture, written to `path`: class names in any script (fonts.pictures)."""
    with fonts.pictures():
        _save(confusion_figure(truth, predicted, classes, title), path)


def confusion_figure(truth, predicted, classes: list[str], title: str = "test set"):
    """Counts of (true class, predicted class), and the same with each row divided by its sum (the share of
    each true class predicted as each class: recall on the diagonal). Up to NUMBERED classes each cell that
    is not 0 shows its number (an empty cell is 0); past them the cells have no numbers and the labels get
    smaller, so that 100 classes stay readable."""
    import torch

    n = len(classes)
    matrix = torch.zeros(n, n, dtype=torch.int64)
    matrix.index_put_((truth.cpu(), predicted.cpu()), torch.ones(len(truth), dtype=torch.int64), accumulate=True)
    rows = matrix.sum(1, keepdim=True).clamp(min=1)
    normalized = (matrix / rows).numpy()
    size = min(max(4.0, 0.45 * n + 2), 16.0)  # 100 classes: 16 inches a panel, labels of 7 points
    fig = _new_figure(figsize=(2 * size + 1.5, size), layout="constrained")
    axes = fig.subplots(1, 2)
    accuracy = matrix.diag().sum().item() / max(1, matrix.sum().item())
    _matrix(axes[0], matrix.numpy(), classes, "{:d}", f"{title}: accuracy {accuracy:.2%}")
    image = _matrix(axes[1], normalized, classes, "{:.2f}", "normalized: each true class's row sums to 1",
                    vmax=1.0)
    # fixed ticks: labels of one width, whatever height the layout gives the bar (its own choice of ticks
    # could change with it, to wider labels than the layout made room for)
    fig.colorbar(image, ax=axes[1], shrink=0.8, ticks=[i / 5 for i in range(6)], format="{x:.1f}")
    return fig


NUMBERED = 20  # classes up to which each cell shows its number


def _matrix(ax, values, classes: list[str], form: str, title: str, vmax=None):
    n = len(classes)
    classes = [label(c) for c in classes]
    image = ax.imshow(values, cmap="Blues", vmin=0, vmax=vmax, interpolation="nearest")  # cells: no resampling
    labels = 8 if n <= NUMBERED else max(5, min(8, 700 // n))  # a row of 100 is 11.5 points high
    ax.set_xticks(range(n), classes, rotation=90 if n > NUMBERED else 45, ha="center" if n > NUMBERED else "right",
                  fontsize=labels)
    ax.set_yticks(range(n), classes, fontsize=labels)
    if n <= NUMBERED:
        limit = (values.max() if vmax is None else vmax) / 2  # half the colour scale: white text on the dark half
        for i in range(n):
            for j in range(n):
                value = values[i, j]
                if not value:  # an empty cell is 0: the mistakes stand out, and most texts need not be drawn
                    continue
                ax.text(j, i, form.format(int(value) if form == "{:d}" else value), ha="center", va="center",
                        color="white" if value > limit else "black", fontsize=7,
                        in_layout=False)  # inside its cell: the layout pass need not measure it
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, wrap=True)  # long on a small figure: on two lines, not past its edge
    return image
