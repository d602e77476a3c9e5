"""What the language server answers, each from a document's cached analysis (document.py), as LSP data.

Lines and columns: the core counts from 1, LSP from 0. Columns are counted in characters, and sent as they are:
LSP's default unit, UTF-16, counts the same on every line without a character outside the Basic Multilingual
Plane (an emoji in a comment moves the positions after it on its line by one each; names and numbers are ASCII).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from lsprotocol import types as t

from cnndsl.errors import CnnError, Diagnostic, Span
from cnndsl.lsp.document import WORD, Analysed, Call, file_of, identifiers, outputs, shapes_text, word_at
from cnndsl.ops import REGISTRY, lookup
from cnndsl.ops.base import REQUIRED, fmt_shape
from cnndsl.report import human
from cnndsl.syntax import ast
from cnndsl.syntax.loader import STD_DIR
from cnndsl.syntax.printer import KEYWORDS, format_text

SEVERITY = {"error": t.DiagnosticSeverity.Error, "warning": t.DiagnosticSeverity.Warning}


def to_range(span: Span | None, lines: list[str] | None = None) -> t.Range:
    if span is None:
        return t.Range(t.Position(0, 0), t.Position(0, 0))
    start = t.Position(span.line - 1, span.col - 1)
    if not span.end_line:  # a place, not an extent: its word
        line = lines[span.line - 1] if lines and span.line <= len(lines) else ""
        m = WORD.match(line, span.col - 1)
        return t.Range(start, t.Position(span.line - 1, m.end() if m else span.col))
    return t.Range(start, t.Position(span.end_line - 1, span.end_col - 1))


# ---- diagnostics --------------------------------------------------------------------------------------------


def diagnostics(doc: Analysed) -> dict[str, list[t.Diagnostic]]:
    """The document's errors and warnings by the file they are in (its own, and the files it uses)."""
    out: dict[str, list[t.Diagnostic]] = {doc.name: []}
    for d in doc.diagnostics():
        where = d.span.source.name if d.span is not None else doc.name
        lines = d.span.source.text.split("\n") if d.span is not None else None
        out.setdefault(where, []).append(_diagnostic(d, lines))
    return out


def _diagnostic(d: Diagnostic, lines: list[str] | None) -> t.Diagnostic:
    message = d.message + (f"\nhint: {d.hint}" if d.hint else "")
    related = [t.DiagnosticRelatedInformation(t.Location(file_of(span.source.name).as_uri(), to_range(span)), text)
               for text, span in d.notes if span is not None]
    message += "".join(f"\nnote: {text}" for text, span in d.notes if span is None)
    return t.Diagnostic(to_range(d.span, lines), message, SEVERITY.get(d.severity, t.DiagnosticSeverity.Information),
                        source="cnndsl", related_information=related or None, data={"hint": d.hint})


# ---- hover --------------------------------------------------------------------------------------------------


def hover(doc: Analysed, line: int, col: int) -> t.Hover | None:
    """A layer line: op, shape, params, MACs, receptive field and the `--explain` arithmetic; a block call: the
    block's signature, comment and totals; a parameter: its value here; a layer kind: its documentation."""
    text = doc.lines[line - 1] if line <= len(doc.lines) else ""
    found = word_at(text, col)
    if found is None:
        return None
    word, start = found
    place = t.Range(t.Position(line - 1, start), t.Position(line - 1, start + len(word)))
    figures = _call_hover(doc, line, word) or _param_hover(doc, line, word) or _layer_hover(doc, line, word)
    body = figures or _kind_hover(doc, word)
    if body is None:
        return None
    if doc.stale and figures:
        body += "\n\n*(the figures of the last version without errors)*"
    return t.Hover(t.MarkupContent(t.MarkupKind.Markdown, body), place)


