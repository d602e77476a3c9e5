"""Checkpoints and run files, written atomically: a file is complete or absent, never half-written."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from cnndsl.errors import CnnError


def atomic_write(path: Path, data: bytes) -> None:
    """Writes beside the target, flushes to disk, then renames over it (a rename is atomic)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_checkpoint(path: Path, state: dict) -> None:
    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write(path, buffer.getvalue())


def load_checkpoint(path: Path) -> dict:
    import torch

    if not path.exists():
        raise CnnError(f"no checkpoint at {path}", hint="--resume takes the folder of a run that saved last.pt")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CnnError(f"cannot read the checkpoint {path}: {e}") from None


def write_metrics(out: Path, history: list[dict], final: dict) -> None:
    atomic_write(out / "metrics.json", json.dumps({"epochs": history, **final}, indent=2).encode())
    text = io.StringIO()
    if history:
        writer = csv.DictWriter(text, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    atomic_write(out / "metrics.csv", text.getvalue().encode())
