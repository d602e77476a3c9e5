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

from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field

import networkx as nx

INPUT, OUTPUT = "<input>", "<output>"  # not module names: these hold "<" and ">"


@dataclass
class Dataflow:
    graph: nx.DiGraph  # units and the two ends, each with a `label`
    units: dict[str, dict[str, str]] = field(default_factory=dict)  # node → its tensors: kind → state_dict name


def dataflow(module, label: Callable[[dict], Hashable]) -> Dataflow:
    """The module's dataflow between its units: the leaf modules (torch.fx's default leaves) and the bare
    parameters or buffers (a layer scale read as `self.gamma`) that hold tensors of its state_dict.

    `label(tensors)` names what a unit holds (kind → tensor); two units can exchange weights when their
    labels are equal. Raises whatever torch.fx raises on a module it cannot trace.
    """
    import torch.fx

    was_training = module.training
    module.eval()  # the inference graph: a training-only branch (an auxiliary head) is not followed
    try:
        traced = torch.fx.symbolic_trace(module)
    finally:
        module.train(was_training)
    state = module.state_dict(keep_vars=True)
    flow = Dataflow(nx.DiGraph())
    reaches: dict[torch.fx.Node, set[str]] = {}  # fx node → the units (or the input) its value comes from
    inputs = 0
    for node in traced.graph.nodes:
        before = set().union(*(reaches.get(arg, set()) for arg in node.all_input_nodes))
        unit = _unit(node, traced, state)
        if node.op == "placeholder":
            name, inputs = f"{INPUT}{inputs}", inputs + 1
            flow.graph.add_node(name, label=(INPUT, inputs))
            reaches[node] = {name}
        elif node.op == "output":
            flow.graph.add_node(OUTPUT, label=(OUTPUT,))
            flow.graph.add_edges_from((source, OUTPUT) for source in before)
        elif unit is not None:
            name, tensors = unit
            flow.units[name] = tensors
            flow.graph.add_node(name, label=label({kind: state[n] for kind, n in tensors.items()}))
            flow.graph.add_edges_from((source, name) for source in before)
            reaches[node] = {name}
        else:  # holds nothing: data flows through it
            reaches[node] = before
    return flow


def _unit(node, traced, state: dict) -> tuple[str, dict[str, str]] | None:
    """(its name, kind → tensor name) where the fx node is a module or a tensor of the state_dict."""
    if node.op == "call_module":
        prefix = f"{node.target}."
        tensors = {n[len(prefix):]: n for n in state if n.startswith(prefix)}
        return (node.target, tensors) if tensors else None
    if node.op == "get_attr" and node.target in state:
        return node.target, {node.target.rpartition(".")[2]: node.target}
    return None


def isomorphisms(ours: Dataflow, theirs: Dataflow) -> Iterator[dict[str, str]]:
    """Our units → theirs, along each isomorphism of the two graphs that keeps labels (none if they differ)."""
    if len(ours.graph) != len(theirs.graph) or ours.graph.number_of_edges() != theirs.graph.number_of_edges():
        return
    for mapping in nx.vf2pp_all_isomorphisms(ours.graph, theirs.graph, node_label="label"):
        yield {a: b for a, b in mapping.items() if a in ours.units}
