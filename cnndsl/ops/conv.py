"""Convolutions: conv, dwconv (depthwise), sepconv (depthwise then pointwise, Keras SeparableConv2D)."""

from __future__ import annotations

from cnndsl.errors import ShapeError
from cnndsl.ops.base import Args, ArgSpec, CodeArgs, Op, Shape, Window, fmt_int, out_formula, spatial
from cnndsl.ops.source import binop
from cnndsl.ops.torchsrc import ctor, padding, spatial_out, unpair

KERNEL = ArgSpec("kernel", "pair", aliases=("kernel_size",), positional=True, low=1,
                 doc="window size: `3` or `3x3` or `(1, 7)`")
STRIDE = ArgSpec("stride", "pair", 1, aliases=("strides",), low=1, doc="step between windows")
PADDING = ArgSpec("padding", "padding", "valid", low=0,
                  doc="`valid` (none), `same` (keeps ceil(n/stride), Keras' asymmetric rule), an int or a pair")
DILATION = ArgSpec("dilation", "pair", 1, aliases=("dilation_rate",), low=1, doc="spacing of kernel taps")
BIAS = ArgSpec("bias", "bool", True, aliases=("use_bias",), doc="learn an additive bias per output channel")
ACTIVATION = ArgSpec("activation", "activation", "none",
                     doc="an activation applied after the layer, as in Keras: `activation=relu`")
FILTERS = ArgSpec("filters", "int", aliases=("out_channels", "channels"), positional=True, low=1,
                  doc="number of output channels")
MULTIPLIER = ArgSpec("multiplier", "int", 1, aliases=("depth_multiplier",), low=1,
                     doc="depthwise outputs per input channel")


def _out(op: str, a: Args, x: Shape) -> tuple[int, int]:
    ho, wo, _, _ = spatial(op, a, x, a.kernel, a.stride, a.dilation)
    return ho, wo


def _window(a: Args, ins: list[Shape]) -> Window:
    (kh, kw), (sh, sw), (dh, dw) = a.kernel, a.stride, a.dilation
    return Window(dh * (kh - 1) + 1, dw * (kw - 1) + 1, sh, sw)


def _size_lines(op: str, a: Args, x: Shape, out: Shape, ceil: bool = False) -> list[str]:
    """The output-size formula for H and W, written once when both axes agree."""
    _, h, w = x
    (kh, kw), (sh, sw), (dh, dw) = a.kernel, a.stride, a.values.get("dilation", (1, 1))  # pools have none
    _, _, ph, pw = spatial(op, Args(dict(a.values)), x, a.kernel, a.stride, (dh, dw), ceil)
    padding = a.values.get("padding", "valid")
    fh = out_formula(h, ph, kh, sh, dh, out[1], padding, ceil)
    fw = out_formula(w, pw, kw, sw, dw, out[2], padding, ceil)
    return [f"out H,W = {fh}"] if fh == fw else [f"out H = {fh}", f"out W = {fw}"]


def _kernel_text(a: Args) -> str:
    (kh, kw), (sh, sw), (dh, dw) = a.kernel, a.stride, a.values.get("dilation", (1, 1))  # pools have none
    k = f"{kh}x{kw}"
    k += f"/{sh}" if sh == sw and sh > 1 else f"/{sh}x{sw}" if (sh, sw) != (1, 1) else ""
    # dilation beside the kernel, as groups stand after the filters: `conv 3x3 d2 → 64`
    return k + (f" d{dh}" if dh == dw and dh > 1 else f" d{dh}x{dw}" if (dh, dw) != (1, 1) else "")


def _common(g: CodeArgs) -> dict:
    """Keyword arguments of nn.Conv2d, defaults left out, and Keras' asymmetric padding if any."""
    pad, pads4 = padding(g, g.kernel, g.stride, g.dilation)
    return dict(kernel_size=unpair(g.kernel), stride=None if g.stride == (1, 1) else unpair(g.stride), padding=pad,
                dilation=None if g.dilation == (1, 1) else unpair(g.dilation)), pads4


def _conv_class(g: CodeArgs, pads4) -> str:
    if pads4 is None:
        return "nn.Conv2d"
    return "Conv2dSame"


