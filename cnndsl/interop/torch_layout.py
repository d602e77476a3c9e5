"""Channels-last runs and a block's own scale in a traced PyTorch module (torchvision's ConvNeXt).

ConvNeXt's CNBlock permutes to (N, H, W, C), applies nn.LayerNorm(C), nn.Linear, GELU and nn.Linear at each
position, permutes back, and multiplies by an nn.Parameter of its own (`self.layer_scale * result`). The
language writes the run as `layernorm`, `dense ... per_position=true` and `gelu` on the C x H x W map (the
code generator permutes around it as torchvision does), and the product as `layerscale`. The permutes
themselves become aliases once the run between them is known to act at each position only.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import torch
from torch import fx, nn

from cnndsl.interop.torch_layers import Alias, Layer

TO_LAST, TO_FIRST = (0, 2, 3, 1), (0, 3, 1, 2)
# layers that act on each value (or each position's channels) alone: the same before or after a permute
_POSITION_WISE = {"elu", "gelu", "hardsigmoid", "hardswish", "leakyrelu", "relu", "relu6", "sigmoid", "silu", "tanh",
                  "dropout", "dense", "layernorm", "identity"}
_MUL = {operator.mul, operator.imul, torch.mul, "mul", "mul_"}


@dataclass
class Permute:
    """A permute of (N, C, H, W) to channels last or back."""

    dims: tuple[int, ...]


def module_permute(m: nn.Module) -> Permute | None:
    """torchvision.ops.Permute (a module holding its dims)."""
    if type(m).__name__ == "Permute" and not any(True for _ in m.parameters()):
        dims = tuple(getattr(m, "dims", ()))
        return Permute(dims) if dims in (TO_LAST, TO_FIRST) else None
    return None


def function_permute(node: fx.Node) -> Permute | None:
    """`torch.permute(x, dims)` or `x.permute(*dims)` to channels last or back."""
    if node.target not in (torch.permute, "permute"):
        return None
    rest = node.args[1:] or tuple(node.kwargs.get("dims", ()))
    dims = tuple(rest[0]) if len(rest) == 1 and isinstance(rest[0], (tuple, list)) else tuple(rest)
    return Permute(dims) if dims in (TO_LAST, TO_FIRST) else None


def layer_scale(node: fx.Node, attrs: dict, shape_of) -> tuple[fx.Node, str] | None:
    """`self.gamma * x` with gamma of shape (C, 1, 1) for x's C channels: (x, gamma's name), as `layerscale`."""
    if node.op != "call_function" and node.op != "call_method" or node.target not in _MUL or len(node.args) != 2:
        return None
    a, b = node.args
    param, x = (a, b) if a in attrs else (b, a) if b in attrs else (None, None)
    shape, x_shape = shape_of(param), shape_of(x)
    if param is None or not isinstance(x, fx.Node) or shape is None or x_shape is None or len(x_shape) != 4:
        return None
    return (x, attrs[param]) if shape == (x_shape[1], 1, 1) else None


def resolve_runs(items: dict, inputs: dict, leaf_kind) -> tuple[list[str], set]:
    """Turns each permute to channels last, the position-wise run after it and the permute back into the
    run on the map: the permutes become aliases and each dense in it `per_position=true`. Gives what cannot
    be so written, and the nodes of the runs. `leaf_kind(item)` is the Layer an item stands for (None for a
    block or a merge)."""
    users: dict = {}
    for node, ins in inputs.items():
        for i in ins:
            users.setdefault(i, []).append(node)
    problems: list[str] = []
    done: set = set()
    in_runs: set = set()
    for node, item in list(items.items()):
        if not isinstance(item, Permute) or node in done:
            continue
        if item.dims != TO_LAST:
            problems.append(f"{node.name}: a permute back to channels first without one to channels last")
            continue
        run, cur = [], node
        while True:
            after = users.get(cur, [])
            if len(after) != 1:
                problems.append(f"{node.name}: channels-last tensor used {len(after)} times: a run must be a chain")
                break
            cur = after[0]
            nxt = items.get(cur)
            if isinstance(nxt, Permute):
                if nxt.dims != TO_FIRST:
                    problems.append(f"{cur.name}: permuted twice to channels last")
                    break
                items[node], items[cur] = Alias(), Alias()
                done.add(cur)
                for n in run:
                    layer = leaf_kind(items[n])
                    if layer.kind == "dense":
                        layer.values["per_position"] = True
                in_runs.update(run)
                break
            layer = leaf_kind(nxt)
            if layer is None or layer.kind not in _POSITION_WISE:
                what = layer.kind if layer is not None else "a block or a merge"
                problems.append(f"{cur.name}: {what} on a channels-last tensor (only Linear, LayerNorm and "
                                "value-wise layers run at each position)")
                break
            run.append(cur)
    return problems, in_runs


def as_layer(item) -> Layer | None:
    if isinstance(item, Layer):
        return item
    if isinstance(item, tuple) and item[0] == "leaf" and isinstance(item[2], Layer):
        return item[2]
    return None
