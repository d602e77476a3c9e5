"""The architecture diagram: the layer graph as graphviz source, one node per row of `check --depth N`.

A layer is a node; a block call, a residual or a merge open at the depth asked is a cluster around its
layers; one folded deeper is a single node, exactly where `check --depth` prints a single row
(`report.fold` decides both). Edges are the DAG's, between whatever nodes their layers fall into.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import graphviz

from cnndsl.analysis import Analysis
from cnndsl.report import Row, fold, human, relative_name, rows

FONT = "Helvetica"
# fill and border per layer family: the colours say what a layer does before its label is read
FAMILIES = {
    "conv": ("#dbe8f7", "#4a78b0"), "pool": ("#e1f1dc", "#5a9a4a"), "norm": ("#eeeeee", "#8a8a8a"),
    "act": ("#fff4cc", "#b8982e"), "dense": ("#fde3d3", "#c06a38"), "merge": ("#eadcf0", "#8a5aa0"),
    "shape": ("#f6f6f6", "#9a9a9a"), "io": ("#ffffff", "#333333"), "group": ("#dfe6f3", "#4a5a80"),
}
OPS = {
    "conv": "conv", "dwconv": "conv", "sepconv": "conv", "convtranspose": "conv", "dense": "dense", "dropout": "shape",
    "split": "shape", "channelshuffle": "shape",
    "maxpool": "pool", "avgpool": "pool", "globalavgpool": "pool", "globalmaxpool": "pool", "adaptiveavgpool": "pool",
    "batchnorm": "norm", "lrn": "norm", "layernorm": "norm", "groupnorm": "norm", "instancenorm": "norm",
    "scale": "shape", "layerscale": "shape", "droppath": "shape",
    "add": "merge", "multiply": "merge", "concat": "merge", "input": "io",
}
FROZEN = ("#d4d4d4", "#6a6a6a")
CLUSTER = {"block": ("#f7f9fc", "#8a9ab8", "solid"), "branch": ("#ffffff", "#a08ab0", "dashed")}


@dataclass
class Node:
    """One box of the diagram: a layer, or a group folded at the depth asked."""

    id: str  # the layer's or the group's id: the graphviz node name
    row: Row  # the row `check --depth` prints for it (name, op, output, params, MACs, RF)
    family: str
    frozen: bool
    clusters: list[str]  # the groups open around it, outermost first


@dataclass
class Layout:
    """What the diagram shows, before graphviz: nodes in network order, edges, and the open groups."""

    nodes: list[Node]
    edges: list[tuple[str, str]]
    clusters: list[str]  # ids of the groups drawn as clusters, in the order they open
    output: str  # the node that gives the network's output
    frozen_clusters: set[str] = field(default_factory=set)
    arms: list[list[str]] = field(default_factory=list)  # first nodes of parallel arms, to draw left to right


def layout(a: Analysis, depth: int | None = None) -> Layout:
    """The nodes, edges and clusters of the diagram at `depth` (None: every layer)."""
    by_id = {r.id: r for r in rows(a, depth)}
    nodes: dict[str, Node] = {}
    node_of: dict[str, str] = {}
    frozen_in: dict[str, bool] = {}  # group id → all its layers frozen so far
    clusters: dict[str, None] = {}  # in the order they open
    for f in a.layers:
        kept, into = fold(a, f, depth)
        node_of[f.layer.id] = key = into or f.layer.id
        around = _around(f.layer.groups, into)
        for g in around + [into] * bool(into):
            frozen_in[g] = frozen_in.get(g, True) and f.layer.frozen
        clusters.update(dict.fromkeys(around))
        if key not in nodes:
            row = by_id.get(key) or _input_row(f)
            family = "group" if into else OPS.get(f.layer.op, "act" if f.layer.op != "flatten" else "shape")
            nodes[key] = Node(key, row, family, f.layer.frozen, around)
    for node in nodes.values():
        if node.family == "group":
            node.frozen = frozen_in[node.id]
    edges: list[tuple[str, str]] = []
    seen = set()
    for f in a.layers:
        for src in f.layer.inputs:
            edge = (node_of[src], node_of[f.layer.id])
            if edge[0] != edge[1] and edge not in seen:
                seen.add(edge)
                edges.append(edge)
    frozen = {g for g in clusters if frozen_in[g]}
    return Layout(list(nodes.values()), edges, list(clusters), node_of[a.graph.output], frozen,
                  _arms(a, node_of))


def _around(groups: tuple[str, ...], into: str | None) -> list[str]:
    """The clusters around a node, outermost first: the groups open at this depth (those before the one it folds
    into), with the branches among them (a merge's arms, a residual's shortcut), which the table shows as no row
    but the diagram draws as dashed clusters."""
    return list(groups[:groups.index(into)] if into is not None else groups)


def _arms(a: Analysis, node_of: dict[str, str]) -> list[list[str]]:
    """The first nodes of the branches of each merge or residual, in the order the spec writes them
    (left to right: the body before its shortcut), where they all start from the same input."""
    first: dict[str, object] = {}  # branch group → its first layer
    for f in a.layers:
        for g in f.layer.groups:
            if a.graph.groups[g].kind == "branch":
                first.setdefault(g, f.layer)
    by_parent: dict[str, list] = {}
    for g, layer in first.items():
        by_parent.setdefault(g.rpartition(".")[0], []).append(layer)
    out = []
    for heads in by_parent.values():
        nodes = list(dict.fromkeys(node_of[layer.id] for layer in heads))
        if len(nodes) > 1 and len({tuple(layer.inputs) for layer in heads}) == 1:
            out.append(nodes)
    return out


def _input_row(f) -> Row:
    from cnndsl.ops.base import fmt_shape

    return Row("", f.layer.id, f.op_text, fmt_shape(f.layer.shape), 0, 0, 1, f, f.layer.id)


def diagram(a: Analysis, depth: int | None = None, figures: bool = False, links: bool = False) -> graphviz.Digraph:
    """The diagram as a graphviz Digraph; `figures` adds each node's params, MACs and receptive field; `links`
    makes each node a link to `#row-ID`, its row of the table on a page (check --html)."""
    lay = layout(a, depth)
    dot = graphviz.Digraph(a.graph.name, graph_attr={
        "rankdir": "TB", "nodesep": "0.25", "ranksep": "0.28", "fontname": FONT, "fontsize": "12",
        "labelloc": "t", "label": _title(a), "newrank": "true"},
        node_attr={"shape": "box", "style": "rounded,filled", "fontname": FONT, "fontsize": "11",
                   "margin": "0.08,0.03", "penwidth": "1.2"},
        edge_attr={"color": "#555555", "arrowsize": "0.6", "penwidth": "1.0"})
    # what each cluster (None: the top) holds, in network order: nodes, and clusters where they first appear
    children: dict[str | None, list[tuple[str, str]]] = {}
    placed: set[str] = set()
    for node in lay.nodes:
        path = [None, *node.clusters]
        for parent, cluster in zip(path, node.clusters):
            if cluster not in placed:
                placed.add(cluster)
                children.setdefault(parent, []).append(("cluster", cluster))
        children.setdefault(path[-1], []).append(("node", node.id))
    _fill(dot, None, children, {n.id: n for n in lay.nodes}, lay, a.graph.groups, figures, links)
    for src, dst in lay.edges:
        dot.edge(src, dst)
    for heads in lay.arms:  # same rank, chained by invisible edges: dot keeps them in this order
        with dot.subgraph() as rank:
            rank.attr(rank="same")
            for left, right in zip(heads, heads[1:]):
                rank.edge(left, right, style="invis")
    return dot


def _fill(dot, parent, children, nodes, lay: Layout, groups, figures: bool, links: bool) -> None:
    """Adds the nodes and clusters inside `parent`, nesting clusters as the groups nest.

    Sibling clusters go in in reverse: dot lays clusters side by side from the last declared, so parallel
    arms then read left to right in the spec's order (it ignores `ordering` inside clusters)."""
    inside = children.get(parent, [])
    for what, ident in [c for c in reversed(inside) if c[0] == "cluster"] + [c for c in inside if c[0] == "node"]:
        if what == "node":
            _node(dot, nodes[ident], ident == lay.output, figures, links)
            continue
        group, frozen = groups[ident], ident in lay.frozen_clusters
        fill, border, style = CLUSTER.get(group.kind, CLUSTER["block"])
        with dot.subgraph(name=f"cluster_{ident}") as sub:
            sub.attr(label=_cluster_label(ident, group.title, parent, frozen), style=f"{style},filled,rounded",
                     fillcolor="#e2e2e2" if frozen else fill, color=border, fontname=FONT, fontsize="11",
                     labeljust="l")
            _fill(sub, ident, children, nodes, lay, groups, figures, links)


