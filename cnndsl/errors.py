"""Errors and warnings that users see: each carries the place in the spec it is about."""

from __future__ import annotations

import bisect
import functools
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

    @functools.cached_property
    def _starts(self) -> list[int]:
        """Where each line starts in the text: made once, so that many places cost no scan of the text each."""
        return [0, *(i + 1 for i, ch in enumerate(self.text) if ch == "\n")]

    def offset(self, line: int, col: int) -> int:
        """The index in the text of line:col (1-based)."""
        starts = self._starts
        if line > len(starts):
            return len(self.text)
        return min(starts[max(line, 1) - 1] + max(col, 1) - 1, len(self.text))

    def position(self, offset: int) -> tuple[int, int]:
        """The line and column (1-based) of an index in the text."""
        line = bisect.bisect_right(self._starts, offset)
        return line, offset - self._starts[line - 1] + 1


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
    label: str | None = None  # written after the primary span's carets

    def as_dict(self) -> dict:
        """The diagnostic as JSON data (`check --json`, an editor): place, message, hint, severity, notes."""
        return {**_place(self.span), "message": self.message, "hint": self.hint, "severity": self.severity,
                "notes": [{"message": text, **_place(span)} for text, span in self.notes]}

    def render(self) -> str:
        """`file:line:col: error: message`, the source with the span underlined, the notes and the hint.

        As rustc does, the primary span is underlined with `^` (and its label, if any), and each note
        that has a span is drawn in the source too, underlined with `-` and labelled with its text; a
        span over several lines is underlined on each (MAX_SPAN_LINES at most). Notes in another file
        get a `--> file:line:col` line. User text quoted anywhere is shortened (`clip`).
        """
        where = f"{printable(str(self.span), False)}: " if self.span else ""  # a path: whole, to be clickable
        out = [f"{where}{self.severity}: {clip(self.message)}"]
        notes = self.notes
        if len(notes) > MAX_NOTES:  # a chain of 60 block calls: its two ends tell where
            notes = [*notes[:MAX_NOTES - 2], (f"... {len(notes) - MAX_NOTES + 1} more", None), notes[-1]]
        marks = _marks(self.span, "^", self.label, True) if self.span else []
        for text, span in notes:
            if span is not None:
                marks += _marks(span, "-", text, False)
        out += _snippets(marks, self.span.source if self.span else None)
        out += [f"  note: {clip(text)}" for text, span in notes if span is None]
        if self.hint:
            lines = clip(self.hint).splitlines()
            out.append(f"  hint: {lines[0]}")
            out += [f"        {line}" for line in lines[1:]]
        return "\n".join(out)


def _place(span: Span | None) -> dict:
    if span is None:
        return {"file": None, "line": None, "column": None, "end_line": None, "end_column": None}
    return {"file": span.source.name, "line": span.line, "column": span.col, "end_line": span.end_line or span.line,
            "end_column": span.end_col or span.col}


LONG_WORD = 200  # words longer than this (a 10 MB name, a digit string) are shortened in messages
EXCERPT = 100  # columns of a source line shown around the caret
MAX_NOTES = 6
MAX_SPAN_LINES = 4  # lines of a long span underlined: the first ones and the last
MAX_ERRORS = 20  # errors shown of a spec with more; the others are counted


def clip(text: str) -> str:
    """The text with every run of more than LONG_WORD non-blank characters shortened.

    Control characters (a terminal's escape sequences among them) are shown as `?`.
    """
    return printable(re.sub(rf"\S{{{LONG_WORD + 1},}}", _shorten, text))


