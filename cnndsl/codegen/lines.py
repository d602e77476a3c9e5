"""Lines of one generated function body, with indentation and fresh local names."""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass, field

from cnndsl.codegen.naming import claim_local


@dataclass
class Lines:
    lines: list[str] = field(default_factory=list)
    indent: int = 2
    taken: set[str] = field(default_factory=set)
    optional: list[str] = field(default_factory=list)  # size variables, dropped if no other line reads them
    running: set[str] = field(default_factory=set)  # variables of straight-line code assigned more than once
    reassigned: set[str] = field(default_factory=set)  # variables a `let` assigned again (`c = c + 8`)
    scratch: bool = False  # only the shapes are wanted: lines are thrown away
    exact: bool = False  # a caller's view: shapes as formulas of its own values, never this body's variables

    def add(self, text: str) -> None:
        if not self.scratch:
            self.lines.append("    " * self.indent + text)

    @contextmanager
    def nested(self, header: str):
        """An indented block under `header`; `pass` if its statements wrote no line (`let` alone)."""
        self.add(header)
        before = len(self.lines)
        self.indent += 1
        try:
            yield
        finally:
            if len(self.lines) == before:
                self.add("pass")
            self.indent -= 1

    def insert(self, pos: int, texts: list[str]) -> None:
        """Lines at `pos`, at the current indentation (`self.se1 = None` before the `if` that may set it)."""
        if not self.scratch:
            self.lines[pos:pos] = ["    " * self.indent + t for t in texts]

    def mark(self) -> int:
        return len(self.lines)

    def drop_unread(self) -> None:
        """Removes `name = ...` lines of optional variables no other line reads (sizes nothing needed), and
        of a running variable the lines before its next assignment do not read."""
        before = None
        while before != len(self.lines):  # a size read only by another dropped one goes too
            before = len(self.lines)
            for name in dict.fromkeys(self.optional):
                pattern = re.compile(rf"\b{name}\b")
                assigned = re.compile(rf"^\s*{name} = ")
                if name in self.running:
                    self.lines = _live_stores(self.lines, pattern, assigned)
                elif not any(pattern.search(line) and not assigned.match(line) for line in self.lines):
                    self.lines = [line for line in self.lines if not assigned.match(line)]
        while True:  # a loop emptied can empty the one around it
            filled = _filled(self.lines)
            if filled == self.lines:
                break
            self.lines = filled

    def local(self, base: str) -> str:
        return claim_local(base, self.taken)

    def view(self) -> Lines:
        """Lines for a trial run: nothing written, the same names taken."""
        return Lines(indent=self.indent, taken=set(self.taken), scratch=True, exact=self.exact,
                     reassigned=set(self.reassigned))


def _live_stores(lines: list[str], pattern, assigned) -> list[str]:
    """The lines without the assignments to a variable that no line reads before the next one."""
    dead, last = set(), None
    for i, line in enumerate(lines):
        if assigned.match(line):
            if pattern.search(line.split(" = ", 1)[1]):  # `channels = channels * 2` reads it first
                last = None
            if last is not None:
                dead.add(last)
            last = i
        elif pattern.search(line):
            last = None
    if last is not None:
        dead.add(last)
    return [line for i, line in enumerate(lines) if i not in dead]


def _filled(lines: list[str]) -> list[str]:
    """`pass` under a block header whose lines were all dropped; a loop left with nothing to do, gone."""
    lines = [line for i, line in enumerate(lines)
             if not (line.strip() == "pass" and i and _droppable(lines[i - 1], lines[i + 1:i + 2])
                     and _depth(lines[i + 1] if i + 1 < len(lines) else "") < _depth(line))]
    out = []
    for i, line in enumerate(lines):
        depth = len(line) - len(line.lstrip())
        after = lines[i + 1] if i + 1 < len(lines) else ""
        empty = line.rstrip().endswith(":") and len(after) - len(after.lstrip()) <= depth
        if empty and _droppable(line, lines[i + 1:i + 2]):  # nothing to do or to record
            continue
        out.append(line)
        if empty:
            out.append(" " * (depth + 4) + "pass")
    return out


def _droppable(header: str, after: list[str]) -> bool:
    """Whether a block with nothing in it can go: a loop, an `else:`, an `if` with no other arm (conditions
    in generated code have no effects)."""
    text = header.lstrip()
    if text.startswith(("for ", "else:")):
        return True
    following = after[0] if after else ""
    return text.startswith("if ") and not (_depth(following) == _depth(header)
                                           and following.lstrip().startswith(("elif ", "else:")))


def _depth(line: str) -> int:
    return len(line) - len(line.lstrip())
