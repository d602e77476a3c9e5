"""Elementwise scaling of a branch: scale (a constant), layerscale (learned per channel), droppath."""

from __future__ import annotations

from cnndsl.ops.base import Args, ArgSpec, Op, Shape, fmt_int, keras
from cnndsl.ops.torchsrc import ctor

SCALE = Op(
    "scale",
    "Multiplies by a constant, as Inception-ResNet scales a branch before the sum (`0.17 * branch + x`). "
    "No parameters.",
    "elementwise",
    args=(ArgSpec("factor", "float", positional=True, aliases=("value",), doc="the constant, e.g. 0.17"),),
    label=lambda a, ins: f"scale {a.factor:g}",
    explain=lambda a, ins, out: [f"out = {a.factor:g} * x; params = 0"],
    torch=lambda g: ctor("Scale", g.factor),
    output_saved=False,
    foreign=(keras("Rescaling", "scale offset", renames=(("scale", "factor"), ("offset", ""))),),
)


def _layerscale_params(a: Args, ins: list[Shape]) -> int:
    return ins[0][-1] if len(ins[0]) == 2 else ins[0][0]  # L x D tokens: one per feature


LAYERSCALE = Op(
    "layerscale",
    "A learned scale per channel, `gamma * x`, as ConvNeXt's layer scale: gamma starts at `init`. "
    "C parameters.",
    "elementwise",
    args=(ArgSpec("init", "float", 1e-6, positional=True, aliases=("init_value", "layer_scale_init_value"),
                  doc="gamma's initial value (ConvNeXt: 1e-6)"),),
    params=_layerscale_params,
    label=lambda a, ins: f"layerscale {a.init:g}",
    explain=lambda a, ins, out: [f"params = {_layerscale_params(a, ins)} channels = "
                                 f"{fmt_int(_layerscale_params(a, ins))} (gamma, "
                                 f"starting at {a.init:g})"],
    torch=lambda g: ctor("LayerScale", g.x[-1] if len(g.x) == 2 else g.x[0], g.init,
                         **({"image": True} if len(g.x) == 3 else {})),
    keras="LayerScale",
)

DROPPATH = Op(
    "droppath",
    "Stochastic depth (torchvision's StochasticDepth, row mode): while training, each sample's whole "
    "tensor is dropped with probability `rate` and survivors are scaled by 1/(1-rate); the identity "
    "in eval. Put it at the end of a residual branch.",
    "regularisation",
    args=(ArgSpec("rate", "float", 0.1, aliases=("p", "drop_path_rate"), positional=True, low=0.0, high=1.0,
                  doc="probability of dropping a sample's branch, 0 <= rate < 1"),),
    label=lambda a, ins: f"droppath {a.rate:g}",
    explain=lambda a, ins, out: [f"training: each sample kept with probability 1 - {a.rate:g} = {1 - a.rate:g}, "
                                 f"kept ones scaled by {1 / (1 - a.rate):g}; eval: identity; params = 0"],
    torch=lambda g: ctor("DropPath", g.rate),
    aliases=("stochasticdepth",),
    keras="StochasticDepth",
    torch_class="torchvision.ops.stochastic_depth.StochasticDepth",
    from_torch=lambda m: _stochastic_depth(m),
)

def _stochastic_depth(m) -> dict[str, object]:
    """torchvision's StochasticDepth as droppath: only its row mode is ours (batch mode drops the whole batch)."""
    if m.mode != "row":
        raise ValueError(f"StochasticDepth mode={m.mode!r}: droppath drops per sample (mode 'row')")
    return {"rate": float(m.p)}


ENTRIES = (SCALE, LAYERSCALE, DROPPATH)
