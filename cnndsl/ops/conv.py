"""Convolutions: conv, dwconv (depthwise), sepconv (depthwise then pointwise, Keras SeparableConv2D),
convtranspose (the learned upsampling, PyTorch ConvTranspose2d, Keras Conv2DTranspose)."""

from __future__ import annotations

from cnndsl.errors import ShapeError
from cnndsl.ops.base import (
    PADDED_PIXELS,
    Args,
    ArgSpec,
    CodeArgs,
    Op,
    Shape,
    Window,
    fmt_int,
    need_image,
    out_formula,
    spatial,
)
from cnndsl.ops.source import Src, binop, call, is_known
from cnndsl.ops.torchsrc import ctor, padding, spatial_out, two, unpair

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
    keras="Conv2D",
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
    keras="DepthwiseConv2D",
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
    keras="SeparableConv2D",
)


# ---- convtranspose ----------------------------------------------------------------------------------


def tconv_axis(padding, output_padding: int, k: int, s: int, d: int) -> tuple[int, int, int]:
    """(PyTorch padding, output_padding, rows trimmed at the start) of a transposed conv along one axis.

    A number is PyTorch's padding. `valid` and `same` are Keras': valid gives (n-1)*s + max(k', s), same
    gives n*s (k' = d*(k-1)+1), mapped to padding and output_padding as Keras 3's torch backend maps them.
    Where that output_padding would reach PyTorch's limit, max(stride, dilation) (stride 1, an even k'),
    Keras clamps it and loses a row; here padding is one less and the first row is trimmed instead.
    The generated code's `tconv_pads` is this function."""
    if padding not in ("same", "valid"):
        return padding, output_padding, 0
    ek = d * (k - 1) + 1
    if padding == "valid":
        return 0, max(ek, s) - ek, 0
    extra = s - ek % 2
    p = max(-((ek % 2 - ek + extra) // 2), 0)
    op = 2 * p + ek % 2 - ek + extra
    if op < max(s, d):
        return p, op, 0
    return p - 1, 0, 1  # op is 1 here, s and d 1: crop p before and p - 1 after


def tconv_out(n: int, padding, output_padding: int, k: int, s: int, d: int) -> int:
    """The output size along one axis: (n-1)*s - 2p + d*(k-1) + output_padding + 1, less any trim."""
    p, op, trim = tconv_axis(padding, output_padding, k, s, d)
    return (n - 1) * s - 2 * p + d * (k - 1) + op + 1 - trim


def _tconv_axes(a) -> list[tuple]:
    """Per axis, (padding, output_padding, kernel, stride, dilation) as given."""
    p = a.padding
    return [(p if isinstance(p, str) else p[i], a.output_padding[i], a.kernel[i], a.stride[i], a.dilation[i])
            for i in (0, 1)]


def _tconv_shape(a: Args, ins: list[Shape]) -> Shape:
    c, h, w = need_image("convtranspose", ins[0])
    if c % a.groups or a.filters % a.groups:
        raise ShapeError(
            f"convtranspose groups={a.groups} must divide both the input channels ({c}) and filters ({a.filters})",
            hint=f"pick groups among the common divisors of {c} and {a.filters}",
        )
    axes = _tconv_axes(a)
    if isinstance(a.padding, str) and a.output_padding != (0, 0):
        raise ShapeError(f"convtranspose output_padding goes with a numeric padding, not padding={a.padding}",
                         hint=f"padding={a.padding} chooses the output padding as Keras does; drop output_padding")
    for _, op, _, s, d in axes:
        if op >= max(s, d):
            raise ShapeError(f"convtranspose output_padding={op} must be smaller than the stride ({s}) or the "
                             f"dilation ({d})", hint="PyTorch refuses it; output_padding picks among the "
                             "stride's possible input sizes")
    out = tuple(tconv_out(n, *axis) for n, axis in zip((h, w), axes))
    if min(out) < 1 or max(out) > PADDED_PIXELS:
        raise ShapeError(f"convtranspose turns its {h}x{w} input into {out[0]:,}x{out[1]:,}",
                         hint="use less padding" if min(out) < 1 else "use a smaller stride or kernel")
    return (a.filters, *out)


def _tconv_macs(a: Args, ins: list[Shape], out: Shape) -> int:
    # each input position scatters its C/groups channels through the kernel into filters outputs
    # (FlopCounterMode counts a transposed conv over its input positions)
    kh, kw = a.kernel
    return ins[0][1] * ins[0][2] * a.filters * (ins[0][0] // a.groups) * kh * kw


def _tconv_window(a: Args, ins: list[Shape]) -> Window:
    """An output sees ceil(k'/s) neighbouring inputs, which lie 1/s apart in its own pixels."""
    (kh, kw), (sh, sw), (dh, dw) = a.kernel, a.stride, a.dilation
    return Window(-(-(dh * (kh - 1) + 1) // sh), -(-(dw * (kw - 1) + 1) // sw), 1 / sh, 1 / sw)


def _tconv_formula(n: int, out: int, padding, op: int, k: int, s: int, d: int) -> str:
    p, op, trim = tconv_axis(padding, op, k, s, d)
    text = f"({n}-1)*{s} - 2*{p} + {d}*({k}-1) + {op} + 1" + (f" - {trim} trimmed" if trim else "") + f" = {out}"
    if padding == "same":
        return text + f"  (same: {n}*{s}; padding={p}, output_padding={op} as Keras computes them)"
    if padding == "valid":
        return text + f"  (valid: ({n}-1)*{s} + max({d * (k - 1) + 1}, {s}))"
    return text


def _tconv_explain(a: Args, ins: list[Shape], out: Shape) -> list[str]:
    _, h, w = ins[0]
    kh, kw = a.kernel
    cin = ins[0][0] // a.groups
    fh, fw = (_tconv_formula(n, o, *axis) for n, o, axis in zip((h, w), out[1:], _tconv_axes(a)))
    bias = " + 1" if a.bias else ""
    groups = f" ({ins[0][0]} channels / {a.groups} groups)" if a.groups > 1 else ""
    filters = f"{a.filters} filter{'s' if a.filters > 1 else ''}"
    return ([f"out H,W = {fh}"] if fh == fw else [f"out H = {fh}", f"out W = {fw}"]) + [
        f"params = ({kh}*{kw}*{cin}{bias}) * {a.filters} = {fmt_int(_conv_params(a, ins))}{groups}",
        f"MACs = {h}*{w} = {fmt_int(h * w)} input positions * {filters} * {kh}*{kw}*{cin} = "
        f"{fmt_int(kh * kw * cin)} multiplications each = {fmt_int(_tconv_macs(a, ins, out))}",
    ]


def _tconv_torch(g: CodeArgs) -> str:
    keys = dict(kernel_size=unpair(g.kernel), stride=None if g.stride == (1, 1) else unpair(g.stride))
    tail = dict(groups=None if g.groups == 1 else g.groups, bias=None if g.bias is True else g.bias,
                dilation=None if g.dilation == (1, 1) else unpair(g.dilation))
    if is_known((g.padding, g.output_padding, g.kernel, g.stride, g.dilation)):
        axes = [tconv_axis(*axis) for axis in _tconv_axes(g)]
        if not any(t for _, _, t in axes):  # PyTorch's own arguments say it: the common case
            pad, op = unpair(tuple(x[0] for x in axes)), unpair(tuple(x[1] for x in axes))
            return ctor("nn.ConvTranspose2d", g.x[0], g.filters, **keys, padding=pad or None,
                        output_padding=op or None, **tail)
    # a word, or a size known only at construction: the helper class works the padding out then
    pad = None if g.padding == (0, 0) else unpair(g.padding)
    op = None if g.output_padding == (0, 0) else unpair(g.output_padding)
    return ctor("ConvTranspose2dSame", g.x[0], g.filters, **keys, padding=pad, output_padding=op, **tail)


def _tconv_sym(g: CodeArgs) -> tuple:
    """(filters, H, W) where a size is known only at construction: `h * 2` or `tconv_out(...)`."""
    out = []
    for axis, n, k, s, d, op in zip((0, 1), g.x[1:], two(g.kernel), two(g.stride), two(g.dilation),
                                    two(g.output_padding)):
        p = g.padding if isinstance(g.padding, (str, Src)) else g.padding[axis]
        if is_known((p, k, s, d, op)):  # only the input size is open: (n - 1)*s + a constant
            pad, extra, trim = tconv_axis(p, op, k, s, d)
            rest = -2 * pad + d * (k - 1) + extra + 1 - trim - s
            grown = n if s == 1 else binop("*", n, s)
            out.append(grown if rest == 0 else binop("+", grown, rest))
        else:
            out.append(call("tconv_out", n, g.padding, op, k, s, d, axis))
    return (g.filters, *out)


CONVTRANSPOSE = Op(
    "convtranspose",
    "Transposed convolution, the learned upsampling of U-Nets and GANs (PyTorch nn.ConvTranspose2d, Keras "
    "Conv2DTranspose).",
    "convolution",
    args=(FILTERS, KERNEL, STRIDE,
          ArgSpec("padding", "padding", 0, low=0,
                  doc="an int or a pair (PyTorch's: crops the full output), or Keras' `same` (output = input * "
                  "stride) or `valid` (output = (input-1)*stride + max(kernel, stride))"),
          ArgSpec("output_padding", "pair", 0, low=0,
                  doc="rows and columns added at the end, below max(stride, dilation), with a numeric padding"),
          DILATION,
          ArgSpec("groups", "int", 1, low=1, doc="split channels into groups"),
          BIAS, ACTIVATION),
    shape=_tconv_shape,
    params=_conv_params,
    macs=_tconv_macs,
    window=_tconv_window,
    label=lambda a, ins: f"convtranspose {_kernel_text(a)} → {a.filters}" + (f" g{a.groups}" if a.groups > 1 else ""),
    explain=_tconv_explain,
    torch=_tconv_torch,
    output_saved=False,
    sym_shape=_tconv_sym,
    aliases=("convtranspose2d", "conv2dtranspose", "deconv"),
    shape_rule="filters x out(H) x out(W), out(n) = (n-1)*s - 2p + d(k-1) + output_padding + 1; same: n*s",
    keras="Conv2DTranspose",
)

ENTRIES = (CONV, DWCONV, SEPCONV, CONVTRANSPOSE)
