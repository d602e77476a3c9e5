"""A PyTorch module as a spec: traced with torch.fx, its structure recovered, written through the printer.

Each module that is not a registry layer (and not a bare container: Sequential, ModuleList, ModuleDict, which
are traced through) is traced on its own, its children as leaves, so the module tree gives the blocks; the
instances of one class become one parameterised block (interop/emit.py `generalise`). Within a module, the
dataflow between its layers is read as the language writes it: a chain of layers, and at each fork the
branches up to where they meet (the fork's immediate post-dominator), which is a sum (`residual`), a concat
or a product (`concat { branch {} ... }`). Anything else is refused, with the model's tree marked where.

The state_dict mapping: a layer module of the built spec is paired with the source module it was written from
(both in the order the spec's statements make them), so `Imported.names` maps each built tensor to the
source's exactly, whatever the names.
"""

from __future__ import annotations

import copy
import inspect
import operator
import re
from dataclasses import dataclass, field

import networkx as nx
import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from cnndsl.codegen.naming import claim_local
from cnndsl.errors import CnnError
from cnndsl.interop import emit, std_match, torch_layout, torch_tokens
from cnndsl.interop.timm_forms import known, module_layer
from cnndsl.interop.torch_export import exported_graph
from cnndsl.interop.torch_layers import SPLITS, Alias, Layer, Merge, Refused, node_layer
from cnndsl.ops import REGISTRY
from cnndsl.syntax import ast

CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


@dataclass
class Imported:
    """An imported model: the spec's text and how the built module's tensors pair with the source's.

    `names` maps each state_dict key of `cnndsl.loads(text).build()` to the source's key it was written from
    (equal where the spec could keep the name); `state_dict(source)` renames a source state_dict so that
    `cnndsl.load_weights(built, imported.state_dict(model.state_dict()))` pairs every tensor by name.
    `unused` are the source's modules the forward never calls in eval mode (GoogLeNet's auxiliary
    classifiers): the spec leaves them out."""

    text: str
    names: dict[str, str]
    unused: list[str] = field(default_factory=list)

    def state_dict(self, source: dict) -> dict:
        return {ours: source[theirs] for ours, theirs in self.names.items()}


class _Tracer(fx.Tracer):
    """Registry layers and every module of another class are leaves; bare containers are traced through,
    and so are the modules named in `inline` (a block called with a list, such as DenseNet's layers)."""

    def __init__(self, inline: set[str]):
        super().__init__()
        self.inline = inline

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return not (type(m) in CONTAINERS or qualname in self.inline) or known(m)


@dataclass
class _Piece:
    """One module converted: its statements (a composite child as a placeholder call) and their order."""

    module: nn.Module
    path: str
    body: list[ast.Stmt]
    order: list[tuple[str, str]]  # ("leaf", source path) or ("child", child path), in statement order