def _call_hover(doc: Analysed, line: int, word: str) -> str | None:
    calls = [c for c in doc.calls.get(line, []) if c.group.title.split()[0] == word]
    d = doc.diagnosis.program.definitions.get(word)
    if not calls and (d is None or d.kind != "block"):
        return None
    parts = [_signature(d, doc.name)] if d is not None else []
    comment = _comment_above(d)
    if comment:
        parts.append(comment)
    for call in calls[:3]:
        parts.append(_call_figures(call))
    if len(calls) > 3:
        parts.append(f"... and {len(calls) - 3} more calls")
    return "\n\n".join(parts)


def _call_figures(call: Call) -> str:
    out = call.output
    return (f"`{call.group.title}`: {len(call.layers)} layers → **{fmt_shape(out.layer.shape)}**  \n"
            f"params {call.params:,} · MACs {human(call.macs)} ({call.macs:,}) · receptive field "
            f"{out.receptive_field}")


def _signature(d: ast.Definition, main: str) -> str:
    """`block stage(filters, blocks, stride = 1)`, and the file it is in where that is another."""
    params = ", ".join(_param(p) for p in d.params)
    where = d.span.source.name if d.span is not None else main
    return f"```cnn\n{d.kind} {d.name}({params})\n```" + (f"\n*{where}*" if where != main else "")


def _param(p: ast.Param) -> str:
    """`stride = 1`, as the printer writes a parameter."""
    return p.name if p.default is None else f"{p.name} = {ast.show(p.default)}"


def _comment_above(d: ast.Definition | None) -> str:
    """The `#` lines just above a definition: its documentation."""
    if d is None or d.span is None:
        return ""
    lines = d.span.source.text.split("\n")
    n, found = d.span.line - 2, []
    while n >= 0 and lines[n].lstrip().startswith("#"):
        found.append(lines[n].lstrip()[1:].strip())
        n -= 1
    return "\n".join(reversed(found))


def _layer_hover(doc: Analysed, line: int, word: str) -> str | None:
    layers = doc.layers.get(line)
    if not layers:
        return None
    made = [f for f in layers if f.layer.groups == layers[0].layer.groups]  # the statement, in its first place
    parts = []
    for f in made:
        op = REGISTRY[f.layer.op]
        parts.append(f"**{f.layer.id}** · `{f.op_text}` → **{fmt_shape(f.layer.shape)}**  \n"
                     f"params {f.params:,} · MACs {human(f.macs)} ({f.macs:,}) · receptive field "
                     f"{f.receptive_field}" + (f" · {op.doc}" if len(made) == 1 and op.doc else ""))
        parts.append("```\n" + "\n".join(f.explain()) + "\n```")
    places = outputs(layers)
    if len(places) > 1:
        parts.append(f"made {len(places)} times (once a call): output {shapes_text(layers)}")
    return "\n\n".join(parts)


def _param_hover(doc: Analysed, line: int, word: str) -> str | None:
    d = enclosing(doc, line)
    if d is None or word not in {p.name for p in d.params}:
        return None
    p = next(p for p in d.params if p.name == word)
    default = f" (default `{ast.show(p.default)}`)" if p.default is not None else " (no default)"
    if d.kind == "network":
        values = [r.analysis.graph.params.get(word) for r in doc.reports if r.analysis.graph.name == d.name]
        if values:
            return f"parameter `{word}` of network `{d.name}` = **{values[0]!r}** here{default}"
    if d.kind == "block":
        calls = [c for cs in doc.calls.values() for c in cs if c.group.title.split()[0] == d.name]
        if calls:
            shown = "\n".join(f"- `{c.group.title}`" for c in calls[:8])
            return f"parameter `{word}` of block `{d.name}`{default}; its calls here:\n{shown}"
    return f"parameter `{word}` of {d.kind} `{d.name}`{default}"


def _kind_hover(doc: Analysed, word: str) -> str | None:
    op = lookup(word)
    if op is None:
        return None
    return f"**{op.name}** ({op.category}): {op.doc}\n\n{_args_doc(op)}\n\nshape: {op.shape_rule}"


