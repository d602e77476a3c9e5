"""Pooling: maxpool, avgpool (with PyTorch's ceil mode), global pools, adaptive average pool."""

from __future__ import annotations

from cnndsl.errors import ShapeError
from cnndsl.ops.base import (
    Args,
    ArgSpec,
    CodeArgs,
    Op,
    Shape,
    Window,
    ceil_div,
    fmt_shape,
    keras,
    need_image,
    pytorch,
    spatial,
)
from cnndsl.ops.conv import PADDING, _kernel_text, _size_lines
from cnndsl.ops.source import Src, py
from cnndsl.ops.torchsrc import ctor, padding, spatial_out, two, unpair

POOL_ARGS = (
    ArgSpec("kernel", "pair", 2, aliases=("pool_size", "kernel_size", "size"), positional=True, low=1,
            doc="window size (Keras' default 2)"),
    ArgSpec("stride", "pair", None, aliases=("strides",), low=1,
            doc="defaults to the kernel (Keras and PyTorch agree)"),
    PADDING,
    ArgSpec("ceil", "bool", False, aliases=("ceil_mode",), doc="round the output size up (PyTorch ceil_mode)"),
)


def _stride(a: Args):
    return a.kernel if a.stride is None else a.stride


def _pool_shape(op: str):
    def shape(a: Args, ins: list[Shape]) -> Shape:
        padding = a.padding
        if isinstance(padding, tuple):
            for p, k in zip(padding, a.kernel):
                if p > k // 2:
                    raise ShapeError(
                        f"{op} padding {p} is more than half its kernel {k}",
                        hint="PyTorch pads pools by at most kernel // 2; use padding=same for Keras' rule",
                    )
        ho, wo, _, _ = spatial(op, a, ins[0], a.kernel, _stride(a), (1, 1), a.ceil)
        return (ins[0][0], ho, wo)

    return shape


def _pool_window(a: Args, ins: list[Shape]) -> Window:
    (kh, kw), (sh, sw) = a.kernel, _stride(a)
    return Window(kh, kw, sh, sw)


def _pool_explain(op: str):
    def explain(a: Args, ins: list[Shape], out: Shape) -> list[str]:
        b = Args({**a.values, "stride": _stride(a)})
        return _size_lines(op, b, ins[0], out, a.ceil) + ["no parameters"]

    return explain


def _pool_label(op: str):
    return lambda a, ins: f"{op} {_kernel_text(Args({**a.values, 'stride': _stride(a)}))}" + (
        " ceil" if a.ceil else ""
    )


def _pool_torch(op: str):
    def torch(g: CodeArgs) -> str:
        stride = g.kernel if g.stride is None else g.stride
        pad, pads4 = padding(g, g.kernel, stride, (1, 1), torch_same=False)
        ceil_mode = True if g.ceil is True else None if g.ceil is False else g.ceil
        if pads4 is not None:
            return ctor("PoolSame", op, unpair(g.kernel), unpair(stride), pads4, ceil_mode=ceil_mode,
                        count_include_pad=_counts_padding(g) if op == "avg" else None)
        exclude = g.padding == "same" or g.values.get("count_include_pad", True) is False
        return ctor(f"nn.{op.capitalize()}Pool2d", unpair(g.kernel),
                    stride=None if g.stride is None else unpair(g.stride), padding=pad, ceil_mode=ceil_mode,
                    count_include_pad=False if exclude and op == "avg" and pad else None)

    return torch


def _counts_padding(g: CodeArgs):
    """PoolSame's count_include_pad: never for Keras' `same`; for a padding that a parameter holds, as
    nn.AvgPool2d would count it (count_include_pad, True by default) unless the parameter holds `same`."""
    include = g.values.get("count_include_pad", True)
    if g.padding == "same" or include is False:
        return None
    if isinstance(g.padding, Src):
        unless_same = Src(f"{py(g.padding, 5)} != {py('same')}", 4, word=False)
        return unless_same if include is True else Src(f"{py(include, 3)} and {unless_same.text}", 2, word=False)
    return include


def _pool_sym(g: CodeArgs) -> tuple:
    return (g.x[0], *spatial_out(g, g.kernel, g.kernel if g.stride is None else g.stride, (1, 1), g.ceil))


def _pool(name: str, doc: str, foreign: tuple, extra=()) -> Op:
    return Op(
        name,
        doc,
        "pooling",
        args=POOL_ARGS + extra,
        shape=_pool_shape(name),
        window=_pool_window,
        label=_pool_label(name),
        explain=_pool_explain(name),
        torch=_pool_torch(name[:3]),
        sym_shape=_pool_sym,
        shape_rule="C x out(H) x out(W), as conv; with ceil=true the size rounds up "
        "(a window must start inside the input)",
        foreign=foreign,
    )