class _Import:
    def __init__(self, model: nn.Module, input_shape: tuple[int, ...], device: str = "cpu"):
        self.model = model
        self.device = device
        self.input_shape = input_shape
        self.paths = {m: name for name, m in model.named_modules(remove_duplicate=False)}
        self.inputs: dict[str, tuple] = {}
        self.outputs: dict[str, tuple] = {}
        self.calls: dict[str, int] = {}
        self.seen: dict[str, int] = {}
        self.called: set[str] = set()
        self.problems: dict[str, list[str]] = {}
        self.pieces: dict[str, _Piece] = {}

    def problem(self, path: str, text: str) -> None:
        self.problems.setdefault(path, []).append(text)

    # ---- shapes ---------------------------------------------------------------------------------------------

    def record_inputs(self) -> None:
        """Runs the model once on zeros, keeping the input of each module (for tracing it alone)."""
        def hook(module, args):
            path = self.paths.get(module)
            if path is not None and args and isinstance(args[0], torch.Tensor):
                self.inputs.setdefault(path, tuple(args[0].shape))
            if path is not None:
                self.calls[path] = self.calls.get(path, 0) + 1
                self.called.add(path)

        def after(module, args, output):
            path = self.paths.get(module)
            if path is not None and isinstance(output, torch.Tensor):
                self.outputs[path] = tuple(output.shape)

        handles = [m.register_forward_pre_hook(hook) for m in self.model.modules()]
        handles += [m.register_forward_hook(after) for m in self.model.modules()]
        try:
            with torch.no_grad():
                self.model(torch.zeros(1, *self.input_shape, device=self.device))
        finally:
            for h in handles:
                h.remove()

    # ---- one module ------------------------------------------------------------------------------------------

    def convert(self, module: nn.Module, path: str) -> _Piece:
        inline: set[str] = set()
        while True:
            try:
                graph = _Tracer(inline).trace(module, concrete_args=_options(module))
            except Exception as e:  # fx cannot trace Python control flow on shapes: torch.export, else say so
                gm = self.exported(module, path, e)
                if gm is None:
                    return _Piece(module, path, [], [])
                break
            gm = fx.GraphModule(module, graph)
            listed = [n for n in graph.nodes if n.op == "call_module" and not known(gm.get_submodule(n.target))
                      and not _single_tensor_call(n) and n.target not in inline]
            if not listed:
                break
            inline |= {n.target for n in listed}
        if path not in self.inputs:
            self.problem(path, f"{type(module).__name__} is not called with one tensor")
            return _Piece(module, path, [], [])
        try:
            with torch.no_grad():
                _Shapes(gm, self, path).propagate(torch.zeros(self.inputs[path], device=self.device))
        except Exception as e:  # a forward that needs more than one tensor, or its own arguments
            self.problem(path, f"{type(module).__name__} runs only as the model calls it: {type(e).__name__}")
            return _Piece(module, path, [], [])
        return _Body(self, gm, path).piece(module)

    def exported(self, module: nn.Module, path: str, error: Exception) -> fx.GraphModule | None:
        """The graph torch.export makes of a module torch.fx cannot trace (interop/torch_export.py)."""
        found = None
        if path in self.inputs:
            example = torch.zeros(self.inputs[path], device=self.device)
            found = exported_graph(module, example, lambda m: type(m) not in CONTAINERS or known(m))
        if isinstance(found, fx.GraphModule):
            return found
        self.problem(path, f"torch.fx cannot trace {type(module).__name__}.forward: "
                     f"{str(error).splitlines()[0][:100]}" + (f"; {found}" if found else ""))
        return None

    def convert_all(self) -> None:
        """Converts the root and, breadth first, each composite module it calls."""
        todo = [""]
        while todo:
            path = todo.pop(0)
            if path in self.pieces:
                continue
            module = self.model.get_submodule(path) if path else self.model
            piece = self.convert(module, path)
            self.pieces[path] = piece
            todo += [child for what, child in piece.order if what == "child"]


class _Shapes(ShapeProp):
    """ShapeProp that takes a submodule's output from the model's one run where the submodule ran once (an empty
    tensor of that shape) instead of running it again: each block is not run once more per level above it."""

    def __init__(self, gm: fx.GraphModule, imp: _Import, path: str):
        super().__init__(gm)
        self.imp, self.prefix = imp, f"{path}." if path else ""

    def call_module(self, target, args, kwargs):
        full = self.prefix + target
        if self.imp.calls.get(full) == 1 and full in self.imp.outputs:
            return torch.zeros(self.imp.outputs[full], device=self.imp.device)
        return super().call_module(target, args, kwargs)


def _options(module: nn.Module) -> dict[str, object] | None:
    """The forward's arguments after the tensor that have defaults, traced at those values (the model calls the
    module with one tensor: timm's `ClassifierHead.forward(x, pre_logits=False)` branches on its option)."""
    try:
        params = list(inspect.signature(module.forward).parameters.values())[1:]
    except (TypeError, ValueError):
        return None
    found = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty
             and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return found or None


def _channel_slice(index, shape: tuple | None) -> Layer | None:
    """The `slice` layer of a tensor index `[:, start:end]` (steps of 1, bounds within the channels)."""
    whole = slice(None, None, None)
    if shape is None or len(shape) < 2 or not isinstance(index, tuple) or len(index) < 2 or index[0] != whole \
            or not isinstance(index[1], slice) or any(i != whole and i is not Ellipsis for i in index[2:]):
        return None
    cut = index[1]
    if not all(v is None or type(v) is int for v in (cut.start, cut.stop, cut.step)) or cut.step not in (None, 1):
        return None
    start, end, _ = cut.indices(shape[1])
    if end <= start:
        return None
    return Layer("slice", {"end": end, "start": start})


def _index_text(index) -> str:
    parts = index if isinstance(index, tuple) else (index,)
    return ", ".join(":" if p == slice(None) else f"{p.start or ''}:{p.stop or ''}" if isinstance(p, slice)
                     else "..." if p is Ellipsis else repr(p) if not isinstance(p, fx.Node) else p.name for p in parts)


def _single_tensor_call(node: fx.Node) -> bool:
    return len(node.args) == 1 and isinstance(node.args[0], fx.Node) and not node.kwargs


def _meta_shape(node) -> tuple | None:
    meta = node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None
    return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None


