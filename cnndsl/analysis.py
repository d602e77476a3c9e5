"""Layer graph → figures: parameters, buffers, MACs, receptive field and memory, per layer and in total."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from cnndsl.errors import Diagnostic
from cnndsl.graph import Graph, Layer
from cnndsl.ops import REGISTRY, Args, Shape
from cnndsl.ops.base import prod

BYTES = 4  # float32
# Past these, `check` warns: more than any published CNN needs (ConvNeXt-XL has 1.4 GB of weights; VGG-16's
# activations at 224x224 are 60 MB a sample), and more than most machines can train with.
WARN_WEIGHT_BYTES = 2 << 30
WARN_ACTIVATION_BYTES = 2 << 30


@dataclass
class LayerFigures:
    layer: Layer
    op_text: str  # "conv 3x3/2 → 64"
    inputs: list[Shape]
    params: int
    buffers: int
    macs: int
    rf: tuple[int, int]  # receptive field along H and W, in input pixels
    jump: tuple[int, int]  # distance in input pixels between neighbouring outputs

    @property
    def receptive_field(self) -> int:
        return max(self.rf)

    def explain(self) -> list[str]:
        op = REGISTRY[self.layer.op]
        if op.explain is None:
            return ["no parameters" if not self.params else f"params = {self.params:,}"]
        return op.explain(Args(self.layer.args), self.inputs, self.layer.shape)


@dataclass
class Analysis:
    graph: Graph
    layers: list[LayerFigures]
    params: int = 0
    trainable_params: int = 0
    frozen_params: int = 0
    buffers: int = 0
    macs: int = 0
    activations: int = 0  # values of every layer output, per sample
    by_id: dict[str, LayerFigures] = field(default_factory=dict)

    @property
    def output(self) -> LayerFigures:
        return self.by_id[self.graph.output]

    @property
    def receptive_field(self) -> int:
        return self.output.receptive_field

    @property
    def weight_bytes(self) -> int:
        return self.params * BYTES

    @property
    def buffer_bytes(self) -> int:
        return self.buffers * BYTES

    @property
    def activation_bytes(self) -> int:
        return self.activations * BYTES


def analyse(graph: Graph) -> Analysis:
    result = Analysis(graph, [])
    for layer in graph.layers:
        figures = _figures(layer, result.by_id)
        result.layers.append(figures)
        result.by_id[layer.id] = figures
        result.params += figures.params
        result.frozen_params += figures.params if layer.frozen else 0
        result.buffers += figures.buffers
        result.macs += figures.macs
        if layer.op != "input":
            result.activations += prod(layer.shape)
    result.trainable_params = result.params - result.frozen_params
    return result


def memory_warnings(a: Analysis) -> list[Diagnostic]:
    """Warnings for a network too large to build or train anywhere sensible, at the layer to blame."""
    from cnndsl.memory import size

    out = []
    if a.weight_bytes > WARN_WEIGHT_BYTES:
        widest = max(a.layers, key=lambda f: f.params)
        out.append(Diagnostic(f"the network has {size(a.weight_bytes)} of weights (float32), "
                              f"{size(widest.params * BYTES)} of them in `{widest.layer.id}`",
                              widest.layer.span, "building it needs that much memory; training about 4 times as "
                              "much: lower the widths", severity="warning"))
    if a.activation_bytes > WARN_ACTIVATION_BYTES:
        largest = max(a.layers[1:], key=lambda f: prod(f.layer.shape)).layer
        out.append(Diagnostic(f"one sample makes {size(a.activation_bytes)} of activations (float32), "
                              f"{size(prod(largest.shape) * BYTES)} of them in the output of `{largest.id}`; training "
                              "keeps about twice that per sample of a batch", largest.span,
                              "lower the input size or the widths", severity="warning"))
    return out


def _figures(layer: Layer, done: dict[str, LayerFigures]) -> LayerFigures:
    op = REGISTRY[layer.op]
    ins = [done[i].layer.shape for i in layer.inputs]
    args = Args(layer.args)
    if layer.inputs:
        rf, jump = _incoming(layer, done)
        w = op.window(args, ins)
        rf = (math.ceil(rf[0] + (w.kh - 1) * jump[0]), math.ceil(rf[1] + (w.kw - 1) * jump[1]))
        jump = (jump[0] * w.sh, jump[1] * w.sw)
    else:
        rf, jump = (1, 1), (1, 1)
    return LayerFigures(
        layer,
        op.describe(args, ins),
        ins,
        op.params(args, ins),
        op.buffers(args, ins),
        op.macs(args, ins, layer.shape),
        rf,
        jump,
    )


def _incoming(layer: Layer, done: dict[str, LayerFigures]) -> tuple[tuple, tuple]:
    """The receptive field and step a layer's inputs bring: along the deepest path, the widest among them."""
    if len(layer.inputs) == 1:  # most layers
        before = done[layer.inputs[0]]
        return before.rf, before.jump
    rf = tuple(max(done[i].rf[k] for i in layer.inputs) for k in (0, 1))
    # a per-channel gate (SE) widens the field but has no spatial step of its own
    spatial = [i for i in layer.inputs if len(done[i].layer.shape) == len(layer.shape)] or layer.inputs
    return rf, tuple(max(done[i].jump[k] for i in spatial) for k in (0, 1))
