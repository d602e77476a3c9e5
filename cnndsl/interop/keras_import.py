"""A Keras 3 model as a spec: its layer graph and layer configs read as data, written through the printer.

A `.keras` file is a zip of `config.json` (the architecture) and `model.weights.h5`; only the config is read
here, as JSON: nothing is deserialised, so no Lambda layer or custom class runs. A live model is read through
its public `get_config()`. Each layer class is found in the registry (an `Op`'s Keras `Foreign`), and its config
converted by the same code that reads a Keras call pasted into a spec (ops/foreign.py). A functional model's
graph becomes `residual`, `concat { branch ... }` and `add { branch ... }` where a fork and its merge enclose
plain paths, else named outputs and `from`; a nested model becomes a block. Layers keep their Keras names
(snake_cased) as spec names, so that the module built from the spec pairs with the file's weights by name.

What has no cnndsl form (a Lambda, an unknown class, an option cnndsl lacks) stops the import with the model's
tree, those layers marked: a spec is written only when it computes what the model does.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx

from cnndsl.errors import CnnError, printable
from cnndsl.files import open_file
from cnndsl.interop import emit
from cnndsl.keras_summary import spec_name
from cnndsl.ops import ACTIVATIONS, REGISTRY, Op
from cnndsl.ops.base import Foreign
from cnndsl.ops.foreign import KERAS_ACTIVATIONS, NO_FORM, Translation, class_defaults, convert_argument
from cnndsl.ops.foreign import find_class as _registry_class
from cnndsl.syntax import ast

MAX_FILE_BYTES = 8 << 30  # as keras_weights: the weights make a .keras file large, the config stays small
MAX_CONFIG_BYTES = 64 << 20
MODELS = frozenset({"Functional", "Sequential", "Model"})
MERGES = {"Add": "add", "Concatenate": "concat", "Multiply": "multiply"}
# config keys that change nothing the spec computes: training-time settings and bookkeeping
_SKIPPED = re.compile(r"name|trainable|dtype|seed|build_config|renorm_momentum|.*_(initializer|regularizer|constraint)")
# values of Keras options that mean "as cnndsl does" (anything else with no registry argument is refused)
NEUTRAL = {"offset": 0.0, "negative_slope": 0.0, "threshold": 0.0, "synchronized": False,
           "renorm": False, "renorm_clipping": None, "noise_shape": None, "max_value": None, "interpolation": "nearest"}
_CHANNEL_AXES = (-1, 3, [-1], [3])
KERAS_LEAKY_SLOPE = 0.2  # keras.activations.leaky_relu's negative_slope
_VALUEWISE = frozenset({"Dropout", "Activation", "ReLU", "LeakyReLU", "ELU"})  # the order of values is theirs


@dataclass
class KerasLayer:
    """One layer of a Keras model: its name, class, config, the layers whose outputs it takes, a nested model."""

    name: str
    cls: str
    config: dict
    inputs: list[str] = field(default_factory=list)
    inner: KerasModel | None = None
    problem: str = ""  # why it has no cnndsl form ("" where it has one)


@dataclass
class KerasModel:
    name: str
    cls: str
    layers: list[KerasLayer]
    outputs: list[str]

    def by_name(self) -> dict[str, KerasLayer]:
        return {k.name: k for k in self.layers}


class ImportRefused(CnnError):
    """A model with layers that have no cnndsl form; `tree` is the model's tree with them marked."""

    def __init__(self, message: str, tree: str, hint: str | None = None):
        super().__init__(f"{message}\n{tree}", hint=hint)
        self.tree = tree


# ---- reading ---------------------------------------------------------------------------------------------------


