"""The registry entry of `cbam`: what `cnndsl check` knows of the layer, and the source it compiles to.

It must not import torch: `check` of a spec that uses cbam stays torch-free. The torch module lives in
cnndsl_cbam.layers, which only the generated code imports (`torch_class` below).
"""

from __future__ import annotations

from cnndsl.errors import ShapeError
from cnndsl.ops import Args, ArgSpec, CodeArgs, Op, Shape, Window
from cnndsl.ops.base import fmt_int, need_image
from cnndsl.ops.torchsrc import ctor


def _hidden(a: Args, ins: list[Shape]) -> int:
    c, _, _ = need_image("cbam", ins[0])
    if c // a.reduction < 1:
        raise ShapeError(f"cbam's MLP would have {c} // {a.reduction} = 0 hidden units for {c} channels",
                         hint=f"use reduction={c} or less")
    return c // a.reduction


def _shape(a: Args, ins: list[Shape]) -> Shape:
    _hidden(a, ins)
    if a.kernel % 2 == 0:
        raise ShapeError(f"cbam's spatial kernel must be odd, got {a.kernel}",
                         hint=f"padding kernel // 2 keeps the size only for an odd kernel: kernel={a.kernel + 1}")
    return ins[0]


def _params(a: Args, ins: list[Shape]) -> int:
    c, h = ins[0][0], _hidden(a, ins)
    return (c * h + h) + (h * c + c) + 2 * a.kernel * a.kernel  # the MLP's two linears, the spatial conv


def _macs(a: Args, ins: list[Shape], out: Shape) -> int:
    c, height, width = ins[0]
    h = _hidden(a, ins)
    return 2 * (c * h + h * c) + 2 * a.kernel * a.kernel * height * width  # the MLP twice; the conv at each pixel


def _window(a: Args, ins: list[Shape]) -> Window:
    _, h, w = ins[0]
    return Window(h, w)  # the channel gate pools the whole map: each output sees all of it


def _explain(a: Args, ins: list[Shape], out: Shape) -> list[str]:
    c, height, width = ins[0]
    h, k = _hidden(a, ins), a.kernel
    return [
        f"channel gate: sigmoid(MLP(avgpool x) + MLP(maxpool x)), MLP {c} -> {c} // {a.reduction} = {h} -> {c}",
        f"spatial gate: sigmoid(conv {k}x{k} of [mean, max] over channels), 2 -> 1 channels, no bias",
        f"params = ({c} * {h} + {h}) + ({h} * {c} + {c}) + 2 * {k} * {k} = {fmt_int(_params(a, ins))}",
        f"MACs = 2 * ({c} * {h} + {h} * {c}) + 2 * {k} * {k} * {height} * {width} = {fmt_int(_macs(a, ins, out))}",
    ]


def _torch(g: CodeArgs) -> str:
    return ctor("CBAM", g.x[0], reduction=None if g.reduction == 16 else g.reduction,
                kernel=None if g.kernel == 7 else g.kernel)


def _from_torch(module) -> dict[str, object]:
    """A CBAM module's spec arguments, for `cnndsl import`."""
    return {"reduction": module.mlp[0].in_features // module.mlp[0].out_features,
            "kernel": module.spatial.kernel_size[0]}


CBAM_ENTRY = Op(
    "cbam",
    "Convolutional Block Attention Module (Woo et al., 2018): a channel gate (a shared MLP on the average- and "
    "max-pooled features) then a spatial gate (a 7x7 conv on the mean and max over channels), each multiplied "
    "into the features. From the plugin cnndsl-cbam.",
    "attention",
    args=(ArgSpec("reduction", "int", 16, positional=True, aliases=("reduction_ratio", "r"), low=1,
                  doc="the MLP's hidden width is channels // reduction"),
          ArgSpec("kernel", "int", 7, aliases=("kernel_size",), low=1,
                  doc="the spatial gate's kernel (odd: padding kernel // 2 keeps the size)")),
    shape=_shape,
    params=_params,
    macs=_macs,
    window=_window,
    label=lambda a, ins: f"cbam r={a.reduction}",
    explain=_explain,
    shape_rule="output shape = input shape (CxHxW); C // reduction >= 1",
    torch=_torch,
    torch_class="cnndsl_cbam.layers.CBAM",
    from_torch=_from_torch,
)
