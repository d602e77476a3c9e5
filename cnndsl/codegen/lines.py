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
    carried: list[str] = field(default_factory=list)  # shape variables of loops, dropped if never read
    scratch: bool = False  # only the shapes are wanted: lines are thrown away
    exact: bool = False  # the shapes must not name this function's variables (a caller wants them)

    def add(self, text: str) -> None:
        if not self.scratch:
            self.lines.append("    " * self.indent + text)

    @contextmanager
    def nested(self, header: str):
        """An indented block under `header`; `pass` if its statements wrote no line (`let` alone)."""
        self.add(header)
        before = len(self.lines)
        self.indent += 1
        yield
        if len(self.lines) == before:
            self.add("pass")
        self.indent -= 1

    def insert(self, pos: int, texts: list[str]) -> None:
        """Lines at `pos`, at the current indentation (`self.se1 = None` before the `if` that may set it)."""
        if not self.scratch:
            self.lines[pos:pos] = ["    " * self.indent + t for t in texts]

    def drop_unread(self, names: list[str]) -> None:
        """Removes `name = ...` lines of variables no other line reads (sizes nothing needed)."""
        for name in names:
            pattern = re.compile(rf"\b{name}\b")
            assigned = re.compile(rf"^\s*{name} = ")
            if not any(pattern.search(line) and not assigned.match(line) for line in self.lines):
                self.lines = [line for line in self.lines if not assigned.match(line)]

    def local(self, base: str) -> str:
        return claim_local(base, self.taken)
