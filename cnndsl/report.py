"""Renders an analysis: the text table of `cnndsl check`, --json, --markdown, --explain, and the HTML table that
`check --html` and a notebook show."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass

from cnndsl.analysis import Analysis, LayerFigures
from cnndsl.errors import printable
from cnndsl.graph import Group
from cnndsl.ops.base import fmt_shape


@dataclass
class Row:
    index: str  # layer number, or "" for a group row
    name: str
    op: str
    output: str
    params: int
    macs: int
    rf: int
    figures: LayerFigures | None = None  # a layer row; None for a group
    id: str = ""  # the layer's or the group's id
    folded: bool = False  # a group shown as one row: its layers have no rows of their own


def human(n: float) -> str:
    """117.6 K, 3.7 G: MACs as papers quote them."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return str(int(n))


def mib(n: int) -> str:
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / 1024 / 1024:.1f} MiB"


def _visible(a: Analysis, f: LayerFigures) -> list[str]:
    return [g for g in f.layer.groups if a.graph.groups[g].kind != "branch"]


def _group_totals(a: Analysis) -> dict[str, tuple[int, int, LayerFigures]]:
    totals: dict[str, tuple[int, int, LayerFigures]] = {}
    for f in a.layers:
        for g in f.layer.groups:
            p, m, _ = totals.get(g, (0, 0, f))
            totals[g] = (p + f.params, m + f.macs, f)
    return totals


def relative_name(name: str, parent: str | None) -> str:
    """A dotted id as shown inside the group `parent`: `stage2.basic1` → `basic1`."""
    return name[len(parent) + 1:] if parent and name.startswith(parent + ".") else name


def fold(a: Analysis, f: LayerFigures, depth: int | None) -> tuple[list[str], str | None]:
    """Where layer `f` shows at `depth`: the groups open around it, outermost first, and the group it
    folds into (None when the layer has a row of its own). The diagram places its nodes the same way."""
    vis = _visible(a, f)
    keep = len(vis) if depth is None else min(len(vis), max(depth, 1) - 1)
    return vis[:keep], vis[keep] if len(vis) > keep else None


def rows(a: Analysis, depth: int | None = None) -> list[Row]:
    """Table rows in order: a header row where a group opens; groups deeper than `depth` fold into one row.

    Layer rows are numbered by their place in the network, so folded layers keep their numbers taken.
    """
    totals = _group_totals(a)
    out: list[Row] = []
    open_groups: list[str] = []
    folded = None
    for number, f in enumerate(a.layers[1:], 1):
        kept, into = fold(a, f, depth)
        keep = len(kept)
        shared = 0
        while shared < min(len(open_groups), keep) and open_groups[shared] == kept[shared]:
            shared += 1
        open_groups = open_groups[:shared]
        for g in kept[shared:]:
            out.append(_group_row(a.graph.groups[g], totals[g], len(open_groups), open_groups))
            open_groups.append(g)
        if into is not None:  # inside a group deeper than `depth`: one row for the whole group
            if into != folded:
                folded = into
                out.append(_group_row(a.graph.groups[folded], totals[folded], keep, open_groups, folded=True))
            continue
        folded = None
        name = "  " * keep + relative_name(f.layer.id, _last(open_groups))
        out.append(Row(str(number), name, f.op_text, fmt_shape(f.layer.shape), f.params, f.macs,
                       f.receptive_field, f, f.layer.id))
    return out


def _last(groups: list[str]) -> str | None:
    return groups[-1] if groups else None


def _group_row(group: Group, total, level: int, open_groups: list[str], folded: bool = False) -> Row:
    params, macs, last = total
    name = "  " * level + relative_name(group.id, _last(open_groups))
    return Row("", name, group.title, fmt_shape(last.layer.shape), params, macs, last.receptive_field,
               id=group.id, folded=folded)


HEAD = ("#", "layer", "op", "output", "params", "MACs", "RF")


def row_cells(r: Row) -> tuple[str, ...]:
    """A row's cells as the table prints them (the name with its indent): what --html shows too. A block call's
    title may quote spec strings: their control characters are shown as `?`."""
    return (r.index, r.name, printable(r.op, False), r.output, f"{r.params:,}", human(r.macs) if r.macs else "—",
            str(r.rf))


