"""Files read without blocking or running anything, and written whole, never over what they must not replace:
what every part that reads or writes a user's files goes through.

Reading: `open_file` checks a path before it reads a byte (a regular file, not a FIFO, a device such as
/dev/zero, a socket, a folder or a link loop, within a size limit) and gives the open file to libraries that
take one (numpy, Pillow, torch, tarfile); `read_bytes` and `read_text` read such a file a megabyte at a time;
`torch_load` reads tensors with `weights_only=True`. Every file the tool reads comes through here: specs,
recipes, datasets and their caches, images, checkpoints and weights, a run's own files.

Writing: a file is written whole or not at all (beside its target under a name of its own, then renamed
over it); a default name never replaces a file (NAME-2, NAME-3... instead); `check_output` refuses an output
that is one of the command's inputs or lies in a run folder.
Part of the core: torch is imported only by `torch_load`, when it is called.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from cnndsl.errors import CnnError, UsageError

# -- reading


class Missing(CnnError, FileNotFoundError):
    """No file at the path: a CnnError that is also a FileNotFoundError, for callers that name the file their
    own way ("no such image: x.png")."""


CHUNK = 1 << 20


def open_file(path: str | Path, what: str | None = None, limit: int | None = None, expect: str | None = None,
              limit_hint: str | None = None) -> BinaryIO:
    """`path` open for reading (binary), when it is a regular file, or a link to one, of at most `limit` bytes.

    The path is checked before it is opened (a device is never opened: opening some has effects), opened
    without blocking and checked again through the descriptor (it may have changed in between), so that a
    FIFO, a device, a socket or a folder is refused before a byte is read and a link loop is a message.
    Messages read "cannot read WHAT: ..." (`what` defaults to the path); `expect` is their hint (what the
    file should be), `limit_hint` that of a file past the limit.
    """
    shown = what or str(path)
    try:
        _check_regular(os.stat(path).st_mode, shown, expect)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise Missing(f"cannot read {shown}: no such file") from None
    except (OSError, ValueError) as e:  # ValueError: a NUL in the name
        raise CnnError(f"cannot read {shown}: {reason(e)}") from None
    try:
        info = os.fstat(fd)
        _check_regular(info.st_mode, shown, expect)
        if limit is not None and info.st_size > limit:
            raise CnnError(f"{shown} is {info.st_size:,} bytes, more than the limit of {limit:,}", hint=limit_hint)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: str | Path, what: str | None = None, limit: int = 64 << 20, expect: str | None = None,
               limit_hint: str | None = None, text: bool = False) -> bytes:
    """The whole file, checked as `open_file` checks it and read a megabyte at a time, never past `limit`
    bytes (it may grow after it was checked). With `text`, a NUL byte refuses it at the first chunk that
    holds one: it is not text, however large the limit."""
    shown = what or str(path)
    with open_file(path, shown, limit, expect, limit_hint) as f:
        chunks, size = [], 0
        while size <= limit:
            chunk = f.read(min(CHUNK, limit + 1 - size))
            if not chunk:
                break
            if text and b"\0" in chunk:
                raise CnnError(f"{shown} is not a text file (a NUL byte at byte {size + chunk.index(0):,})",
                               hint=expect)
            chunks.append(chunk)
            size += len(chunk)
    if size > limit:
        raise CnnError(f"{shown} is more than the limit of {limit:,} bytes", hint=limit_hint)
    return b"".join(chunks)


def read_text(path: str | Path, limit: int, what: str | None = None, expect: str | None = None,
              limit_hint: str | None = None) -> str:
    """A UTF-8 text file's text (without a byte-order mark), read as `read_bytes` reads it."""
    data = read_bytes(path, what, limit, expect, limit_hint, text=True)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise CnnError(f"{what or path} is not UTF-8 text (byte {e.start:,}, line {line})", hint=expect) from None


def name_of(f: BinaryIO, path: str | Path) -> str:
    """A name that opens the very file `f` is (/dev/fd/N), for a library that takes only a name: it reads what
    open_file checked, not what the path names by then. The path itself where the system has no /dev/fd."""
    fd_name = f"/dev/fd/{f.fileno()}"
    return fd_name if os.path.exists(fd_name) else str(path)


def _check_regular(mode: int, shown: str, expect: str | None) -> None:
    if not stat.S_ISREG(mode):
        raise CnnError(f"cannot read {shown}: it is {kind(mode)}, not a file", hint=expect)