class _Body:
    """The statements of one traced module: its dataflow read as chains, forks and merges."""

    def __init__(self, imp: _Import, gm: fx.GraphModule, path: str):
        self.imp, self.gm, self.path = imp, gm, path
        self.items: dict[fx.Node, object] = {}  # node → Layer | Merge | Alias | ("child", path) | ("leaf", ..)
        self.inputs: dict[fx.Node, list[fx.Node]] = {}
        self.flow = nx.DiGraph()
        self.start: fx.Node | None = None
        self.end: fx.Node | None = None
        self.emitted: set[fx.Node] = set()
        self.order: list[tuple[str, str]] = []
        self.calls: dict[int, tuple[str, str]] = {}  # id(Call) → ("leaf"|"child", source path)
        self.refused: dict[fx.Node, str] = {}
        self.attrs: dict[fx.Node, str] = {}  # get_attr nodes: the module's own tensors, by their full names

    def full(self, target: str) -> str:
        return f"{self.path}.{target}" if self.path else target

    def piece(self, module: nn.Module) -> _Piece:
        self.read_nodes()
        self.resolve_layout()
        for text in self.refused.values():
            self.imp.problem(self.path, text)
        if self.start is None or self.end is None:
            return _Piece(module, self.path, [], [])
        self.rewrite_concats()
        for node, ins in self.inputs.items():
            for i in ins:
                self.flow.add_edge(i, node)
        self.flow.add_node(self.start)
        self.flow.add_node(self.end)
        live = nx.ancestors(self.flow, self.end) | {self.end}  # a tensor nothing uses (an eval-mode leftover)
        self.flow.remove_nodes_from([n for n in list(self.flow) if n not in live])
        if self.start not in self.flow:
            self.imp.problem(self.path, "its output does not depend on its input")
            return _Piece(module, self.path, [], [])
        body = self.seq(self.start, self.end)
        missed = [n for n in self.flow if n not in self.emitted and n is not self.start
                  and not isinstance(self.items.get(n), Alias)]
        if missed and body is not None:
            self.imp.problem(self.path, f"dataflow the language cannot write yet (at {missed[0].name})")
        body = _peephole(body or [])
        for s in ast.statements(body):
            if isinstance(s, ast.Call) and id(s) in self.calls:
                self.order.append(self.calls[id(s)])
        return _Piece(module, self.path, body, self.order)

    # ---- reading the nodes ----------------------------------------------------------------------------------

    def read_nodes(self) -> None:
        splits: dict[fx.Node, fx.Node] = {}
        for node in self.gm.graph.nodes:
            if node.op == "placeholder" and node.args:
                continue  # an option traced at its default (_options)
            if node.op == "placeholder":
                if self.start is not None:
                    self.imp.problem(self.path, f"a second input ({node.name}): blocks take one tensor")
                self.start = node
                self.inputs[node] = []
            elif node.op == "output":
                result = node.args[0]
                if not isinstance(result, fx.Node):
                    self.imp.problem(self.path, "returns several values: blocks return one tensor")
                else:
                    self.end = self.alias_of(result)
            elif torch_tokens.read(self, node):  # a vision transformer's tokens (interop/torch_tokens.py)
                continue
            elif node.op == "get_attr":
                self.attrs[node] = self.full(node.target)  # a problem unless a layer takes it (layer_scale)
            elif node.op in ("call_function", "call_method") and node.target in SPLITS:
                splits[node] = node.args[0]
            elif node.op == "call_function" and node.target is operator.getitem and node.args[0] in splits:
                self.read_split(node, node.args[0])
            elif _meta_shape(node) is None:
                continue  # a size or a shape: not dataflow
            elif node.op == "call_module":
                self.read_module(node)
            elif node.op == "call_function" and node.target is operator.getitem:
                self.read_slice(node)
            else:
                self.read_function(node)
        for path in torch_tokens.unused(self):
            self.imp.problem(self.path, f"uses its tensor `{path}` directly")
        for node in self.attrs:
            if not any(node in user.args for user in self.items if isinstance(self.items[user], tuple)
                       and self.items[user][0] == "param"):
                self.imp.problem(self.path, f"uses its tensor `{node.target}` directly")

    def alias_of(self, node: fx.Node) -> fx.Node:
        while isinstance(self.items.get(node), Alias):
            node = self.inputs[node][0]
        return node

    def tensor_inputs(self, node: fx.Node) -> list[fx.Node]:
        found: list[fx.Node] = []
        for a in (*node.args, *node.kwargs.values()):
            for x in (a if isinstance(a, (list, tuple)) else (a,)):
                if isinstance(x, fx.Node) and x in self.inputs:
                    x = self.alias_of(x)
                    if x not in found:
                        found.append(x)
        return found

    def add(self, node: fx.Node, item, ins: list[fx.Node]) -> None:
        self.items[node] = item
        self.inputs[node] = ins

    def read_split(self, node: fx.Node, chunk: fx.Node) -> None:
        parts, dim = _args(chunk, 1, "chunks", None), _args(chunk, 2, "dim", 0)
        source = self.alias_of(chunk.args[0])
        if dim not in (1, -3) or not isinstance(parts, int):
            self.imp.problem(self.path, f"{chunk.name}: chunks along dim {dim}")
        self.add(node, Layer("split", {"parts": parts, "part": node.args[1]}), [source])

    def read_slice(self, node: fx.Node) -> None:
        """`x[:, start:end]` (GhostNet's `out[:, :self.out_chs]`): `slice end start=`; any other index refused."""
        source, index = node.args
        layer = _channel_slice(index, _meta_shape(source))
        if layer is None:
            self.refused[node] = f"x[{_index_text(index)}]: cnndsl slices channels only, `x[:, start:end]`"
            layer = Layer("identity")
        self.add(node, layer, [self.alias_of(source)] if isinstance(source, fx.Node) else [])

    def read_module(self, node: fx.Node) -> None:
        module = self.gm.get_submodule(node.target)
        ins = self.tensor_inputs(node)
        if torch_layout.module_permute(module) is not None:
            self.add(node, torch_layout.module_permute(module), ins[:1])
            return
        full = self.full(node.target)
        if len(ins) != 1:
            self.imp.problem(full, "takes several tensors: blocks take one")
        self.imp.seen[full] = self.imp.seen.get(full, 0) + 1  # calls in the traced code, which the hooks may miss
        shared = max(self.imp.calls.get(full, 0), self.imp.seen[full])
        if shared > 1 and any(True for _ in module.parameters()):
            self.imp.problem(full, f"called {shared} times with the same weights: a spec's layers each have their own")
        if known(module):
            layer = module_layer(module)
            if isinstance(layer, Refused):
                self.imp.problem(full, f"{type(module).__name__}: {layer.reason}")
            self.add(node, ("leaf", full, layer, node.target), ins[:1])
        else:
            self.add(node, ("child", full, None, node.target), ins[:1])

    def read_function(self, node: fx.Node) -> None:
        if self.read_layout(node):
            return
        item = node_layer(node, lambda i, name, default: _args(node, i, name, default), _meta_shape)
        ins = self.tensor_inputs(node)
        if isinstance(item, Refused):
            self.refused[node] = f"{_short(node)}: {item.reason}"  # unless a pattern of several nodes takes it
            item = Layer("identity")
        if isinstance(item, (Layer, Alias)) and len(ins) != 1:
            self.imp.problem(self.path, f"{_short(node)}: takes {len(ins)} tensors")
            ins = ins[:1]
        self.add(node, item, ins)
        self.shuffle(node)

    def read_layout(self, node: fx.Node) -> bool:
        """A permute to channels last or back, or the module's own (C, 1, 1) tensor times the branch
        (ConvNeXt's layer scale): interop/torch_layout.py."""
        permute = torch_layout.function_permute(node)
        if permute is not None:
            self.add(node, permute, self.tensor_inputs(node)[:1])
            return True
        scaled = torch_layout.layer_scale(node, self.attrs, _meta_shape)
        if scaled is None:
            return False
        x, name = scaled
        self.add(node, ("param", name, Layer("layerscale"), name), [self.alias_of(x)])
        return True

    def resolve_layout(self) -> None:
        """The permutes around a run at each position become aliases (interop/torch_layout.py); a Linear or
        a LayerNorm on a 4-D tensor outside such a run acts on W, which no layer writes."""
        problems, in_runs = torch_layout.resolve_runs(self.items, self.inputs, torch_layout.as_layer)
        for text in problems:
            self.imp.problem(self.path, text)
        for node, ins in self.inputs.items():
            self.inputs[node] = [self.alias_of(i) for i in ins]
        if self.end is not None:
            self.end = self.alias_of(self.end)
        for node, item in self.items.items():
            if not (isinstance(item, tuple) and item[0] == "leaf") or node in in_runs or not self.inputs[node]:
                continue
            shape = _meta_shape(self.inputs[node][0])
            if type(self.gm.get_submodule(item[3])) in (nn.Linear, nn.LayerNorm) and shape and len(shape) == 4:
                self.imp.problem(item[1], f"{type(self.gm.get_submodule(item[3])).__name__} on a 4-D tensor acts "
                                 "on its last axis (W): cnndsl's acts on the channels (permute to channels last first)")

    def shuffle(self, node: fx.Node) -> None:
        """torchvision's channel_shuffle: view to (N, g, C/g, H, W), transpose(1, 2), view back: one layer."""
        item = self.items.get(node)
        if not (isinstance(item, Layer) and item.kind == "reshape"):
            return
        chain = [node]
        while len(chain) < 4 and chain[-1] in self.inputs and self.inputs[chain[-1]]:
            chain.append(self.inputs[chain[-1]][0])
        shapes = [_meta_shape(n) for n in chain]
        fives = [i for i, s in enumerate(shapes) if s is not None and len(s) == 5]
        if not fives or fives != list(range(1, fives[-1] + 1)):
            return
        five = fives[-1]  # the view to (N, g, C/g, H, W); between it and `node`, the transpose
        swap = chain[1]
        swapped = tuple(swap.args[1:3]) in ((1, 2), (2, 1))
        if five != 2 or swap.target not in ("transpose", torch.transpose) or not swapped \
                or shapes[five][1] * shapes[five][2] != shapes[0][1]:
            return
        base = self.inputs[chain[five]][0]
        if _meta_shape(base) != _meta_shape(node):
            return
        for n in chain[:five + 1]:
            self.items[n] = Alias()
            self.refused.pop(n, None)
        self.items[node] = Layer("channelshuffle", {"groups": shapes[five][1]})
        self.inputs[node] = [base]

    def rewrite_concats(self) -> None:
        """`cat([x, a, b])` where `cat([x, a])` is a node: `cat([that, b])` (DenseNet's growing list), the
        same values, as the language's chain of concats."""
        cats = {tuple(self.inputs[n]): n for n, item in self.items.items() if isinstance(item, Merge)
                and item.op == "concat"}
        for ins, node in cats.items():
            for k in range(len(ins) - 1, 1, -1):
                if ins[:k] in cats:
                    self.inputs[node] = [cats[ins[:k]], *ins[k:]]
                    break

    # ---- the dataflow as statements ----------------------------------------------------------------------

    def seq(self, start: fx.Node, end: fx.Node, region: set | None = None) -> list[ast.Stmt] | None:
        """The statements that compute `end` from `start` (the current tensor) within `region` (the nodes between
        them); None where the dataflow is not a chain of forks that end in merges."""
        graph = self.flow if region is None else self.flow.subgraph(region)
        dominators = nx.immediate_dominators(graph.reverse(copy=False), end)
        out: list[ast.Stmt] = []
        cur = start
        while cur is not end:
            users = list(graph.successors(cur))
            if not users:
                return None
            if len(users) == 1 and len(self.inputs[users[0]]) == 1:
                nxt = users[0]
                if nxt in self.emitted:  # reached from two forks: not a chain of forks and merges
                    self.imp.problem(self.path, f"{nxt.name} is used by two branches that merge elsewhere")
                    return None
                out.append(self.stmt(nxt))
                self.emitted.add(nxt)
                cur = nxt
                continue
            join = dominators.get(cur)
            if join is None or join is cur or not isinstance(self.items.get(join), Merge):
                self.imp.problem(self.path, f"a fork at {cur.name} that does not end in a sum or concat")
                return None
            merged = self.merge(cur, join, graph)
            if merged is None:
                return None
            out.append(merged)
            self.emitted.add(join)
            cur = join
        return out

    def merge(self, fork: fx.Node, join: fx.Node, graph) -> ast.Stmt | None:
        op = self.items[join].op
        after = nx.descendants(graph, fork)
        branches = []
        for k in self.inputs[join]:
            if k is not fork and k not in after:
                self.imp.problem(self.path, f"{join.name} merges a tensor from before its fork")
                return None
            region = {fork, k} | (nx.ancestors(graph, k) & after)
            branch = [] if k is fork else self.seq(fork, k, region)
            if branch is None:
                return None
            branches.append(branch)
        if op in ("add", "multiply") and len(branches) == 2:
            branches.sort(key=len)  # the identity (or the shorter) first: the sum is the same either way
            if op == "add":
                shortcut = branches[0] or None
                return ast.Residual(branches[1], shortcut, None)
        return ast.Merge(op, branches)

    def stmt(self, node: fx.Node) -> ast.Stmt:
        item = self.items[node]
        if isinstance(item, tuple):
            what, full, layer, target = item
            if what == "child":
                s = ast.Call(f"@{full}", [])
            else:
                s = emit.call(layer.kind, layer.values) if isinstance(layer, Layer) else ast.Call("identity", [])
            self.calls[id(s)] = (what, full)
            label = target if "." not in target and emit.is_name(target) and what == "leaf" \
                and _has_tensors(self.gm.get_submodule(target)) and target not in REGISTRY else None
            return emit.labeled(label, s)
        if isinstance(item, Layer):
            return emit.call(item.kind, item.values)
        self.imp.problem(self.path, f"{node.name}: a merge where the language expects a layer")
        return ast.Call("identity", [])


