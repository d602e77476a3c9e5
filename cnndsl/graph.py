"""The layer graph: a networkx DAG with one node per concrete layer, and its invariants."""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from cnndsl.errors import CnnError, Span
from cnndsl.ops.base import Shape


@dataclass
class Layer:
    """One concrete layer: what elaboration makes of a statement for given parameters."""

    id: str  # unique dotted name, e.g. "stage2.basic1.conv1"
    op: str  # a registry name
    args: dict[str, object]  # canonical argument names → resolved values
    inputs: list[str]  # ids of the layers feeding this one, in order
    shape: Shape  # output shape, no batch
    span: Span
    groups: tuple[str, ...] = ()  # ids of the enclosing groups, outermost first
    frozen: bool = False


@dataclass
class Group:
    """A block call (a row of the report with --depth), or a shortcut or merge branch (a prefix only)."""

    id: str
    title: str  # e.g. "stage 128 (blocks=4, stride=2)"
    kind: str  # "block" | "branch" (a shortcut or a merge's branch)
    span: Span


@dataclass
class Graph:
    """The elaborated network. `layers` is in topological (definition) order."""

    name: str
    params: dict[str, object]
    layers: list[Layer]
    groups: dict[str, Group]
    output: str
    dag: nx.DiGraph

    @property
    def input(self) -> Layer:
        return self.layers[0]

    def layer(self, id: str) -> Layer:
        return self.dag.nodes[id]["layer"]


def numbered(kind: str, n: int) -> str:
    """The n-th unnamed layer or call of a kind: conv1, conv2...; a kind ending in a digit or _ takes a _
    (block35_1, b1_11 beside b11_1), so that no two (kind, n) give one name."""
    return f"{kind}_{n}" if kind[-1:].isdigit() or kind.endswith("_") else f"{kind}{n}"


def build_graph(name: str, params: dict, layers: list[Layer], groups: dict[str, Group], output: str) -> Graph:
    """Makes the DAG and checks what every later phase relies on."""
    dag = nx.DiGraph()
    for layer in layers:
        dag.add_node(layer.id, layer=layer)
        for src in layer.inputs:
            dag.add_edge(src, layer.id)
    graph = Graph(name, params, layers, groups, output, dag)
    check_invariants(graph)
    return graph


def check_invariants(graph: Graph) -> None:
    dag = graph.dag
    if len(dag) != len(graph.layers):
        raise CnnError(f"internal: duplicate layer names in {graph.name}")
    if not nx.is_directed_acyclic_graph(dag):
        cycle = nx.find_cycle(dag)
        raise CnnError(f"the graph has a cycle through {cycle[0][0]}", graph.layer(cycle[0][0]).span)
    sources = [n for n, d in dag.in_degree() if d == 0]
    if sources != [graph.input.id]:
        raise CnnError(f"internal: the graph of {graph.name} has inputs {sources}")


def unused_layers(graph: Graph) -> list[Layer]:
    """Layers whose output never reaches the network's output."""
    used = nx.ancestors(graph.dag, graph.output) | {graph.output}
    return [layer for layer in graph.layers if layer.id not in used]
