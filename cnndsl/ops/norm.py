"""Normalisation: batchnorm, lrn (AlexNet's local response normalisation), layernorm, groupnorm, instancenorm."""

from __future__ import annotations

from cnndsl.errors import ShapeError, TooSmallError
from cnndsl.ops.base import (
    Args,
    ArgSpec,
    CodeArgs,
    Op,
    Shape,
    fmt_int,
    keras,
    keras_momentum,
    nearest_divisor,
    need_image,
    pytorch,
)
from cnndsl.ops.conv import ACTIVATION
from cnndsl.ops.torchsrc import ctor

_TORCH_NORM = "num_features eps momentum affine track_running_stats"


def _bn_torch(g: CodeArgs) -> str:
    kind = "nn.BatchNorm2d" if len(g.x) == 3 else "nn.BatchNorm1d"
    return ctor(kind, g.x[0], eps=None if g.eps == 1e-5 else g.eps, momentum=None if g.momentum == 0.1 else g.momentum,
                affine=None if g.affine is True else g.affine)


def _bn_shape(a: Args, ins: list[Shape]) -> Shape:
    if len(ins[0]) == 2:  # nn.BatchNorm1d would take the L tokens as its channels
        raise ShapeError(f"batchnorm on {ins[0][0]:,} tokens of {ins[0][1]:,} features",
                         hint="transformers normalise each token's features: use `layernorm`")
    return ins[0]


def _bn_params(a: Args, ins: list[Shape]) -> int:
    return 2 * ins[0][0] if a.affine else 0


BATCHNORM = Op(
    "batchnorm",
    "Batch normalisation over channels (nn.BatchNorm2d / 1d, Keras BatchNormalization). "
    "2C parameters (scale, shift) and 2C buffers (running mean and variance), which Keras lists "
    "as non-trainable parameters.",
    "normalisation",
    args=(
        ArgSpec("eps", "float", 1e-5, aliases=("epsilon",), above=0.0, doc="added to the variance (Keras uses 1e-3)"),
        ArgSpec("momentum", "float", 0.1, low=0.0, doc="PyTorch's convention: weight of the new batch"),
        ArgSpec("affine", "bool", True, aliases=("scale",), doc="learn scale and shift"),
        ACTIVATION,
    ),
    shape=_bn_shape,
    params=_bn_params,
    buffers=lambda a, ins: 2 * ins[0][0],
    explain=lambda a, ins, out: [
        f"params = 2 * {ins[0][0]} channels = {fmt_int(_bn_params(a, ins))} (scale and shift)",
        f"buffers = 2 * {ins[0][0]} = {fmt_int(2 * ins[0][0])} (running mean and variance)",
    ],
    torch=_bn_torch,
    output_saved=False,
    aliases=("bn", "batchnorm2d"),
    foreign=(keras("BatchNormalization", "axis momentum epsilon center scale", convert=(("momentum", keras_momentum),),
                   defaults=(("eps", 0.001), ("momentum", 0.01))),
             pytorch("BatchNorm2d", _TORCH_NORM), pytorch("BatchNorm1d", _TORCH_NORM)),
)

def _lrn_shape(a: Args, shape: Shape) -> Shape:
    c, _, _ = need_image("lrn", shape)  # nn.LocalResponseNorm needs (N, C, H, W)
    if a.size > 2 * c + 1:  # PyTorch pads the channels by the size: 10**12 would ask for terabytes
        raise ShapeError(f"lrn size {a.size:,} is more than twice the {c} channels it normalises across",
                         hint="AlexNet uses `lrn 5`; the window spans `size` neighbouring channels")
    return shape