Segment = tuple[str, "str | None"]  # some text of the table, and its style when printed in colour

# rich's style names, for a terminal (`check --color`); the plain text is the same characters without them
STYLES = {"title": "bold", "head": "bold", "group": "bold cyan", "folded": "cyan", "frozen": "blue",
          "shape": "green", "params": "yellow", "macs": "magenta", "none": "dim", "explain": "dim", "label": "bold"}


def text(a: Analysis, source: str, depth: int | None = None, explain: bool = False) -> str:
    return "".join([t for t, _ in segments(a, source, depth, explain, styled=False)])


def coloured(a: Analysis, source: str, depth: int | None = None, explain: bool = False):
    """The table of `text()` as a rich Text, styled. rich loads only here, when a terminal shows colour."""
    from rich.text import Text

    out = Text()
    for t, style in segments(a, source, depth, explain):
        out.append(t, STYLES.get(style or "", None))
    return out


def segments(a: Analysis, source: str, depth: int | None = None, explain: bool = False,
             styled: bool = True) -> list[Segment]:
    """The text table as styled pieces: joined, they are exactly what `cnndsl check` prints.
    styled=False gives a line a piece (no styles): the plain table, as fast as plain strings."""
    table = rows(a, depth)
    head = HEAD
    cells = [row_cells(r) for r in table]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(head)]
    right = {0, 4, 5, 6}

    def line(values, styles) -> list[Segment]:  # a cell's padding shares its style: colour shows no blanks
        cells = [v.rjust(w) if i in right else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths))]
        if not styled:
            return [("  ".join(cells).rstrip(), None)]
        return _rstrip([("  " + c if i else c, style) for i, (c, style) in enumerate(zip(cells, styles(values)))])

    g = a.graph
    lines = [[(f"{g.name} · {printable(source, False)} · input {fmt_shape(g.input.shape)}", "title")],
             line(head, lambda _: ["head"] * 7)]
    for r, c in zip(table, cells):
        lines.append(line(c, lambda c, r=r: _row_styles(r, c)))
        if explain and r.figures is not None:
            indent = " " * (widths[0] + 2)
            lines += [[(f"{indent}  {printable(text, False)}", "explain")] for text in r.figures.explain()]
    lines.append([])
    lines += [[(label, "label"), (value, None)] for label, value in total_rows(a)]
    out: list[Segment] = []
    for i, pieces in enumerate(lines):
        out += [("\n", None)] * bool(i) + pieces
    return out


def _row_styles(r: Row, cells: tuple[str, ...]) -> list[str | None]:
    if r.figures is None:
        name = "folded" if r.folded else "group"
    else:
        name = "frozen" if r.figures.layer.frozen else None
    return [None, name, name if r.figures is None else None, "shape", "params",
            "none" if cells[5] == "—" else "macs", None]


def _rstrip(pieces: list[Segment]) -> list[Segment]:
    """Drops the trailing blanks of a line, as str.rstrip would."""
    pieces = list(pieces)
    while pieces and not pieces[-1][0].rstrip():
        pieces.pop()
    if pieces:
        pieces[-1] = (pieces[-1][0].rstrip(), pieces[-1][1])
    return pieces


def totals(a: Analysis) -> list[str]:
    return [label + value for label, value in total_rows(a)]


def total_rows(a: Analysis) -> list[tuple[str, str]]:
    out = a.output.layer.shape
    rf_h, rf_w = a.output.rf
    rf = str(rf_h) if rf_h == rf_w else f"{rf_h}x{rf_w}"
    rows = [
        ("Output", fmt_shape(out)),
        ("Total params", f"{a.params:,}  (trainable {a.trainable_params:,}, frozen {a.frozen_params:,})"),
        ("Buffers", f"{a.buffers:,}  (batchnorm running statistics; Keras counts these as non-trainable params)"),
        ("MACs", f"{a.macs:,}  ({human(a.macs)}; conv and dense multiply-accumulates, bias excluded)"),
        ("Receptive field", f"{rf} pixels"),
        ("Memory", f"{mib(a.weight_bytes)} weights, {mib(a.activation_bytes)} activations per sample (float32)"),
    ]
    return [(f"{label:<16}", value) for label, value in rows]