def read_config(path: str | Path) -> dict:
    """config.json of a `.keras` file, read as JSON (bounded): the model's architecture, nothing run."""
    import zipfile

    path = Path(path)
    expect = "a Keras 3 model saved with model.save('NAME.keras')"
    with open_file(path, f"the Keras model {path}", MAX_FILE_BYTES, expect=expect) as f:
        try:
            with zipfile.ZipFile(f) as archive:
                info = archive.getinfo("config.json")
                if info.file_size > MAX_CONFIG_BYTES:
                    raise CnnError(f"{path}: its config.json is {info.file_size:,} bytes, more than a model's")
                with archive.open(info) as member:
                    data = member.read(MAX_CONFIG_BYTES + 1)
        except KeyError:
            raise CnnError(f"{path} holds no config.json: not a Keras 3 model file", hint=expect) from None
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, NotImplementedError) as e:
            raise CnnError(f"{path} is not a Keras model file: {e}", hint=expect) from None
    try:
        config = json.loads(data)
    except (ValueError, RecursionError) as e:
        raise CnnError(f"{path}: its config.json is not JSON: {e}", hint=expect) from None
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        raise CnnError(f"{path}: its config.json describes no model", hint=expect)
    return config


def live_config(model) -> dict:
    """A live keras.Model's config, through its public get_config() (the same form as a file's config.json)."""
    cls = type(model).__name__
    if not callable(getattr(model, "get_config", None)):
        raise CnnError(f"a {cls} is not a Keras model", hint="pass a keras.Model or the path of a .keras file")
    try:
        config = model.get_config()
    except NotImplementedError:
        config = None
    if not isinstance(config, dict) or "layers" not in config:
        raise CnnError(f"the Keras model `{getattr(model, 'name', cls)}` ({cls}) has no layer graph in its config",
                       hint="a subclassed keras.Model's call() is Python code: build it as a Sequential or "
                       "functional model to import it")
    config = json.loads(json.dumps(config, default=repr))  # as a file holds it: tuples as lists, no live objects
    return {"class_name": "Sequential" if cls == "Sequential" else "Functional", "config": config}


def parse_model(node: dict, where: str = "the model") -> KerasModel:
    """The model of a config's {"class_name", "config"}: its layers and the graph between them."""
    config = node.get("config")
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        raise CnnError(f"{where} has no list of layers in its config")
    name = str(config.get("name") or "model")
    if node.get("class_name") == "Sequential":
        layers = [_layer(item, where) for item in config["layers"]]
        for before, layer in zip(layers, layers[1:]):
            layer.inputs = [before.name]
        if layers and layers[0].cls != "InputLayer":
            shape = _sequential_input(config, layers[0])
            if shape is not None:
                layers.insert(0, KerasLayer(f"{name}_input", "InputLayer", {"batch_shape": shape}))
                layers[1].inputs = [layers[0].name]
        return KerasModel(name, "Sequential", layers, [layers[-1].name] if layers else [])
    layers = [_layer(item, where, functional=True) for item in config["layers"]]
    model = KerasModel(name, str(node.get("class_name")), layers, _endpoints(config.get("output_layers")))
    _check_graph(model, where)
    return model


def _check_graph(model: KerasModel, where: str) -> None:
    """Names unique, every input a layer of the model, no cycle: else the config is no Keras model's."""
    names = [k.name for k in model.layers]
    known = set(names)
    if len(known) != len(names):
        raise CnnError(f"{where}: two of its layers have the same name; Keras' names are unique")
    graph = nx.DiGraph()
    for k in model.layers:
        for i in k.inputs:
            if i not in known:
                raise CnnError(f"{where}: the layer `{printable(k.name, False)}` takes the output of "
                               f"`{printable(i, False)}`, which is no layer of it")
            graph.add_edge(i, k.name)
    if not nx.is_directed_acyclic_graph(graph) or any(o not in known for o in model.outputs):
        raise CnnError(f"{where}: its layer graph is not a Keras model's (a cycle, or an unknown output)")


def _sequential_input(config: dict, first: KerasLayer):
    shape = config.get("build_input_shape") or first.config.get("batch_input_shape") \
        or _mapping(first.config.get("build_config")).get("input_shape")
    return shape if isinstance(shape, list) else None


