"""The network input and shape-changing plumbing: input, identity, upsample, zeropad."""

from __future__ import annotations

from cnndsl.errors import ShapeError
from cnndsl.ops.base import (
    Args,
    ArgSpec,
    CodeArgs,
    Op,
    Shape,
    Window,
    channels_first,
    fmt_shape,
    keras,
    need_image,
    pytorch,
)
from cnndsl.ops.source import binop
from cnndsl.ops.torchsrc import ctor, two, unpair


def _input_shape(a: Args, ins: list[Shape]) -> Shape:
    shape = a.shape if isinstance(a.shape, tuple) else (a.shape,)
    if len(shape) not in (1, 3):
        raise ShapeError(
            f"input takes CxHxW (channels first) or a feature count, got {fmt_shape(shape)}",
            hint=f"for a grey image write `input 1x{fmt_shape(shape)}`" if len(shape) == 2 else None,
        )
    if min(shape) < 1:
        raise ShapeError(f"input sizes must be at least 1, got {fmt_shape(shape)}")
    if in_keras_order(shape):
        raise ShapeError(f"input {fmt_shape(shape)} reads as H x W x C, Keras' order; cnndsl shapes are channels "
                         "first, C x H x W, as PyTorch's", hint=f"write `input {fmt_shape(channels_first(shape))}`")
    return shape


CHANNEL_COUNTS = (1, 3, 4)  # grey, RGB, RGBA: what the last size of an image in Keras' order is


def in_keras_order(shape: Shape) -> bool:
    """Whether an input shape is an image in Keras' order, H x W x C (28x28x1, 32x32x3, 224x224x3, 64x64x4).

    Read so, its last size is a channel count, its first larger than that and not one itself (4x4x3 and 3x2x1 may
    be 4 or 3 channels), and its last two sizes differ: a map C x H x W of more channels is square (8x4x4)."""
    if len(shape) != 3:
        return False
    first, middle, last = shape
    return last in CHANNEL_COUNTS and first > last and first not in CHANNEL_COUNTS and middle != last


INPUT = Op(
    "input",
    "The network's input: `input 3x224x224` (C x H x W, batch implicit) or `input 784`.",
    "input",
    args=(ArgSpec("shape", "shape", positional=True, doc="CxHxW or a feature count"),),
    shape=_input_shape,
    label=lambda a, ins: "input",
    shape_rule="the given shape",
    foreign=(keras("Input", "shape batch_size", convert=(("shape", channels_first),)),
             keras("InputLayer", "shape batch_size", convert=(("shape", channels_first),))),
    keras="InputLayer",  # a model's summary shows its Input as an InputLayer row
)

IDENTITY = Op("identity", "Passes its input through unchanged.", "shape", torch=lambda g: "nn.Identity()",
              foreign=(keras("Identity"), pytorch("Identity")))


def _upsample_shape(a: Args, ins: list[Shape]) -> Shape:
    c, h, w = need_image("upsample", ins[0])
    sh, sw = a.scale
    return (c, h * sh, w * sw)


UPSAMPLE = Op(
    "upsample",
    "Repeats (nearest) or interpolates (bilinear) rows and columns (nn.Upsample, Keras UpSampling2D).",
    "shape",
    args=(
        ArgSpec("scale", "pair", 2, aliases=("size", "scale_factor"), positional=True, low=1),
        ArgSpec("mode", "choice", "nearest", choices=("nearest", "bilinear")),
    ),
    shape=_upsample_shape,
    # outputs are closer together than the input's: the step between them shrinks
    window=lambda a, ins: Window(1, 1, 1 / a.scale[0], 1 / a.scale[1]),
    label=lambda a, ins: f"upsample x{'x'.join(map(str, sorted(set(a.scale))))}",
    torch=lambda g: ctor("nn.Upsample", scale_factor=unpair(g.scale), mode=None if g.mode == "nearest" else g.mode),
    sym_shape=lambda g: (g.x[0], binop("*", g.x[1], two(g.scale)[0]), binop("*", g.x[2], two(g.scale)[1])),
    shape_rule="C x H*scale x W*scale",
    foreign=(keras("UpSampling2D", "size data_format interpolation", renames=(("interpolation", "mode"),)),
             pytorch("Upsample", "size scale_factor mode align_corners", renames=(("size", ""),))),
)


def _zeropad_sides(a: Args) -> tuple[int, int, int, int]:
    """(left, right, top, bottom), PyTorch's order."""
    p = a.padding
    if isinstance(p, tuple) and len(p) == 4:
        return p
    ph, pw = two(p)
    return (pw, pw, ph, ph)


def _zeropad_sym(g: CodeArgs) -> tuple:
    left, right, top, bottom = _zeropad_sides(g)
    return (g.x[0], binop("+", binop("+", g.x[1], top), bottom), binop("+", binop("+", g.x[2], left), right))


def _zeropad_shape(a: Args, ins: list[Shape]) -> Shape:
    c, h, w = need_image("zeropad", ins[0])
    if isinstance(a.padding, tuple) and len(a.padding) not in (2, 4):
        raise ShapeError("zeropad takes an int, a pair (rows, columns) or (left, right, top, bottom)")
    left, right, top, bottom = _zeropad_sides(a)
    return (c, h + top + bottom, w + left + right)


ZEROPAD = Op(
    "zeropad",
    "Pads with zeros (nn.ZeroPad2d, Keras ZeroPadding2D).",
    "shape",
    args=(ArgSpec("padding", "ints", 1, positional=True, low=0,
                  doc="an int, (rows, columns), or (left, right, top, bottom)"),),
    shape=_zeropad_shape,
    label=lambda a, ins: "zeropad " + ",".join(map(str, _zeropad_sides(a))),
    torch=lambda g: ctor("nn.ZeroPad2d", _zeropad_sides(g)),
    sym_shape=_zeropad_sym,
    shape_rule="C x H+top+bottom x W+left+right",
    foreign=(keras("ZeroPadding2D", "padding data_format"), pytorch("ZeroPad2d", "padding")),
)

ENTRIES = (INPUT, IDENTITY, UPSAMPLE, ZEROPAD)
