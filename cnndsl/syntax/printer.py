"""AST → canonical .cnn text: what `cnndsl fmt` writes, and what `cnndsl import` will write specs with.

The rules, as black and gofmt have theirs: 4-space indentation; one statement a line, except a construct
written on one line (`branch { conv 8 kernel=1; relu }`), which stays on one line while it fits in
120 columns; one blank line where the source had one or more, and one between definitions; a space
between a call's arguments, and parentheses around an argument only where the grammar needs them (an
argument that is not an atom); in expressions, parentheses only where precedence needs them.
Consecutive calls of the same layer or block have their arguments aligned in columns, as gofmt aligns
cells, and the trailing comments of a paragraph start in one column. Comments are kept: one on a line of its own
before the statement (or `}`) it preceded, a trailing one after its statement. Printing the printed text
again gives the same text, and the tree it parses to is the tree printed (`parse(print(tree)) == tree`).

A tree made in code (no spans, no comments) prints the same way, every body on lines of its own.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

from cnndsl.syntax import ast
from cnndsl.syntax.parser import parse

INDENT = "    "
WIDTH = 120  # a one-line construct longer than this is printed on lines of its own
KEYWORDS = frozenset("use network block def return let repeat in if else residual shortcut add concat multiply "
                     "branch from frozen true false and or not with".split())
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def format_text(text: str, name: str = "<string>") -> str:
    """The canonical text of a spec file. Raises its syntax errors: a text with errors is not printed."""
    return print_module(parse(text, name), text)


def print_module(module: ast.Module, source: str | None = None) -> str:
    """The tree as text; `source` is the text it was parsed from, whose comments and blank lines are kept."""
    printer = _Printer(source.split("\n") if source is not None else None)
    printer.module(module)
    lines = printer.lines
    if source is not None:
        lines = _with_comments(lines, _comments(source))
        lines = _with_blank_lines(lines, printer.source)
    return _render(lines)


@dataclass
class _Line:
    depth: int
    text: str
    src: int | None = None  # the source line this line stands for
    end: int | None = None  # the last source line it covers
    kind: str = "code"  # "code", "close" (a line that starts with `}`), "comment", "blank"
    comment: str | None = None  # a trailing comment
    cells: list[str] | None = None  # a call's words, for aligning consecutive calls in columns


# ---- statements ------------------------------------------------------------------------------------------


class _Printer:
    def __init__(self, source: list[str] | None):
        self.source = source
        self.lines: list[_Line] = []

    def emit(self, depth: int, text: str, src: int | None, end: int | None = None, kind: str = "code") -> None:
        self.lines.append(_Line(depth, text, src, end or src, kind))

    def start(self, node) -> int | None:
        """The source line a node starts on (None for a tree made in code)."""
        span = getattr(node, "span", None)
        return span.line if span is not None and self.source is not None else None

    def end(self, node) -> int | None:
        span = getattr(node, "span", None)
        return (span.end_line or span.line) if span is not None and self.source is not None else None

    def closing(self, depth: int, text: str, span) -> None:
        line = (span.end_line or span.line) if span is not None and self.source is not None else None
        self.emit(depth, text, line, kind="close")

    def module(self, m: ast.Module) -> None:
        items = [*m.uses, *m.definitions]
        if all(i.span is not None for i in items):
            items.sort(key=lambda i: (i.span.line, i.span.col))
        previous = None
        for item in items:
            if previous is not None and not (isinstance(item, ast.Use) and isinstance(previous, ast.Use)):
                self.lines.append(_Line(0, "", kind="blank"))
            if isinstance(item, ast.Use):
                self.emit(0, f"use {_string(item.path)}", self.start(item))
            else:
                self.definition(item)
            previous = item

    def definition(self, d: ast.Definition) -> None:
        keyword_ = {"network": "network", "block": "block", "function": "def"}[d.kind]
        params = f"({', '.join(_param(p) for p in d.params)})" if d.params else ("()" if d.kind == "function" else "")
        inputs = "".join(f" {_name(n)}" for n in d.inputs)
        self.body(0, f"{keyword_} {_name(d.name)}{params}" + (f" with{inputs}" if inputs else ""), d.body, d, d.close)

    def body(self, depth: int, head: str, stmts: list, node, close) -> None:
        """`head { stmts }`: on one line where it was written so and fits, else on lines of its own."""
        start = self.start(node)
        if not stmts:
            self.emit(depth, f"{head} {{ }}", start, self.line_of(close))
            return
        if self.one_line(node, close):
            text = f"{head} {{ {'; '.join(_inline(s) for s in stmts)} }}"
            if len(INDENT * depth + text) <= WIDTH:
                self.emit(depth, text, start)
                return
        self.emit(depth, f"{head} {{", start)
        for s in stmts:
            self.stmt(s, depth + 1)
        self.closing(depth, "}", close)

    def line_of(self, span) -> int | None:
        return (span.end_line or span.line) if span is not None and self.source is not None else None

    def one_line(self, node, close) -> bool:
        """Whether a construct was written on one line (then it is printed so while it fits)."""
        start = self.start(node)
        return start is not None and close is not None and self.line_of(close) == start

    def stays_on_one_line(self, s, depth: int, prefix: str) -> bool:
        close = s.close if isinstance(s, ast.Merge) else s.span
        return self.one_line(s, close) and len(INDENT * depth + prefix + _inline(s)) <= WIDTH

    def stmt(self, s, depth: int, prefix: str = "") -> None:
        if isinstance(s, ast.Labeled):
            self.stmt(s.stmt, depth, f"{prefix}{_labels(s)}: ")  # a label is on its statement's line
        elif isinstance(s, ast.Frozen) and _inline_frozen(s):
            self.stmt(s.body[0], depth, prefix + "frozen ")
        elif isinstance(s, ast.Frozen):
            self.body(depth, f"{prefix}frozen", s.body, s, s.span)
        elif isinstance(s, ast.Repeat):
            self.body(depth, prefix + _repeat_head(s), s.body, s, s.span)
        elif isinstance(s, (ast.If, ast.Residual, ast.Merge)) and self.stays_on_one_line(s, depth, prefix):
            self.emit(depth, prefix + _inline(s), self.start(s))
        elif isinstance(s, ast.If):
            self.if_stmt(s, depth, prefix)
        elif isinstance(s, ast.Residual):
            self.residual(s, depth, prefix)
        elif isinstance(s, ast.Merge):
            self.merge(s, depth, prefix)
        else:
            self.emit(depth, prefix + _inline(s), self.start(s), self.end(s))
            if isinstance(s, ast.Call) and not prefix and not s.inputs:
                self.lines[-1].cells = [s.name, *(_arg(a) for a in s.args)]

    def if_stmt(self, s: ast.If, depth: int, prefix: str) -> None:
        for i, arm in enumerate(s.arms):
            if i == 0:
                self.emit(depth, f"{prefix}if {_expr(arm.cond)} {{", self.start(s))
            else:
                self.emit(depth, f"}} else if {_expr(arm.cond)} {{", self.start(arm), kind="close")
            for x in arm.body:
                self.stmt(x, depth + 1)
        if s.orelse:
            self.closing(depth, "} else {", s.arms[-1].span)
            for x in s.orelse:
                self.stmt(x, depth + 1)
        self.closing(depth, "}", s.span)

    def residual(self, s: ast.Residual, depth: int, prefix: str) -> None:
        self.emit(depth, f"{prefix}{_head('residual', s.args)} {{", self.start(s))
        for x in s.body:
            self.stmt(x, depth + 1)
        if s.shortcut is None:
            self.closing(depth, "}", s.span)
            return
        self.emit(depth, f"}} {_shortcut_head(s)} {{", self.start(_Spanned(s.shortcut_span)), kind="close")
        for x in s.shortcut:
            self.stmt(x, depth + 1)
        self.closing(depth, "}", s.shortcut_span or s.span)

    def merge(self, s: ast.Merge, depth: int, prefix: str) -> None:
        self.emit(depth, f"{prefix}{_head(s.op, s.args)} {{", self.start(s))
        spans = s.branch_spans if len(s.branch_spans) == len(s.branches) else [None] * len(s.branches)
        for branch, span in zip(s.branches, spans):
            self.body(depth + 1, "branch", branch, _Spanned(span), span)
        self.closing(depth, "}", s.close)


@dataclass
class _Spanned:
    span: object


def _inline_frozen(s: ast.Frozen) -> bool:
    """`frozen conv 4` for a frozen single statement; braces for several, a named one or none."""
    return len(s.body) == 1 and not isinstance(s.body[0], (ast.Labeled, ast.Frozen))


def _repeat_head(s: ast.Repeat) -> str:
    if s.var is None:
        return f"repeat {_expr(s.stop)}"
    return f"repeat {_name(s.var)} in {_expr(s.start)}..{_expr(s.stop)}"


def _shortcut_head(s: ast.Residual) -> str:
    return "shortcut" if s.shortcut_if is None else f"shortcut if {_expr(s.shortcut_if)}"


def _head(keyword: str, args: list) -> str:
    """`add`, `residual partial=true`: a merge's keyword and its own arguments."""
    return " ".join([keyword, *(_arg(a) for a in args)])


