"""The import of a vision transformer's token plumbing, as torchvision's VisionTransformer writes it.

Read node by node inside the importer's `_Body` (interop/torch_import.py), before its general rules:

- `x.reshape(n, c, h * w).permute(0, 2, 1)` (or `x.flatten(2).transpose(1, 2)`) → `tokens`;
- a parameter of shape (1, 1, D), expanded over the batch and concatenated in front (`torch.cat([t, x], dim=1)`)
  → `classtoken`; a parameter of shape (1, L, D) added to the tokens → `posembed`. Their tensors are paired with
  the built layer's by the node's ("param", path) entry in the body's order;
- `nn.MultiheadAttention` called as self-attention (`attn(x, x, x, need_weights=False)`, batch first) and its
  `[0]` → `attention`;
- `x[:, i]` of the tokens → `token i`.
"""

from __future__ import annotations

import operator

import torch
from torch import fx, nn

from cnndsl.interop.torch_layers import Alias, Layer

_ADD = {operator.add, operator.iadd, torch.add, "add"}
_CAT = {torch.cat, torch.concat}
_SWAPS = {("permute", (0, 2, 1)), ("transpose", (1, 2)), ("transpose", (2, 1))}


def _shape(node) -> tuple | None:
    meta = node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None
    return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None


def _state(body) -> dict:
    """What this reading keeps on the body: parameter nodes (→ their path), and attention calls."""
    if not hasattr(body, "token_state"):
        body.token_state = {"params": {}, "attention": set(), "used": set()}
    return body.token_state


def read(body, node: fx.Node) -> bool:
    """Whether `node` is a piece of token plumbing, now recorded on `body`."""
    state = _state(body)
    params = state["params"]
    if node.op == "get_attr":
        return _parameter(body, node, params)
    if node.op == "call_method" and node.target == "expand" and node.args[0] in params:
        params[node] = params[node.args[0]]
        return True
    if node.op == "call_module" and isinstance(body.gm.get_submodule(node.target), nn.MultiheadAttention):
        return _attention(body, node, state)
    if node.op == "call_function" and node.target is operator.getitem:
        return _getitem(body, node, state)
    if node.target in _CAT and node.op == "call_function":
        return _class_token(body, node, params, state)
    if node.target in _ADD and node.op in ("call_function", "call_method"):
        return _pos_embed(body, node, params, state)
    if node.op == "call_method" and (node.target, tuple(node.args[1:])) in _SWAPS:
        return _tokens(body, node)
    return False


def unused(body) -> list[str]:
    """The parameters read directly that no pattern took: what the importer cannot write."""
    state = _state(body)
    return sorted({path for node, path in state["params"].items() if path not in state["used"]})


def held(model: nn.Module) -> set[str]:
    """The modules inside a MultiheadAttention (its out_proj): never called, their weights used by their parent."""
    return {f"{p}.{c}" if p else c for p, m in model.named_modules() if isinstance(m, nn.MultiheadAttention)
            for c, _ in m.named_modules() if c}


def _parameter(body, node: fx.Node, params: dict) -> bool:
    try:
        p = body.gm.get_parameter(node.target)
    except AttributeError:
        return False
    if p.dim() != 3 or p.shape[0] != 1:
        return False
    params[node] = body.full(node.target)
    return True


def _flow(body, node) -> fx.Node | None:
    """The dataflow node `node` is, through aliases; None for anything else."""
    return body.alias_of(node) if isinstance(node, fx.Node) and node in body.inputs else None


def _class_token(body, node: fx.Node, params: dict, state: dict) -> bool:
    tensors = node.args[0] if node.args else node.kwargs.get("tensors", ())
    dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
    if len(tensors) != 2 or tensors[0] not in params or dim not in (1, -2):
        return False
    x, token = _flow(body, tensors[1]), _shape(tensors[0])
    shape = _shape(x)
    if x is None or shape is None or len(shape) != 3 or token is None or token[1:] != (1, shape[2]):
        return False
    state["used"].add(params[tensors[0]])
    body.add(node, ("param", params[tensors[0]], Layer("classtoken"), ""), [x])
    return True


def _pos_embed(body, node: fx.Node, params: dict, state: dict) -> bool:
    a, b = (node.args + (None, None))[:2]
    p, x = (a, b) if a in params else (b, a) if b in params else (None, None)
    x = _flow(body, x)
    if p is None or x is None or _shape(x) is None or len(_shape(x)) != 3 or _shape(p)[1:] != _shape(x)[1:]:
        return False
    state["used"].add(params[p])
    body.add(node, ("param", params[p], Layer("posembed"), ""), [x])
    return True


def _attention(body, node: fx.Node, state: dict) -> bool:
    m = body.gm.get_submodule(node.target)
    q = node.args[0] if node.args else node.kwargs.get("query")
    rest = list(node.args[1:3]) + [node.kwargs.get(k) for k in ("key", "value") if k in node.kwargs]
    masks = [k for k in ("key_padding_mask", "attn_mask") if node.kwargs.get(k) is not None]
    why = None
    if len(rest) != 2 or any(r is not q for r in rest):
        why = "called with a query, key and value that differ: `attention` is self-attention"
    elif node.kwargs.get("need_weights", True) or len(node.args) > 4 or masks:
        why = "called otherwise than attn(x, x, x, need_weights=False) (torchvision's ViT): weights or masks"
    elif not m.batch_first:
        why = "batch_first=False: `attention` takes (N, L, D) tokens"
    elif m.in_proj_bias is None or m.bias_k is not None or m.add_zero_attn or m.kdim != m.embed_dim \
            or m.vdim != m.embed_dim:
        why = "without biases, with bias_k or zero attention, or other key/value sizes"
    if why:
        body.imp.problem(body.full(node.target), f"MultiheadAttention {why}")
    body.read_module(node)  # a leaf, as a layer module is
    state["attention"].add(node)
    return True


def _getitem(body, node: fx.Node, state: dict) -> bool:
    source, index = node.args
    if source in state["attention"]:
        if index == 0:
            body.add(node, Alias(), [source])
        return True  # [1]: the weights, None with need_weights=False
    x = _flow(body, source)
    shape = _shape(x)
    if x is None or shape is None or len(shape) != 3 or not isinstance(index, tuple) or len(index) != 2:
        return False
    if index[0] != slice(None) or not isinstance(index[1], int):
        return False
    body.add(node, Layer("token", {"index": index[1]}), [x])
    return True


def _tokens(body, node: fx.Node) -> bool:
    """The permute after a reshape (N, C, H, W) → (N, C, H*W): the reshape an alias, the permute `tokens`."""
    flat = node.args[0]
    if not isinstance(flat, fx.Node) or flat not in body.inputs or len(body.inputs[flat]) != 1:
        return False
    image = body.inputs[flat][0]
    before, after = _shape(image), _shape(flat)
    if before is None or after is None or len(before) != 4 or after != (before[0], before[1], before[2] * before[3]):
        return False
    body.items[flat] = Alias()
    body.refused.pop(flat, None)
    body.add(node, Layer("tokens"), [image])
    return True
