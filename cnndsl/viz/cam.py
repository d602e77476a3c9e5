"""`cnndsl show cam`: where in the image the network found its evidence for a class.

CAM (Zhou et al. 2016) applies where the network ends in global average pooling and a dense layer: the
class's row of dense weights, summed over the maps that were pooled, is a map whose mean (plus the bias)
is the class's score. Grad-CAM (Selvaraju et al. 2017) applies to any network: the maps of a layer,
weighted by the mean gradient of the class's score over each map, then ReLU. Written here with hooks
rather than taken from PyPI: grad-cam requires torchvision and OpenCV, and torchcam 0.5 requires
Python 3.11 while cnndsl supports 3.10; both are some thirty lines, and the in-place handling
(capture.not_in_place) is ours either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cnndsl import fonts
from cnndsl.errors import UsageError, did_you_mean, label
from cnndsl.viz import tiles
from cnndsl.viz.capture import capture, logits, module_of, not_in_place
from cnndsl.viz.trained import Sample, Trained, _safe

METHODS = ("auto", "cam", "gradcam")
TRANSPARENT = ("dropout", "flatten", "identity")  # between the pooling and the dense layer, in eval mode


@dataclass
class ClassMap:
    method: str  # "CAM" or "Grad-CAM"
    layer: str  # whose maps are weighted
    target: int  # the class
    probability: float  # of that class
    predicted: int  # the network's most likely class
    small: object  # numpy (h, w): the map at the layer's resolution
    upsampled: object  # numpy (H, W): bilinear to the input's size, scaled to 0..1

    @property
    def peak(self) -> tuple[int, int]:
        """(row, column) of the map's largest value, in input pixels."""
        import numpy as np

        return tuple(int(i) for i in np.unravel_index(int(self.upsampled.argmax()), self.upsampled.shape))


def cam_structure(trained: Trained) -> tuple[str, str] | None:
    """(the layer whose maps are pooled, the dense layer) when the network ends in them, else None."""
    graph = trained.report.analysis.graph
    layer = graph.layer(graph.output)
    if layer.op == "softmax":
        layer = graph.layer(layer.inputs[0])
    if layer.op != "dense":
        return None
    dense, layer = layer, graph.layer(layer.inputs[0])
    while layer.op in TRANSPARENT:
        layer = graph.layer(layer.inputs[0])
    if layer.op != "globalavgpool":
        return None
    return layer.inputs[0], dense.id


def last_maps(trained: Trained) -> str:
    """The last layer with maps (C, H, W) before the network turns them into values (global pooling, flatten)."""
    graph = trained.report.analysis.graph
    for layer in graph.layers:
        if len(layer.shape) == 1 and layer.inputs and len(graph.layer(layer.inputs[0]).shape) == 3:
            if layer.inputs[0] != graph.input.id:
                return layer.inputs[0]
    raise UsageError(f"{trained.name} has no layer of feature maps before its scores", hint="name one with --layer")


def class_index(trained: Trained, name: str) -> int:
    """A class by its name (the run's class names) or its number."""
    if name in trained.classes:
        return trained.classes.index(name)
    if name.isdigit() and int(name) < len(trained.classes):
        return int(name)
    raise UsageError(f"no class `{name}`: the classes are {', '.join(trained.classes[:12])}"
                     + (", ..." if len(trained.classes) > 12 else ""), hint=did_you_mean(name, trained.classes))


def class_map(trained: Trained, sample: Sample, target: str | None = None, method: str = "auto",
              layer: str | None = None) -> ClassMap:
    """The map of class `target` (default: the predicted one) for the image, by CAM or Grad-CAM."""
    structure = cam_structure(trained)
    if method == "auto":
        method = "cam" if structure and layer is None else "gradcam"
    if method == "cam":
        if structure is None:
            raise UsageError(f"{trained.name} does not end in globalavgpool and dense, which CAM needs",
                             hint="--method gradcam works for any network")
        if layer is not None and layer != structure[0]:
            raise UsageError(f"CAM weights the maps that are pooled ({structure[0]}), not `{layer}`",
                             hint="--method gradcam takes any layer")
        return _cam(trained, sample, target, *structure)
    return _gradcam(trained, sample, target, layer or last_maps(trained))


def _check_maps(trained: Trained, layer: str) -> None:
    module_of(trained.model, trained.report, layer)  # an unknown name: the error with a suggestion
    shape = trained.report.layer(layer).layer.shape
    if len(shape) != 3:
        raise UsageError(f"layer `{layer}` gives {'x'.join(map(str, shape))} values, not maps a class map can weigh",
                         hint=f"name a layer before the global pooling or flatten, e.g. {last_maps(trained)}")