_KERAS_POOL = "pool_size strides padding data_format"
MAXPOOL = _pool("maxpool", "Max pooling (nn.MaxPool2d, Keras MaxPooling2D).",
                (keras("MaxPooling2D", _KERAS_POOL), keras("MaxPool2D", _KERAS_POOL),
                 pytorch("MaxPool2d", "kernel_size stride padding dilation return_indices ceil_mode")))
AVGPOOL = _pool(
    "avgpool",
    "Average pooling (nn.AvgPool2d, Keras AveragePooling2D).",
    (keras("AveragePooling2D", _KERAS_POOL), keras("AvgPool2D", _KERAS_POOL),
     pytorch("AvgPool2d", "kernel_size stride padding ceil_mode count_include_pad divisor_override")),
    (ArgSpec("count_include_pad", "bool", True, doc="average over padded zeros too (PyTorch's default)"),),
)


def _global_shape(a: Args, ins: list[Shape]) -> Shape:
    c, _, _ = need_image("global pool", ins[0])
    return (c, 1, 1) if a.keepdims else (c,)


def _global_window(a: Args, ins: list[Shape]) -> Window:
    # one output sees the whole map; no stride, since no spatial layer can follow a flat output
    _, h, w = ins[0]
    return Window(h, w)


def _global_torch(g: CodeArgs, op: str) -> str:
    """torch's own layers, as torchvision writes them: `nn.AdaptiveAvgPool2d(1)`, then a flatten unless
    keepdims (a module of its own here, since the layer is one step of the forward)."""
    pool = "nn.AdaptiveAvgPool2d(1)" if op == "avg" else "nn.AdaptiveMaxPool2d(1)"
    flat = f"nn.Sequential({pool}, nn.Flatten())"
    if isinstance(g.keepdims, bool):
        return pool if g.keepdims else flat
    return f"({pool} if {py(g.keepdims)} else {flat})"


def _global(name: str, doc: str, foreign: tuple) -> Op:
    return Op(
        name,
        doc,
        "pooling",
        args=(ArgSpec("keepdims", "bool", False, rank=True, doc="keep Cx1x1 instead of a flat C (Keras' keepdims)"),),
        shape=_global_shape,
        window=_global_window,
        label=lambda a, ins: name,
        explain=lambda a, ins, out: [f"one value per channel: {fmt_shape(ins[0])} -> {fmt_shape(out)}"],
        torch=lambda g: _global_torch(g, name[6:9]),
        sym_shape=lambda g: (g.x[0], 1, 1) if g.keepdims is True else (g.x[0],),
        shape_rule="C (flat), or Cx1x1 with keepdims=true",
        foreign=foreign,
    )


GLOBALAVGPOOL = _global("globalavgpool", "Average of each channel (Keras GlobalAveragePooling2D).",
                        (keras("GlobalAveragePooling2D", "data_format keepdims"),
                         keras("GlobalAvgPool2D", "data_format keepdims")))
GLOBALMAXPOOL = _global("globalmaxpool", "Maximum of each channel (Keras GlobalMaxPooling2D).",
                        (keras("GlobalMaxPooling2D", "data_format keepdims"),
                         keras("GlobalMaxPool2D", "data_format keepdims")))


def _adaptive_shape(a: Args, ins: list[Shape]) -> Shape:
    c, _, _ = need_image("adaptiveavgpool", ins[0])
    return (c, *a.size)


def _adaptive_window(a: Args, ins: list[Shape]) -> Window:
    _, h, w = ins[0]
    oh, ow = a.size
    return Window(ceil_div(h, oh), ceil_div(w, ow), h // oh or 1, w // ow or 1)


ADAPTIVEAVGPOOL = Op(
    "adaptiveavgpool",
    "Average pooling to a fixed output size (nn.AdaptiveAvgPool2d), as torchvision's AlexNet and VGG use.",
    "pooling",
    args=(ArgSpec("size", "pair", positional=True, low=1, doc="output HxW"),),
    shape=_adaptive_shape,
    window=_adaptive_window,
    label=lambda a, ins: f"adaptiveavgpool → {'x'.join(map(str, a.size))}",
    torch=lambda g: ctor("nn.AdaptiveAvgPool2d", unpair(g.size)),
    sym_shape=lambda g: (g.x[0], *two(g.size)),
    shape_rule="C x size",
    foreign=(keras("AdaptiveAveragePooling2D", "output_size data_format", renames=(("output_size", "size"),)),
             pytorch("AdaptiveAvgPool2d", "output_size", renames=(("output_size", "size"),))),
)

ENTRIES = (MAXPOOL, AVGPOOL, GLOBALAVGPOOL, GLOBALMAXPOOL, ADAPTIVEAVGPOOL)