def _args_doc(op) -> str:
    lines = []
    for a in op.args:
        default = "required" if a.default is REQUIRED else f"default {a.default!r}"
        choices = f"; one of {', '.join(a.choices)}" if a.choices else ""
        lines.append(f"- `{a.name}` ({a.kind}, {default}{choices}): {a.doc}")
    return "\n".join(lines)


def enclosing(doc: Analysed, line: int) -> ast.Definition | None:
    for d in doc.diagnosis.program.main:
        if d.span is not None and d.span.line <= line <= (d.close.line if d.close else d.span.line):
            return d
    return None


# ---- inlay hints --------------------------------------------------------------------------------------------


def inlay_hints(doc: Analysed, first: int, last: int) -> list[t.InlayHint]:
    """Each layer line's output shape at its end (`64x56x56`), and a block call's totals."""
    hints = []
    lines = doc.lines
    for line in range(first, last + 1):
        calls, layers = doc.calls.get(line), doc.layers.get(line)
        if calls:
            label = " · ".join(f"{fmt_shape(c.output.layer.shape)}, {human(c.params)} params" for c in calls[:2])
        elif layers:
            label = shapes_text(layers)
        else:
            continue
        end = _statement_end(doc, line)
        text = lines[end - 1] if end <= len(lines) else ""
        hints.append(t.InlayHint(t.Position(end - 1, len(text.rstrip())), f" {label}", kind=t.InlayHintKind.Type,
                                 padding_left=True))
    return hints


def _statement_end(doc: Analysed, line: int) -> int:
    """The line a statement starting at `line` ends on: a call over several lines gets its hint at its end, a
    body (`residual {`) at its first line."""
    text = doc.lines[line - 1] if line <= len(doc.lines) else ""
    depth, n = 0, line
    while n <= len(doc.lines):
        code = _strip(doc.lines[n - 1])
        depth += code.count("(") - code.count(")")
        if depth <= 0 or "{" in text:
            return n
        n += 1
    return line


def _strip(line: str) -> str:
    return re.sub(r'"[^"]*"', "", line).split("#")[0]


# ---- completion ---------------------------------------------------------------------------------------------


def completion(doc: Analysed, line: int, col: int) -> list[t.CompletionItem]:
    text = doc.lines[line - 1][:col] if line <= len(doc.lines) else ""
    if re.match(r'\s*use\s+"[^"]*$', text):
        return [t.CompletionItem(name, kind=t.CompletionItemKind.File, detail="standard library")
                for name in _std_files()]
    words = _strip(text).split()
    head = words[0] if words else ""
    value = re.search(r"([A-Za-z_]\w*)=([A-Za-z_]\w*)?$", text)
    op = lookup(head)
    if value and op is not None and op.arg(value.group(1)) is not None:
        return _values(op.arg(value.group(1))) + _names_in_scope(doc, line)
    starting = len(words) == 0 or (len(words) == 1 and not text[-1:].isspace())
    if starting:
        return _kinds() + _blocks(doc) + _keywords()
    if op is not None:
        return _arguments(op) + _names_in_scope(doc, line)
    d = doc.diagnosis.program.definitions.get(head)
    if d is not None and d.kind == "block":
        return [t.CompletionItem(f"{p.name}=", kind=t.CompletionItemKind.Property, insert_text=f"{p.name}=",
                                 detail=f"parameter of {d.name}") for p in d.params] + _names_in_scope(doc, line)
    return _names_in_scope(doc, line)


@functools.cache
def _kinds() -> list[t.CompletionItem]:
    return [t.CompletionItem(op.name, kind=t.CompletionItemKind.Class, detail=op.category,
                             documentation=t.MarkupContent(t.MarkupKind.Markdown,
                                                           f"{op.doc}\n\n{_args_doc(op)}\n\nshape: {op.shape_rule}"))
            for op in REGISTRY.values()]


def _keywords() -> list[t.CompletionItem]:
    return [t.CompletionItem(k, kind=t.CompletionItemKind.Keyword) for k in sorted(KEYWORDS)]


