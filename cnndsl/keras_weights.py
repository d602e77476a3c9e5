"""Keras weights into a module cnndsl built: `.keras` files, `.weights.h5` files and Keras 2's `.h5`, read as data.

A `.keras` file is a zip holding `config.json` and `model.weights.h5`; the HDF5 file holds each layer's
variables under `layers/<key>/vars/<i>`, where the key is the snake-cased class numbered in the model's order
(conv2d, conv2d_1...) and the group's `name` attribute the layer's own name. Keras 2's `.h5` lists its
layers in the attribute `layer_names`, each with its `weight_names`. They are read with zipfile, json and
h5py as data: no Keras deserialisation, which could run code (Lambda layers, custom objects), and no HDF5
link that leaves the file (external links and datasets, virtual datasets).

Where the module's layers bear the Keras layers' names (a spec `cnndsl import` wrote: cnndsl/interop), each
kind's layers pair by name. Otherwise Keras layers pair with the module's layers by kind, in order: the i-th
Conv2D of the file with the i-th convolution of the spec, the i-th BatchNormalization with the i-th
batchnorm... Within a kind, the order is the order the layers were made, which Keras' default names keep
(conv2d, conv2d_1...), else the model's.
Tensors change layout on the way: a Conv2D kernel (kh, kw, in, out) becomes (out, in, kh, kw); a Dense
kernel (in, out) becomes (out, in), and a Dense that reads a Flatten of an (H, W, C) map has its input rows
reordered to PyTorch's (C, H, W) flatten order.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from cnndsl.errors import CnnError
from cnndsl.files import open_file
from cnndsl.keras_summary import snake_case
from cnndsl.optional import require

SUFFIXES = (".keras", ".h5")
MAX_BYTES = 8 << 30  # larger than any Keras model we could load (VGG-19's weights are 548 MB)
MAX_CONFIG_BYTES = 64 << 20
MAX_ARRAY_BYTES = 2 << 30  # one layer's weights: VGG-16's largest is 411 MB
KINDS = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Dense", "BatchNormalization", "LayerNormalization")


@dataclass
class KerasLayer:
    """A layer of a Keras file that holds weights."""

    name: str  # its own name (conv2d_3, or one the model's author chose)
    kind: str  # its class: Conv2D...; "" when the file does not say
    arrays: dict[str, object]  # variable → numpy array, in Keras' order: kernel, bias; gamma, beta, moving_mean...
    config: dict = field(default_factory=dict)  # its config in config.json (.keras files only)
    position: int = 0  # its place in the model's order (for layers whose names do not tell the order they were made)


@dataclass
class KerasLoad:
    """What `load` found: our tensors' values (already in PyTorch's layout) keyed by Keras' names, the pairs,
    what went unpaired, and notes on differences the values do not show (batchnorm's epsilon...)."""

    theirs: dict = field(default_factory=dict)  # "conv2d/kernel" → tensor
    loaded: list[tuple[str, str]] = field(default_factory=list)  # (our tensor, Keras' name)
    skipped: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def is_keras_file(source) -> bool:
    return isinstance(source, (str, Path)) and str(source).endswith(SUFFIXES)


# ---- reading the file -------------------------------------------------------------------------------------------


def read_keras(path: Path) -> list[KerasLayer]:
    """The layers of a Keras file that hold weights, with their classes and configs where the file has them."""
    import zipfile

    h5py = require("h5py", "reading Keras weights (.keras, .weights.h5, .h5)")
    with open_file(path, f"Keras weights {path}", MAX_BYTES) as f:
        try:
            if path.suffix == ".keras":
                return _read_zip(f, path, h5py)
            with h5py.File(f, "r") as store:
                return _read_store(store, {}, path)
        except (OSError, ValueError, zipfile.BadZipFile) as e:  # what h5py, zipfile and json raise for other files
            raise CnnError(f"{path} is not a Keras weights file: {e}", hint="a Keras 3 model saved with "
                           "model.save('NAME.keras') or model.save_weights('NAME.weights.h5'), or a Keras 2 .h5 "
                           "file") from None


def _read_zip(f, path: Path, h5py) -> list[KerasLayer]:
    import zipfile

    with zipfile.ZipFile(f) as archive:
        names = set(archive.namelist())
        if "model.weights.h5" not in names:
            raise CnnError(f"{path} holds no model.weights.h5: not a Keras 3 model file")
        configs = {}
        if "config.json" in names:
            info = archive.getinfo("config.json")
            if info.file_size > MAX_CONFIG_BYTES:
                raise CnnError(f"{path}: its config.json is {info.file_size:,} bytes, more than a model's")
            configs = _configs(json.loads(archive.read("config.json")))
        with archive.open("model.weights.h5") as member, h5py.File(member, "r") as store:
            return _read_store(store, configs, path)


def _configs(node, out: dict | None = None) -> dict:
    """Every layer of a config.json by name, nested models' too: {name: {"class_name", "config"}}."""
    out = {} if out is None else out
    if isinstance(node, dict):
        config = node.get("config")
        if isinstance(node.get("class_name"), str) and isinstance(config, dict) and isinstance(config.get("name"), str):
            out.setdefault(config["name"], {"class_name": node["class_name"], "config": config})
        for value in node.values():
            _configs(value, out)
    elif isinstance(node, list):
        for value in node:
            _configs(value, out)
    return out


def _read_store(store, configs: dict, path: Path) -> list[KerasLayer]:
    if "layers" in store:
        found: list[KerasLayer] = []
        _walk(store["layers"], configs, found, path)
        return found
    legacy = store["model_weights"] if "model_weights" in store else store
    if "layer_names" in legacy.attrs:
        config = store.attrs.get("model_config")  # a whole model's file (model.save) has its config as JSON
        return _read_legacy(legacy, _configs(json.loads(_text(config))) if config is not None else {}, path)
    raise CnnError(f"{path} holds no Keras layers (neither layers/ of Keras 3 nor layer_names of Keras 2)")


def _walk(layers, configs: dict, found: list[KerasLayer], path: Path) -> None:
    """A Keras 3 `layers` group: each class's layers in the model's order (the key's number), nested models' too."""
    for key in sorted(layers, key=_split_name):
        group = _inside(layers, key, path)
        if "vars" in group:
            variables = _inside(group, "vars", path)
            name = _text(variables.attrs.get("name", key))
            arrays = {str(i): _array(variables, str(i), path) for i in range(len(variables))}
            if arrays:
                config = configs.get(name, {})
                kind = config.get("class_name") or _kind_of_key(key)
                found.append(KerasLayer(name, kind, _named(kind, arrays, config.get("config", {}), name),
                                        config.get("config", {}), len(found)))
        if "layers" in group:
            _walk(_inside(group, "layers", path), configs, found, path)


def _read_legacy(store, configs: dict, path: Path) -> list[KerasLayer]:
    """Keras 2's HDF5 (and Keras 3's `model.save("NAME.h5")`): layers in `layer_names`, weights by name."""
    found = []
    for name in map(_text, store.attrs["layer_names"]):
        group = _inside(store, name, path)
        arrays = {}
        for weight in map(_text, group.attrs.get("weight_names", [])):
            node = group
            for part in weight.split("/"):
                node = _inside(node, part, path)
            arrays[weight.rsplit("/", 1)[-1].split(":")[0]] = _dataset(node, weight, path)
        if arrays:
            config = configs.get(name, {})
            kind = config.get("class_name") or _kind_of_names(arrays)
            found.append(KerasLayer(name, kind, arrays, config.get("config", {}), len(found)))
    return found


def _inside(group, key: str, path: Path):
    """group[key], through a link inside the file only (an external link would read another file)."""
    import h5py

    link = group.get(key, getlink=True)
    if not isinstance(link, h5py.HardLink):
        raise CnnError(f"{path}: `{key}` is a link ({type(link).__name__}), not part of the file; Keras writes none",
                       hint="the file is read as data, and a link could read another file")
    return group[key]


def _array(group, key: str, path: Path):
    return _dataset(_inside(group, key, path), key, path)


def _dataset(node, what: str, path: Path):
    import h5py

    if not isinstance(node, h5py.Dataset) or node.is_virtual or node.external:
        raise CnnError(f"{path}: the weight `{what}` is not an array stored in the file")
    if node.dtype.kind != "f":
        raise CnnError(f"{path}: the weight `{what}` holds {node.dtype}, not floating-point numbers")
    if node.nbytes > MAX_ARRAY_BYTES:  # compressed, a small file can declare any size
        raise CnnError(f"{path}: the weight `{what}` is {node.nbytes:,} bytes, more than any layer's")
    return node[()]


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _split_name(name: str) -> tuple[str, int]:
    """conv2d_3 → (conv2d, 3); conv2d → (conv2d, 0): Keras' default names, numbered in the order made."""
    found = re.fullmatch(r"(.+?)(?:_(\d+))?", name)
    return found.group(1), int(found.group(2) or 0)


def _kind_of_key(key: str) -> str:
    """The class a Keras 3 key names: its snake-cased class (conv2d_1 → Conv2D); "" for one we do not load."""
    base = _split_name(key)[0]
    return next((kind for kind in KINDS if snake_case(kind) == base), "")


def _kind_of_names(arrays: dict) -> str:
    """The class of a Keras 2 layer, from its weights' names and ranks."""
    if "depthwise_kernel" in arrays:
        return "SeparableConv2D" if "pointwise_kernel" in arrays else "DepthwiseConv2D"
    if "moving_mean" in arrays:
        return "BatchNormalization"
    kernel = arrays.get("kernel")
    if kernel is not None and kernel.ndim in (2, 4):
        return "Dense" if kernel.ndim == 2 else "Conv2D"
    return ""


def _named(kind: str, arrays: dict, config: dict, name: str) -> dict:
    """A Keras 3 layer's numbered variables by their names: kernel, bias; gamma, beta, moving_mean..."""
    values = list(arrays.values())
    if kind == "BatchNormalization":
        if config:
            names = ["gamma"] * config.get("scale", True) + ["beta"] * config.get("center", True)
        else:
            names = {4: ["gamma", "beta"], 2: []}.get(len(values))
            if names is None:
                raise CnnError(f"Keras' batchnorm `{name}` has {len(values)} variables: gamma or beta is left out, "
                               "and a .weights.h5 file does not say which", hint="save the model as .keras")
        names += ["moving_mean", "moving_variance"]
    elif kind == "LayerNormalization":  # no .weights.h5 guess: without a config, scale and center are taken on
        names = ["gamma"] * config.get("scale", True) + ["beta"] * config.get("center", True)
    else:
        names = {"SeparableConv2D": ["depthwise_kernel", "pointwise_kernel", "bias"],
                 }.get(kind, ["kernel", "bias"])
    return dict(zip(names, values)) if len(values) <= len(names) else arrays


# ---- the module's side ------------------------------------------------------------------------------------------


def torch_units(module) -> list[tuple[str, object, str]]:
    """(name, module, Keras class it takes) for each layer of the module that holds tensors, in order; the class
    is "" for a layer no Keras layer loads into."""
    units, taken = [], []
    for name, m in module.named_modules():
        if any(name.startswith(t + ".") for t in taken):
            continue
        kind = _torch_kind(m)
        if kind:
            units.append((name, m, kind))
            taken.append(name)
        elif next(m.parameters(recurse=False), None) is not None or next(m.buffers(recurse=False), None) is not None:
            units.append((name, m, ""))
    return units


def _torch_kind(m) -> str:
    import torch

    if type(m).__name__ == "SeparableConv2d":  # the generated code's depthwise and pointwise pair
        return "SeparableConv2D"
    if isinstance(m, torch.nn.Conv2d):
        return "DepthwiseConv2D" if 1 < m.groups == m.in_channels else "Conv2D"
    if isinstance(m, torch.nn.Linear):
        return "Dense"
    if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
        return "BatchNormalization"
    if isinstance(m, torch.nn.LayerNorm):  # the generated LayerNorm2d is one
        return "LayerNormalization"
    return ""


def flattened_maps(module) -> dict[str, tuple[int, int, int]]:
    """{Linear's name: (C, H, W)} for each Linear that reads a Flatten of a map larger than 1x1, found by running
    a zero image of the module's `input_shape` (a module cnndsl built has one) with hooks."""
    import torch

    shape = getattr(module, "input_shape", None)
    first = next(module.parameters(), None)
    if not isinstance(shape, tuple) or len(shape) != 3 or first is None:
        return {}
    calls: list[tuple[str, object, tuple]] = []
    hooks = [m.register_forward_hook(lambda m, args, out, name=name: calls.append((name, m, tuple(args[0].shape))))
             for name, m in module.named_modules() if isinstance(m, (torch.nn.Flatten, torch.nn.Linear))]
    training = module.training
    try:
        with torch.no_grad():
            module.eval()
            module(torch.zeros(1, *shape, dtype=first.dtype, device=first.device))
    finally:
        module.train(training)
        for hook in hooks:
            hook.remove()
    found, pending = {}, None
    for name, m, seen in calls:
        if isinstance(m, torch.nn.Flatten):
            pending = seen[1:] if len(seen) == 4 and seen[2] * seen[3] > 1 else None
        elif pending is not None and m.in_features == math.prod(pending):
            found[name], pending = pending, None
        else:
            pending = None
    return found


# ---- pairing and converting -------------------------------------------------------------------------------------


def in_made_order(layers: list[KerasLayer]) -> list[KerasLayer]:
    """The layers of one kind in the order they were made: by their default names' numbers where every name is
    Keras' default for the class (a functional model lists its layers deepest first), else in the model's order."""
    if not layers:
        return layers
    base = snake_case(layers[0].kind)
    if all(_split_name(k.name)[0] == base for k in layers):
        return sorted(layers, key=lambda k: _split_name(k.name)[1])
    return sorted(layers, key=lambda k: k.position)


def by_name(layers: list[KerasLayer], modules: list[str]) -> list[KerasLayer]:
    """The layers of one kind in the order of the modules that bear their names (a spec `cnndsl import` wrote
    names its layers as Keras did: `conv2d_3`, or `branch2.conv2d_3` inside a merge), where every module does;
    else in the order they were made."""
    from cnndsl.keras_summary import spec_name

    named = {spec_name(k.name): k for k in layers}
    paired = [named.get(m.rsplit(".", 1)[-1]) for m in modules]
    if len(modules) == len(layers) == len(named) and all(paired):
        return paired
    return in_made_order(layers)


def load(module, path: Path, strict: bool = True) -> KerasLoad:
    """The tensors of a Keras file for `module`, each in PyTorch's layout under Keras' name, paired by kind in
    order. A pair whose shapes differ is an error naming both layers; with strict=False (a new head for other
    classes) its tensors are left out, and a note says so."""
    import torch

    layers = read_keras(path)
    units = torch_units(module)
    ours = module.state_dict()
    maps = flattened_maps(module) if any(kind == "Dense" for _, _, kind in units) else {}
    done = KerasLoad()
    for kind in KINDS:
        mine = [name for name, _, own in units if own == kind]
        theirs = by_name([k for k in layers if k.kind == kind], mine)
        for i, (keras_layer, name) in enumerate(zip(theirs, mine)):
            _pair(keras_layer, name, i, maps.get(name), ours, done, strict)
        for keras_layer in theirs[len(mine):]:
            _skip(keras_layer, keras_layer.arrays, done, torch)
    for keras_layer in layers:
        if keras_layer.kind not in KINDS:  # a layer of a class we do not load (GroupNormalization...)
            _skip(keras_layer, keras_layer.arrays, done, torch)
    paired = {ours_name for ours_name, _ in done.loaded}
    done.missing = [n for n in ours if n not in paired and not n.endswith("num_batches_tracked")]
    _batchnorm_notes(layers, units, done)
    return done


def _skip(k: KerasLayer, arrays: dict, done: KerasLoad, torch) -> None:
    """Variables of Keras layer `k` that go nowhere: reported as skipped."""
    for var, value in arrays.items():
        done.skipped.append(f"{k.name}/{var}")
        done.theirs[f"{k.name}/{var}"] = torch.from_numpy(value)


def _pair(k: KerasLayer, name: str, i: int, hwc, ours: dict, done: KerasLoad, strict: bool) -> None:
    """Our tensors of module `name` from Keras layer `k` (the i-th of its kind), in PyTorch's layout."""
    import torch

    values = _convert(k, hwc)
    _skip(k, {var: a for var, a in k.arrays.items() if var not in values}, done, torch)
    for var, (suffix, value) in values.items():
        target = f"{name}.{suffix}"
        if target not in ours:  # a bias where the spec's layer has none
            _skip(k, {var: k.arrays[var]}, done, torch)
            continue
        if tuple(ours[target].shape) != tuple(value.shape):
            message = (f"Keras' {k.kind} `{k.name}` does not fit `{name}`: its {var} {tuple(k.arrays[var].shape)} "
                       f"gives {tuple(value.shape)} where `{target}` is {tuple(ours[target].shape)}")
            if strict:
                raise CnnError(message, hint=f"layers pair by kind, in order: `{k.name}` is the file's {_nth(i)} "
                               f"{k.kind} and `{name}` the module's {_nth(i)}; is the spec the Keras model's "
                               "architecture?")
            done.notes.append(message + ": left as it was")
            _skip(k, {var: k.arrays[var]}, done, torch)
            continue
        done.theirs[f"{k.name}/{var}"] = torch.from_numpy(value)
        done.loaded.append((target, f"{k.name}/{var}"))
    if hwc is not None and "kernel" in values and values["kernel"][1].shape[1] == math.prod(hwc):
        c, h, w = hwc
        done.notes.append(f"`{name}` reads a flattened {h}x{w}x{c} map: its input rows were reordered from Keras' "
                          "(H, W, C) flatten order to PyTorch's (C, H, W)")


def _nth(i: int) -> str:
    n = i + 1
    return f"{n}{'th' if 10 < n % 100 < 14 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


# Keras variable → our tensor within the module, by the layer's class
TARGETS = {
    "Conv2D": {"kernel": "weight", "bias": "bias"},
    "DepthwiseConv2D": {"depthwise_kernel": "weight", "kernel": "weight", "bias": "bias"},  # Keras 3 says kernel
    "SeparableConv2D": {"depthwise_kernel": "depthwise.weight", "pointwise_kernel": "pointwise.weight",
                        "bias": "pointwise.bias"},
    "Dense": {"kernel": "weight", "bias": "bias"},
    "BatchNormalization": {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean",
                           "moving_variance": "running_var"},
    "LayerNormalization": {"gamma": "weight", "beta": "bias"},
}


def _convert(k: KerasLayer, hwc) -> dict[str, tuple[str, object]]:
    """Keras variable → (our tensor's name within the module, its value in PyTorch's layout), for the variables
    the layer's class has (a variable of another name goes nowhere)."""
    import numpy as np

    out = {}
    for var, suffix in TARGETS[k.kind].items():
        if var not in k.arrays:
            continue
        value = k.arrays[var]
        if var == "depthwise_kernel" or k.kind == "DepthwiseConv2D" and var == "kernel":
            value = _depthwise(value)
        elif var in ("kernel", "pointwise_kernel") and value.ndim == 4:  # (kh, kw, in, out) → (out, in, kh, kw)
            value = value.transpose(3, 2, 0, 1)
        elif var == "kernel" and value.ndim == 2:  # Dense: (in, out) → (out, in)
            if hwc is not None and value.shape[0] == math.prod(hwc):  # Keras flattened (H, W, C), PyTorch (C, H, W)
                c, h, w = hwc
                value = value.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(c * h * w, -1)
            value = value.T
        out[var] = (suffix, np.ascontiguousarray(value))
    return out


def _depthwise(kernel):
    """(kh, kw, C, multiplier) → (C * multiplier, 1, kh, kw): output channel c * multiplier + m in both."""
    kh, kw, c, mult = kernel.shape
    return kernel.transpose(2, 3, 0, 1).reshape(c * mult, 1, kh, kw)


def _batchnorm_notes(layers: list[KerasLayer], units, done: KerasLoad) -> None:
    """Batchnorm's epsilon and momentum, which the weights do not carry: where the spec's differ from the Keras
    layers' (Keras: epsilon 0.001, momentum 0.99, torch's momentum 0.01), say so once."""
    theirs = in_made_order([k for k in layers if k.kind == "BatchNormalization" and k.config])
    mine = [m for _, m, kind in units if kind == "BatchNormalization"]
    eps = [(m.eps, k.config.get("epsilon", 1e-3)) for k, m in zip(theirs, mine)
           if not math.isclose(m.eps, k.config.get("epsilon", 1e-3), rel_tol=1e-6)]
    if eps:
        ours, keras = eps[0]
        done.notes.append(f"{len(eps)} batchnorm layer{'s' * (len(eps) > 1)} divide by sqrt(var + {ours:g}) where "
                          f"Keras' divided by sqrt(var + {keras:g}): outputs differ slightly; write `batchnorm "
                          f"eps={keras:g}` in the spec to match")
    momentum = [(m.momentum, 1 - k.config.get("momentum", 0.99)) for k, m in zip(theirs, mine)
                if m.momentum is not None and not math.isclose(m.momentum, 1 - k.config.get("momentum", 0.99),
                                                               rel_tol=1e-6)]
    if momentum:
        ours, keras = momentum[0]
        done.notes.append(f"batchnorm's running statistics move by {ours:g} a batch in training where Keras' moved "
                          f"by {keras:g} (Keras' momentum {1 - keras:g}): `batchnorm momentum={keras:g}` to match")
