"""One document's analysis: what every request of the language server reads, made once per version of the text.

It is the core's own answer (`spec.diagnose`: parse with recovery, elaborate, analyse) plus an index from the
lines of the document to the layers they made: each layer knows the span of the statement that made it, and each
block call is a group of the layers it made. Nothing here imports pygls or torch: the benchmark and the tests
call it in-process.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from cnndsl.analysis import LayerFigures
from cnndsl.errors import CnnError, Diagnostic
from cnndsl.graph import Group
from cnndsl.ops.base import fmt_shape
from cnndsl.spec import Diagnosis, Report, diagnose
from cnndsl.syntax.loader import STD_DIR

WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class Call:
    """A block call of the document and the layers it made (one network's call; a block's body calls a block
    once for each time the block is called)."""

    group: Group
    layers: list[LayerFigures]

    @property
    def params(self) -> int:
        return sum(f.params for f in self.layers)

    @property
    def macs(self) -> int:
        return sum(f.macs for f in self.layers)

    @property
    def output(self) -> LayerFigures:
        return self.layers[-1]  # layers are in topological order: the call's last is its output


@dataclass
class Analysed:
    """A document's text at one version, its diagnosis, and its lines' layers and block calls."""

    text: str
    name: str  # the name spans carry: the file's path
    version: int | None
    diagnosis: Diagnosis
    layers: dict[int, list[LayerFigures]] = field(default_factory=dict)  # line → the layers its statement made
    calls: dict[int, list[Call]] = field(default_factory=dict)  # line → the block calls that start there
    stale: bool = False  # the figures are the last version's without errors (this one has errors)

    @property
    def lines(self) -> list[str]:
        return self.text.split("\n")

    @property
    def reports(self) -> list[Report]:
        return self.diagnosis.reports

    def diagnostics(self) -> list[Diagnostic]:
        """Errors and then warnings, each with its place (in this file or one it uses)."""
        return [e.diagnostic for e in self.diagnosis.errors] + list(self.diagnosis.warnings)

    def errors_at(self, line: int) -> list[CnnError]:
        return [e for e in self.diagnosis.errors if e.span is not None and e.span.source.name == self.name
                and e.span.line <= line <= (e.span.end_line or e.span.line)]


def analyse(text: str, path: str | None = None, version: int | None = None) -> Analysed:
    """The analysis of one version of a document: `path` is its file, where relative `use`s start."""
    name = path or "<string>"
    diagnosis = diagnose(text, name, origin=path)
    done = Analysed(text, name, version, diagnosis)
    for report in diagnosis.reports:
        _index(done, report)
    return done


def with_last_figures(doc: Analysed, good: Analysed | None) -> Analysed:
    """A text with errors has no figures of its own (a half-typed `conv 6` stops the network's elaboration): the
    lines it shares with the last version without errors keep that version's figures, as an editor keeps its
    hints while a line is being typed, until the text checks again."""
    if doc.reports or not doc.diagnosis.errors or good is None:
        return doc
    moved = _same_lines(good.lines, doc.lines)
    doc.layers = {moved[n]: found for n, found in good.layers.items() if n in moved}
    doc.calls = {moved[n]: found for n, found in good.calls.items() if n in moved}
    doc.stale = True
    return doc


def _same_lines(old: list[str], new: list[str]) -> dict[int, int]:
    """Line numbers (1-based) of the old text → the new text's, for the lines the edit left as they were."""
    import difflib

    moved = {}
    for a, b, size in difflib.SequenceMatcher(None, old, new, autojunk=False).get_matching_blocks():
        moved.update((a + i + 1, b + i + 1) for i in range(size))
    return moved


def _index(done: Analysed, report: Report) -> None:
    analysis = report.analysis
    members: dict[str, list[LayerFigures]] = {}
    for f in analysis.layers:
        span = f.layer.span
        if span is not None and span.source.name == done.name:
            done.layers.setdefault(span.line, []).append(f)
        for group in f.layer.groups:
            members.setdefault(group, []).append(f)
    for gid, group in analysis.graph.groups.items():
        if group.kind == "block" and group.span.source.name == done.name and gid in members:
            done.calls.setdefault(group.span.line, []).append(Call(group, members[gid]))


def outputs(layers: list[LayerFigures]) -> list[LayerFigures]:
    """The last layer a statement made in each place it was made (a block's line is made once a call): the
    statement's output there."""
    last: dict[tuple, LayerFigures] = {}
    for f in layers:
        last[f.layer.groups] = f
    return list(last.values())


def shapes_text(layers: list[LayerFigures]) -> str:
    """`64x56x56`, or the distinct shapes of a line made in several places: `64x56x56, 128x28x28 (4 calls)`."""
    outs = outputs(layers)
    shapes = list(dict.fromkeys(fmt_shape(f.layer.shape) for f in outs))
    text = ", ".join(shapes[:3]) + (", ..." if len(shapes) > 3 else "")
    return text if len(outs) == 1 else f"{text} ({len(outs)} calls)"


def word_at(line: str, col: int) -> tuple[str, int] | None:
    """The identifier around column `col` (0-based) of the line, and where it starts (0-based)."""
    for m in WORD.finditer(_code(line)):
        if m.start() <= col <= m.end():
            return m.group(), m.start()
    return None


def _code(line: str) -> str:
    """The line with its comment and its strings blanked (same length): no identifier is found in them."""
    out, quoted = [], False
    for ch in line:
        if ch == '"':
            quoted = not quoted
            out.append(ch)
        elif quoted:
            out.append(" ")
        elif ch == "#":
            break
        else:
            out.append(ch)
    return "".join(out).ljust(len(line))


def identifiers(text: str):
    """Every identifier of the text outside comments and strings: (line 1-based, column 0-based, word)."""
    for n, line in enumerate(text.split("\n"), 1):
        for m in WORD.finditer(_code(line)):
            yield n, m.start(), m.group()


def file_of(name: str) -> Path:
    """The file on disk a span's source name stands for: the standard library's `std/NAME.cnn`, else a path as
    the loader shows it (relative to the working directory, or absolute)."""
    if name.startswith("std/"):
        return STD_DIR / name[len("std/"):]
    return Path(name).resolve()
