"""Pairing two networks' weights by structure: both traced into dataflow graphs, then matched.

Order and shape cannot tell apart two modules of equal shapes that a source registers in another order than
ours (torchvision's RegNet registers a block's projection shortcut before its body, whose first 1x1 conv has
the projection's shape). Where the source is a module, its dataflow can: each network is traced with
torch.fx (its public `symbolic_trace`), the modules that hold tensors become nodes labelled by what they hold,
an edge joins two of them when data flows from one to the other through operations that hold none (an add, a
relu, a reshape), and networkx's VF2++ finds the isomorphisms between the two graphs. weights.py copies the
tensors along one and checks it by running both networks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field

import networkx as nx

INPUT, OUTPUT = "<input>", "<output>"  # not module names: these hold "<" and ">"


@dataclass
class Dataflow:
    graph: nx.DiGraph  # units and the two ends, each with a `label`
    units: dict[str, dict[str, str]] = field(default_factory=dict)  # node → its tensors: kind → state_dict name


def dataflow(module, label: Callable[[dict], Hashable]) -> Dataflow:
    """The module's dataflow between its units: the leaf modules (torch.fx's default leaves) that hold tensors
    of its state_dict, and the modules whose tensors the traced code reads itself (a layer norm written as
    `F.layer_norm(x, ..., self.weight, self.bias)`, a layer scale `self.gamma * x`).

    A unit of the second kind sits where its tensors first meet the data, so that both kinds look alike.
    `label(tensors)` names what a unit holds (kind → tensor); two units can exchange weights when their
    labels are equal. Raises whatever torch.fx raises on a module it cannot trace.
    """
    import torch.fx

    with evaluating(module):  # the inference graph: a training-only branch (an auxiliary head) is not followed
        traced = torch.fx.symbolic_trace(module)
    state = module.state_dict(keep_vars=True)
    walk = _Walk(Dataflow(nx.DiGraph()), state, label)
    for node in traced.graph.nodes:
        walk.visit(node)
    return walk.flow


@contextlib.contextmanager
def evaluating(*modules):
    """The modules in eval mode for a while, then each submodule back in its own mode (a frozen batchnorm
    stays in eval inside a network that trains)."""
    modes = [(m, m.training) for module in modules for m in module.modules()]
    for module in modules:
        module.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


@dataclass
class _Walk:
    flow: Dataflow
    state: dict
    label: Callable[[dict], Hashable]
    reaches: dict = field(default_factory=dict)  # fx node → the units (or inputs) its data comes from
    reads: dict = field(default_factory=dict)  # fx node → {owner: {kind: tensor}}: computed from tensors only
    inputs: int = 0

    def visit(self, node) -> None:
        before = set().union(*(self.reaches.get(arg, set()) for arg in node.all_input_nodes))
        tensors: dict[str, dict[str, str]] = {}
        for arg in node.all_input_nodes:
            for owner, kinds in self.reads.get(arg, {}).items():
                tensors.setdefault(owner, {}).update(kinds)
        if node.op == "placeholder":
            name, self.inputs = f"{INPUT}{self.inputs}", self.inputs + 1
            self.flow.graph.add_node(name, label=(INPUT, self.inputs))
            self.reaches[node] = {name}
        elif node.op == "output":
            self.flow.graph.add_node(OUTPUT, label=(OUTPUT,))
            self.flow.graph.add_edges_from((source, OUTPUT) for source in before)
        elif node.op == "call_module" and self._held(f"{node.target}."):
            self.reaches[node] = {self._unit(node.target, self._held(f"{node.target}."), before)}
        elif node.op == "get_attr" and node.target in self.state:
            owner, _, kind = node.target.rpartition(".")
            self.reads[node] = {owner or node.target: {kind: node.target}}
        elif tensors and not before:  # still only tensors (gamma.view(-1, 1, 1)): not yet a unit
            self.reads[node] = tensors
        elif tensors:  # the tensors meet the data here: their owner applies
            self.reaches[node] = {self._unit(owner, kinds, before) for owner, kinds in tensors.items()}
        else:  # holds nothing: data flows through it
            self.reaches[node] = before

    def _held(self, prefix: str) -> dict[str, str]:
        return {n[len(prefix):]: n for n in self.state if n.startswith(prefix)}

    def _unit(self, name: str, tensors: dict[str, str], before: set[str]) -> str:
        held = self.flow.units.setdefault(name, {})
        held.update(tensors)
        self.flow.graph.add_node(name, label=self.label({kind: self.state[n] for kind, n in held.items()}))
        self.flow.graph.add_edges_from((source, name) for source in before if source != name)
        return name


def isomorphisms(ours: Dataflow, theirs: Dataflow) -> Iterator[dict[str, str]]:
    """Our units → theirs, along each isomorphism of the two graphs that keeps labels (none if they differ)."""
    if len(ours.graph) != len(theirs.graph) or ours.graph.number_of_edges() != theirs.graph.number_of_edges():
        return
    for mapping in nx.vf2pp_all_isomorphisms(ours.graph, theirs.graph, node_label="label"):
        yield {a: b for a, b in mapping.items() if a in ours.units}