def printable(text: str, newlines: bool = True) -> str:
    """The text with control characters shown as `?` (a tab as a blank; a newline kept unless `newlines` is
    false): user text (file names, spec strings, class names) never reaches a terminal as escape sequences
    that set its title, clear it, hide lines or write the clipboard."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or (c == "\n" and newlines) else " " if c == "\t" else "?" for c in text)


def _shorten(m: re.Match) -> str:
    word = m.group()
    return f"{word[:40]}…({len(word):,} characters)"


@dataclass
class _Mark:
    """An underline on one source line: columns [col, end) (1-based), `^` or `-`, and its label."""

    source: Source
    line: int
    col: int
    end: int
    char: str
    label: str | None
    primary: bool


def _marks(span: Span, char: str, label: str | None, primary: bool) -> list[_Mark]:
    """The underlines of a span: one on each of its lines, the label on the last."""
    if span.end_line in (0, span.line):
        end = span.end_col if span.end_line == span.line and span.end_col > span.col else span.col + 1
        return [_Mark(span.source, span.line, span.col, end, char, label, primary)]
    lines = list(range(span.line, span.end_line + 1))
    if len(lines) > MAX_SPAN_LINES:
        lines = [*lines[:MAX_SPAN_LINES - 1], lines[-1]]
    marks = []
    for n in lines:
        text = span.source.line(n)
        first = span.col if n == span.line else len(text) - len(text.lstrip()) + 1
        last = span.end_col if n == span.end_line else len(text.rstrip()) + 1
        if last > first:
            marks.append(_Mark(span.source, n, first, last, char, None, primary))
    if marks:
        marks[-1].label = label
    return marks


def _snippets(marks: list[_Mark], main: Source | None) -> list[str]:
    """The source lines the marks are on, file by file (the primary's first), in line order."""
    sources = list(dict.fromkeys([*([main] if main else []), *(m.source for m in marks)]))
    out = []
    for source in sources:
        mine = sorted((m for m in marks if m.source is source), key=lambda m: (m.line, m.col))
        lines = [n for n in dict.fromkeys(m.line for m in mine) if source.line(n).strip()]
        if not lines:
            continue
        if source is not main:
            first = mine[0]
            out.append(f"  --> {printable(source.name, False)}:{first.line}:{first.col}")
        width = len(str(max(lines)))
        for i, n in enumerate(lines):
            if i and n > lines[i - 1] + 1:
                out.append(" " + "...".rjust(width))
            out += _line(source, n, [m for m in mine if m.line == n], width)
    return out


def _line(source: Source, n: int, marks: list[_Mark], width: int) -> list[str]:
    """One source line, its underlines and their labels: the last one's after it, the others hanging."""
    text = source.line(n).rstrip("\n").replace("\t", " ")
    anchor = next((m for m in marks if m.primary), marks[0])
    start = max(0, anchor.col - 1 - EXCERPT // 2)  # a long line is shown around the caret
    shown = text[start:start + EXCERPT]
    if start:
        shown = "…" + shown[1:]
    if start + EXCERPT < len(text):
        shown = shown[:-1] + "…"
    cols = []  # (first, last) columns in the shown text, for each mark that can be seen
    for m in marks:
        a, b = m.col - 1 - start, min(m.end - 1 - start, EXCERPT)
        if 0 <= a < EXCERPT:
            cols.append((a, max(b, a + 1), m))
    pad = " " * width
    row = [" "] * max((b for _, b, _ in cols), default=0)
    for a, b, m in cols:
        row[a:b] = m.char * (b - a)
    rows = ["".join(row)]
    hanging = [(a, m) for a, b, m in cols if m.label]
    if hanging and hanging[-1][0] == max(a for a, _, _ in cols):  # the rightmost: label after it
        rows[0] += " " + clip(hanging.pop()[1].label)
    for i in range(len(hanging) - 1, -1, -1):
        rows.append(_bars([a for a, _ in hanging[:i + 1]]))
        rows.append(_bars([a for a, _ in hanging[:i]]).ljust(hanging[i][0]) + clip(hanging[i][1].label))
    return [f" {str(n).rjust(width)} | {printable(shown)}", *(f" {pad} | {r}".rstrip() for r in rows)]


def _bars(cols: list[int]) -> str:
    row = [" "] * (max(cols) + 1 if cols else 0)
    for c in cols:
        row[c] = "|"
    return "".join(row)


class CnnError(Exception):
    """Every user-facing failure: a wrong spec, a bad argument, data that cannot be used."""

    def __init__(self, message: str, span: Span | None = None, hint: str | None = None, *,
                 label: str | None = None):
        super().__init__(message)
        self.diagnostic = Diagnostic(message, span, hint, label=label)

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

    def _render_traceback_(self) -> list[str]:
        """What IPython and Jupyter show of this error instead of a Python traceback: the message as the command
        line prints it, located in the spec (or the notebook cell), with its hint. (IPython's protocol: the
        method is only called, never imported.)"""
        return self.render().splitlines()


class CnnErrors(CnnError):
    """Several independent errors of one spec, found in one run; the first is this error's message.

    `except CnnError` and `pytest.raises(CnnError)` catch it as they catch one error; `errors` lists
    them all, and `render()` shows MAX_ERRORS of them and counts the rest.
    """

    def __init__(self, errors: list[CnnError]):
        first = errors[0]
        super().__init__(first.message, first.span, first.hint)
        self.diagnostic = first.diagnostic
        self.errors = errors

    def render(self) -> str:
        shown = [e.render() for e in self.errors[:MAX_ERRORS]]
        if len(self.errors) > MAX_ERRORS:
            shown.append(f"error: and {len(self.errors) - MAX_ERRORS:,} more errors")
        return "\n\n".join(shown)


def raise_all(errors: list[CnnError]) -> None:
    """Raises the one error found, or all of them as CnnErrors; nothing when there are none."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise CnnErrors(errors)


class SpecSyntaxError(CnnError):
    """The text does not follow the grammar."""


class ShapeError(CnnError):
    """Shapes do not fit: a kernel larger than its input, merges of unequal shapes..."""


class TooSmallError(ShapeError):
    """An input too small for a layer (a kernel larger than it): the elaborator notes how the map shrank to it."""


class UsageError(CnnError):
    """The command line or API call is wrong (exit code 2)."""


class UserNote(UserWarning):
    """Something the user should know that is no error (a font this machine lacks): a Python warning of this
    category, so that the API's callers can filter or catch it; the command line prints it as `note: TEXT`."""


def did_you_mean(word: str, choices) -> str | None:
    """A hint naming the closest of `choices`, as rustc and Elm do."""
    import difflib

    if len(word) > 64:  # no name is that long; and difflib is quadratic
        return None
    choices = list(choices)
    lowered = {c.lower(): c for c in reversed(choices)}  # the first of names that differ only in case
    if word.lower() in lowered:
        return f"did you mean `{lowered[word.lower()]}`?"
    cutoff = 0.5 if len(word) <= 3 else 0.6  # e2 → e1, but not every short name
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=cutoff)  # case is no distance
    return f"did you mean `{lowered[close[0]]}`?" if close else None


class Printable:
    """A text stream (stdout, stderr) that shows control characters as `?` (see `printable`), whatever writes to
    it: the command line's one guard between user text and the terminal. What draws on the terminal on purpose
    (rich's colours, a progress bar) writes to `terminal(stream)`, the stream beneath."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> int:
        if not (text.isprintable() or all(line.isprintable() for line in text.split("\n"))):
            text = printable(text)
        return self.stream.write(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str):  # flush, isatty, fileno, encoding...
        return getattr(self.stream, name)


def terminal(stream):
    """The stream beneath a Printable (the stream itself otherwise)."""
    return stream.stream if isinstance(stream, Printable) else stream


def label(text: str) -> str:
    """User text as a picture's label (a class name, an image's file name): `printable`, and each `$` escaped, so
    that matplotlib never reads it as mathtext (a class named `$\\x$` stopped a run at its confusion matrix)."""
    return printable(str(text), False).replace("$", r"\$")