def _layer(item, where: str, functional: bool = False) -> KerasLayer:
    if not isinstance(item, dict) or not isinstance(item.get("config"), dict):
        raise CnnError(f"{where}: a layer of its config is not a {{class_name, config}} object")
    config = dict(item["config"])
    config.setdefault("build_config", item.get("build_config"))
    name = str(item.get("name") or config.get("name") or "")
    layer = KerasLayer(name, str(item.get("class_name")), config)
    if layer.cls in MODELS:
        layer.inner = parse_model(item, f"the nested model `{name}`")
    if functional:
        nodes = item.get("inbound_nodes") or []
        if not isinstance(nodes, list):
            raise CnnError(f"{where}: the layer `{printable(name, False)}` has inbound_nodes that are no list")
        if len(nodes) > 1:
            layer.problem = f"called {len(nodes)} times (a shared layer): a spec's layer has one input"
        layer.inputs = [t[0] for t in _tensors(nodes[0] if nodes else [])]
        if any(t[1:] != [0, 0] for t in _tensors(nodes[0] if nodes else [])):
            layer.problem = layer.problem or "takes an output of a layer with several outputs"
    return layer


def _mapping(value) -> dict:
    """A config's object, or an empty one where the config holds something else there."""
    return value if isinstance(value, dict) else {}


def _tensors(node) -> list[list]:
    """[layer, node, tensor] of each tensor an inbound node names: Keras 3's `__keras_tensor__` objects in
    `args`, or Keras 2's [name, node, tensor, kwargs] lists."""
    found = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            history = _mapping(item.get("config")).get("keras_history") if item.get("class_name") == \
                "__keras_tensor__" else None
            if isinstance(history, list) and len(history) == 3:
                found.append([str(history[0]), *history[1:]])
            else:
                stack += reversed([item.get("args", []), item.get("kwargs", {})] if "args" in item else [])
        elif isinstance(item, list):
            if len(item) >= 3 and isinstance(item[0], str) and all(isinstance(i, int) for i in item[1:3]):
                found.append([item[0], item[1], item[2]])
            else:
                stack += reversed(item)
    return found


def _endpoints(value) -> list[str]:
    """Keras' input_layers / output_layers: [name, 0, 0] or a list of them."""
    if isinstance(value, list) and value and isinstance(value[0], str):
        return [value[0]]
    return [str(v[0]) for v in value if isinstance(v, list) and v] if isinstance(value, list) else []


# ---- layers as statements ----------------------------------------------------------------------------------------


def convert_layer(layer: KerasLayer, custom: dict[str, str]) -> ast.Call | None:
    """The layer as a call of a registry kind (None for a merge or a nested model, written elsewhere); sets
    `layer.problem` where it has no cnndsl form."""
    if layer.problem or layer.inner is not None or layer.cls in MERGES:
        if layer.cls in MERGES and layer.config.get("axis", -1) not in _CHANNEL_AXES:
            layer.problem = f"merges along axis {layer.config.get('axis')!r}; a spec's merges join channels"
        elif layer.cls in MERGES and len(layer.inputs) < 2:
            layer.problem = f"a merge of {len(layer.inputs)} input{'s' * (len(layer.inputs) != 1)}"
        return None
    if layer.cls == "InputLayer":
        return _input(layer)
    if layer.cls == "Activation":
        return _activation_layer(layer)
    if layer.cls == "Lambda":
        layer.problem = "a Lambda layer is Python code, which an import never runs"
        return None
    found = _class(layer.cls, custom)
    if found is None:
        layer.problem = "a class no layer kind is (one that computes what a kind does: --custom CLASS=KIND)"
        return None
    f, op = found
    return _registry_call(layer, f, op)


def _class(cls: str, custom: dict[str, str]) -> tuple[Foreign, Op] | None:
    if cls in custom:
        kind = custom[cls]
        if kind not in REGISTRY:
            raise CnnError(f"custom object `{cls}` names `{kind}`, which is no layer kind",
                           hint="`cnndsl layers` lists the kinds")
        return Foreign("keras", cls), REGISTRY[kind]
    return _registry_class(cls, "keras")


