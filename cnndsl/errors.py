"""Errors and warnings that users see: each carries the place in the spec it is about."""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True, eq=False)
class Source:
    """A spec text and the name it is shown under (a path, or `<string>`)."""

    name: str
    text: str = field(repr=False)

    def line(self, n: int) -> str:
        """Line n as the lexer counts lines: only `\n` ends one (not `\u2028` or a form feed)."""
        lines = self.text.split("\n")
        return lines[n - 1].rstrip("\r") if 0 < n <= len(lines) else ""


@dataclass(frozen=True)
class Span:
    """Where a node of the spec starts and ends (1-based lines and columns)."""

    source: Source
    line: int
    col: int
    end_line: int = 0
    end_col: int = 0

    def __str__(self) -> str:
        return f"{self.source.name}:{self.line}:{self.col}"

    def __repr__(self) -> str:
        return f"Span({self})"


@dataclass
class Diagnostic:
    message: str
    span: Span | None = None
    hint: str | None = None
    notes: list[tuple[str, Span | None]] = field(default_factory=list)
    severity: str = "error"

    def render(self) -> str:
        """`file:line:col: error: message`, the source line with a caret, the hint and notes.

        User text quoted anywhere in it is shortened (`clip`), so a 10 MB token prints as a line.
        """
        where = f"{_printable(str(self.span))}: " if self.span else ""  # a path: whole, to be clickable
        out = [f"{where}{self.severity}: {clip(self.message)}"]
        if self.span:
            out += _excerpt(self.span)
        notes = self.notes
        if len(notes) > MAX_NOTES:  # a chain of 60 block calls: its two ends tell where
            notes = [*notes[:MAX_NOTES - 2], (f"... {len(notes) - MAX_NOTES + 1} more", None), notes[-1]]
        for text, span in notes:
            out.append(f"  note: {clip(text)}" + (f" ({_printable(str(span))})" if span else ""))
        if self.hint:
            lines = clip(self.hint).splitlines()
            out.append(f"  hint: {lines[0]}")
            out += [f"        {line}" for line in lines[1:]]
        return "\n".join(out)


LONG_WORD = 200  # words longer than this (a 10 MB name, a digit string) are shortened in messages
EXCERPT = 100  # columns of a source line shown around the caret
MAX_NOTES = 6


def clip(text: str) -> str:
    """The text with every run of more than LONG_WORD non-blank characters shortened.

    Control characters (a terminal's escape sequences among them) are shown as `?`.
    """
    return _printable(re.sub(rf"\S{{{LONG_WORD + 1},}}", _shorten, text))


def _printable(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == "\n" else " " if c == "\t" else "?" for c in text)


def _shorten(m: re.Match) -> str:
    word = m.group()
    return f"{word[:40]}…({len(word):,} characters)"


def _excerpt(span: Span) -> list[str]:
    text = span.source.line(span.line).rstrip("\n").replace("\t", " ")
    if not text:
        return []
    num = str(span.line)
    pad = " " * len(num)
    width = 1
    if span.end_line == span.line and span.end_col > span.col:
        width = span.end_col - span.col
    start = max(0, span.col - 1 - EXCERPT // 2)  # a long line is shown around the caret
    shown = text[start:start + EXCERPT]
    if start:
        shown = "…" + shown[1:]
    if start + EXCERPT < len(text):
        shown = shown[:-1] + "…"
    width = max(1, min(width, EXCERPT - (span.col - 1 - start)))
    return [f" {num} | {_printable(shown)}", f" {pad} | {' ' * (span.col - 1 - start)}{'^' * width}"]


class CnnError(Exception):
    """Every user-facing failure: a wrong spec, a bad argument, data that cannot be used."""

    def __init__(self, message: str, span: Span | None = None, hint: str | None = None):
        super().__init__(message)
        self.diagnostic = Diagnostic(message, span, hint)

    @property
    def message(self) -> str:
        return self.diagnostic.message

    @property
    def span(self) -> Span | None:
        return self.diagnostic.span

    @property
    def hint(self) -> str | None:
        return self.diagnostic.hint

    def note(self, text: str, span: Span | None = None) -> CnnError:
        self.diagnostic.notes.append((text, span))
        return self

    def render(self) -> str:
        return self.diagnostic.render()

    def __str__(self) -> str:
        return self.render()


class SpecSyntaxError(CnnError):
    """The text does not follow the grammar."""


class ShapeError(CnnError):
    """Shapes do not fit: a kernel larger than its input, merges of unequal shapes..."""


class UsageError(CnnError):
    """The command line or API call is wrong (exit code 2)."""


def did_you_mean(word: str, choices) -> str | None:
    """A hint naming the closest of `choices`, as rustc and Elm do."""
    import difflib

    if len(word) > 64:  # no name is that long; and difflib is quadratic
        return None
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    if word.lower() in lowered:
        return f"did you mean `{lowered[word.lower()]}`?"
    cutoff = 0.5 if len(word) <= 3 else 0.6  # e2 → e1, but not every short name
    close = difflib.get_close_matches(word, choices, n=1, cutoff=cutoff)
    return f"did you mean `{close[0]}`?" if close else None