def _labels(s: ast.Labeled) -> str:
    """`e1`, or `hi, lo` for the outputs of a block that returns several."""
    return ", ".join(_name(n) for n in [s.label, *s.more])


def _output(name: str) -> str:
    """A named output, or `in` (the block's input), which is a keyword."""
    return name if name == "in" else _name(name)


def _braced(stmts: list) -> str:
    return "{ " + "; ".join(_inline(x) for x in stmts) + " }" if stmts else "{ }"


def _inline(s) -> str:
    """A statement on one line."""
    if isinstance(s, ast.Call):
        inputs = ["with", *(_output(n.id) for n in s.inputs)] if s.inputs else []
        return " ".join([_name(s.name), *(_arg(a) for a in s.args), *inputs])
    if isinstance(s, ast.Outputs):
        return "return " + ", ".join(_output(n.id) for n in s.names)
    if isinstance(s, ast.Let):
        return f"let {_name(s.name)} = {_expr(s.value)}"
    if isinstance(s, ast.Return):
        return f"return {_expr(s.value)}"
    if isinstance(s, ast.From):
        return f"from {_output(s.name.id)}"
    if isinstance(s, ast.MergeWith):
        return " ".join([_head(s.op, s.args), *(_output(n.id) for n in s.names)])
    if isinstance(s, ast.Labeled):
        return f"{_labels(s)}: {_inline(s.stmt)}"
    if isinstance(s, ast.Frozen):
        return f"frozen {_inline(s.body[0])}" if _inline_frozen(s) else f"frozen {_braced(s.body)}"
    if isinstance(s, ast.Repeat):
        return f"{_repeat_head(s)} {_braced(s.body)}"
    if isinstance(s, ast.If):
        arms = [f"if {_expr(a.cond)} {_braced(a.body)}" for a in s.arms]
        return " else ".join(arms) + (f" else {_braced(s.orelse)}" if s.orelse else "")
    if isinstance(s, ast.Residual):
        text = f"{_head('residual', s.args)} {_braced(s.body)}"
        return text if s.shortcut is None else f"{text} {_shortcut_head(s)} {_braced(s.shortcut)}"
    if isinstance(s, ast.Merge):
        return f"{_head(s.op, s.args)} {{ " + " ".join(f"branch {_braced(b)}" for b in s.branches) + " }"
    raise ValueError(f"cannot print {type(s).__name__}")


