"""What one piece of a traced PyTorch model is in the registry: a leaf module's kind and arguments, a function's.

A module is a layer when its class is one of the registry's (`Op.foreign` of framework "torch", in torch.nn) or
a kind's `Op.torch_class` (a plugin's module, read by its `Op.from_torch`). Its arguments are read from the
module's attributes named as the Foreign's parameters and translated as a pasted call is (aliases, renames,
conversions); a parameter cnndsl has no argument for is allowed only at torch's default, so nothing that
changes the computation is dropped. A function (`F.relu`, `x.mean([2, 3])`, `torch.flatten`) is read from a
small table here. Each answer is a `Layer` or a `Refused` saying why.
"""

from __future__ import annotations

import functools
import inspect
import operator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from cnndsl.ops import REGISTRY, Op
from cnndsl.ops.base import Foreign
from cnndsl.ops.foreign import IGNORED, INFERRED


@dataclass
class Layer:
    kind: str
    values: dict[str, object] = field(default_factory=dict)


@dataclass
class Refused:
    reason: str


@dataclass
class Merge:
    op: str  # "add", "multiply", "concat"


@dataclass
class Alias:
    """A node that leaves its input as it is in eval mode (`contiguous`, a concat of one tensor)."""


def _classes() -> dict[str, tuple[Foreign, Op]]:
    """torch.nn class name → (its Foreign, its kind); a plugin's dotted class path → (None, its kind). Read
    afresh each time: enabling a plugin adds kinds to the registry."""
    found: dict[str, tuple] = {}
    for op in REGISTRY.values():
        if op.torch_class:
            found[op.torch_class] = (None, op)
        for f in op.foreign:
            if f.framework == "torch":
                found.setdefault(f.name, (f, op))
    return found


def class_path(m: nn.Module) -> str:
    return f"{type(m).__module__}.{type(m).__qualname__}"


def known(m: nn.Module) -> bool:
    """Whether the registry has a kind for this module's class."""
    cls = type(m)
    classes = _classes()
    return class_path(m) in classes or (cls.__module__.startswith("torch.nn") and cls.__name__ in classes)


def module_layer(m: nn.Module, as_class: str | None = None) -> Layer | Refused:
    """The layer a module is; `as_class` reads it as that torch.nn class (a subclass whose forward is its own,
    the same in eval mode: timm's BatchNormAct2d as BatchNorm2d)."""
    classes = _classes()
    if class_path(m) in classes:
        _, op = classes[class_path(m)]
        try:
            return Layer(op.name, dict(op.from_torch(m)) if op.from_torch else {})
        except ValueError as e:  # the entry's reader says what it cannot write
            return Refused(str(e))
    f, op = classes[as_class or type(m).__name__]
    if isinstance(m, nn.Conv2d) and m.padding_mode != "zeros":
        return Refused(f"padding_mode={m.padding_mode!r}: cnndsl pads with zeros")
    if isinstance(m, nn.Softmax) and m.dim not in (1, -1):
        return Refused(f"softmax over dim {m.dim}: cnndsl's is over the channels")
    if isinstance(m, nn.GELU) and m.approximate != "none":
        return Refused("GELU's tanh approximation: cnndsl's gelu is the exact one")
    values: dict[str, object] = {}
    defaults = _torch_defaults(type(m))
    renames, convert = dict(f.renames), dict(f.convert)
    for p in f.params:
        if p in INFERRED or p in IGNORED or not hasattr(m, p):
            continue
        value = _plain(m.bias is not None if p == "bias" else getattr(m, p))
        target = renames.get(p, p)
        spec = op.arg(target) if target else None
        if spec is None:
            if p in defaults and _plain(defaults[p]) != value:
                return Refused(f"{p}={value!r}: cnndsl's {op.name} has no such argument")
            continue
        if spec.name == "padding" and _pair(value) == (0, 0):
            continue  # torch's 0 is cnndsl's default, `valid`
        if spec.name in convert:
            value = convert[spec.name](value)
        if value is None and spec.default is not None:
            return Refused(f"{p}=None: cnndsl's {op.name} needs a value")
        values[spec.name] = value
    for name, value in f.defaults:
        values.setdefault(name, value)
    if op.name in ("maxpool", "avgpool") and _pair(values.get("stride")) == _pair(values.get("kernel")):
        values.pop("stride")  # the pool's own default: its kernel
    if op.name == "adaptiveavgpool" and _pair(values.get("size")) == (1, 1):
        return Layer("globalavgpool", {"keepdims": True})
    return Layer(op.name, values)


@functools.cache
def _torch_defaults(cls) -> dict[str, object]:
    try:
        params = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return {}
    return {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}


def _plain(value):
    if isinstance(value, list):
        value = tuple(value)
    if isinstance(value, tuple) and len(value) == 1:
        value = value[0]
    return value


def _pair(v):
    return v if isinstance(v, tuple) or v is None else (v, v)


# ---- functions and methods -------------------------------------------------------------------------------------

