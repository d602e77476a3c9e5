"""Reads a spec and the files it `use`s: the standard library and relative paths, with cycle detection.

`load_tolerant` reads as much as it can and lists what is wrong (syntax errors, files that cannot be
used, names defined twice) file by file; `load_program` raises them.
"""

from __future__ import annotations

import functools
import posixpath
from dataclasses import dataclass, field
from pathlib import Path

from cnndsl import files
from cnndsl.errors import CnnError, Span, UsageError, raise_all
from cnndsl.limits import Limits
from cnndsl.syntax import ast
from cnndsl.syntax.parser import Parsed, parse_tolerant

STD_DIR = Path(__file__).resolve().parent.parent / "std"


@dataclass
class Program:
    """Every definition reachable from the main file, by name; `main` lists the main file's own.

    `text` is the main file's text and `sources` the text of each relative file it uses (directly or
    not), by its name relative to the main file's folder (`blocks.cnn`, `lib/stem.cnn`, `../x.cnn`):
    with them a checkpoint rebuilds the network without the files (`load_program(..., files=sources)`).
    Standard library files come from the package and are not in `sources`.
    """

    definitions: dict[str, ast.Definition] = field(default_factory=dict)
    main: list[ast.Definition] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    text: str = ""
    sources: dict[str, str] = field(default_factory=dict)
    name: str = "<string>"  # the main file's, as its spans show it

    def in_source_order(self, errors: list[CnnError]) -> list[CnnError]:
        """Errors file by file, the main file first and the others in the order read; then by line and column."""
        rank = {name: i for i, name in enumerate([self.name, *self.files])}

        def place(e: CnnError) -> tuple:
            span = e.span
            return (-1, 0, 0) if span is None else (rank.get(span.source.name, len(rank)), span.line, span.col)

        return sorted(errors, key=place)


@dataclass
class Loaded:
    """A program read as far as it could be, and what stopped it: syntax errors, files that cannot be used,
    names defined twice. `parsed` are the files' parses, which know where a syntax error broke a statement."""

    program: Program
    errors: list[CnnError] = field(default_factory=list)
    parsed: list[Parsed] = field(default_factory=list)

    def is_damaged(self, span: Span | None) -> bool:
        """Whether `span` lies in a statement that a syntax error broke: an error there follows from it."""
        return span is not None and any(p.source is span.source and p.is_damaged(span) for p in self.parsed)


def load_program(text: str, name: str = "<string>", origin: Path | None = None,
                 limits: Limits | None = None, files: dict[str, str] | None = None) -> Program:
    """Parses `text` and, recursively, what it uses; raises every error found (CnnErrors for several).

    `origin` is the file the text came from: relative `use` paths start at its directory. With `files`
    ({name: text}, as `Program.sources` gives them) relative `use`s are looked up there and nothing but the
    standard library is read from disk: the names are only names, never paths to open. The limits
    hold for the spec and its files together: `spec_bytes` of text and `layers` statements in all.
    """
    loaded = load_tolerant(text, name, origin, limits, files)
    raise_all(loaded.errors)
    return loaded.program


def load_tolerant(text: str, name: str = "<string>", origin: Path | None = None,
                  limits: Limits | None = None, files: dict[str, str] | None = None) -> Loaded:
    """`load_program` without raising: the program as far as it could be read, and its errors."""
    limits = limits or Limits()
    budget = _Budget(limits.spec_bytes, limits.layers, limits.spec_bytes)
    loaded = Loaded(Program(text=text, name=name))
    try:
        budget.spend(len(text), name, None)  # characters: the bytes, for a file just read
    except CnnError as e:
        loaded.errors.append(e)
        return loaded
    parsed = parse_tolerant(text, name, budget.statements, limits.layers)
    _parsed(loaded, parsed, budget)
    loaded.program.main = list(parsed.module.definitions)
    main = _File("", None if files is not None else origin or Path.cwd() / "<string>")
    _uses(loaded, parsed.module, main, budget, limits.layers, files)
    return loaded