def _arguments(op) -> list[t.CompletionItem]:
    return [t.CompletionItem(f"{a.name}=", kind=t.CompletionItemKind.Property, insert_text=f"{a.name}=",
                             detail=a.kind + (f": {' | '.join(a.choices)}" if a.choices else ""),
                             documentation=a.doc or None) for a in op.args]


def _values(a) -> list[t.CompletionItem]:
    if a.choices:
        return [t.CompletionItem(c, kind=t.CompletionItemKind.EnumMember, detail=a.name) for c in a.choices]
    if a.kind == "padding":
        return [t.CompletionItem(v, kind=t.CompletionItemKind.EnumMember, detail=a.name) for v in ("valid", "same")]
    if a.kind == "bool":
        return [t.CompletionItem(v, kind=t.CompletionItemKind.Value) for v in ("true", "false")]
    return []


def _blocks(doc: Analysed) -> list[t.CompletionItem]:
    """The blocks the document can call (its own and its `use`d files'), then the standard library's others, each
    with the `use` line it needs."""
    program = doc.diagnosis.program
    items = [t.CompletionItem(d.name, kind=t.CompletionItemKind.Function, detail=f"{d.kind} ({d.span.source.name})",
                              documentation=_comment_above(d) or None)
             for d in program.definitions.values() if d.kind in ("block", "function") and d.span is not None]
    known = set(program.definitions)
    for file, blocks in _std_blocks().items():
        need = t.TextEdit(t.Range(t.Position(0, 0), t.Position(0, 0)), f'use "{file}"\n')
        items += [t.CompletionItem(name, kind=t.CompletionItemKind.Function, detail=f"block ({file}, adds `use`)",
                                   additional_text_edits=[need]) for name in blocks if name not in known]
    return items


@functools.cache
def _std_files() -> tuple[str, ...]:
    return tuple(f"std/{p.stem}" for p in sorted(STD_DIR.glob("*.cnn")))


@functools.cache
def _std_blocks() -> dict[str, tuple[str, ...]]:
    from cnndsl.syntax.parser import parse_tolerant

    out = {}
    for name in _std_files():
        module = parse_tolerant((STD_DIR / f"{name[4:]}.cnn").read_text(), f"{name}.cnn").module
        out[name] = tuple(d.name for d in module.definitions if d.kind == "block")
    return out


def _names_in_scope(doc: Analysed, line: int) -> list[t.CompletionItem]:
    d = enclosing(doc, line)
    if d is None:
        return []
    names = [p.name for p in d.params] + [s.name for s in _lets(d.body)]
    return [t.CompletionItem(n, kind=t.CompletionItemKind.Variable, detail=f"in {d.name}")
            for n in dict.fromkeys(names)]


def _lets(stmts) -> list[ast.Let]:
    found = []
    for s in stmts:
        if isinstance(s, ast.Let):
            found.append(s)
        for inner in _children(s):
            found += _lets(inner)
    return found


def _children(s) -> list[list]:
    if isinstance(s, (ast.Repeat, ast.Frozen)):
        return [s.body]
    if isinstance(s, ast.If):
        return [a.body for a in s.arms] + [s.orelse]
    if isinstance(s, ast.Residual):
        return [s.body, s.shortcut or []]
    if isinstance(s, ast.Merge):
        return list(s.branches)
    if isinstance(s, ast.Labeled):
        return [[s.stmt]]
    return []


# ---- definition, symbols, folding ------------------------------------------------------------------------


def definition(doc: Analysed, line: int, col: int) -> t.Location | None:
    text = doc.lines[line - 1] if line <= len(doc.lines) else ""
    use = re.match(r'\s*use\s+"([^"]*)"', text)
    if use:
        target = _use_file(doc, use.group(1))
        if target is not None:
            return t.Location(target.as_uri(), t.Range(t.Position(0, 0), t.Position(0, 0)))
        return None
    found = word_at(text, col)
    d = doc.diagnosis.program.definitions.get(found[0]) if found else None
    if d is None or d.span is None:
        return None
    return t.Location(file_of(d.span.source.name).as_uri(), to_range(d.span))