def _cluster_label(ident: str, title: str, parent: str | None, frozen: bool) -> str:
    name = relative_name(ident, parent)
    head = title if name == title else f"{name}: {title}"
    return f"<<B>{_esc(head)}</B>{' (frozen)' if frozen else ''}>"


def _node(dot, node: Node, output: bool, figures: bool, links: bool) -> None:
    r = node.row
    fill, border = FROZEN if node.frozen else FAMILIES[node.family]
    lines = [f'<B>{_esc(r.name.strip())}</B>  {_esc(r.op)}',
             f'<FONT POINT-SIZE="9" COLOR="#555555">{_esc(r.output)}</FONT>']
    if figures:
        macs = human(r.macs) if r.macs else "0"
        lines.append(f'<FONT POINT-SIZE="9" COLOR="#555555">{r.params:,} params · {macs} MACs · RF {r.rf}</FONT>')
    if node.frozen:
        lines.append('<FONT POINT-SIZE="9" COLOR="#333333"><I>frozen</I></FONT>')
    cells = "".join(f'<TR><TD ALIGN="LEFT">{line}</TD></TR>' for line in lines)
    attrs = {"fillcolor": fill, "color": border}
    if node.family == "group":
        attrs["peripheries"] = "2"
    if output or node.family == "io":
        attrs["penwidth"] = "2"
    if links and node.family != "io":  # the input has no row
        attrs.update(href=f"#row-{node.id}", tooltip=f"{node.id}: its row of the table")
    dot.node(node.id, f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">{cells}</TABLE>>',
             **attrs)


def _title(a: Analysis) -> str:
    g = a.graph
    return (f"<<B>{_esc(g.name)}</B>  <FONT POINT-SIZE=\"10\">{a.params:,} params · {human(a.macs)} MACs · "
            f"receptive field {a.receptive_field}</FONT>>")


def _esc(text: str) -> str:
    return html.escape(text, quote=True)