def _input(layer: KerasLayer) -> ast.Call | None:
    shape = layer.config.get("batch_shape") or layer.config.get("batch_input_shape")
    dims = shape[1:] if isinstance(shape, list) else None
    if not dims or not all(isinstance(d, int) and d > 0 for d in dims) or len(dims) not in (1, 3):
        layer.problem = f"input shape {shape}: a spec's input is H x W x C or a flat vector of known sizes"
        return None
    value = dims[0] if len(dims) == 1 else (dims[2], dims[0], dims[1])
    return ast.Call("input", [ast.Arg(None, ast.Const(value))])


def _activation_layer(layer: KerasLayer) -> ast.Call | None:
    name = layer.config.get("activation")
    name = KERAS_ACTIVATIONS.get(name, name) if isinstance(name, str) else name
    if name is None:
        return ast.Call("identity", [])
    if name == "leakyrelu":  # Keras' leaky_relu function slopes 0.2 (its LeakyReLU layer says its own)
        return ast.Call("leakyrelu", [ast.Arg(None, ast.Const(KERAS_LEAKY_SLOPE))])
    if name not in ACTIVATIONS or REGISTRY[name].args and any(a.required for a in REGISTRY[name].args):
        layer.problem = f"the activation {layer.config.get('activation')!r}, which cnndsl lacks"
        return None
    return ast.Call(name, [])


def _registry_call(layer: KerasLayer, f: Foreign, op: Op) -> ast.Call | None:
    """The call of `op` the config means; a problem where an option has no cnndsl form."""
    out, values = Translation(f"Keras' {layer.cls}"), {}
    for key, raw in layer.config.items():
        if _ignored(op, key, raw):
            continue
        if key == "data_format" and raw != "channels_last":
            out.notes.append(f"data_format={raw!r}: the importer reads channels_last models")
            out.partial = True
        elif key == "axis" and raw not in _CHANNEL_AXES:
            out.notes.append(f"axis={raw!r}: cnndsl's {op.name} works on the channel axis")
            out.partial = True
        value = _zero_padding(raw) if op.name == "zeropad" and key == "padding" else _value(raw)
        convert_argument(key, value, f"`{key}={raw!r}`", f, op, values, out)
    class_defaults(f, values)
    _keras_semantics(layer, op, values, out)
    missing = [a.name for a in op.args if a.required and a.name not in values]
    if out.partial or missing:
        layer.problem = "; ".join(out.notes + [f"no value for {', '.join(missing)}"] * bool(missing))
        return None
    return emit.call(op.name, values, lead=True)


def _ignored(op: Op, key: str, raw) -> bool:
    """A config key that changes nothing a spec computes (batchnorm's `center` is checked with `scale`)."""
    neutral = key in NEUTRAL and NEUTRAL[key] == raw and type(raw) is type(NEUTRAL[key])
    if op.name == "layernorm" and (key in ("center", "scale") or (key, raw) == ("rms_scaling", False)):
        return True  # center and scale are read together in _keras_semantics; RMS scaling is another norm
    return bool(_SKIPPED.fullmatch(key)) or neutral or (op.name, key) == ("batchnorm", "center")


def _keras_semantics(layer: KerasLayer, op: Op, values: dict, out: Translation) -> None:
    """Where a Keras class computes otherwise than the registry's kind at the same values."""
    if op.name == "batchnorm" and layer.config.get("center", True) != layer.config.get("scale", True):
        out.notes.append("center and scale differ: cnndsl's batchnorm learns both or neither")
        out.partial = True
    if op.name == "layernorm" and layer.config.get("center", True) != layer.config.get("scale", True):
        out.notes.append("center and scale differ: cnndsl's layernorm learns both or neither")
        out.partial = True
    elif op.name == "layernorm" and layer.config.get("scale", True) is False:
        values["affine"] = False
    if op.name == "dense" and _on_map(layer):  # Keras' Dense on a map: the same Linear at each position
        values["per_position"] = True
    if values.get("activation") == "leakyrelu":
        out.notes.append(f"activation='leaky_relu' slopes {KERAS_LEAKY_SLOPE} in Keras, a spec's activation=leakyrelu "
                         "0.01: write a LeakyReLU layer")
        out.partial = True
    for name, value in values.items():  # a word the registry's argument does not take: `padding="causal"`
        spec = op.arg(name)
        words = ACTIVATIONS if spec.kind == "activation" else ("same", "valid") if spec.kind == "padding" \
            else spec.choices
        if isinstance(value, str) and value not in words:
            out.notes.append(f"{spec.name}={value!r}, which cnndsl's {op.name} lacks")
            out.partial = True