def as_dict(a: Analysis, source: str | None = None) -> dict:
    g = a.graph
    return {
        "network": g.name,
        "file": source,
        "parameters": {k: _jsonable(v) for k, v in g.params.items()},
        "input": list(g.input.shape),
        "output": list(a.output.layer.shape),
        "params": a.params,
        "trainable_params": a.trainable_params,
        "frozen_params": a.frozen_params,
        "buffers": a.buffers,
        "macs": a.macs,
        "receptive_field": a.receptive_field,
        "memory": {"weights_bytes": a.weight_bytes, "buffers_bytes": a.buffer_bytes,
                   "activations_bytes": a.activation_bytes},
        "layers": [_layer_dict(f) for f in a.layers],
        "groups": [{"name": grp.id, "title": grp.title, "kind": grp.kind} for grp in g.groups.values()],
    }


def _layer_dict(f: LayerFigures) -> dict:
    layer = f.layer
    return {
        "name": layer.id,
        "op": f.op_text,
        "kind": layer.op,
        "args": {k: _jsonable(v) for k, v in layer.args.items()},
        "inputs": layer.inputs,
        "output": list(layer.shape),
        "params": f.params,
        "buffers": f.buffers,
        "macs": f.macs,
        "receptive_field": f.receptive_field,
        "receptive_field_hw": list(f.rf),
        "frozen": layer.frozen,
        "groups": list(layer.groups),
        "line": layer.span.line,
    }


def _jsonable(v):
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, (int, float, bool, str)) or v is None:
        return v
    return str(v)


def to_json(a: Analysis, source: str | None = None, warnings: list | None = None) -> str:
    data = as_dict(a, source)
    data["warnings"] = [w.render() for w in warnings or []]
    return json.dumps(data, indent=2)


def markdown(a: Analysis, source: str, depth: int | None = None) -> str:
    g = a.graph
    lines = [f"### {g.name}", "", f"`{printable(source, False)}` · input `{fmt_shape(g.input.shape)}`", "",
             "| # | layer | op | output | params | MACs | RF |", "|--:|---|---|---|--:|--:|--:|"]
    for r in rows(a, depth):
        name = r.name.strip()
        op = printable(r.op, False)
        lines.append(f"| {r.index} | `{name}` | {op} | {r.output} | {r.params:,} | {r.macs:,} | {r.rf} |")
    lines += ["", "| total | |", "|---|--:|", f"| params | {a.params:,} |",
              f"| trainable | {a.trainable_params:,} |", f"| frozen | {a.frozen_params:,} |",
              f"| buffers | {a.buffers:,} |", f"| MACs | {a.macs:,} |",
              f"| receptive field | {a.receptive_field} |", f"| weights | {mib(a.weight_bytes)} |",
              f"| activations per sample | {mib(a.activation_bytes)} |"]
    return "\n".join(lines)

# ---- HTML: the pieces of `check --html` (viz/page.py) and of a Spec's or a Report's display in a notebook ----
# Every piece of user text (file names, layer names, call arguments, warnings) goes through esc.


def esc(text: object) -> str:
    """Text for HTML: &, <, >, and both quotes escaped (safe in elements and attribute values)."""
    return html.escape(str(text), quote=True)


def summary_html(a: Analysis) -> str:
    return (f'<p>input <code>{esc(fmt_shape(a.graph.input.shape))}</code> → output '
            f'<code>{esc(fmt_shape(a.output.layer.shape))}</code> · {a.params:,} parameters · '
            f"{esc(human(a.macs))} MACs · receptive field {a.receptive_field} · {len(a.layers) - 1} layers</p>")


def table_html(a: Analysis, depth: int | None = None) -> str:
    """The check table: a <tbody> per row of `check --depth`; a layer's holds a second row under it, the whole
    table wide, with the arithmetic `--explain` prints (shown by a click on the layer's name)."""
    right = {0, 4, 5, 6}
    head = "".join(f'<th class="num">{h}</th>' if i in right else f"<th>{h}</th>" for i, h in enumerate(HEAD))
    body = "\n".join(_row_html(r) for r in rows(a, depth))
    return f'<div class="scroll"><table class="layers"><thead><tr>{head}</tr></thead>\n{body}\n</table></div>'