# ---- conv -----------------------------------------------------------------------------------------


def _conv_torch(g: CodeArgs) -> str:
    kw, pads4 = _common(g)
    return ctor(_conv_class(g, pads4), g.x[0], g.filters, **kw, groups=None if g.groups == 1 else g.groups,
                bias=None if g.bias is True else g.bias, pads=pads4)


def _conv_shape(a: Args, ins: list[Shape]) -> Shape:
    c = ins[0][0]
    if c % a.groups or a.filters % a.groups:
        raise ShapeError(
            f"conv groups={a.groups} must divide both the input channels ({c}) and filters ({a.filters})",
            hint=f"pick groups among the common divisors of {c} and {a.filters}",
        )
    return (a.filters, *_out("conv", a, ins[0]))


def _conv_params(a: Args, ins: list[Shape]) -> int:
    kh, kw = a.kernel
    return a.filters * (ins[0][0] // a.groups) * kh * kw + (a.filters if a.bias else 0)


def _conv_macs(a: Args, ins: list[Shape], out: Shape) -> int:
    kh, kw = a.kernel
    return out[1] * out[2] * a.filters * (ins[0][0] // a.groups) * kh * kw


def _conv_explain(a: Args, ins: list[Shape], out: Shape) -> list[str]:
    kh, kw = a.kernel
    cin = ins[0][0] // a.groups
    bias = " + 1" if a.bias else ""
    groups = f" ({ins[0][0]} channels / {a.groups} groups)" if a.groups > 1 else ""
    filters = f"{a.filters} filter{'s' if a.filters > 1 else ''}"
    return _size_lines("conv", a, ins[0], out) + [
        f"params = ({kh}*{kw}*{cin}{bias}) * {a.filters} = {fmt_int(_conv_params(a, ins))}{groups}",
        f"MACs = {out[1]}*{out[2]} = {fmt_int(out[1] * out[2])} positions * {filters} * "
        f"{kh}*{kw}*{cin} = {fmt_int(kh * kw * cin)} multiplications each = {fmt_int(_conv_macs(a, ins, out))}",
    ]


CONV = Op(
    "conv",
    "2-D convolution (PyTorch nn.Conv2d, Keras Conv2D).",
    "convolution",
    args=(FILTERS, KERNEL, STRIDE, PADDING, DILATION,
          ArgSpec("groups", "int", 1, low=1, doc="split channels into groups (groups=C is depthwise)"),
          BIAS, ACTIVATION),
    shape=_conv_shape,
    params=_conv_params,
    macs=_conv_macs,
    window=_window,
    label=lambda a, ins: f"conv {_kernel_text(a)} → {a.filters}" + (f" g{a.groups}" if a.groups > 1 else ""),
    explain=_conv_explain,
    torch=_conv_torch,
    output_saved=False,
    sym_shape=lambda g: (g.filters, *spatial_out(g, g.kernel, g.stride, g.dilation)),
    aliases=("conv2d",),
    shape_rule="filters x out(H) x out(W), out(n) = floor((n + 2p - d(k-1) - 1) / s) + 1; "
    "same: ceil(n / s)",
)

# ---- dwconv -----------------------------------------------------------------------------------------


def _dw_shape(a: Args, ins: list[Shape]) -> Shape:
    return (ins[0][0] * a.multiplier, *_out("dwconv", a, ins[0]))


def _dw_params(a: Args, ins: list[Shape]) -> int:
    kh, kw = a.kernel
    c = ins[0][0] * a.multiplier
    return c * kh * kw + (c if a.bias else 0)


def _dw_macs(a: Args, ins: list[Shape], out: Shape) -> int:
    kh, kw = a.kernel
    return out[1] * out[2] * out[0] * kh * kw


def _dw_explain(a: Args, ins: list[Shape], out: Shape) -> list[str]:
    kh, kw = a.kernel
    bias = " + 1" if a.bias else ""
    return _size_lines("dwconv", a, ins[0], out) + [
        f"params = ({kh}*{kw}{bias}) * {out[0]} channels = {fmt_int(_dw_params(a, ins))}",
        f"MACs = {out[1]}*{out[2]} positions * {out[0]} channels * {kh}*{kw} = {fmt_int(_dw_macs(a, ins, out))}",
    ]


def _dw_torch(g: CodeArgs) -> str:
    kw, pads4 = _common(g)
    c = g.x[0]
    return ctor(_conv_class(g, pads4), c, binop("*", c, g.multiplier), **kw, groups=c,
                bias=None if g.bias is True else g.bias, pads=pads4)


DWCONV = Op(
    "dwconv",
    "Depthwise convolution: one filter per input channel (Keras DepthwiseConv2D, nn.Conv2d with groups=C).",
    "convolution",
    args=(KERNEL, STRIDE, PADDING, DILATION, MULTIPLIER, BIAS, ACTIVATION),
    shape=_dw_shape,
    params=_dw_params,
    macs=_dw_macs,
    window=_window,
    label=lambda a, ins: f"dwconv {_kernel_text(a)}" + (f" x{a.multiplier}" if a.multiplier > 1 else ""),
    explain=_dw_explain,
    torch=_dw_torch,
    output_saved=False,
    sym_shape=lambda g: (binop("*", g.x[0], g.multiplier), *spatial_out(g, g.kernel, g.stride, g.dilation)),
    aliases=("depthwiseconv",),
    shape_rule="C*multiplier x out(H) x out(W), as conv",
)

# ---- sepconv ----------------------------------------------------------------------------------------


def _sep_shape(a: Args, ins: list[Shape]) -> Shape:
    return (a.filters, *_out("sepconv", a, ins[0]))


def _sep_params(a: Args, ins: list[Shape]) -> int:
    kh, kw = a.kernel
    mid = ins[0][0] * a.multiplier
    return mid * kh * kw + mid * a.filters + (a.filters if a.bias else 0)


def _sep_macs(a: Args, ins: list[Shape], out: Shape) -> int:
    kh, kw = a.kernel
    mid = ins[0][0] * a.multiplier
    return out[1] * out[2] * (mid * kh * kw + mid * a.filters)


def _sep_explain(a: Args, ins: list[Shape], out: Shape) -> list[str]:
    kh, kw = a.kernel
    mid = ins[0][0] * a.multiplier
    bias = f" + {a.filters}" if a.bias else ""
    full = out[1] * out[2] * a.filters * ins[0][0] * kh * kw
    return _size_lines("sepconv", a, ins[0], out) + [
        f"params = {kh}*{kw}*{mid} depthwise + {mid}*{a.filters} pointwise{bias} = {fmt_int(_sep_params(a, ins))}",
        f"MACs = {out[1]}*{out[2]} positions * ({kh}*{kw}*{mid} + {mid}*{a.filters}) = "
        f"{fmt_int(_sep_macs(a, ins, out))}  (a full conv would cost {fmt_int(full)})",
    ]


def _sep_torch(g: CodeArgs) -> str:
    kw, pads4 = _common(g)
    return ctor("SeparableConv2d", g.x[0], g.filters, **kw, multiplier=None if g.multiplier == 1 else g.multiplier,
                bias=None if g.bias is True else g.bias, pads=pads4)


SEPCONV = Op(
    "sepconv",
    "Depthwise-separable convolution: a depthwise conv (no bias) then a 1x1 conv "
    "(Keras SeparableConv2D).",
    "convolution",
    args=(FILTERS, KERNEL, STRIDE, PADDING, DILATION, MULTIPLIER, BIAS, ACTIVATION),
    shape=_sep_shape,
    params=_sep_params,
    macs=_sep_macs,
    window=_window,
    label=lambda a, ins: f"sepconv {_kernel_text(a)} → {a.filters}",
    explain=_sep_explain,
    torch=_sep_torch,
    output_saved=False,
    sym_shape=lambda g: (g.filters, *spatial_out(g, g.kernel, g.stride, g.dilation)),
    aliases=("separableconv",),
    shape_rule="filters x out(H) x out(W), as conv",
)

ENTRIES = (CONV, DWCONV, SEPCONV)
