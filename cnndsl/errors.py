"""Errors and warnings that users see: each carries the place in the spec it is about."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, eq=False)
class Source:
    """A spec text and the name it is shown under (a path, or `<string>`)."""

    name: str
    text: str = field(repr=False)

    def line(self, n: int) -> str:
        lines = self.text.splitlines()
        return lines[n - 1] if 0 < n <= len(lines) else ""


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
        """`file:line:col: error: message`, the source line with a caret, the hint and notes."""
        where = f"{self.span}: " if self.span else ""
        out = [f"{where}{self.severity}: {self.message}"]
        if self.span:
            out += _excerpt(self.span)
        for text, span in self.notes:
            out.append(f"  note: {text}" + (f" ({span})" if span else ""))
        if self.hint:
            lines = self.hint.splitlines()
            out.append(f"  hint: {lines[0]}")
            out += [f"        {line}" for line in lines[1:]]
        return "\n".join(out)


def _excerpt(span: Span) -> list[str]:
    text = span.source.line(span.line).rstrip("\n").replace("\t", " ")
    if not text:
        return []
    num = str(span.line)
    pad = " " * len(num)
    width = 1
    if span.end_line == span.line and span.end_col > span.col:
        width = span.end_col - span.col
    return [f" {num} | {text}", f" {pad} | {' ' * (span.col - 1)}{'^' * width}"]


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

    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    if word.lower() in lowered:
        return f"did you mean `{lowered[word.lower()]}`?"
    cutoff = 0.5 if len(word) <= 3 else 0.6  # e2 → e1, but not every short name
    close = difflib.get_close_matches(word, choices, n=1, cutoff=cutoff)
    return f"did you mean `{close[0]}`?" if close else None
