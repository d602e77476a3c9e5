"""Normalisation: batchnorm, lrn (AlexNet's local response normalisation)."""

from __future__ import annotations

from cnndsl.errors import ShapeError
from cnndsl.ops.base import Args, ArgSpec, CodeArgs, Op, Shape, fmt_int, need_image
from cnndsl.ops.torchsrc import ctor


def _bn_torch(g: CodeArgs) -> str:
    kind = "nn.BatchNorm2d" if len(g.x) == 3 else "nn.BatchNorm1d"
    return ctor(kind, g.x[0], eps=None if g.eps == 1e-5 else g.eps, momentum=None if g.momentum == 0.1 else g.momentum,
                affine=None if g.affine is True else g.affine)


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
    ),
    params=_bn_params,
    buffers=lambda a, ins: 2 * ins[0][0],
    explain=lambda a, ins, out: [
        f"params = 2 * {ins[0][0]} channels = {fmt_int(_bn_params(a, ins))} (scale and shift)",
        f"buffers = 2 * {ins[0][0]} = {fmt_int(2 * ins[0][0])} (running mean and variance)",
    ],
    torch=_bn_torch,
    output_saved=False,
    aliases=("bn", "batchnorm2d"),
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
)

ENTRIES = (BATCHNORM, LRN)
