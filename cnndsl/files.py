"""Files written safely and read without running anything: what every part that writes or reads a user's
files goes through (checkpoints, metrics, pictures, pages, generated source).

A file is written whole or not at all (beside its target, then renamed over it); a default name never
replaces a file (NAME-2, NAME-3... instead); a file of tensors is read with `weights_only=True`.
Part of the core: torch is imported only by `torch_load`, when it is called.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

from cnndsl.errors import CnnError


def atomic_write(path: Path, data: bytes) -> None:
    """Writes beside the target, flushes to disk, then renames over it (a rename is atomic): a reader sees the
    old content or the new, never half of one. A file written over keeps its permissions."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # the process's own: two writers never share one
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, os.stat(path).st_mode & 0o7777)
        os.replace(tmp, path)
    except OSError as e:  # a full disk, a folder made read-only or removed: the target is as it was
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise CnnError(f"cannot write {path}: {e.strerror or e}",
                       hint="check the free space and that the folder exists and is writable") from None


def free_path(path: Path) -> Path:
    """`path`, or PATH-2, PATH-3... (before the suffix): the first that nothing holds, not even a dangling link."""
    path = Path(path)
    candidate, n = path, 2
    while candidate.exists() or candidate.is_symlink():
        candidate, n = path.with_name(f"{path.stem}-{n}{path.suffix}"), n + 1
    return candidate


def torch_load(path: Path, what: str = "the file"):
    """`torch.load(weights_only=True)`: tensors and plain containers, never other objects.

    PyTorch's own messages for refused files advise turning `weights_only` off, which would let the file
    run code: they are replaced by ours, which say what the file is instead. `what` reads "cannot read
    {what} PATH", e.g. "the checkpoint" or "weights from".
    """
    import pickle
    import warnings

    import torch

    path = Path(path)
    if not path.is_file():
        why = "it is a folder" if path.is_dir() else "not a regular file" if path.exists() else "no such file"
        raise CnnError(f"cannot read {what} {path}: {why}")
    try:
        with warnings.catch_warnings():  # "Detected pickle protocol 4 ...": noise for a user
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
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