# ---- expressions -----------------------------------------------------------------------------------------


def _param(p: ast.Param) -> str:
    return _name(p.name) if p.default is None else f"{_name(p.name)} = {_expr(p.default)}"


def _arg(a: ast.Arg) -> str:
    value = _atom(a.value)
    return value if a.name is None else f"{_name(a.name)}={value}"


_ATOMS = (ast.Name, ast.InAttr, ast.TupleExpr, ast.Func)


def _atom(e) -> str:
    """An argument: an atom as it is (a negative number too: `leakyrelu -0.1`), anything else in parentheses."""
    if isinstance(e, _ATOMS) or isinstance(e, ast.Const):
        return _expr(e)
    return f"({_expr(e)})"


def _expr(e) -> str:
    if isinstance(e, ast.Missing):
        raise ValueError("cannot print a tree with a missing value (a file with syntax errors)")
    _check_names(e)
    return ast.show(e)


def _check_names(e) -> None:
    """Names that the grammar reads back as the same names (a tree made in code may hold any string)."""
    for node in ast.walk(e):
        if isinstance(node, ast.Name):
            _name(node.id)
        elif isinstance(node, ast.Func):
            _name(node.name)
            for k in node.keywords:
                _name(k.name)
        elif isinstance(node, ast.Const) and isinstance(node.value, str):
            _string(node.value)
        elif isinstance(node, ast.InAttr):
            _name(node.attr)


def _name(name: str) -> str:
    if not _NAME.match(name) or name in KEYWORDS or keyword.iskeyword(name) and name in KEYWORDS:
        raise ValueError(f"{name!r} is not a name the grammar can read")
    return name


def _string(text: str) -> str:
    if '"' in text or "\n" in text or "\r" in text:
        raise ValueError(f"{text!r} cannot be written as a spec string (no quotes or newlines)")
    return f'"{text}"'


