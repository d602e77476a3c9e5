"""Reads a spec and the files it `use`s: the standard library and relative paths, with cycle detection."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cnndsl.errors import CnnError, Span, UsageError
from cnndsl.syntax import ast
from cnndsl.syntax.parser import parse

STD_DIR = Path(__file__).resolve().parent.parent / "std"


@dataclass
class Program:
    """Every definition reachable from the main file, by name; `main` lists the main file's own."""

    definitions: dict[str, ast.Definition] = field(default_factory=dict)
    main: list[ast.Definition] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def load_program(text: str, name: str = "<string>", origin: Path | None = None) -> Program:
    """Parses `text` and, recursively, what it uses.

    `origin` is the file the text came from: relative `use` paths start at its directory.
    """
    program = Program()
    module = parse(text, name)
    program.main = list(module.definitions)
    _add(program, module)
    base = origin.parent if origin else Path.cwd()
    _uses(program, module, base, [str(origin) if origin else name], set())
    return program


def _uses(program: Program, module: ast.Module, base: Path, stack: list[str], seen: set[Path]) -> None:
    for use in module.uses:
        path = _resolve(use, base)
        if str(path) in stack:
            chain = " → ".join(_shown(Path(p)) for p in [*stack[stack.index(str(path)):], str(path)])
            raise CnnError(f"`use` cycle: {chain}", use.span, "a file may not use itself, directly or not")
        if path in seen:
            continue
        seen.add(path)
        shown = _shown(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise CnnError(f"cannot read {shown}: {e}", use.span) from None
        child = parse(text, shown)
        program.files.append(shown)
        _add(program, child)
        _uses(program, child, path.parent, [*stack, str(path)], seen)


def _resolve(use: ast.Use, base: Path) -> Path:
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
            raise CnnError(f"`{d.name}` is defined twice", d.span,
                           "rename one of them").note("first defined here", other.span)
        program.definitions[d.name] = d


def read_spec(path: str | Path) -> Program:
    """Loads a spec file; a missing file is a UsageError (the command line named it)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"no such file: {p}") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise CnnError(f"cannot read {p}: {e}") from None
    return load_program(text, str(path), p.resolve())


__all__ = ["Program", "load_program", "read_spec", "Span"]