LRN = Op(
    "lrn",
    "Local response normalisation across channels (nn.LocalResponseNorm), as in AlexNet (size 5, k 2).",
    "normalisation",
    args=(
        ArgSpec("size", "int", 5, positional=True, low=1, doc="neighbouring channels"),
        ArgSpec("alpha", "float", 1e-4),
        ArgSpec("beta", "float", 0.75),
        ArgSpec("k", "float", 1.0, doc="additive constant (AlexNet used 2)"),
    ),
    shape=lambda a, ins: _lrn_shape(a, ins[0]),
    label=lambda a, ins: f"lrn {a.size}",
    torch=lambda g: ctor("nn.LocalResponseNorm", g.size, alpha=g.alpha, beta=g.beta, k=g.k),
    foreign=(pytorch("LocalResponseNorm", "size alpha beta k"),),
    keras="LocalResponseNormalization",
)



# ---- per-sample normalisation: layernorm, groupnorm, instancenorm ---------------------------------


def _affine_params(a: Args, ins: list[Shape]) -> int:
    return 2 * ins[0][0] if a.affine else 0


def _affine_explain(a: Args, ins: list[Shape], over: str) -> list[str]:
    c, unit = ins[0][0], "channels" if len(ins[0]) == 3 else "features"
    lines = [f"normalises {over}"]
    if a.affine:
        return [*lines, f"params = 2 * {c} {unit} = {fmt_int(2 * c)} (scale and shift)"]
    return [*lines, "params = 0 (affine=false: no scale and shift)"]


def _ln_first(shape: Shape) -> Shape:
    """The shape with what layernorm normalises first: L x D tokens are normalised over D, their last axis."""
    return shape[::-1] if len(shape) == 2 else shape


def _ln_torch(g: CodeArgs) -> str:
    # ConvNeXt's LayerNorm2d normalises the channels at each position (inside a channels-last run of the forward,
    # nn.LayerNorm); a flat vector or L x D tokens (the last axis) are nn.LayerNorm's case
    kind = "LayerNorm2d" if len(g.x) == 3 and not g.channels_last else "nn.LayerNorm"
    return ctor(kind, g.x[-1] if len(g.x) == 2 else g.x[0], eps=None if g.eps == 1e-5 else g.eps,
                elementwise_affine=None if g.affine is True else g.affine)


LAYERNORM = Op(
    "layernorm",
    "Layer normalisation over the channels of each sample (Keras LayerNormalization): on a flat vector "
    "nn.LayerNorm(F); on an image over C at every position, as ConvNeXt's LayerNorm2d. "
    "2C parameters (scale and shift), no buffers.",
    "normalisation",
    args=(
        ArgSpec("eps", "float", 1e-5, aliases=("epsilon",), above=0.0,
                doc="added to the variance: PyTorch's default (ConvNeXt uses 1e-6, Keras 1e-3)"),
        ArgSpec("affine", "bool", True, aliases=("elementwise_affine",), doc="learn scale and shift"),
    ),
    params=lambda a, ins: _affine_params(a, [_ln_first(ins[0])]),
    explain=lambda a, ins, out: _affine_explain(
        a, [_ln_first(ins[0])], f"the {ins[0][0]} channels at each of the {ins[0][1]}x{ins[0][2]} positions"
        if len(ins[0]) == 3 else f"the {ins[0][-1]} features" + (f" of each of {ins[0][0]} tokens" if len(ins[0]) == 2
                                                                 else "")),
    torch=_ln_torch,
    aliases=("layernorm2d",),
    foreign=(keras("LayerNormalization", "axis epsilon center scale", defaults=(("eps", 0.001),)),
             pytorch("LayerNorm", "normalized_shape eps elementwise_affine")),
    torch_class="torchvision.models.convnext.LayerNorm2d",
    from_torch=lambda m: _layernorm2d(m),
)


def _layernorm2d(m) -> dict[str, object]:
    """torchvision's LayerNorm2d (ConvNeXt's: nn.LayerNorm over the channels of a map) as layernorm."""
    if len(m.normalized_shape) != 1 or (m.elementwise_affine and m.bias is None):
        raise ValueError(f"normalized_shape {tuple(m.normalized_shape)} with bias={m.bias is not None}: "
                         "layernorm normalises the channels with scale and shift")
    return {"eps": float(m.eps), **({} if m.elementwise_affine else {"affine": False})}