def kind(mode: int) -> str:
    """What a file that is not a regular file is, in words."""
    kinds = [(stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")]
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def what_is(path: Path) -> str:
    """What is at `path`, in words, for a message that says it is not what was wanted: "a file", "a pipe (FIFO)",
    "a symbolic link in a loop", "a link to nothing"..."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "a link to nothing" if os.path.islink(path) else "nothing"
    except OSError as e:
        return "a symbolic link in a loop" if e.errno == errno.ELOOP else f"unreadable ({reason(e)})"
    return "a file" if stat.S_ISREG(mode) else kind(mode)


def reason(error: OSError | ValueError) -> str:
    """Why a path cannot be opened, in words."""
    if isinstance(error, ValueError):
        return "its name holds a NUL byte"
    if error.errno == errno.ELOOP:
        return "its symbolic links form a loop"
    return error.strerror or str(error)


def torch_load(path: Path, what: str = "the file"):
    """`torch.load(weights_only=True)`: tensors and plain containers, never other objects, from a file
    `open_file` opened.

    PyTorch's own messages for refused files advise turning `weights_only` off, which would let the file
    run code: they are replaced by ours, which say what the file is instead. `what` reads "cannot read
    {what} PATH", e.g. "the checkpoint" or "weights from".
    """
    import pickle
    import warnings

    import torch

    path = Path(path)
    try:
        with open_file(path, f"{what} {path}") as f, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Detected pickle protocol 4 ...": noise for a user
            return torch.load(f, map_location="cpu", weights_only=True)
    except CnnError:
        raise
    except pickle.UnpicklingError as e:
        culprit = re.search(r"GLOBAL ([\w.]+)", str(e))
        if culprit:
            raise CnnError(f"cannot read {what} {path}: it holds a Python object ({culprit.group(1)}), not only "
                           "tensors", hint="cnndsl loads tensors and plain containers only, since other objects "
                           "could run code when unpickled; save the weights with torch.save(model.state_dict(), "
                           "PATH)") from None
        raise CnnError(f"cannot read {what} {path}: it is not a file of tensors written by torch.save",
                       hint="save the weights with torch.save(model.state_dict(), PATH), or as .safetensors"
                       ) from None
    except Exception as e:  # a truncated or corrupt archive, a foreign format: torch's first sentence
        raise CnnError(f"cannot read {what} {path}: it is damaged or not a PyTorch file ({_reason(e)})") from None


def _reason(error: Exception) -> str:
    """The first sentence of an error, without advice about weights_only."""
    first = str(error).strip().split("\n")[0]
    sentences = [s for s in re.split(r"(?<=\.) ", first) if "weights_only" not in s]
    return (sentences[0] if sentences else type(error).__name__).rstrip(".")


# -- writing


def atomic_write(path: Path, data: bytes, replace: bool = True) -> Path:
    """Writes `data` beside the target under a new name of its own, flushes it to disk, then renames it over
    the target (a rename is atomic): the file is whole or as it was, and a file written over keeps its
    permissions. With `replace` false the file is never
    written over anything: it takes the first free name of PATH, PATH-2, PATH-3..., claimed by a hard link
    (which fails where a name is taken, even by another process at the same moment). Returns the path written."""
    path = Path(path)
    try:
        with _temporary(path) as tmp:
            with open(tmp, "wb", opener=_no_follow) as f:  # (the name this process made, and no link put there)
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            if replace:
                with contextlib.suppress(FileNotFoundError):
                    os.chmod(tmp, os.stat(path).st_mode & 0o7777)
                os.replace(tmp, path)
                return path
            return _link_free(tmp, path)
    except OSError as e:  # a full disk, a folder made read-only or removed: the target is as it was
        raise CnnError(f"cannot write {path}: {e.strerror or e}",
                       hint="check the free space and that the folder exists and is writable") from None


def _no_follow(name: str, flags: int) -> int:
    return os.open(name, flags | getattr(os, "O_NOFOLLOW", 0))


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """A new empty file beside `path` for a library that writes to a name (onnx.save, torch.jit.save): it
    replaces `path` when the block ends without an error, and is removed otherwise."""
    with _temporary(Path(path)) as tmp:
        yield tmp
        os.replace(tmp, path)


@contextlib.contextmanager
def _temporary(path: Path) -> Iterator[Path]:
    """A new file beside `path`, made with O_EXCL under a random name (never a file or link already there, nor
    another writer's), removed unless it was renamed."""
    for _ in range(100):
        tmp = path.with_name(f".{path.name[:200]}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666))
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(errno.EEXIST, "no free temporary name", str(path))
    try:
        yield tmp
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def _link_free(tmp: Path, path: Path) -> Path:
    for candidate in numbered(path):
        try:
            os.link(tmp, candidate)
            return candidate
        except FileExistsError:
            continue
        except OSError:  # a file system without hard links: the first free name, renamed onto
            candidate = free_path(candidate)
            os.replace(tmp, candidate)
            return candidate
    raise AssertionError("unreachable")


def numbered(path: Path, folder: bool = False) -> Iterator[Path]:
    """`path`, then PATH-2, PATH-3...: a file's number goes before its suffix (`best-2.pt`), a folder's at
    the end (`resnet.v1-2`)."""
    yield path
    n = 2
    while True:
        yield path.with_name(f"{path.name}-{n}" if folder else f"{path.stem}-{n}{path.suffix}")
        n += 1


def free_path(path: Path) -> Path:
    """`path`, or PATH-2, PATH-3... (before the suffix): the first that nothing holds, not even a dangling link."""
    return next(c for c in numbered(Path(path)) if not (c.exists() or c.is_symlink()))


# -- what an output may not be: an input of the command, or a file in a run folder

RUN_MARKER = ".cnndsl-run"  # the file by which a run claims its folder (training/runs.py)


def is_run_folder(folder: Path) -> bool:
    """A run's folder: it holds the marker of a run, or (a run from before the marker) last.pt and metrics.csv,
    which every run writes from its first epoch."""
    try:
        return (folder / RUN_MARKER).exists() or ((folder / "last.pt").exists() and (folder / "metrics.csv").exists())
    except OSError:
        return False


def run_folder_of(path: Path) -> Path | None:
    """The run folder that `path` (a folder) is, or lies in, with links followed; None if none."""
    folder = Path(os.path.realpath(path))
    for candidate in (folder, *folder.parents):
        if is_run_folder(candidate):
            return candidate
    return None


def check_output(target: Path, inputs: Iterable[tuple[Path, str]] = (), flag: str = "-o") -> None:
    """Refuses, before any work, a file to write that would replace what it must not: one of the command's
    `inputs` ((path, what it is) pairs: the spec, the files it uses, the weights), something that is not a
    file (a folder, a FIFO, a device), or anything in a run folder (only `train --resume` adds to a run).
    The refusal is a UsageError, which names `flag`."""
    target = Path(target)
    shown = f"{flag} {target}"
    mode = _mode(target, shown)
    if mode is not None and stat.S_ISDIR(mode):
        raise UsageError(f"{shown} is a folder", hint=f"name a file in it, e.g. {flag} {target / 'NAME'}")
    if mode is not None and not stat.S_ISREG(mode):
        raise UsageError(f"{shown} is {kind(mode)}, not a file", hint="name a file to write")
    folder = target.parent
    if not folder.is_dir():
        what = "is a file" if folder.exists() else "does not exist"
        raise UsageError(f"{shown}: the folder {folder} {what}", hint="create the folder first, or write the file "
                         "elsewhere")
    for path, what in inputs:
        if mode is not None and same_file(target, path):
            raise UsageError(f"{shown} is {what}, which this command reads; writing there would replace it",
                             hint="name another file to write")
    run = run_folder_of(folder)
    if run is not None:
        raise UsageError(f"{shown} is in the run folder {run}, which holds what its training wrote; no other "
                         "command writes there", hint=f"write it elsewhere, e.g. {flag} {target.name}")


def check_output_folder(folder: Path, own_run: Path | None = None, flag: str = "--out") -> None:
    """Refuses a folder to write new files into that is, or lies in, a run folder other than `own_run` (the run
    whose pictures they are: `show` adds them to its own run, never over a file)."""
    run = run_folder_of(folder)
    if run is not None and (own_run is None or not same_file(run, own_run)):
        raise UsageError(f"{flag} {folder} is in the run folder {run}, which holds what its training wrote",
                         hint=f"write into the folder of the run the pictures are of, or elsewhere: {flag} DIR")


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (links followed, hard links too); False where either cannot be read."""
    try:
        first, second = os.stat(a), os.stat(b)
    except (OSError, ValueError):
        return False
    return (first.st_dev, first.st_ino) == (second.st_dev, second.st_ino)


def _mode(path: Path, shown: str) -> int | None:
    """The mode of what `path` names (links followed), None when nothing (or a dangling link) is there."""
    try:
        return os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):  # (a file where a folder of the path should be: said after)
        return None
    except (OSError, ValueError) as e:
        raise UsageError(f"{shown}: {reason(e)}", hint="name a file to write") from None
