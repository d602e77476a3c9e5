"""Run folders: a new run never writes into a folder that holds anything, two runs never share one, and
`--resume` finds its run.

A finished run's best.pt, last.pt and metrics are results; only `--resume` may add to them. A run claims its
folder before it starts (`claim`): a new folder is made with os.mkdir, which one process alone succeeds in (the
default name, runs/SPEC-TIME, takes a suffix, -2, -3, ..., when another has it); an empty folder named by
`--out` gets the run's marker file (files.RUN_MARKER), made with O_EXCL; and the marker is locked (flock) for as
long as the run goes, so that a second run into the folder, or a `--resume` of it, is refused while it goes.
The kernel drops the lock when the process ends, however it ends: `kill -9` leaves no folder locked.
"""

from __future__ import annotations

import os
import secrets
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cnndsl import saved
from cnndsl.errors import CnnError, UsageError
from cnndsl.files import RUN_MARKER, numbered, read_bytes, run_folder_of, what_is

try:
    import fcntl
except ImportError:  # (Windows: the marker alone claims a folder)
    fcntl = None

CLAIM_ENV = "CNNDSL_RUN_CLAIM"  # `train --nproc` gives its processes the token of the claim it holds for them


def default_folder(spec: str, root: Path = Path("runs")) -> Path:
    """runs/SPEC-TIME: the run takes it, or the first of runs/SPEC-TIME-2, -3, ... free when it starts (`claim`)."""
    return root / f"{Path(spec).stem}-{time.strftime('%Y%m%d-%H%M%S')}"


def free_name(folder: Path) -> Path:
    """`folder`, or FOLDER-2, FOLDER-3, ...: the first that does not exist (for hints)."""
    if not folder.name:  # `.` or `/`: a name to add the suffix to
        folder = folder.resolve() if folder.resolve().name else folder.resolve() / "run"
    return next(c for c in numbered(folder, folder=True) if not c.exists())


def check_new(out: Path) -> None:
    """Refuses, before any work, a run folder that holds something, lies in another run's, or cannot be made."""
    if _inherited(out):
        return
    if os.path.lexists(out) and not out.is_dir():
        raise UsageError(f"--out {out} is {what_is(out)}, not a folder",
                         hint=f"give a folder for the run's files, e.g. --out {free_name(out)}")
    if out.is_dir():
        try:  # (a marker alone: a run that saved nothing, or is starting, which the lock tells)
            used = any(name != RUN_MARKER for name in os.listdir(out)) or _locked(out / RUN_MARKER)
        except OSError as e:
            raise UsageError(f"--out {out} cannot be read: {e.strerror or e}") from None
        if used:
            message, hint = _in_use(out)
            raise UsageError(message, hint=hint)
    check_creatable(out)


def _in_use(out: Path) -> tuple[str, str]:
    """The refusal for a folder that holds a run (or anything else)."""
    other = free_name(out)
    if not (out / "last.pt").exists() and _locked(out / RUN_MARKER):
        return (f"--out {out} is the folder of a run that is going now; a new run never writes into it",
                f"write the new run elsewhere: --out {other}")
    if (out / "last.pt").exists():
        return (f"--out {out} holds a run already; a new run never replaces it",
                f"continue that run with `--resume {out}`, or write the new one elsewhere: --out {other}")
    return (f"--out {out} is not empty; a new run writes into a new or empty folder",
            f"write the run elsewhere, e.g. --out {other}")


def check_creatable(out: Path) -> None:
    """The nearest existing folder above `out` must be a writable folder, and not a run's."""
    above = out.absolute()
    while not os.path.lexists(above):
        above = above.parent
    if not above.is_dir():
        raise UsageError(f"--out {out} cannot be made: {above} is {what_is(above)}, not a folder")
    if not os.access(above, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out} cannot be made: {above} is not writable",
                         hint="choose a folder you can write to, e.g. --out runs/NAME")
    run = run_folder_of(out.absolute().parent)
    if run is not None:
        raise UsageError(f"--out {out} is in the folder of another run, {run}", hint="write the run elsewhere, e.g. "
                         f"--out runs/{out.name}")


# -- the claim: the folder is the run's alone from before it starts until it ends


@dataclass
class Claim:
    """A run folder claimed: its marker open and locked (`fd`; None where the process that started this one
    holds the claim, or where nothing was claimed: a process of a run other than the first)."""

    folder: Path
    fd: int | None = None
    made: bool = False  # the folder was made for the run
    token: str = ""  # written into the marker when the claim is handed on: what `train --nproc` gives its processes

    def release(self) -> None:
        """Ends the claim. A run that saved nothing leaves nothing: its marker goes, and its folder if made for it."""
        if self.fd is None:
            return
        try:
            if _only_marker(self.folder):
                (self.folder / RUN_MARKER).unlink(missing_ok=True)
                if self.made:
                    os.rmdir(self.folder)
        except OSError:
            pass  # (another run claimed the emptied folder meanwhile: it is that run's now)
        finally:
            os.close(self.fd)
            self.fd = None


