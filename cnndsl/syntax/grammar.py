"""grammars/cnn.lark made into Lark's LALR parser, through Lark's public API, with the analysis cached.

Lark analyses a grammar at every start (about a third of a second here) unless it is given a cache
file (`Lark(..., cache=PATH)`), which is a pickle: loading one that another user wrote would run their
code. So the cache is the user's own: a file in `$XDG_CACHE_HOME/cnndsl/` (default `~/.cache/cnndsl/`),
a folder made private (0700), named by a hash of everything the analysis depends on (the grammar's
text, Lark's version, the options, Python's version). A file there that is not the user's, or that
others may write, is removed, never loaded. Lark reads and writes the file itself, and names the path
it was given inside it, so it cannot be written elsewhere and renamed into place: instead each process
holds the folder's lock (`flock`) while Lark reads or writes it, so none ever reads half a file. Any
failure to lock, read or write only means the grammar is analysed again, never an error.
"""

from __future__ import annotations

import hashlib
import os
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

GRAMMAR_PLACES = (
    Path(__file__).resolve().parent.parent / "grammars" / "cnn.lark",  # installed wheel
    Path(__file__).resolve().parents[2] / "grammars" / "cnn.lark",  # source tree
)
OPTIONS = dict(parser="lalr", lexer="basic", maybe_placeholders=True)


def grammar() -> str:
    return next((p for p in GRAMMAR_PLACES if p.exists()), GRAMMAR_PLACES[-1]).read_text()


def make_lark(transformer):
    """Lark's parser for the grammar, whose reductions call `transformer`'s methods (the AST builder)."""
    from lark import Lark

    text = grammar()
    path = cache_path(text)
    if path is not None:
        try:
            with _locked(path.parent):
                if (path.exists() or path.is_symlink()) and not _trusted(path):
                    path.unlink()  # someone else's, or others may write it: never loaded, made anew
                return Lark(text, **OPTIONS, transformer=transformer, cache=str(path))
        except OSError:
            pass
    return Lark(text, **OPTIONS, transformer=transformer)


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """The cache folder's lock, held while Lark reads or writes a file in it (OSError where there is none)."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock, no cache
        raise OSError("no file locks here") from None
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def cache_folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or ""
    return (Path(base) if os.path.isabs(base) else Path.home() / ".cache") / "cnndsl"


def cache_path(text: str) -> Path | None:
    """The cache file for this grammar, Lark and Python, in a folder only the user can write; None where
    there is no such folder (an unwritable home, a folder someone else owns)."""
    import lark

    key = "\0".join([text, lark.__version__, repr(sorted(OPTIONS.items())), sys.version])
    name = f"grammar-{hashlib.sha256(key.encode()).hexdigest()[:32]}.lark"
    try:
        folder = cache_folder()
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = folder.stat()
    except (OSError, RuntimeError):  # RuntimeError: no home directory
        return None
    if not _private(info) or not stat.S_ISDIR(info.st_mode):
        return None
    return folder / name


def _trusted(path: Path) -> bool:
    """A regular file of this user's that no one else may write (a link is not followed)."""
    try:
        info = path.lstat()
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and _private(info)


def _private(info: os.stat_result) -> bool:
    mine = not hasattr(os, "getuid") or info.st_uid == os.getuid()
    return mine and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