def _cam(trained: Trained, sample: Sample, target: str | None, maps: str, dense: str) -> ClassMap:
    scores, outputs = capture(trained.model, trained.report, sample.x, [maps])
    c = _target(trained, scores, target)
    weights = module_of(trained.model, trained.report, dense).weight.detach()[c]
    small = (weights[:, None, None] * outputs[maps][0]).sum(0)
    return _finish("CAM", maps, c, scores, small, sample)


def _gradcam(trained: Trained, sample: Sample, target: str | None, layer: str) -> ClassMap:
    import torch

    _check_maps(trained, layer)
    kept: dict = {}
    hook = module_of(trained.model, trained.report, layer).register_forward_hook(
        lambda module, inputs, output: kept.setdefault("maps", output))
    try:
        with not_in_place(trained.model), torch.enable_grad():
            x = sample.x.clone().requires_grad_(True)  # so that frozen weights still give gradients
            scores = logits(trained.model)(x)
            c = _target(trained, scores, target)
            (grad,) = torch.autograd.grad(scores[0, c], kept["maps"], allow_unused=True)
    finally:
        hook.remove()
    if grad is None:
        raise UsageError(f"the scores do not depend on layer `{layer}`", hint="name a layer the scores come from")
    maps = kept["maps"].detach()[0]
    small = torch.relu((grad[0].mean((1, 2))[:, None, None] * maps).sum(0))
    return _finish("Grad-CAM", layer, c, scores.detach(), small, sample)


def _target(trained: Trained, scores, target: str | None) -> int:
    return int(scores[0].argmax()) if target is None else class_index(trained, target)


def _finish(method: str, layer: str, c: int, scores, small, sample: Sample) -> ClassMap:
    import torch
    import torch.nn.functional as F

    probs = torch.softmax(scores[0].float(), 0)
    up = F.interpolate(small[None, None].float(), size=tuple(sample.x.shape[2:]), mode="bilinear",
                       align_corners=False)[0, 0]
    span = float(up.max() - up.min())
    up = (up - up.min()) / span if span > 0 else torch.zeros_like(up)
    return ClassMap(method, layer, c, float(probs[c]), int(probs.argmax()), small.cpu().numpy(), up.cpu().numpy())


def percent(p: float) -> str:
    """A probability as a percentage: 97.3%, or 2e-05% where one decimal would say 0.0%."""
    return f"{p:.1%}" if p >= 0.001 or p == 0 else f"{p * 100:.1g}%"


def summary(trained: Trained, cm: ClassMap) -> str:
    """What a class map found, in a sentence (what `cnndsl show cam` prints)."""
    return (f"{cm.method} of class {trained.classes[cm.target]} ({percent(cm.probability)}) at {cm.layer}: "
            f"peak at row {cm.peak[0]}, column {cm.peak[1]}")


def draw_cam(trained: Trained, cm: ClassMap, sample: Sample):
    """The image, and the map over it (jet, half transparent)."""
    # one size for every image and class: places fixed by hand, no layout pass (a tenth of `show cam`'s drawing)
    fig = tiles.figure(figsize=(7.5, 4))
    left, right = fig.add_axes((0.015, 0.03, 0.42, 0.79)), fig.add_axes((0.455, 0.03, 0.42, 0.79))
    tiles.show_image(left, sample.shown.numpy(), label(sample.source) + (f" (true class {label(sample.label)})"
                                                                          if sample.label is not None else ""))
    tiles.show_image(right, sample.shown.numpy())
    shown = right.imshow(cm.upsampled, cmap="jet", alpha=0.5, vmin=0, vmax=1, interpolation="bilinear")
    fig.colorbar(shown, cax=fig.add_axes((0.885, 0.08, 0.02, 0.69)), label="evidence (scaled to 0..1)")
    name = label(trained.classes[cm.target])
    how = "predicted" if cm.target == cm.predicted else f"given; predicted {label(trained.classes[cm.predicted])}"
    h, w = cm.small.shape
    right.set_title(f"{cm.method} for class {name}: {percent(cm.probability)} ({how})\nmaps of {cm.layer} ({h}x{w}), "
                    "upsampled (bilinear)", fontsize=9)
    fig.suptitle(label(trained.name), fontsize=10, y=0.985)
    return fig


def show_cam(trained: Trained, sample: Sample, out: Path, target: str | None = None, method: str = "auto",
             layer: str | None = None) -> tuple[Path, ClassMap]:
    """cam-IMAGE-CLASS.png in `out`."""
    cm = class_map(trained, sample, target, method, layer)
    name = f"{'cam' if cm.method == 'CAM' else 'gradcam'}-{sample.tag}-{_safe(trained.classes[cm.target])}.png"
    with fonts.pictures():
        return tiles.save(draw_cam(trained, cm, sample), out / name), cm