# ---- comments, blank lines and columns ---------------------------------------------------------------------

_TOKENS_WITH_HASH = re.compile(r'"[^"\n]*"|#[^\n]*')


@dataclass
class _Comment:
    line: int
    text: str
    trailing: bool


def _comments(text: str) -> list[_Comment]:
    """The comments of a text (a `#` in a string is not one), with whether code precedes them on their line."""
    found = []
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    line = 0
    for m in _TOKENS_WITH_HASH.finditer(text):
        if not m.group().startswith("#"):
            continue
        while line + 1 < len(line_starts) and line_starts[line + 1] <= m.start():
            line += 1
        before = text[line_starts[line]:m.start()]
        found.append(_Comment(line + 1, m.group().rstrip(), bool(before.strip())))
    return found


def _with_comments(lines: list[_Line], comments: list[_Comment]) -> list[_Line]:
    """Each trailing comment after the line that stands for its source line (or the line before, for a
    statement that was spread over lines); each comment of its own line before the first line after it."""
    out = list(lines)
    for c in comments:
        if c.trailing:
            owner = _owner(out, c.line)
            if owner is not None and owner.comment is None:
                owner.comment = c.text
                continue
        at = next((i for i, x in enumerate(out) if x.src is not None and x.src > c.line), len(out))
        depth = out[at].depth + (1 if out[at].kind == "close" else 0) if at < len(out) else 0
        out.insert(at, _Line(depth, c.text, c.line, c.line, "comment"))
    return out


def _owner(lines: list[_Line], line: int) -> _Line | None:
    """The last line printed for what covers source line `line` (a statement spread over lines included)."""
    covering = [x for x in lines if x.kind in ("code", "close") and x.src is not None and x.src <= line <= x.end]
    return covering[-1] if covering else None


def _with_blank_lines(lines: list[_Line], source: list[str]) -> list[_Line]:
    """One blank line where the source had one or more between two lines (not after a `{`, not before a `}`)."""
    out: list[_Line] = []
    previous = None
    for x in lines:
        if x.kind == "blank":
            if out and out[-1].kind != "blank":
                out.append(x)
            continue
        if (previous is not None and x.src is not None and x.kind != "close" and out and out[-1].kind != "blank"
                and not out[-1].text.endswith("{") and _blank_between(source, previous, x.src)):
            out.append(_Line(0, "", kind="blank"))
        out.append(x)
        if x.src is not None:
            previous = max(previous or 0, x.end or x.src)
    return out


def _blank_between(source: list[str], after: int, before: int) -> bool:
    return any(not source[n - 1].strip() for n in range(after + 1, before) if 0 < n <= len(source))


def _render(lines: list[_Line]) -> str:
    _align_calls(lines)
    texts = [(INDENT * x.depth + x.text) if x.kind != "blank" else "" for x in lines]
    _align_comments(lines, texts)
    while texts and not texts[-1]:
        texts.pop()
    return "\n".join(t.rstrip() for t in texts) + "\n"


def _align_calls(lines: list[_Line]) -> None:
    """Consecutive calls of the same layer or block, at the same depth, get their words in columns: a word
    is padded to the widest of its column among the lines that have a word after it (gofmt's tabwriter)."""
    i = 0
    while i < len(lines):
        j = i
        while (j < len(lines) and lines[j].cells and lines[i].cells and lines[j].cells[0] == lines[i].cells[0]
               and lines[j].depth == lines[i].depth):
            j += 1
        run = lines[i:j]
        if len(run) > 1:
            columns = max(len(x.cells) for x in run)
            widths = [max((len(x.cells[k]) for x in run if len(x.cells) > k + 1), default=0) for k in range(columns)]
            for x in run:
                x.text = " ".join(c.ljust(widths[k]) if k < len(x.cells) - 1 else c for k, c in enumerate(x.cells))
        i = max(j, i + 1)


def _align_comments(lines: list[_Line], texts: list[str]) -> None:
    """The trailing comments of a paragraph (lines without a blank one between) start in one column, two
    spaces after the longest line from its first comment to its last."""
    i = 0
    while i < len(lines):
        if lines[i].comment is None:
            i += 1
            continue
        j = last = i
        while j < len(lines) and lines[j].kind != "blank":
            if lines[j].comment is not None:
                last = j
            j += 1
        column = max(len(texts[k].rstrip()) for k in range(i, last + 1)) + 2
        for k in range(i, last + 1):
            if lines[k].comment is not None:
                texts[k] = texts[k].rstrip().ljust(column) + lines[k].comment
        i = last + 1
