"""Pictures of a run: learning curves and the confusion matrix on the test set (matplotlib, no screen)."""

from __future__ import annotations

import io
from pathlib import Path

from cnndsl.train.checkpoint import atomic_write


def _figure():
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    atomic_write(path, buffer.getvalue())


def curves(history: list[dict], path: Path) -> None:
    """Loss and accuracy per epoch, training and validation, side by side."""
    plt = _figure()
    epochs = [row["epoch"] for row in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, title in ((left, "loss", "loss"), (right, "accuracy", "accuracy")):
        ax.plot(epochs, [row[key] for row in history], marker="o", label="training")
        ax.plot(epochs, [row[f"val_{key}"] for row in history], marker="o", label="validation")
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    _save(fig, path)
    plt.close(fig)


def confusion(truth, predicted, classes: list[str], path: Path, title: str = "test set") -> None:
    """Counts of (true class, predicted class); the diagonal is what was right."""
    import torch

    plt = _figure()
    n = len(classes)
    matrix = torch.zeros(n, n, dtype=torch.int64)
    matrix.index_put_((truth.cpu(), predicted.cpu()), torch.ones(len(truth), dtype=torch.int64), accumulate=True)
    size = max(4.0, 0.45 * n + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix.numpy(), cmap="Blues")
    if n <= 20:
        ax.set_xticks(range(n), classes, rotation=45, ha="right")
        ax.set_yticks(range(n), classes)
        limit = matrix.max().item() / 2
        for i in range(n):
            for j in range(n):
                ax.text(j, i, int(matrix[i, j]), ha="center", va="center",
                        color="white" if matrix[i, j] > limit else "black", fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    accuracy = matrix.diag().sum().item() / max(1, matrix.sum().item())
    ax.set_title(f"{title}: accuracy {accuracy:.2%}")
    _save(fig, path)
    plt.close(fig)
