"""The layer graph: the concrete layers in topological order, as a networkx DAG, and its invariants.

Elaboration makes the layers in an order where every layer comes after its inputs, so the checks and the
unused-layer warning read the list; the networkx DiGraph (`Graph.dag`) is made, and networkx imported, when
something first asks for it. That keeps networkx's import (half of a whole `cnndsl check` of ResNet-152)
off the check path.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from cnndsl.errors import CnnError, Span
from cnndsl.ops.base import Shape
from cnndsl.ops.source import MODULE_ATTRIBUTES

if TYPE_CHECKING:
    import networkx as nx


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
    fused: bool = False  # an activation its input layer's `activation=` applies: one layer in Keras (check --keras)


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

    @cached_property
    def by_id(self) -> dict[str, Layer]:
        return {layer.id: layer for layer in self.layers}

    @property
    def input(self) -> Layer:
        return self.layers[0]

    def layer(self, id: str) -> Layer:
        return self.by_id[id]

    @cached_property
    def dag(self) -> nx.DiGraph:
        """The layers as a networkx DiGraph: a node per layer id (attribute `layer`), an edge per input."""
        import networkx as nx

        dag = nx.DiGraph()
        for layer in self.layers:
            dag.add_node(layer.id, layer=layer)
            dag.add_edges_from((src, layer.id) for src in layer.inputs)
        return dag


def numbered(kind: str, n: int) -> str:
    """The n-th unnamed layer or call of a kind: conv1, conv2...; a kind ending in a digit or _ takes a _
    (block35_1, b1_11 beside b11_1), so that no two (kind, n) give one name; and so does a name that would
    be an attribute of every PyTorch module (the 16th call of `bfloat` is bfloat_16, not bfloat16).

    The generated code names its modules by this rule (codegen's `child_name` helper too): a module's path
    in the built network is the layer's name in the report."""
    name = f"{kind}{n}"
    return f"{kind}_{n}" if kind[-1:].isdigit() or kind.endswith("_") or name in MODULE_ATTRIBUTES else name


def build_graph(name: str, params: dict, layers: list[Layer], groups: dict[str, Group], output: str) -> Graph:
    """Makes the graph and checks what every later phase relies on."""
    graph = Graph(name, params, layers, groups, output)
    check_invariants(graph)
    return graph


def check_invariants(graph: Graph) -> None:
    """Names unique, every input an earlier layer (so the order is topological and there is no cycle), and the
    network's `input` the only layer without inputs. Elaboration makes them so: a failure is a bug there."""
    if len(graph.by_id) != len(graph.layers):
        raise CnnError(f"internal: duplicate layer names in {graph.name}")
    seen: set[str] = set()
    for layer in graph.layers:
        late = [src for src in layer.inputs if src not in seen]
        if late:
            raise CnnError(f"internal: `{layer.id}` reads `{late[0]}`, which does not come before it", layer.span)
        seen.add(layer.id)
    sources = [layer.id for layer in graph.layers if not layer.inputs]
    if sources != [graph.input.id]:
        raise CnnError(f"internal: the graph of {graph.name} has inputs {sources}")


def unused_layers(graph: Graph) -> list[Layer]:
    """Layers whose output never reaches the network's output: one walk back through the topological order."""
    used = {graph.output}
    for layer in reversed(graph.layers):
        if layer.id in used:
            used.update(layer.inputs)
    return [layer for layer in graph.layers if layer.id not in used]