def _has_tensors(m: nn.Module) -> bool:
    return any(True for _ in m.parameters(recurse=False)) or any(True for _ in m.buffers(recurse=False))


def _args(node: fx.Node, i: int, name: str, default):
    if len(node.args) > i:
        return node.args[i]
    return node.kwargs.get(name, default)


def _short(node: fx.Node) -> str:
    t = node.target
    if isinstance(t, str):
        return f".{t}()"
    module = (getattr(t, "__module__", "") or "").replace("_operator", "operator").replace("torch.nn.functional", "F")
    return f"{module}.{getattr(t, '__name__', t)}".lstrip(".")


def _peephole(body: list[ast.Stmt]) -> list[ast.Stmt]:
    """`globalavgpool keepdims=true` then `flatten`: `globalavgpool` (one module, as torchvision's own)."""
    out: list[ast.Stmt] = []
    for s in body:
        if isinstance(s, ast.Call) and s.name == "flatten" and out and isinstance(out[-1], ast.Call) \
                and out[-1].name == "globalavgpool" and out[-1].args:
            out[-1] = ast.Call("globalavgpool", [])
            continue
        out.append(s)
    return out


# ---- blocks ------------------------------------------------------------------------------------------------------


def _block_name(cls: type, taken: set[str]) -> str:
    base = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", cls.__name__.strip("_")).lower()
    base = re.sub(r"[^a-z0-9_]", "_", base) or "block"
    if base[0].isdigit() or base in REGISTRY or not emit.is_name(base):
        base = f"{base}_block"
    return claim_local(base, taken)


