"""The diagram's Python API: from a spec (or its report) to dot source, SVG, PNG or PDF bytes.

Rendering runs the system's Graphviz `dot` with a time limit. The same spec gives the same bytes: dot's
SVG and PNG hold no date, and the creation date cairo writes into a PDF is replaced by a fixed one.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import graphviz

from cnndsl.analysis import Analysis
from cnndsl.errors import CnnError
from cnndsl.files import atomic_write
from cnndsl.viz import architecture as _diagram

FORMATS = ("svg", "png", "pdf", "dot")
MAX_NODES = 3000  # dot lays out ResNet-152's 500 layers in seconds; tens of thousands would take hours
DOT_SECONDS = 300
INSTALL_HINT = ("install Graphviz, which provides `dot`: `apt-get install graphviz` (Debian, Ubuntu), "
                "`brew install graphviz` (macOS), `conda install graphviz`, or https://graphviz.org/download/; "
                "or write the diagram's source with `-o FILE.dot`, which needs no `dot`")


def analysis_of(spec) -> Analysis:
    """A Report, a Spec, an Analysis, or what cnndsl.load takes (a path or spec text)."""
    from cnndsl.spec import Report, Spec, load

    if isinstance(spec, Analysis):
        return spec
    if isinstance(spec, Report):
        return spec.analysis
    if not isinstance(spec, Spec):
        spec = load(spec)
    return spec.check().analysis


def diagram(spec, depth: int | None = None, figures: bool = False) -> graphviz.Digraph:
    """The architecture diagram as a graphviz.Digraph: one node per row of `check --depth` (None: every
    layer), block calls as clusters; `figures` adds each node's params, MACs and receptive field."""
    return _diagram.diagram(analysis_of(spec), depth, figures)


def dot_source(spec, depth: int | None = None, figures: bool = False) -> str:
    """The diagram as Graphviz dot source text."""
    return diagram(spec, depth, figures).source


def svg_text(spec, depth: int | None = None, figures: bool = False, inline: bool = False) -> str:
    """The diagram as an SVG document; `inline=True` leaves out the XML prolog, for an HTML page."""
    svg = render(spec, "svg", depth, figures).decode()
    return svg[svg.index("<svg"):] if inline else svg


def render(spec, fmt: str = "svg", depth: int | None = None, figures: bool = False, links: bool = False) -> bytes:
    """The diagram as the bytes of a file of format `fmt` (one of FORMATS); `links`: nodes link to `#row-ID`."""
    if fmt not in FORMATS:
        raise CnnError(f"no diagram format `{fmt}`", hint=f"one of {', '.join(FORMATS)}")
    a = analysis_of(spec)
    source = _diagram.diagram(a, depth, figures, links).source
    if fmt == "dot":
        return source.encode()
    nodes = len(_diagram.layout(a, depth).nodes)
    if nodes > MAX_NODES:
        raise CnnError(f"the diagram would have {nodes:,} nodes; dot cannot lay out more than {MAX_NODES:,} in "
                       "reasonable time", hint="fold the block calls with --depth, e.g. --depth 2, or write "
                       "the source with -o FILE.dot")
    return run_dot(source, fmt)


def run_dot(source: str, fmt: str) -> bytes:
    dot = shutil.which("dot")
    if dot is None:
        raise CnnError("Graphviz's `dot` program is not installed (or not on PATH); it draws the diagram",
                       hint=INSTALL_HINT)
    env = dict(os.environ, SOURCE_DATE_EPOCH="0")  # a newer cairo honours it
    try:
        done = subprocess.run([dot, f"-T{fmt}"], input=source.encode(), capture_output=True, env=env,
                              timeout=DOT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        raise CnnError(f"dot took more than {DOT_SECONDS} seconds to lay out the diagram",
                       hint="fold the block calls with --depth") from None
    except OSError as e:
        raise CnnError(f"cannot run {dot}: {e.strerror or e}", hint=INSTALL_HINT) from None
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip() or f"exit status {done.returncode}"
        raise CnnError(f"dot could not draw the diagram: {message}",
                       hint=f"`dot -T{fmt}` may lack this format here; -o FILE.svg or FILE.dot always works")
    return _undated(done.stdout) if fmt == "pdf" else done.stdout


def _undated(pdf: bytes) -> bytes:
    """The PDF with its creation date set to 1970: digits for digits, so the byte offsets stay valid."""
    return re.sub(rb"(/CreationDate \(D:)\d{14}", rb"\g<1>19700101000000", pdf)


def write(path: Path, data: bytes) -> None:
    """The whole file or none: written beside the target, then renamed over it."""
    atomic_write(path, data)