def _gn_shape(a: Args, ins: list[Shape]) -> Shape:
    c = ins[0][0]
    if c % a.groups:
        near = nearest_divisor(c, a.groups)
        raise ShapeError(f"groupnorm splits {c} channels into {a.groups} groups: {c} is not divisible by {a.groups}",
                         hint=f"use groups={near} (a divisor of {c}), or change the channels before it")
    return ins[0]


GROUPNORM = Op(
    "groupnorm",
    "Group normalisation (nn.GroupNorm, Keras GroupNormalization): the channels of each sample split "
    "into `groups` groups, each normalised over its channels and positions. 2C parameters, no buffers.",
    "normalisation",
    args=(
        ArgSpec("groups", "int", 32, aliases=("num_groups",), positional=True, low=1,
                doc="must divide the channels (Keras' default 32; nn.GroupNorm has none)"),
        ArgSpec("eps", "float", 1e-5, aliases=("epsilon",), above=0.0, doc="added to the variance (Keras 1e-3)"),
        ArgSpec("affine", "bool", True, doc="learn a scale and shift per channel"),
    ),
    shape=_gn_shape,
    params=_affine_params,
    label=lambda a, ins: f"groupnorm {a.groups}",
    explain=lambda a, ins, out: _affine_explain(
        a, ins, f"{a.groups} groups of {ins[0][0] // a.groups} channels"
        + (f" x {ins[0][1]}x{ins[0][2]} positions" if len(ins[0]) == 3 else "")),
    torch=lambda g: ctor("nn.GroupNorm", g.groups, g.x[0], eps=None if g.eps == 1e-5 else g.eps,
                         affine=None if g.affine is True else g.affine),
    foreign=(keras("GroupNormalization", "groups axis epsilon center scale", defaults=(("eps", 0.001),)),
             pytorch("GroupNorm", "num_groups num_channels eps affine")),
)


def _in_shape(a: Args, ins: list[Shape]) -> Shape:
    c, h, w = need_image("instancenorm", ins[0])
    if h * w == 1:  # PyTorch refuses to train it: each channel is one value, normalised to 0
        raise TooSmallError(f"instancenorm normalises each channel over its positions, but its input is {c}x1x1",
                         hint="put it before the global pool, where the map is larger than 1x1")
    return ins[0]


INSTANCENORM = Op(
    "instancenorm",
    "Instance normalisation (nn.InstanceNorm2d): each channel of each sample normalised over its "
    "positions. As PyTorch: no scale and shift unless affine=true, no running statistics unless "
    "track_running_stats=true (then 2C buffers).",
    "normalisation",
    args=(
        ArgSpec("eps", "float", 1e-5, aliases=("epsilon",), above=0.0, doc="added to the variance"),
        ArgSpec("affine", "bool", False, doc="learn a scale and shift per channel (PyTorch's default: no)"),
        ArgSpec("track_running_stats", "bool", False, doc="keep running mean and variance for eval"),
    ),
    shape=_in_shape,
    params=_affine_params,
    buffers=lambda a, ins: 2 * ins[0][0] if a.track_running_stats else 0,
    explain=lambda a, ins, out: [
        *_affine_explain(a, ins, f"each of the {ins[0][0]} channels over its {ins[0][1]}x{ins[0][2]} positions"),
        f"buffers = {'2 * ' + str(ins[0][0]) + ' = ' + fmt_int(2 * ins[0][0]) if a.track_running_stats else '0'}"
        + (" (running mean and variance)" if a.track_running_stats else " (track_running_stats=false)"),
    ],
    torch=lambda g: ctor("nn.InstanceNorm2d", g.x[0], eps=None if g.eps == 1e-5 else g.eps,
                         affine=None if g.affine is False else g.affine,
                         track_running_stats=None if g.track_running_stats is False else g.track_running_stats),
    aliases=("instancenorm2d",),
    foreign=(pytorch("InstanceNorm2d", _TORCH_NORM),),
    keras="InstanceNormalization",
)

ENTRIES = (BATCHNORM, LRN, LAYERNORM, GROUPNORM, INSTANCENORM)
