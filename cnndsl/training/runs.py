"""Run folders: a new run never writes into a folder that holds anything, and `--resume` finds its run.

A finished run's best.pt, last.pt and metrics are results; only `--resume` may add to them. A new run
goes into a folder that does not exist yet or is empty; the default name, runs/SPEC-TIME, takes a
suffix (-2, -3, ...) when that folder exists.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from cnndsl import saved
from cnndsl.errors import CnnError, UsageError


def default_folder(spec: str, root: Path = Path("runs")) -> Path:
    """runs/SPEC-TIME, or the first of runs/SPEC-TIME-2, -3, ... that does not exist."""
    return free_name(root / f"{Path(spec).stem}-{time.strftime('%Y%m%d-%H%M%S')}")


def free_name(folder: Path) -> Path:
    """`folder`, or FOLDER-2, FOLDER-3, ...: the first that does not exist (for hints)."""
    if not folder.name:  # `.` or `/`: a name to add the suffix to
        folder = folder.resolve() if folder.resolve().name else folder.resolve() / "run"
    candidate, n = folder, 2
    while candidate.exists():
        candidate, n = folder.with_name(f"{folder.name}-{n}"), n + 1
    return candidate


def check_new(out: Path) -> None:
    """Refuses, before any work, a run folder that holds something or that cannot be made."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder",
                         hint=f"give a folder for the run's files, e.g. --out {free_name(out)}")
    if out.is_dir():
        try:
            used = next(iter(out.iterdir()), None) is not None
        except OSError as e:
            raise UsageError(f"--out {out} cannot be read: {e.strerror or e}") from None
        if used:
            message, hint = _in_use(out)
            raise UsageError(message, hint=hint)
    _check_creatable(out)


def _in_use(out: Path) -> tuple[str, str]:
    """The refusal for a folder that holds a run (or anything else)."""
    other = free_name(out)
    if (out / "last.pt").exists():
        return (f"--out {out} holds a run already; a new run never replaces it",
                f"continue that run with `--resume {out}`, or write the new one elsewhere: --out {other}")
    return (f"--out {out} is not empty; a new run writes into a new or empty folder",
            f"write the run elsewhere, e.g. --out {other}")


def _check_creatable(out: Path) -> None:
    """The nearest existing folder above `out` must be a writable folder."""
    above = out.absolute()
    while not above.exists():
        above = above.parent
    if not above.is_dir():
        raise UsageError(f"--out {out} cannot be made: {above} is a file, not a folder")
    if not os.access(above, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out} cannot be made: {above} is not writable",
                         hint="choose a folder you can write to, e.g. --out runs/NAME")


def make(out: Path) -> None:
    """Creates the run folder (see check_new for the checks made before)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CnnError(f"cannot make the run folder {out}: {e.strerror or e}",
                       hint="choose a folder you can write to with --out") from None


def last_checkpoint(out: Path) -> saved.Checkpoint:
    """The last.pt of a run to resume; when it is damaged, says whether best.pt can start a new run."""
    if not out.is_dir():
        raise UsageError(f"--resume {out}: no such folder", hint="--resume takes the folder of an earlier run")
    path = out / "last.pt"
    if not path.exists():
        raise CnnError(f"--resume {out}: the folder holds no last.pt (no epoch of that run finished)",
                       hint=f"start a new run: --out {free_name(out)}")
    try:
        return saved.load(path)
    except CnnError as e:
        raise CnnError(f"{e.message}; the run cannot be resumed", hint=_rescue(out)) from None


def _rescue(out: Path) -> str:
    best = out / "best.pt"
    if not best.exists():
        return "no best.pt either: start the run again in a new folder"
    try:
        epoch = saved.load(best).best_epoch
    except CnnError:
        return f"{best} is not readable either: start the run again in a new folder"
    return (f"{best} (epoch {epoch}) is intact: start a new run from its weights with "
            f"`--init {best} --out {free_name(out)}`")