def _use_file(doc: Analysed, path: str) -> Path | None:
    name = path if path.endswith(".cnn") else path + ".cnn"
    if name.startswith("std/"):
        target = STD_DIR / name[4:]
    elif doc.name.startswith("<"):
        return None
    else:
        target = Path(doc.name).resolve().parent / name
    return target if target.is_file() else None


KINDS = {"network": t.SymbolKind.Class, "block": t.SymbolKind.Function, "function": t.SymbolKind.Function}


def symbols(doc: Analysed) -> list[t.DocumentSymbol]:
    out = []
    for d in doc.diagnosis.program.main:
        if not d.name or d.span is None:
            continue
        end = d.close or d.span
        whole = t.Range(t.Position(d.span.line - 1, 0), t.Position(end.line - 1, end.col))
        detail = f"({', '.join(p.name for p in d.params)})"
        out.append(t.DocumentSymbol(d.name, KINDS[d.kind], whole, to_range(d.span), detail=detail))
    return out


def folding(doc: Analysed) -> list[t.FoldingRange]:
    """Each definition, and each statement with a body over several lines (repeat, residual, branches, ...)."""
    ranges = []
    for d in doc.diagnosis.program.main:
        if d.span is not None and d.close is not None and d.close.line > d.span.line:
            ranges.append(t.FoldingRange(d.span.line - 1, d.close.line - 1))
        ranges += _fold_body(d.body)
    return ranges


def _fold_body(stmts) -> list[t.FoldingRange]:
    out = []
    for s in stmts:
        span = getattr(s, "span", None)
        if span is not None and span.end_line and span.end_line > span.line and _children(s):
            out.append(t.FoldingRange(span.line - 1, span.end_line - 1))
        for inner in _children(s):
            out += _fold_body(inner)
    return out


# ---- formatting, code actions, rename ---------------------------------------------------------------------


def formatting(doc: Analysed) -> list[t.TextEdit] | None:
    """The printer's text as one edit; none for a text with syntax errors (the printer refuses them)."""
    try:
        formatted = format_text(doc.text, doc.name)
    except CnnError:
        return None
    if formatted == doc.text:
        return []
    lines = doc.lines
    return [t.TextEdit(t.Range(t.Position(0, 0), t.Position(len(lines) - 1, len(lines[-1]))), formatted)]


def code_actions(doc: Analysed, uri: str, first: int, last: int) -> list[t.CodeAction]:
    """Quick fixes from the hints of the errors on lines first..last: did-you-mean, `flatten`, the C x H x W
    input, a shortcut."""
    actions = []
    for e in doc.diagnosis.errors:
        span = e.span
        if span is None or span.source.name != doc.name or not e.hint:
            continue
        if not (span.line <= last and (span.end_line or span.line) >= first):
            continue
        fix = _fix(doc, e)
        if fix is not None:
            title, edits = fix
            actions.append(t.CodeAction(title, kind=t.CodeActionKind.QuickFix, is_preferred=True,
                                        diagnostics=[_diagnostic(e.diagnostic, doc.lines)],
                                        edit=t.WorkspaceEdit(changes={uri: edits})))
    return actions