@contextmanager
def claimed(folder: Path, resume: bool = False, named: bool = True, hand_on: bool = False) -> Iterator[Claim]:
    """The folder claimed (see `claim`) while the block runs."""
    held = claim(folder, resume, named, hand_on)
    try:
        yield held
    finally:
        held.release()


def claim(folder: Path, resume: bool = False, named: bool = True, hand_on: bool = False) -> Claim:
    """Claims the run folder for one run: refused (UsageError) where another run has it or holds something there.

    `resume`: the folder of an existing run, locked. `named` false: a default name, which takes -2, -3, ... when
    another run has made it first. `hand_on`: for processes this one starts (`train --nproc`), which find the
    claim's token in the marker and in CLAIM_ENV. Call `release` when the run ends.
    """
    folder = Path(folder)
    if _inherited(folder):
        return Claim(folder)
    held = _claim_run(folder) if resume else _claim_free(folder) if not named else _claim_named(folder)
    if hand_on and held.fd is not None:
        held.token = secrets.token_hex(16)
        os.ftruncate(held.fd, 0)
        os.lseek(held.fd, 0, os.SEEK_SET)
        os.write(held.fd, held.token.encode())
    return held


def _claim_named(folder: Path) -> Claim:
    made = _make(folder)
    if not made and not _only_marker(folder):  # refused without taking the lock (a --resume of it may want it)
        message, hint = _in_use(folder)
        raise UsageError(message, hint=hint)
    fd, created = _open_marker(folder)
    locked = _lock(fd)
    if not locked or not _only_marker(folder):
        if locked and created:  # a folder that holds something: the marker made for it goes again
            (folder / RUN_MARKER).unlink(missing_ok=True)
        os.close(fd)
        message, hint = _in_use(folder)
        raise UsageError(message, hint=hint)
    return Claim(folder, fd, made)


def _claim_free(base: Path) -> Claim:
    """The first of BASE, BASE-2, BASE-3... that this process makes (os.mkdir: one process alone makes a name)."""
    check_creatable(base)
    _make_above(base)
    for folder in numbered(base, folder=True):
        try:
            os.mkdir(folder)
        except FileExistsError:
            continue
        except OSError as e:
            raise CnnError(f"cannot make the run folder {folder}: {e.strerror or e}",
                           hint="choose a folder you can write to with --out") from None
        fd, _ = _open_marker(folder)
        if not _lock(fd):  # a run given this name with --out took it between the two calls: it is that run's
            os.close(fd)
            continue
        return Claim(folder, fd, True)
    raise AssertionError("unreachable")


def _claim_run(folder: Path) -> Claim:
    """The folder of a run to resume, locked: refused while another process trains it."""
    fd, _ = _open_marker(folder)
    if not _lock(fd):
        os.close(fd)
        raise UsageError(f"--resume {folder}: a `cnndsl train` is writing that run now",
                         hint="wait for it to finish (or stop it), then resume")
    return Claim(folder, fd, False)


def _make(folder: Path) -> bool:
    """Makes the folder (and those above it): True if this process made it, False if it was there already."""
    _make_above(folder)
    try:
        os.mkdir(folder)
        return True
    except FileExistsError:
        if not folder.is_dir():
            raise UsageError(f"--out {folder} is {what_is(folder)}, not a folder") from None
        return False
    except OSError as e:
        raise CnnError(f"cannot make the run folder {folder}: {e.strerror or e}",
                       hint="choose a folder you can write to with --out") from None


def _make_above(folder: Path) -> None:
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # (check_creatable said why, unless the folders changed since)
        raise CnnError(f"cannot make the run folder {folder}: {folder.parent}: {e.strerror or e}",
                       hint="choose a folder you can write to with --out") from None


def _open_marker(folder: Path) -> tuple[int, bool]:
    """The run's marker in `folder`, open for writing: (descriptor, whether this call made it)."""
    path = folder / RUN_MARKER
    flags = os.O_RDWR | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        try:
            fd, created = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o644), True
        except FileExistsError:
            fd, created = os.open(path, flags), False
    except OSError as e:
        raise CnnError(f"cannot claim the run folder {folder}: {path.name}: {e.strerror or e}",
                       hint=f"{path} is the file by which a run claims its folder; remove what is there") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise CnnError(f"cannot claim the run folder {folder}: {path} is not a file")
    return fd, created


def _lock(fd: int) -> bool:
    """An exclusive lock on the open marker, without waiting: False when another process holds it."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def _locked(marker: Path) -> bool:
    """Whether a process holds the lock of a run's marker (its run is going)."""
    if fcntl is None:
        return False
    try:
        fd = os.open(marker, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def _only_marker(folder: Path) -> bool:
    try:
        return set(os.listdir(folder)) <= {RUN_MARKER}
    except OSError:
        return False


def _inherited(folder: Path) -> bool:
    """Whether `train --nproc` claimed this folder for this process (the token it gave is the marker's)."""
    token = os.environ.get(CLAIM_ENV)
    if not token:
        return False
    try:
        return read_bytes(folder / RUN_MARKER, limit=4096) == token.encode()
    except CnnError:
        return False


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
