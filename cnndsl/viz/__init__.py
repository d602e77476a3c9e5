"""Pictures of a network: the architecture diagram (graphviz). It reads the graph and the report; nothing
in the compiler imports viz, so `import cnndsl` and `cnndsl check` never load graphviz."""

from __future__ import annotations

from cnndsl.viz.render import FORMATS, diagram, dot_source, render, svg_text

__all__ = ["FORMATS", "diagram", "dot_source", "render", "svg_text"]