def _zero_padding(raw):
    """ZeroPadding2D's ((top, bottom), (left, right)) as zeropad's (rows, columns) or (left, right, top, bottom)."""
    if isinstance(raw, list) and len(raw) == 2 and all(isinstance(p, list) and len(p) == 2 for p in raw):
        (top, bottom), (left, right) = raw
        return (top, left) if top == bottom and left == right else (left, right, top, bottom)
    return _value(raw)


def _value(raw):
    """A JSON value as convert_argument takes it: lists as tuples, objects as no value."""
    if isinstance(raw, list):
        items = tuple(_value(v) for v in raw)
        return items if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items) else NO_FORM
    if isinstance(raw, dict):
        return NO_FORM
    return raw


# ---- the graph as statements ---------------------------------------------------------------------------------------


@dataclass
class _Writer:
    """Statements of one model: its layers' calls, and the graph's shape as residuals and merges."""

    model: KerasModel
    calls: dict[str, ast.Call | None]
    names: dict[str, str]
    graph: nx.DiGraph = field(init=False)

    def __post_init__(self) -> None:
        self.graph = nx.DiGraph()
        for k in self.model.layers:
            self.graph.add_node(k.name)
            for i in k.inputs:
                self.graph.add_edge(i, k.name)
        self.layer = self.model.by_name()
        sinks = [k.name for k in self.model.layers if not self.graph.out_degree(k.name)]
        self.output = self.model.outputs[0] if self.model.outputs else sinks[-1]

    def statement(self, name: str) -> ast.Stmt:
        call = self.calls[name] or ast.Call(self.names[name] + "_block", [])
        return ast.Labeled(self.names[name], call)

    # structured: forks and their merges as residual / merge statements
    def structured(self, start: str) -> list[ast.Stmt] | None:
        body, last = self.chain(start, None)
        if last is None or list(self.graph.successors(last)) or last != self.output:
            return None
        written = sum(isinstance(s, ast.Labeled) for s in ast.statements(body))
        return body if written == len(self.model.layers) - 1 else None  # every layer but the input, once

    def chain(self, cur: str, stop: str | None) -> tuple[list[ast.Stmt], str | None]:
        """Statements after `cur` up to (not including) `stop`; the last layer, None where the graph is no
        nest of forks and merges."""
        out: list[ast.Stmt] = []
        while True:
            users = list(self.graph.successors(cur))
            if not users or users == [stop]:
                return out, cur
            if len(users) == 1 and len(self.layer[users[0]].inputs) == 1:
                cur = users[0]
                out.append(self.statement(cur))
                continue
            merged = self.fork(cur, users, stop)
            if merged is None:
                return out, None
            stmt, cur = merged
            out.append(stmt)

    def fork(self, cur: str, users: list[str], stop: str | None) -> tuple[ast.Stmt, str] | None:
        """The merge that joins every path from `cur`, as one statement, and the merge's name."""
        join = _post_dominator(self.graph, cur)
        if join is None or join == stop or self.layer[join].cls not in MERGES:
            return None
        ends: dict[str, list[ast.Stmt]] = {}
        for user in users:
            if user == join:
                ends.setdefault(cur, [])
                continue
            body, last = self.chain(user, join)
            if last is None or last in ends:
                return None
            ends[last] = [self.statement(user), *body]
        inputs = self.layer[join].inputs
        if sorted(inputs) != sorted(ends) or len(set(inputs)) != len(inputs):
            return None
        branches = [ends[i] for i in inputs]
        op = MERGES[self.layer[join].cls]
        if op == "multiply":  # the input itself first: a spec's multiply takes its gate (C or Cx1x1) later
            branches.sort(key=lambda b: b != [])  # (a product of two is the same either way round)
        if op == "add" and len(branches) == 2 and [] in branches:
            merged = ast.Residual(next(b for b in branches if b), None, None)
        elif op == "add" and len(branches) == 2:
            merged = ast.Residual(branches[0], branches[1], None)
        else:
            merged = ast.Merge(op, branches)
        return ast.Labeled(self.names[join], merged), join

    # flat: every layer in order, `from` and named merges where the graph is not a nest
    def flat(self, order: list[str]) -> list[ast.Stmt]:
        out: list[ast.Stmt] = []
        current = None
        for name in order:
            k = self.layer[name]
            if k.inputs and k.inputs[0] != current:
                out.append(ast.From(ast.Name(self.names[k.inputs[0]])))
            if k.cls in MERGES:
                others = [ast.Name(self.names[i]) for i in k.inputs[1:]]
                out.append(ast.Labeled(self.names[name], ast.MergeWith(MERGES[k.cls], others)))
            else:
                out.append(self.statement(name))
            current = name
        if current != self.output:  # layers after the output that it does not read: the output is the spec's
            out.append(ast.From(ast.Name(self.names[self.output])))
        return out


