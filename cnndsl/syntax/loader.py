"""Reads a spec and the files it `use`s: the standard library and relative paths, with cycle detection."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from cnndsl.errors import CnnError, Span, UsageError
from cnndsl.limits import Limits
from cnndsl.syntax import ast
from cnndsl.syntax.parser import parse

STD_DIR = Path(__file__).resolve().parent.parent / "std"


@dataclass
class Program:
    """Every definition reachable from the main file, by name; `main` lists the main file's own."""

    definitions: dict[str, ast.Definition] = field(default_factory=dict)
    main: list[ast.Definition] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def load_program(text: str, name: str = "<string>", origin: Path | None = None,
                 limits: Limits | None = None) -> Program:
    """Parses `text` and, recursively, what it uses.

    `origin` is the file the text came from: relative `use` paths start at its directory. The limits
    hold for the spec and its files together: `spec_bytes` of text and `layers` statements in all.
    """
    limits = limits or Limits()
    budget = _Budget(limits.spec_bytes, limits.layers, limits.spec_bytes)
    budget.spend(len(text), name, None)  # characters: the bytes, for a file just read
    program = Program()
    module = parse(text, name, budget.statements, limits.layers)
    budget.statements -= module.statements
    program.main = list(module.definitions)
    _add(program, module)
    _uses(program, module, origin or Path.cwd() / "<string>", budget, limits.layers)
    return program


@dataclass
class _Budget:
    """What the files still to be read may hold, in bytes and statements."""

    bytes: int
    statements: int
    limit: int  # bytes in all

    def spend(self, size: int, shown: str, span: Span | None) -> None:
        if size > self.bytes:
            raise CnnError(f"{shown} takes the spec past the limit of {self.limit:,} bytes"
                           + (" with the files it uses" if span else ""), span,
                           "raise the limit with --max-spec-size (or Limits(spec_bytes=...) in Python)")
        self.bytes -= size


def _uses(program: Program, module: ast.Module, origin: Path, budget: _Budget, layers: int) -> None:
    """Reads what `module` uses, depth first, with a stack of its own: a chain of a thousand files is
    a cycle error or a limit, never a RecursionError."""
    seen: set[Path] = set()
    path = [origin]  # the files being read, outermost first
    pending = [iter(module.uses)]
    while pending:
        use = next(pending[-1], None)
        if use is None:
            pending.pop()
            path.pop()
            continue
        target = _resolve(use, path[-1].parent)
        if target in path:
            files = [_shown(p) for p in [*path[path.index(target):], target]]
            chain = " → ".join(files if len(files) <= 6 else [*files[:3], f"({len(files) - 5} more)", *files[-2:]])
            raise CnnError(f"`use` cycle: {chain}", use.span, "a file may not use itself, directly or not")
        if target in seen:
            continue
        seen.add(target)
        shown = _shown(target)
        try:
            text = read_text(target, budget.limit, shown)
        except CnnError as e:
            raise CnnError(e.message, use.span, e.hint) from None
        budget.spend(len(text.encode("utf-8", "surrogatepass")), shown, use.span)
        child = parse(text, shown, budget.statements, layers)
        budget.statements -= child.statements
        program.files.append(shown)
        _add(program, child)
        path.append(target)
        pending.append(iter(child.uses))


def _resolve(use: ast.Use, base: Path) -> Path:
    if not use.path.isprintable() or not use.path.strip():
        raise CnnError("a `use` path is a file name, without control characters", use.span)
    name = use.path if use.path.endswith(".cnn") else use.path + ".cnn"
    if use.path.startswith("std/"):
        path = STD_DIR / name[len("std/"):]
        if not path.exists():
            known = ", ".join(f'"std/{p.stem}"' for p in sorted(STD_DIR.glob("*.cnn")))
            raise CnnError(f"no standard library file `{use.path}`", use.span, f"the standard library has {known}")
        return path.resolve()
    path = (base / name).resolve()
    if not path.exists():
        raise CnnError(f"cannot find `{use.path}` (looked for {path})", use.span,
                       "a relative `use` path starts at the directory of the file that uses it")
    return path


def _shown(path: Path) -> str:
    if path.is_relative_to(STD_DIR):
        return f"std/{path.relative_to(STD_DIR)}"
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _add(program: Program, module: ast.Module) -> None:
    for d in module.definitions:
        other = program.definitions.get(d.name)
        if other is not None and other is not d:
            raise CnnError(f"`{d.name}` is defined twice", d.span, "rename one of them",
                           label="defined again here").note("first defined here", other.span)
        program.definitions[d.name] = d


def read_spec(path: str | Path, limits: Limits | None = None) -> Program:
    """Loads a spec file; a missing file is a UsageError (the command line named it)."""
    limits = limits or Limits()
    p = Path(path)
    try:
        text = read_text(p, limits.spec_bytes, str(path))
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    return load_program(text, str(path), p.resolve(), limits)


def read_text(path: Path, limit: int, shown: str) -> str:
    """A spec file's text, refusing what is not a regular file or is larger than `limit` bytes.

    The file is opened without blocking and checked through its descriptor, so a FIFO, a device such
    as /dev/zero, or a link to one, is refused before a byte is read, and nothing reads past the limit.
    FileNotFoundError is left to the caller, which knows whether the user or a `use` named the file.
    """
    hint = "raise the limit with --max-spec-size (or Limits(spec_bytes=...) in Python)"
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as e:
        raise CnnError(f"cannot read {shown}: {getattr(e, 'strerror', None) or e}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise CnnError(f"cannot read {shown}: it is {_kind(info.st_mode)}, not a file",
                           hint="a spec is a text file ending in .cnn")
        if info.st_size > limit:
            raise CnnError(f"{shown} is {info.st_size:,} bytes, more than the limit of {limit:,}", hint=hint)
        f = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with f:
        data = f.read(limit + 1)  # the file may have grown since fstat
    if len(data) > limit:
        raise CnnError(f"{shown} is more than the limit of {limit:,} bytes", hint=hint)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise CnnError(f"{shown} is not UTF-8 text (byte {e.start:,}, line {line})",
                       hint="save the spec as UTF-8") from None


def _kind(mode: int) -> str:
    kinds = [(stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")]
    return next((name for test, name in kinds if test(mode)), "not a regular file")


__all__ = ["Program", "load_program", "read_spec", "read_text", "Span"]
