"""The spec as a page: `cnndsl check SPEC --html FILE`, and the spec part of every run's report.html.

One self-contained HTML file: the diagram as inline SVG, the table of `cnndsl check` (its rows and
figures, from report.rows), each layer's `--explain` arithmetic in a <details> of its row, the totals
and the spec's text. No script, no external file, no network: it opens from file://. Every piece of
user text (file names, spec text, names, call arguments, class names) goes through html.escape.
Nothing here imports torch.
"""

from __future__ import annotations

import re
from pathlib import Path
from string import Template

from cnndsl.analysis import Analysis
from cnndsl.errors import MAX_ERRORS, CnnError
from cnndsl.files import atomic_write
from cnndsl.fonts import CSS_FAMILIES, CSS_MONO
from cnndsl.report import esc, summary_html, table_html, totals_html, warnings_html

MAX_DIAGRAM_NODES = 90  # beyond, the diagram folds block calls (as --depth) until it fits a screen or two
PAGE_NODES = 600  # a diagram that stays larger at every depth is left out (dot takes seconds per hundred nodes)

CSS = """
body { font: 14px/1.45 $families; color: #222;
       margin: 0 auto; padding: 1em 2em 4em; max-width: 1280px; }
h1 { font-size: 1.6em; margin: .3em 0; } h2 { font-size: 1.25em; margin: 1.6em 0 .5em;
     border-bottom: 1px solid #ddd; padding-bottom: .2em; }
.sub { color: #555; } code, pre, td.num, td.shape { font-family: $mono; }
nav a { margin-right: 1em; }
.diagram { overflow: auto; max-height: 90vh; border: 1px solid #e4e4e4; border-radius: 4px; padding: .5em;
           background: #fff; }
.diagram svg { display: block; margin: 0 auto; max-width: 100%; height: auto; }  /* wide: scaled to fit */
.note { background: #fff8e0; border: 1px solid #e8d48a; border-radius: 4px; padding: .5em .8em; }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 2px 10px; text-align: left; vertical-align: top; white-space: nowrap; }
th { background: #f0f2f5; position: sticky; top: 0; }
td.num, th.num { text-align: right; }
tbody:nth-of-type(even) tr { background: #fafafa; }  /* a tbody per check row: its layer and arithmetic */
tr.group td { background: #eef3fb; font-weight: 600; } tr.folded td { background: #f4f7fc; font-weight: 500; }
tr.frozen td.name { color: #3557a0; }
td.none { color: #999; }
tr:target td { background: #fff1a8; }
tr.best td { background: #fdecea; font-weight: 600; }
details summary { cursor: pointer; }
tr.why td { padding: .1em 10px .6em; white-space: normal; }
tr.why pre { margin: 0; color: #444; font-size: 12px; white-space: pre; overflow-x: auto; }
@supports selector(:has(a)) {  /* a click on a layer's name shows its arithmetic; without :has, all of it shows */
  tr.why { display: none; } tbody:has(details.why[open]) tr.why { display: table-row; }
}
pre.error { background: #fff5f5; border-left: 3px solid #c62828; padding: .6em .8em; overflow-x: auto; }
table.totals td:first-child { font-weight: 600; }
.spec pre { background: #f7f7f7; border: 1px solid #e4e4e4; padding: .6em; overflow: auto; max-height: 40em; }
.warnings li { color: #8a5a00; }
figure { margin: .5em 0; } figcaption { color: #555; font-size: 13px; }
img.plot { max-width: 100%; height: auto; }
.gallery { display: flex; flex-wrap: wrap; gap: 12px; }
.gallery figure { width: 136px; margin: 0; font-size: 12px; }
.gallery figcaption span { display: block; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.gallery img { width: 112px; height: 112px; object-fit: contain; image-rendering: pixelated;
               background: #000; display: block; }
.scroll { overflow: auto; max-height: 80vh; }
"""

PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<style>$css</style>
</head>
<body>
$body
</body>
</html>
""")


def document(title: str, body: str) -> str:
    """A whole page around `body` (HTML already escaped); `title` is plain text."""
    css = Template(CSS).substitute(families=CSS_FAMILIES, mono=CSS_MONO)
    return PAGE.substitute(title=esc(title), css=css, body=body)


def spec_page(report, spec_text: str | None = None, depth: int | None = None) -> str:
    """The page of `cnndsl check SPEC --html`: a heading, then spec_section."""
    a = report.analysis
    head = f"<h1>{esc(a.graph.name)}</h1>\n<p class=\"sub\">{esc(report.source)}</p>"
    return document(f"{a.graph.name} · cnndsl check", head + "\n" + spec_section(report, spec_text, depth))


def spec_section(report, spec_text: str | None = None, depth: int | None = None) -> str:
    """The diagram, the check table (folded at `depth`, as `check --depth`), the totals, warnings and text."""
    a = report.analysis
    parts = ['<section id="network">', "<h2>The network</h2>", summary_html(a), diagram_html(a, depth),
             '<h2 id="layers">Layers</h2>', '<p class="sub">As <code>cnndsl check</code> prints them; click a '
             "layer for the arithmetic behind its figures (<code>--explain</code>).</p>", table_html(a, depth),
             '<h2 id="totals">Totals</h2>', totals_html(a), warnings_html(report.warnings)]
    if spec_text:
        parts.append(f'<details class="spec"><summary>The spec\'s text</summary><pre>{esc(spec_text)}</pre>'
                     "</details>")
    parts.append("</section>")
    return "\n".join(p for p in parts if p)


def error_page(source: str, errors: list[CnnError]) -> str:
    """The page of `check --html` for a spec that does not check: every error as `check` prints it (the place,
    the message, the source lines with the spans underlined, the notes and the hint), escaped, in source order
    (MAX_ERRORS of them, and how many more), then the spec's text."""
    count = f"{len(errors):,} error{'s' if len(errors) > 1 else ''}"
    shown = [f'<pre class="error">{esc(e.render())}</pre>' for e in errors[:MAX_ERRORS]]
    if len(errors) > MAX_ERRORS:
        shown.append(f"<p>and {len(errors) - MAX_ERRORS:,} more errors.</p>")
    head = (f"<h1>{esc(source)}</h1>\n<p class=\"sub\">{count}: <code>cnndsl check</code> finds what is wrong "
            "below and exits with 1; the diagram and the table come when the spec checks.</p>")
    text = next((e.span.source.text for e in errors if e.span is not None and e.span.source.name == source), None)
    spec = (f'<details class="spec"><summary>The spec\'s text</summary><pre>{esc(text)}</pre></details>'
            if text else "")
    return document(f"{source} · cnndsl check: {count}", "\n".join([head, '<h2 id="errors">Errors</h2>', *shown,
                                                                     spec]))


def diagram_depth(a: Analysis, depth: int | None) -> int | None:
    """`depth` when given; else every layer (None) if that fits MAX_DIAGRAM_NODES, else the deepest folding
    that does (at least 1: the top-level rows)."""
    from cnndsl.report import fold

    if depth is not None:
        return depth
    deepest = max((len(fold(a, f, None)[0]) for f in a.layers), default=0) + 1
    from cnndsl.viz.architecture import layout

    for d in (None, *range(deepest - 1, 1, -1)):  # depth `deepest` folds nothing: it is None's diagram
        if len(layout(a, d).nodes) <= MAX_DIAGRAM_NODES:
            return d
    return 1


def diagram_html(a: Analysis, depth: int | None = None) -> str:
    """The diagram as inline SVG in a scrolling box, or a note that says why it is missing."""
    try:
        from cnndsl.viz.render import render
    except ImportError as e:  # the graphviz Python package
        return _missing(f"the diagram needs the graphviz Python package ({e})", "pip install graphviz")
    shown = diagram_depth(a, depth)
    from cnndsl.viz.architecture import layout

    nodes = len(layout(a, shown).nodes)
    if nodes > PAGE_NODES:  # a flat network of thousands of layers: dot would take minutes
        return _missing(f"the diagram would have {nodes:,} nodes, more than a page shows ({PAGE_NODES})",
                        "fold it with --depth, or draw it alone with `cnndsl plot`")
    try:
        svg = render(a, "svg", shown, links=True).decode()
    except CnnError as e:  # no `dot` here, or a diagram too large for it
        return _missing(e.message, e.hint)
    caption = ("every layer; click a node for its row" if shown is None else
               f"block calls folded at depth {shown}, as <code>cnndsl check --depth {shown}</code> folds rows; click a "
               "node for its row")
    if depth is None and shown is not None:
        caption += "; <code>cnndsl plot SPEC</code> draws every layer"
    return (f'<figure><div class="diagram">{inline_svg(svg)}</div><figcaption>The diagram: {caption}.'
            "</figcaption></figure>")


def notebook_diagram(a: Analysis) -> str | None:
    """The diagram as inline SVG for a Spec's or a Report's display in a notebook, folded as the page folds it; None
    where it cannot be drawn (no graphviz package, no `dot`, too many nodes): the display is then the table alone."""
    try:
        from cnndsl.viz.architecture import layout
        from cnndsl.viz.render import render
    except ImportError:  # the graphviz Python package
        return None
    shown = diagram_depth(a, None)
    if len(layout(a, shown).nodes) > PAGE_NODES:
        return None
    try:
        return inline_svg(render(a, "svg", shown).decode())
    except CnnError:  # no `dot` here, or a diagram too large for it
        return None


def _missing(message: str, hint: str | None) -> str:
    tip = f"<br>{esc(hint)}" if hint else ""
    return f'<p class="note missing-diagram">No diagram: {esc(message)}.{tip}</p>'


def inline_svg(svg: str) -> str:
    """dot's SVG document as an element of the page: from <svg on, without its XML comments (names that dot
    copies into comments are the graph's, but a comment is the one place escaping does not reach)."""
    svg = svg[svg.index("<svg"):]
    return re.sub(r"<!--.*?-->", "", svg, flags=re.S)


def write(path: Path, text: str) -> None:
    """The page whole or not at all: written beside, then renamed over `path`."""
    atomic_write(Path(path), text.encode("utf-8"))
