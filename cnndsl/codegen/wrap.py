"""Lines of generated source kept within the project's line length, split as black would split them.

A line too long is split at its last bracket pair: the contents on a line of their own, or one item per
line with a trailing comma; a lone call inside is hugged (`nn.Sequential(OrderedDict(`); an assignment of
a long conditional expression is parenthesised and split before `if` and `else`. A docstring is wrapped
at its spaces. Brackets inside string literals are not brackets.
"""

from __future__ import annotations

import ast
import textwrap

WIDTH = 120
_OPEN, _CLOSE = "([{", ")]}"


def wrap_all(lines: list[str], width: int = WIDTH) -> list[str]:
    out = []
    for line in lines:
        out += wrap(line, width)
    return out


def wrap(line: str, width: int = WIDTH) -> list[str]:
    """The line, split where it is too long; as it is where a split would not mean the same to Python."""
    if len(line) <= width:
        return [line]
    out = _wrap(line, width)
    return out if _docstring_line(line) or _same(line, out) else [line]  # (a docstring's lines are its text)


def _wrap(line: str, width: int) -> list[str]:
    indent = line[: len(line) - len(line.lstrip())]
    text = line.strip()
    if _docstring_line(line):
        return _docstring(indent, text[3:-3], width)
    pair = _last_pair(text)
    if pair is not None:
        opened, closed = pair
        head, body, tail = text[: opened + 1], text[opened + 1: closed], text[closed:]
        if len(indent + head) <= width and body.strip():
            if _group(text, opened) and len(_top_level(body, ",")) == 1:  # (a + b) * 2: no comma may be added
                return [indent + head, *_wrap(indent + "    " + body.strip(), width), indent + tail]
            return _split(indent, head, body, tail, width)
    return _operators(indent, text, width) or [line]


def _docstring_line(line: str) -> bool:
    text = line.strip()
    return text.startswith('"""') and text.endswith('"""') and len(text) > 6


def _same(line: str, lines: list[str]) -> bool:
    """Whether the split lines are the one line to Python (a header gets a body to be parsed)."""
    def tree(text: str) -> str | None:
        text = textwrap.dedent(text)
        try:
            return ast.dump(ast.parse(text + (" pass" if text.rstrip().endswith(":") else "")))
        except SyntaxError:
            return None
    before = tree(line)
    return before is not None and before == tree("\n".join(lines))


def _split(indent: str, head: str, body: str, tail: str, width: int, hugged: bool = False) -> list[str]:
    inner = indent + "    "
    items = _top_level(body, ",")
    if len(items) == 1:
        pair = _last_pair(body)
        if pair is not None and pair[1] == len(body) - 1 and _hug(body, pair[0]):  # f(g(...)): hug g
            opened, closed = pair
            return _split(indent, head + body[: opened + 1], body[opened + 1: closed], body[closed:] + tail, width,
                          True)
        if len(inner + body) <= width:
            return [indent + head, inner + body, indent + tail]
    elif not hugged and len(inner + body) <= width:
        return [indent + head, inner + body, indent + tail]
    lines = [indent + head]
    for item in items:
        lines += wrap(inner + item.strip() + ",", width)
    return lines + [indent + tail]


def _hug(body: str, opened: int) -> bool:
    """Whether `body` is one call or bracket with nothing after its close (`OrderedDict(...)`)."""
    return all(c.isalnum() or c in "_." for c in body[:opened])


def _docstring(indent: str, text: str, width: int) -> list[str]:
    lines, current = [], indent + '"""'
    for word in text.split(" "):
        if len(current) + len(word) + 1 > width - 3 and current.strip() not in ('"""', ""):
            lines.append(current.rstrip())
            current = indent
        current += ("" if current.endswith(('"""', " ")) or current == indent else " ") + word
    lines.append(current + '"""')
    return lines


def _operators(indent: str, text: str, width: int) -> list[str] | None:
    """`name = a if c else b`, too long: the value in parentheses, split before its operators."""
    target, eq, value = text.partition(" = ")
    if not eq or not target.replace(".", "").replace("_", "").isalnum():
        return None
    for ops in ((" if ", " else "), (" or ",), (" and ",), (" + ", " - ")):
        parts = _top_level(value, *ops)
        if len(parts) > 1:
            inner = indent + "    "
            return [f"{indent}{target} = ("] + [inner + p.strip() for p in parts] + [indent + ")"]
    return None


def _scan(text: str):
    """(index, character, depth) of each character outside string literals."""
    depth, quote, i = 0, None, 0
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if c == quote:
                quote = None
        elif c in "\"'":
            quote = c
        else:
            if c in _CLOSE:
                depth -= 1
            yield i, c, depth
            if c in _OPEN:
                depth += 1
        i += 1


def _last_pair(text: str) -> tuple[int, int] | None:
    """The last top-level bracket pair worth a split: (where it opens, where it closes); not a subscript
    (`x[0]`)."""
    opened, pair = None, None
    for i, c, depth in _scan(text):
        if depth == 0 and c in _OPEN:
            opened = i
        elif depth == 0 and c in _CLOSE and opened is not None:
            if not (text[opened] == "[" and opened and _follows_name(text, opened)):
                pair = (opened, i)
    return pair


def _follows_name(text: str, i: int) -> bool:
    return text[i - 1].isalnum() or text[i - 1] in "_)]"


def _group(text: str, opened: int) -> bool:
    """Whether a `(` opens a parenthesised expression or a tuple, not a call's arguments."""
    return text[opened] == "(" and not (opened and _follows_name(text, opened))


def _top_level(text: str, *seps: str) -> list[str]:
    """`text` split at the separators that stand outside brackets and strings; each part keeps the
    separator that starts it (but a comma)."""
    parts, start = [], 0
    skip_to = -1
    for i, _, depth in _scan(text):
        if i < skip_to or depth:
            continue
        for sep in seps:
            if text.startswith(sep, i):
                parts.append(text[start:i])
                start = i + 1 if sep == "," else i + 1
                skip_to = i + len(sep)
                break
    parts.append(text[start:])
    return [p for p in parts if p.strip()]
