"""torch.export where torch.fx cannot trace: a module whose forward branches on shapes (`if x.shape[1] > 3:`)
is exported with the public `torch.export.export` at the shape the model calls it with, and its aten graph
read back into the torch.fx form the importer reads (interop/torch_import.py).

Each aten node carries the stack of modules it ran in (`nn_module_stack`): the nodes of one leaf module (a
registry layer, or a child block) become one `call_module` of that module, so the leaf is read as a traced
one is; the aten functions between them map to the torch functions the importer knows (`_ATEN`). Anything else
gives a reason, and the module is refused with the tree as before: never approximated.
"""

from __future__ import annotations

import operator
from collections.abc import Callable

import torch
from torch import fx, nn

_aten = torch.ops.aten
_ATEN = {
    _aten.relu.default: torch.relu, _aten.relu_.default: torch.relu, _aten.sigmoid.default: torch.sigmoid,
    _aten.tanh.default: torch.tanh, _aten.add.Tensor: operator.add, _aten.add_.Tensor: operator.add,
    _aten.mul.Tensor: operator.mul, _aten.mul_.Tensor: operator.mul, _aten.cat.default: torch.cat,
    _aten.flatten.using_ints: torch.flatten, _aten.mean.dim: torch.mean, _aten.clone.default: torch.clone,
}


def exported_graph(module: nn.Module, example: torch.Tensor, is_leaf: Callable[[nn.Module], bool]
                   ) -> fx.GraphModule | str:
    """The module's graph as torch.fx call_module and torch function nodes, or why it cannot be read."""
    try:
        program = torch.export.export(module, (example,))
    except Exception as e:  # export refuses too (data-dependent values): say so
        return f"neither torch.fx nor torch.export can trace it: {str(e).splitlines()[0][:100]}"
    graph = fx.Graph()
    made: dict[fx.Node, fx.Node] = {}
    current: tuple[str, fx.Node] | None = None  # the leaf whose nodes are being read, and its call
    user = set(program.graph_signature.user_inputs)
    for node in program.graph.nodes:
        if node.op == "placeholder":
            if node.name in user:
                made[node] = graph.placeholder(node.name)
            continue
        if node.op == "output":
            result = node.args[0][0] if isinstance(node.args[0], (tuple, list)) else node.args[0]
            graph.output(made[result])
            break
        key, leaf = _leaf(module, node, is_leaf)
        if leaf is not None:
            if current is None or current[0] != key:
                source = next((made[a] for a in node.args if isinstance(a, fx.Node) and a in made), None)
                if source is None:
                    return f"{leaf}: its input is none of the graph's tensors"
                current = (key, graph.call_module(leaf, (source,)))
            made[node] = current[1]
            continue
        current = None
        function = _ATEN.get(node.target)
        if function is None:
            return f"torch.export: {node.target} outside a layer has no cnndsl form"
        args = fx.node.map_arg(node.args, lambda a: made[a])
        made[node] = graph.call_function(function, args, dict(node.kwargs))
    return fx.GraphModule(module, graph)


def _leaf(module: nn.Module, node: fx.Node, is_leaf) -> tuple[str | None, str | None]:
    """The outermost module on the node's stack below `module` that the importer reads as one, as the stack's
    key (one per call: a second call of a module has its own) and its path; (None, None) where the node runs
    in `module`'s own forward."""
    for key, (path, _) in list((node.meta.get("nn_module_stack") or {}).items())[1:]:
        if path and is_leaf(module.get_submodule(path)):
            return key, path
    return None, None