_ACTIVATIONS = {
    F.relu: "relu", torch.relu: "relu", torch.relu_: "relu", "relu": "relu", "relu_": "relu",
    F.relu6: "relu6", F.silu: "silu", F.gelu: "gelu", torch.sigmoid: "sigmoid", "sigmoid": "sigmoid",
    F.sigmoid: "sigmoid", F.hardsigmoid: "hardsigmoid", F.hardswish: "hardswish", torch.tanh: "tanh",
    F.tanh: "tanh", "tanh": "tanh", F.elu: "elu", F.leaky_relu: "leakyrelu",
}
_ADD = {operator.add, operator.iadd, torch.add, "add", "add_"}
_MUL = {operator.mul, operator.imul, torch.mul, "mul", "mul_"}
_ALIASES = {"contiguous", "clone", "detach", torch.clone}
_FLATTEN = {torch.flatten, "flatten", "view", "reshape", torch.reshape}
_MEAN = {torch.mean, "mean"}
_CONCAT = {torch.cat, torch.concat}
SPLITS = {torch.chunk, "chunk"}


def node_layer(node, arg, shape_of) -> Layer | Refused | Merge | Alias:
    """The layer an fx call_function/call_method node is. `arg(i, name, default)` reads an argument,
    `shape_of(node)` a tensor node's shape (batch included); `node.args[0]` is the main input."""
    target = node.target
    out = shape_of(node)
    if target in _ACTIVATIONS:
        kind = _ACTIVATIONS[target]
        if kind == "gelu" and arg(1, "approximate", "none") != "none":
            return Refused("gelu's tanh approximation")
        if kind == "leakyrelu":
            return Layer(kind, {"slope": float(arg(1, "negative_slope", 0.01))})
        if kind == "elu":
            return Layer(kind, {"alpha": float(arg(1, "alpha", 1.0))})
        return Layer(kind)
    if target is F.hardtanh and (arg(1, "min_val", -1.0), arg(2, "max_val", 1.0)) == (0.0, 6.0):
        return Layer("relu6")
    if target in _ADD or target in _MUL:
        op = "add" if target in _ADD else "multiply"
        a, b = arg(0, "input", None), arg(1, "other", None)
        if arg(2, "alpha", 1) != 1:
            return Refused("torch.add with alpha")
        tensors = [v for v in (a, b) if isinstance(v, torch.fx.Node) and shape_of(v) is not None]
        if len(tensors) == 2:
            return Merge(op)
        scalar = b if tensors and tensors[0] is a else a
        if op == "multiply" and isinstance(scalar, (int, float)) and not isinstance(scalar, bool):
            return Layer("scale", {"factor": float(scalar)})
        return Refused(f"{op} of a tensor and {scalar!r}")
    if target in _CONCAT:
        tensors = arg(0, "tensors", ())
        dim = arg(1, "dim", 0)
        if len(tensors) == 1:
            return Alias()
        if dim not in (1, -3):
            return Refused(f"concat along dim {dim}: cnndsl concatenates channels")
        return Merge("concat")
    if target in _ALIASES:
        return Alias()
    if target is F.dropout or target is torch.dropout:
        return Layer("dropout", {"rate": float(arg(1, "p", 0.5))})
    if target is F.adaptive_avg_pool2d:
        size = _pair(_plain(arg(1, "output_size", None)))
        if size == (1, 1):
            return Layer("globalavgpool", {"keepdims": True})
        return Layer("adaptiveavgpool", {"size": size})
    if target in (F.max_pool2d, F.avg_pool2d, torch.max_pool2d):
        return _pool(target, arg)
    if target in _MEAN:
        return _mean(node, arg, shape_of)
    if target in _FLATTEN:
        ins = shape_of(node.args[0])
        if ins is not None and out is not None and len(out) == 2 and out[1] == _numel(ins[1:]):
            return Layer("flatten") if len(ins) > 2 else Alias()
        if out is not None and len(out) in (2, 4):
            return Layer("reshape", {"shape": tuple(out[1:]) if len(out) == 4 else out[1]})
        return Refused(f"to {tuple(out[1:]) if out else '?'}: no cnndsl layer reshapes so")
    return Refused("no cnndsl layer does this")


def _numel(dims) -> int:
    n = 1
    for d in dims:
        n *= d
    return n


def _pool(target, arg) -> Layer | Refused:
    kind = "maxpool" if target in (F.max_pool2d, torch.max_pool2d) else "avgpool"
    kernel = _pair(_plain(arg(1, "kernel_size", None)))
    stride = _pair(_plain(arg(2, "stride", None)) or None) or kernel
    values = {"kernel": kernel, "padding": _pair(_plain(arg(3, "padding", 0)))}
    if stride != kernel:
        values["stride"] = stride
    if kind == "maxpool":
        if _pair(_plain(arg(4, "dilation", 1))) != (1, 1) or arg(6, "return_indices", False):
            return Refused("max_pool2d with dilation or indices")
        values["ceil"] = bool(arg(5, "ceil_mode", False))
    else:
        values["ceil"] = bool(arg(4, "ceil_mode", False))
        values["count_include_pad"] = bool(arg(5, "count_include_pad", True))
        if arg(6, "divisor_override", None) is not None:
            return Refused("avg_pool2d with divisor_override")
    return Layer(kind, values)


def _mean(node, arg, shape_of) -> Layer | Refused:
    dims = _plain(arg(1, "dim", None))
    dims = tuple(dims) if isinstance(dims, (tuple, list)) else (dims,)
    ins = shape_of(node.args[0])
    if ins is None or len(ins) != 4 or sorted(d % 4 for d in dims) != [2, 3]:
        return Refused(f"mean over dims {dims}")
    return Layer("globalavgpool", {"keepdims": bool(arg(2, "keepdim", False))})