def _post_dominator(graph: nx.DiGraph, node: str) -> str | None:
    """The first layer every path from `node` to the output passes through."""
    reverse = graph.reverse(copy=True)
    sinks = [n for n in graph if graph.out_degree(n) == 0]
    reverse.add_node("\0sink")
    for s in sinks:
        reverse.add_edge("\0sink", s)
    dominators = nx.immediate_dominators(reverse, "\0sink")
    found = dominators.get(node)
    return None if found in (None, "\0sink", node) else found


# ---- the model as a spec ----------------------------------------------------------------------------------------


def to_module(model: KerasModel, custom: dict[str, str] | None = None) -> ast.Module:
    """The spec of a Keras model: one network, and a block for each nested model. Raises ImportRefused, with the
    model's tree, where a layer has no cnndsl form."""
    custom = custom or {}
    blocks: list[ast.Definition] = []
    network = _definition(model, "network", custom, blocks, set())
    problems = [k for k in _all_layers(model) if k.problem]
    if problems:
        raise ImportRefused(f"cannot import the Keras model `{printable(model.name, False)}`: "
                            f"{len(problems)} layer{'s' * (len(problems) > 1)} "
                            f"{'have' if len(problems) > 1 else 'has'} no cnndsl form (marked ✗)", tree(model),
                            hint="an import writes a spec only when it computes what the model does")
    return ast.Module([], [*blocks, network])


def _definition(model: KerasModel, kind: str, custom: dict, blocks: list, taken: set) -> ast.Definition:
    """The network (or a nested model's block): its body empty where a layer has a problem (the caller refuses)."""
    if not model.layers:
        raise CnnError(f"the Keras model `{printable(model.name, False)}` has no layers")
    names = _names(model, taken)
    calls = {k.name: convert_layer(k, custom) for k in model.layers}
    for k in model.layers:
        if k.inner is not None:
            blocks.append(_definition(k.inner, "block", custom, blocks, taken))
            blocks[-1].name = names[k.name] + "_block"
    inputs = [k for k in model.layers if not k.inputs]
    if len(inputs) != 1 or len(model.outputs) > 1:
        model.layers[0].problem = model.layers[0].problem or \
            f"{len(inputs)} inputs and {len(model.outputs)} outputs: a spec's network has one of each"
    _layout_problems(model)
    if any(k.problem for k in model.layers):
        return ast.Definition(kind, spec_name(model.name), [], [])
    return ast.Definition(kind, spec_name(model.name), [], _body(_Writer(model, calls, names), inputs[0], kind))


def _body(writer: _Writer, first: KerasLayer, kind: str) -> list[ast.Stmt]:
    """Forks and merges as residuals and merges where they nest, else every layer in order with `from`; the input
    layer written in a network (a block's input is its caller's tensor)."""
    body = writer.structured(first.name)
    if body is None:
        order = nx.lexicographical_topological_sort(writer.graph, key=[k.name for k in writer.model.layers].index)
        body = writer.flat(list(order))[1:]
    if kind == "network" or first.cls != "InputLayer":  # a Sequential block without an input layer starts with one
        body.insert(0, writer.statement(first.name))
    return body