def _network_name(cls: type, taken: set[str]) -> str:
    """The class's name in lower case, as the reference specs name networks (`ResNet` → `resnet`)."""
    name = re.sub(r"[^a-z0-9_]", "_", cls.__name__.lower()).strip("_")
    ok = emit.is_name(name) and name not in REGISTRY and name not in taken and not name[0].isdigit()
    return name if ok else _block_name(cls, set(taken))


def _substitute(body: list[ast.Stmt], calls: dict[str, ast.Call]) -> list[ast.Stmt]:
    """The body with each placeholder `@path` replaced by the call of the child's block."""
    def one(s):
        if isinstance(s, ast.Call) and s.name.startswith("@"):
            return calls[s.name[1:]]
        if isinstance(s, ast.Labeled):
            return ast.Labeled(s.label, one(s.stmt))
        if isinstance(s, ast.Residual):
            return ast.Residual(many(s.body), None if s.shortcut is None else many(s.shortcut), s.shortcut_if)
        if isinstance(s, ast.Merge):
            return ast.Merge(s.op, [many(b) for b in s.branches])
        if isinstance(s, ast.Repeat):
            return ast.Repeat(s.var, s.start, s.stop, many(s.body))
        return s

    def many(stmts):
        return [one(s) for s in stmts]

    return emit.repeats(many(body))