def _parsed(loaded: Loaded, parsed: Parsed, budget: _Budget) -> None:
    budget.statements -= parsed.module.statements
    loaded.parsed.append(parsed)
    loaded.errors += parsed.errors
    _add(loaded, parsed.module)


@dataclass(frozen=True)
class _File:
    key: str  # its name relative to the main file's folder (what Program.sources keeps), or std/NAME.cnn
    path: Path | None  # where it is on disk; None for a text given in memory

    @property
    def identity(self):
        return self.path if self.path is not None else self.key


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


def _uses(loaded: Loaded, module: ast.Module, origin: _File, budget: _Budget, layers: int,
          files: dict[str, str] | None) -> None:
    """Reads what `module` uses, depth first, with a stack of its own: a chain of a thousand files is
    a cycle error or a limit, never a RecursionError. A `use` that cannot be read is an error, and the
    others are read all the same; past the size limit, nothing more is read."""
    program = loaded.program
    seen: dict[object, str] = {}  # each file read, by identity: its text
    path = [origin]  # the files being read, outermost first
    pending = [iter(module.uses)]
    while pending:
        use = next(pending[-1], None)
        if use is None:
            pending.pop()
            path.pop()
            continue
        if not use.path:  # a placeholder of the parser's recovery: its syntax error says what is wrong
            continue
        try:
            target = _resolve(use, path[-1], files is not None)
            identities = [f.identity for f in path]
            if target.identity in identities:
                chain_files = [*path[identities.index(target.identity):], target]
                files_shown = [_shown(f) for f in chain_files]
                chain = " → ".join(files_shown if len(files_shown) <= 6
                                   else [*files_shown[:3], f"({len(files_shown) - 5} more)", *files_shown[-2:]])
                raise CnnError(f"`use` cycle: {chain}", use.span, "a file may not use itself, directly or not")
            if target.identity in seen:
                _keep(program, target, seen[target.identity])  # the same file by another name: both names kept
                continue
            shown = _shown(target)
            text = _text(target, use, files, budget.limit, shown)
        except CnnError as e:
            loaded.errors.append(e)
            continue
        seen[target.identity] = text
        try:
            budget.spend(len(text.encode("utf-8", "surrogatepass")), shown, use.span)
        except CnnError as e:
            loaded.errors.append(e)
            return
        child = _parse_used(text, shown, budget.statements, layers)
        program.files.append(shown)
        _keep(program, target, text)
        _parsed(loaded, child, budget)
        path.append(target)
        pending.append(iter(child.module.uses))


def _parse_used(text: str, shown: str, statements: int, limit: int) -> Parsed:
    """A used file's parse: the same file (a standard library file above all) is parsed once a process, for an
    editor that checks its spec at every keystroke. Parses are never changed after they are made, and one made
    with the whole limit is the same as one with what is left of it when the file has no more statements."""
    parsed = _parse_whole(text, shown, limit)
    if parsed.module.statements > statements:
        return parse_tolerant(text, shown, statements, limit)  # past what is left: the limit's error is its own
    return parsed


@functools.lru_cache(maxsize=64)
def _parse_whole(text: str, shown: str, limit: int) -> Parsed:
    return parse_tolerant(text, shown, limit, limit)


def _keep(program: Program, target: _File, text: str) -> None:
    if not target.key.startswith("std/"):
        program.sources[target.key] = text


def _text(target: _File, use: ast.Use, files: dict[str, str] | None, limit: int, shown: str) -> str:
    """The text of a used file: read from disk (with read_text's checks), or one of the texts given."""
    if target.path is None:
        text = files.get(target.key) if files else None
        if not isinstance(text, str):
            raise CnnError(f"`{use.path}` is not among the files saved with the spec (it has "
                           f"{', '.join(sorted(map(str, files or {}))[:5]) or 'none'})", use.span,
                           "give the spec file itself, with the files it uses beside it")
        if len(text.encode("utf-8", "surrogatepass")) > limit:
            raise CnnError(f"{shown} is more than the limit of {limit:,} bytes", use.span,
                           "raise the limit with --max-spec-size (or Limits(spec_bytes=...) in Python)")
        return text
    try:
        return read_text(target.path, limit, shown)
    except CnnError as e:
        raise CnnError(e.message, use.span, e.hint) from None