def _row_html(r: Row) -> str:
    index, name, op, output, params, macs, rf = row_cells(r)
    level = (len(name) - len(name.lstrip(" "))) // 2
    why = ""
    if r.figures is None:
        kind = "folded" if r.folded else "group"
        label = esc(name.strip())
    else:
        kind = "layer frozen" if r.figures.layer.frozen else "layer"
        label = f'<details class="why"><summary>{esc(name.strip())}</summary></details>'  # opens the row below
        why = (f'<tr class="why"><td></td><td colspan="{len(HEAD) - 1}"><pre>{esc(chr(10).join(r.figures.explain()))}'
               "</pre></td></tr>")
    none = " none" if macs == "—" else ""
    return (f'<tbody><tr class="{kind}" data-id="{esc(r.id)}" id="row-{esc(r.id)}"><td class="num">{index}</td>'
            f'<td class="name" style="padding-left:{0.6 + 1.2 * level:.1f}em">{label}</td><td>{esc(op)}</td>'
            f'<td class="shape">{esc(output)}</td><td class="num">{params}</td><td class="num{none}">{macs}</td>'
            f'<td class="num">{rf}</td></tr>{why}</tbody>')


def totals_html(a: Analysis) -> str:
    cells = "".join(f"<tr><td>{esc(label.strip())}</td><td>{esc(value)}</td></tr>" for label, value in total_rows(a))
    return f'<table class="totals">{cells}</table>'


def warnings_html(warnings) -> str:
    if not warnings:
        return ""
    items = "".join(f"<li><pre>{esc(w.render())}</pre></li>" for w in warnings)
    return f'<h2>Warnings</h2><ul class="warnings">{items}</ul>'


# a notebook's page is not ours: the styles are scoped to the report's own element, and say what Jupyter's
# defaults would change. JupyterLab right-aligns every cell with a selector of two classes and a tag, so the
# cells' rules name two classes too.
NOTEBOOK_CSS = """<style>
.cnndsl-report table { border-collapse: collapse; font-size: 12px; margin: 0; }
.cnndsl-report table.layers th, .cnndsl-report table.layers td, .cnndsl-report table.totals td {
  padding: 1px 8px; text-align: left; vertical-align: top; white-space: nowrap; }
.cnndsl-report table.layers .num { text-align: right; }
.cnndsl-report td.shape, .cnndsl-report td.num { font-family: monospace; }
.cnndsl-report tr.group td { background: #eef3fb; font-weight: 600; }
.cnndsl-report tr.folded td { background: #f4f7fc; } .cnndsl-report tr.frozen td.name { color: #3557a0; }
.cnndsl-report td.none { color: #999; } .cnndsl-report details summary { cursor: pointer; }
.cnndsl-report tr.why td { white-space: normal; } .cnndsl-report tr.why pre { margin: 0; font-size: 11px; }
.cnndsl-report tr.why { display: none; } .cnndsl-report tbody:has(details.why[open]) tr.why { display: table-row; }
.cnndsl-report .parts { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; }
.cnndsl-report .diagram svg { max-height: 720px; width: auto; height: auto; }
.cnndsl-report .scroll { max-height: 40em; overflow: auto; } .cnndsl-report table.totals { margin-top: .6em; }
.cnndsl-report .warnings pre { color: #8a5a00; margin: .2em 0; }
</style>"""


def notebook_html(a: Analysis, source: str, warnings=(), diagram: str | None = None, depth: int | None = None) -> str:
    """A Spec's or a Report's display in a notebook: a line naming the network and its figures, the diagram
    (inline SVG, when one is given) beside the table of `check` (folded at `depth`), the totals, the warnings."""
    title = f"<b>{esc(a.graph.name)}</b> · {esc(source)}"
    figures = summary_html(a).removeprefix("<p>")
    drawn = f'<div class="diagram">{diagram}</div>' if diagram else ""
    notes = "".join(f"<pre>{esc(w.render())}</pre>" for w in warnings)
    return (f'<div class="cnndsl-report">{NOTEBOOK_CSS}<p>{title} · {figures}<div class="parts">{drawn}<div>'
            f"{table_html(a, depth)}{totals_html(a)}</div></div>"
            + (f'<div class="warnings">{notes}</div>' if notes else "") + "</div>")