def _blocks(pieces: dict[str, _Piece], inputs: dict[str, tuple]
            ) -> tuple[list[ast.Definition], list[str], list[ast.Stmt]]:
    """Block definitions for the composite modules, deepest classes first, the library files used instead of
    some, and the root's body."""
    depth = {p: (p.count(".") + 1 if p else 0) for p in pieces}
    by_class: dict[type, list[str]] = {}
    for path in sorted(pieces, key=lambda p: -depth[p]):
        if path:
            by_class.setdefault(type(pieces[path].module), []).append(path)
    # a class must come after every class its instances call
    order = sorted(by_class, key=lambda c: -max(depth[p] for p in by_class[c]))
    taken: set[str] = set()
    calls: dict[str, ast.Call] = {}
    definitions: list[ast.Definition] = []
    made: dict[str, ast.Definition] = {}
    uses: list[str] = []
    pending = list(order)
    while pending:
        cls = next((c for c in pending if all(ch in calls for p in by_class[c] for w, ch in pieces[p].order
                                                if w == "child")), pending[0])
        pending.remove(cls)
        paths = sorted(by_class[cls], key=lambda p: list(pieces).index(p))
        bodies = [_substitute(pieces[p].body, calls) for p in paths]
        for group in _groups(bodies, made):
            name = _block_name(cls, taken)
            definition, group_calls = emit.generalise(name, [bodies[i] for i in group], made)
            shapes = [inputs[paths[i]][1:] for i in group]
            found = std_match.match(definition, group_calls, shapes, made, uses)
            if found is not None:
                use, definition, group_calls = found
                uses += [use] if use not in uses else []
                taken.discard(name)
            else:
                definitions.append(definition)
            made[definition.name] = definition
            for i, c in zip(group, group_calls):
                calls[paths[i]] = c
    _rename_clashes(definitions, uses, calls.values())
    return definitions, uses, _substitute(pieces[""].body, calls)