def _layout_problems(model: KerasModel) -> None:
    """Layers whose values Keras orders H, W, C where a spec orders C, H, W, and nothing restores the order:
    a Flatten of a map read by a Dense is restored when the weights load (keras_weights reorders the Dense's
    rows); any other reader of a flattened map, and a Reshape of a map, would see the values in another order."""
    users: dict[str, list[KerasLayer]] = {}
    for k in model.layers:
        for i in k.inputs:
            users.setdefault(i, []).append(k)
    for k in model.layers:
        shape = _mapping(k.config.get("build_config")).get("input_shape")
        is_map = isinstance(shape, list) and len(shape) == 4 and all(isinstance(d, int) for d in shape[1:3]) \
            and shape[1] * shape[2] > 1
        if k.problem:
            continue
        if k.cls == "Flatten" and is_map and not _read_by_dense(k, users):
            k.problem = "flattens H, W, C where a spec flattens C, H, W, and its reader is no Dense (whose " \
                "weights could be reordered)"
        elif k.cls == "Reshape" and (is_map or _rank(k.config.get("target_shape")) == 3):
            k.problem = "reshapes in Keras' H, W, C order, where a spec's reshape orders C, H, W"
        elif k.cls == "Dense" and isinstance(shape, list) and len(shape) not in (2, 4):
            k.problem = f"a Dense on a rank-{len(shape) - 1} tensor: a spec's dense takes a vector or a map"


def _on_map(layer: KerasLayer) -> bool:
    shape = _mapping(layer.config.get("build_config")).get("input_shape")
    return isinstance(shape, list) and len(shape) == 4


def _rank(shape) -> int:
    return len(shape) if isinstance(shape, list) else 0


def _read_by_dense(k: KerasLayer, users: dict[str, list[KerasLayer]]) -> bool:
    """Whether a layer's output reaches a Dense alone, through value-wise layers only (Dropout, ReLU...)."""
    while len(users.get(k.name, [])) == 1 and users[k.name][0].cls in _VALUEWISE:
        k = users[k.name][0]
    return [u.cls for u in users.get(k.name, [])] == ["Dense"]


def _names(model: KerasModel, taken: set) -> dict[str, str]:
    """Each layer's spec name, unique across the spec's definitions (as Keras' are across a model)."""
    names = {}
    for k in model.layers:
        name, n = spec_name(k.name), 1
        while name in taken:
            n += 1
            name = f"{spec_name(k.name)}_{n}"
        taken.add(name)
        names[k.name] = name
    return names


def _all_layers(model: KerasModel):
    for k in model.layers:
        yield k
        if k.inner is not None:
            yield from _all_layers(k.inner)


def tree(model: KerasModel, depth: int = 0) -> str:
    """The model as an indented tree: each layer's name and class, ✗ and the reason where it has no form."""
    lines = [] if depth else [f"{printable(model.name, False)} ({model.cls})"]
    for k in model.layers:
        mark = f"  ✗ {k.problem}" if k.problem else ""
        lines.append(f"{'    ' * (depth + 1)}{printable(k.name, False)} ({printable(k.cls, False)}){mark}")
        if k.inner is not None:
            lines.append(tree(k.inner, depth + 1))
    return "\n".join(lines)


def spec_text(module: ast.Module, source: str) -> str:
    """The spec's text, with a comment naming its source."""
    shown = printable(source, False).replace("\n", " ")
    return emit.spec_text(module.definitions, [f"Imported by `cnndsl import` from {shown}: layer names are Keras'."])


def from_config(config: dict, source: str, custom: dict[str, str] | None = None) -> str:
    """The spec text of a Keras model config ({"class_name", "config"})."""
    try:
        return spec_text(to_module(parse_model(config), custom), source)
    except RecursionError:  # a config nested thousands deep (models in models, lists in lists)
        raise CnnError(f"{source}: the model nests too deep to read") from None
