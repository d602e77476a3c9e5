"""Pictures of a network: the architecture diagram (graphviz, `cnndsl plot`) and what a trained network
learned (`cnndsl show`: filters, feature maps, CAM). It reads the graph, the report and checkpoints; nothing in
the compiler imports viz, so `import cnndsl` and `cnndsl check` never load graphviz, torch or matplotlib."""

from __future__ import annotations

from cnndsl.viz.render import FORMATS, diagram, dot_source, render, svg_text

__all__ = ["FORMATS", "diagram", "dot_source", "render", "svg_text"]