def _rename_clashes(definitions: list[ast.Definition], uses: list[str], calls) -> None:
    """A block of ours named as one the library files used bring: renamed `name_2`... (its calls, shared
    objects, renamed in place)."""
    theirs = set().union(*(std_match.names_of(u) for u in uses)) if uses else set()
    taken = theirs | {d.name for d in definitions}
    renamed = {}
    for d in definitions:
        if d.name in theirs:
            new, n = d.name, 1
            while new in taken:
                n += 1
                new = f"{d.name}_{n}"
            taken.add(new)
            renamed[d.name] = new
            d.name = new
    if renamed:
        for d in definitions:
            for s in ast.statements(d.body):
                if isinstance(s, ast.Call) and s.name in renamed:
                    s.name = renamed[s.name]
        for c in calls:
            if c.name in renamed:
                c.name = renamed[c.name]


def _groups(bodies: list[list[ast.Stmt]], made) -> list[list[int]]:
    """Instances split into groups that one block can describe (first come, first grouped)."""
    groups: list[list[int]] = []
    for i in range(len(bodies)):
        for g in groups:
            try:
                emit.generalise("_", [bodies[j] for j in g] + [bodies[i]], made)
            except ValueError:
                continue
            g.append(i)
            break
        else:
            groups.append([i])
    return groups


# ---- the mapping and the refusal ------------------------------------------------------------------------------


def _leaf_order(pieces: dict[str, _Piece], path: str = "") -> list[str]:
    out: list[str] = []
    stack = [iter(pieces[path].order)]
    while stack:
        step = next(stack[-1], None)
        if step is None:
            stack.pop()
        elif step[0] in ("leaf", "param"):  # a layer module, or a tensor a layer holds (a ViT's class token)
            out.append(step[1])
        else:
            stack.append(iter(pieces[step[1]].order))
    return out


def _layer_modules(built: nn.Module) -> list[tuple[str, nn.Module]]:
    """The built module's layers that hold tensors, in order: a module of a registry kind whole (a plugin's,
    whose tensors are in its children, included), else each module that holds tensors itself."""
    found: list[tuple[str, nn.Module]] = []
    whole: list[str] = []
    for name, m in built.named_modules():
        if any(name.startswith(w + ".") for w in whole):
            continue
        if (known(m) or isinstance(m, nn.MultiheadAttention)) and m.state_dict():
            found.append((name, m))
            whole.append(name)
        elif _has_tensors(m):
            found.append((name, m))
    return found


def _names(model: nn.Module, built: nn.Module, leaves: list[str]) -> dict[str, str]:
    ours = _layer_modules(built)
    theirs = [(p, tensors) for p in leaves if (tensors := _source_tensors(model, p))]
    twice = sorted({p for p, _ in theirs if leaves.count(p) > 1})
    if twice:  # one weight tensor would be two in the spec: never a spec that differs from the model
        raise CnnError(f"{', '.join(twice[:5])} of the model {'is' if len(twice) == 1 else 'are'} used in several "
                       "places with the same weights: a spec's layers each have their own")
    if len(ours) != len(theirs):
        raise CnnError(f"import wrote a spec of {len(ours)} layers with weights for {len(theirs)} of the model's",
                       hint="this is a bug of cnndsl import: please report it with the model")
    names: dict[str, str] = {}
    for (a, m), (b, other) in zip(ours, theirs):
        mine = m.state_dict()
        own = "" in other  # a module's own parameter (layer_scale): the spec's layer holds it alone
        if own and len(mine) == 1:
            other = {k: other[""] for k in mine}
        if [(k, tuple(v.shape)) for k, v in mine.items()] != [(k, tuple(v.shape)) for k, v in other.items()]:
            raise CnnError(f"import: the spec's {a} ({type(m).__name__}) does not hold what the model's {b} "
                           "holds", hint="this is a bug of cnndsl import: please report it")
        for k in mine:
            names[f"{a}.{k}"] = b if own else f"{b}.{k}"
    return names