def _fix(doc: Analysed, e: CnnError) -> tuple[str, list[t.TextEdit]] | None:
    span, hint, lines = e.span, e.hint, doc.lines
    text = lines[span.line - 1]
    mean = re.match(r"did you mean `([A-Za-z_]\w*)`\?", hint)
    wrong = re.search(r"`([A-Za-z_]\w*)`", e.message.split(" has no ")[-1] if " has no " in e.message else e.message)
    if mean and wrong:
        at = _find_word(text, wrong.group(1), span.col - 1)
        if at is not None:
            where = t.Range(t.Position(span.line - 1, at), t.Position(span.line - 1, at + len(wrong.group(1))))
            return f"change `{wrong.group(1)}` to `{mean.group(1)}`", [t.TextEdit(where, mean.group(1))]
    if hint.startswith("add `flatten` before it"):
        indent = text[:len(text) - len(text.lstrip())]
        return "insert `flatten` before it", [t.TextEdit(t.Range(t.Position(span.line - 1, 0),
                                                                 t.Position(span.line - 1, 0)), f"{indent}flatten\n")]
    size = re.match(r"write `input (\d+(?:x\d+)+)`", hint)
    old = re.search(r"input (\d+(?:x\d+)+) reads as", e.message)
    if size and old and old.group(1) in text:
        at = text.index(old.group(1))
        where = t.Range(t.Position(span.line - 1, at), t.Position(span.line - 1, at + len(old.group(1))))
        return f"write `input {size.group(1)}` (C x H x W)", [t.TextEdit(where, size.group(1))]
    shortcut = re.search(r"`(shortcut \{[^`]*\})`", hint)
    if shortcut and span.end_line:
        end = t.Position(span.end_line - 1, span.end_col - 1)
        return f"add `{shortcut.group(1)}`", [t.TextEdit(t.Range(end, end), f" {shortcut.group(1)}")]
    return None


def _find_word(text: str, word: str, start: int) -> int | None:
    for m in WORD.finditer(text):
        if m.group() == word and m.start() >= start:
            return m.start()
    return None


def prepare_rename(doc: Analysed, line: int, col: int) -> t.Range | None:
    target = _rename_target(doc, line, col)
    if target is None:
        return None
    word, start, _ = target
    return t.Range(t.Position(line - 1, start), t.Position(line - 1, start + len(word)))


def rename(doc: Analysed, uri: str, line: int, col: int, new: str) -> t.WorkspaceEdit | None:
    """A block (or function) of this file, or a parameter of the definition around the cursor, renamed
    everywhere in the file: a block parameter also where calls give it by name (`stage 64 blocks=3`)."""
    target = _rename_target(doc, line, col)
    if target is None:
        return None
    if not WORD.fullmatch(new) or new in KEYWORDS or lookup(new) is not None:
        raise ValueError(f"`{new}` is not a name a spec may define")
    word, _, owner = target
    edits = []
    for n, c, w in identifiers(doc.text):
        if w != word:
            continue
        keyword = doc.lines[n - 1][c + len(w):].lstrip().startswith("=")
        declared = _is_param_decl(doc, n, w)
        if owner is None:  # a block: every use but a keyword argument of the same name
            keep = not keyword or declared
        else:  # in its definition (not `stride=` of a layer there), and where calls of its block name it
            inside = owner.span.line <= n <= owner.close.line
            keep = (inside and (not keyword or declared)) or (
                owner.kind == "block" and keyword and _call_head(doc, n) == owner.name)
        if keep:
            edits.append(t.TextEdit(t.Range(t.Position(n - 1, c), t.Position(n - 1, c + len(w))), new))
    return t.WorkspaceEdit(changes={uri: edits})


def _rename_target(doc: Analysed, line: int, col: int):
    """(word, start column, the definition whose parameter it is, or None for a definition's name)."""
    text = doc.lines[line - 1] if line <= len(doc.lines) else ""
    found = word_at(text, col)
    if found is None:
        return None
    word, start = found
    d = enclosing(doc, line)
    if d is not None and d.close is not None and word in {p.name for p in d.params}:
        keyword = text[start + len(word):].lstrip().startswith("=") and not _is_param_decl(doc, line, word)
        if not keyword:
            return word, start, d
    own = {x.name for x in doc.diagnosis.program.main if x.kind in ("block", "function")}
    if word in own:
        return word, start, None
    return None


def _is_param_decl(doc: Analysed, line: int, word: str) -> bool:
    return any(p.span is not None and p.span.line == line and p.name == word
               for d in doc.diagnosis.program.main for p in d.params)


def _call_head(doc: Analysed, line: int) -> str:
    words = _strip(doc.lines[line - 1]).split()
    return words[0] if words else ""