def _resolve(use: ast.Use, parent: _File, in_memory: bool) -> _File:
    if not use.path.isprintable() or not use.path.strip():
        raise CnnError("a `use` path is a file name, without control characters", use.span)
    name = use.path if use.path.endswith(".cnn") else use.path + ".cnn"
    from_std = parent.key.startswith("std/")  # a standard file's relative `use` names another standard file
    if use.path.startswith("std/") or (in_memory and from_std):
        path = _real(STD_DIR / name[len("std/"):] if use.path.startswith("std/") else parent.path.parent / name,
                     use)
        if not path.is_relative_to(STD_DIR) or not path.is_file():  # `std/../x` is not in the library
            known = ", ".join(f'"std/{p.stem}"' for p in sorted(STD_DIR.glob("*.cnn")))
            raise CnnError(f"no standard library file `{use.path}`", use.span, f"the standard library has {known}")
        return _File(f"std/{path.relative_to(STD_DIR).as_posix()}", path)
    key = posixpath.normpath(posixpath.join(posixpath.dirname(parent.key), name))
    if in_memory:
        return _File(key, None)
    path = _real(parent.path.parent / name, use)
    if not path.exists():
        raise CnnError(f"cannot find `{use.path}` (looked for {path})", use.span,
                       "a relative `use` path starts at the directory of the file that uses it")
    return _File(key, path)


def _real(path: Path, use: ast.Use) -> Path:
    """The path with its links followed; a link that leads back to itself is the `use`'s error."""
    try:
        return path.resolve()
    except (OSError, RuntimeError) as e:  # RuntimeError: Python before 3.13 on a link loop
        raise CnnError(f"cannot read `{use.path}`: {getattr(e, 'strerror', None) or 'its symbolic links form a loop'}",
                       use.span, "a `use` path names a spec file, or a link that leads to one") from None


def _shown(file: _File) -> str:
    if file.path is None:
        return file.key
    path = file.path
    if path.is_relative_to(STD_DIR):
        return f"std/{path.relative_to(STD_DIR)}"
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _add(loaded: Loaded, module: ast.Module) -> None:
    program = loaded.program
    for d in module.definitions:
        if not d.name:  # a placeholder of the parser's recovery
            continue
        other = program.definitions.get(d.name)
        if other is not None and other is not d:
            loaded.errors.append(CnnError(f"`{d.name}` is defined twice", d.span, "rename one of them",
                                          label="defined again here").note("first defined here", other.span))
            continue
        program.definitions[d.name] = d


def read_spec(path: str | Path, limits: Limits | None = None) -> Program:
    """Loads a spec file; a missing file is a UsageError (the command line named it)."""
    limits = limits or Limits()
    p = Path(path)
    try:
        text = read_text(p, limits.spec_bytes, str(path))
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    return load_program(text, str(path), p.resolve(), limits)  # read: so no link loop


def read_text(path: Path, limit: int, shown: str) -> str:
    """A spec file's text, read with files.read_text's checks (a regular file, within `limit` bytes, UTF-8 without
    NUL bytes). A missing file is files.Missing, a FileNotFoundError: the caller knows whether the user or a `use`
    named it."""
    return files.read_text(path, limit, shown, "a spec is a UTF-8 text file ending in .cnn",
                           "raise the limit with --max-spec-size (or Limits(spec_bytes=...) in Python)")


__all__ = ["Loaded", "Program", "load_program", "load_tolerant", "read_spec", "read_text", "Span"]