def _source_tensors(model: nn.Module, path: str) -> dict:
    """A source layer's tensors: a module's state_dict, or a parameter of a module's own as {"": it}."""
    try:
        return model.get_submodule(path).state_dict()
    except AttributeError:
        return {"": model.get_parameter(path)}


def _tree(model: nn.Module, problems: dict[str, list[str]]) -> str:
    """The module tree, each module with what could not be written marked `✗` (those without problems below
    them folded)."""
    lines = [f"{type(model).__name__}" + _marks(problems.get("", []), 1)]
    flagged = {p for p in problems if p}

    def walk(module, path, depth):
        for name, child in module.named_children():
            full = f"{path}.{name}" if path else name
            if not any(f == full or f.startswith(full + ".") for f in flagged):
                continue
            lines.append("    " * depth + f"{name}: {type(child).__name__}" + _marks(problems.get(full, []), depth + 1))
            walk(child, full, depth + 1)

    walk(model, "", 1)
    for p in sorted(flagged):
        try:
            model.get_submodule(p)
        except AttributeError:
            lines.append(f"    {p}" + _marks(problems[p], 2))
    return "\n".join(lines)


def _marks(texts: list[str], depth: int) -> str:
    seen = list(dict.fromkeys(texts))
    pad = "    " * depth
    return "".join(f"\n{pad}✗ {t}" for t in seen[:6]) + (f"\n{pad}✗ ... {len(seen) - 6} more" if len(seen) > 6
                                                         else "")


def from_module(model: nn.Module, input_shape: tuple[int, ...], name: str | None = None,
                source: str | None = None) -> Imported:
    """The spec of `model` for inputs of `input_shape` (C, H, W): see cnndsl.api.from_module."""
    was_training = model.training
    model.eval()
    try:
        return _import(model, tuple(input_shape), name, source)
    finally:
        model.train(was_training)


def _shadow(model: nn.Module, input_shape: tuple[int, ...]) -> _Import:
    """The import run on a copy of the model on the meta device (shapes without computing: ResNet-152's three
    forward passes cost no time), else, where some operation has no meta kernel, on the model itself."""
    try:
        imp = _Import(_on_meta(model), input_shape, "meta")
        imp.record_inputs()
        return imp
    except Exception:  # an operation without a meta kernel, or a forward that reads values: on the model
        imp = _Import(model, input_shape)
        _run_user_code(imp.record_inputs, model)
        return imp


def _on_meta(model: nn.Module) -> nn.Module:
    """A copy of the model whose tensors are on the meta device, made without copying their values (each
    parameter and buffer given to deepcopy's memo as its meta twin)."""
    memo: dict[int, object] = {}
    for p in model.parameters():
        memo[id(p)] = nn.Parameter(torch.empty_like(p, device="meta"), requires_grad=p.requires_grad)
    for b in model.buffers():
        memo[id(b)] = torch.empty_like(b, device="meta")
    return copy.deepcopy(model, memo)


def _run_user_code(fn, model: nn.Module):
    try:
        return fn()
    except CnnError:
        raise
    except Exception as e:
        raise CnnError(f"{type(model).__name__} failed on an input of zeros: {type(e).__name__}: {e}"[:400],
                       hint="give the shape the model expects with --input (input_shape=)") from None


def _import(model: nn.Module, input_shape: tuple[int, ...], name: str | None, source: str | None) -> Imported:
    imp = _shadow(model, input_shape)
    imp.convert_all()
    if imp.problems:
        raise CnnError(f"{type(model).__name__} cannot be written as a spec yet: what is marked ✗ below has no "
                       f"form in the language\n{_tree(model, imp.problems)}",
                       hint="nothing was written; the layers cnndsl knows are listed by `cnndsl layers`")
    definitions, uses, body = _blocks(imp.pieces, imp.inputs)
    net_name = name or _network_name(type(model), {d.name for d in definitions})
    comment = [f"{type(model).__name__}" + (f" from {source}" if source else "") + ", imported by cnndsl import.",
               "Written from the model traced in eval mode: edit freely, `cnndsl check` it."]
    held = torch_tokens.held(model)
    unused = [p for p, m in model.named_modules() if p and _has_tensors(m) and p not in imp.called and p not in held]
    if unused:
        comment.append(f"Left out: {', '.join(unused[:8])}{' ...' if len(unused) > 8 else ''} (never called in eval).")
    text = emit.spec_text([*definitions, emit.network(net_name, input_shape, body)], comment, uses)
    from cnndsl.spec import loads

    with torch.device("meta"):  # only its names and shapes are needed
        built = loads(text, name=f"{net_name}.cnn").build()
    return Imported(text, _names(model, built, _leaf_order(imp.pieces)), unused)
