"""`cnndsl show filters` and `cnndsl show maps`: a conv layer's kernels, and the feature maps of one image.

Each picture is computed as data first (`FilterGrid`, `FeatureMaps`: what each tile holds), then drawn,
so what a picture shows can be checked without reading pixels. Both use a diverging colour map with a
symmetric scale (vmin = -vmax): white is zero, red positive, blue negative.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from cnndsl import fonts
from cnndsl.errors import UsageError, label
from cnndsl.viz import tiles
from cnndsl.viz.capture import capture, module_of
from cnndsl.viz.trained import Sample, Trained

MAX_FILTERS = 256  # tiles of one picture; beyond, the first MAX_FILTERS are shown and the title says so
MAX_CHANNELS = 16  # input channels per filter, for a layer that sees neither 1 nor 3 channels
MAX_ROWS = 32  # filters of such a layer: a row each


@dataclass
class FilterGrid:
    """The kernels of a conv layer as tiles: one per filter, or one per (filter, input channel)."""

    layer: str
    shape: tuple[int, ...]  # the weight's (filters, channels per filter, kh, kw)
    tiles: list  # numpy (kh, kw), or (kh, kw, 3) RGB in 0..1 with 0.5 for zero
    columns: int
    rgb: bool
    per_channel: bool  # tiles run over (filter, input channel), `columns` input channels a row
    vmax: float  # the largest |weight|: the colour scale is -vmax..vmax, for every tile
    shown_filters: int
    shown_channels: int


def first_conv(trained: Trained) -> str:
    """The first convolution with kernels of its own (a separable conv's are two modules'; it is skipped)."""
    from cnndsl.ops import REGISTRY

    for figures in trained.report.analysis.layers:
        if REGISTRY[figures.layer.op].category == "convolution":
            weight = getattr(module_of(trained.model, trained.report, figures.layer.id), "weight", None)
            if weight is not None and weight.dim() == 4:
                return figures.layer.id
    raise UsageError(f"{trained.name} has no convolution, so no filters to show")


def filter_grid(trained: Trained, layer: str | None = None, rgb: bool | None = None) -> FilterGrid:
    """The kernels of `layer` (default the first conv). `rgb` (default: when the layer sees 3 channels) draws
    each filter as one colour image; otherwise each input channel is a tile of its own."""
    layer = layer or first_conv(trained)
    weight = getattr(module_of(trained.model, trained.report, layer), "weight", None)
    if weight is None or weight.dim() != 4:
        raise UsageError(f"layer `{layer}` has no 2-D kernels (it is a {trained.report.layer(layer).layer.op})",
                         hint=f"name a conv layer; the first is {first_conv(trained)}")
    w = weight.detach().float().cpu().numpy()
    filters, channels = w.shape[:2]
    rgb = channels == 3 if rgb is None else rgb
    if rgb and channels != 3:
        raise UsageError(f"layer `{layer}` sees {channels} channels per filter, not 3: it has no colour kernels")
    vmax = float(abs(w).max()) or 1.0
    shown = min(filters, MAX_FILTERS)
    if rgb:
        kernels = [0.5 + w[f].transpose(1, 2, 0) / (2 * vmax) for f in range(shown)]
        return FilterGrid(layer, w.shape, kernels, tiles.columns_for(shown), True, False, vmax, shown, 3)
    if channels == 1:
        return FilterGrid(layer, w.shape, [w[f, 0] for f in range(shown)], tiles.columns_for(shown), False, False,
                          vmax, shown, 1)
    shown = min(shown, MAX_ROWS)
    width = min(channels, MAX_CHANNELS)
    kernels = [w[f, c] for f in range(shown) for c in range(width)]
    return FilterGrid(layer, w.shape, kernels, width, False, True, vmax, shown, width)


def draw_filters(grid: FilterGrid, title: str):
    """The grid as a figure: one image of all tiles, numbered (or rows labelled with their filter)."""
    image = tiles.mosaic(grid.tiles, grid.columns)
    width, height = tiles.figure_size(image.shape[:2], 0 if grid.rgb else 1.2)
    extra = 0.18 * max(0, title.count("\n") - 1)  # figure_size leaves room for two lines of title
    fig = tiles.figure(figsize=(width, height + extra), layout="constrained")
    ax = fig.subplots()
    if grid.rgb:
        import numpy as np

        ax.imshow(np.nan_to_num(image, nan=1.0).clip(0, 1), interpolation="nearest")  # white between tiles
    else:
        shown = ax.imshow(image, cmap=tiles.diverging(), vmin=-grid.vmax, vmax=grid.vmax, interpolation="nearest")
        fig.colorbar(shown, ax=ax, fraction=0.04, pad=0.02, label="weight")
    _label(ax, grid)
    ax.set_title(title, fontsize=9)
    return fig


def _label(ax, grid: FilterGrid) -> None:
    shape = grid.tiles[0].shape[:2]
    if not grid.per_channel:
        tiles.number_tiles(ax, len(grid.tiles), grid.columns, shape)
        return
    h, w = shape  # a row per filter, a column per input channel
    rows = len(grid.tiles) // grid.columns
    every = max(1, math.ceil(rows / 16))
    ax.set_yticks([r * (h + 1) + (h - 1) / 2 for r in range(0, rows, every)], list(range(0, rows, every)), fontsize=7)
    ax.set_xticks([c * (w + 1) + (w - 1) / 2 for c in range(grid.columns)], list(range(grid.columns)), fontsize=7)
    ax.set_ylabel("filter", fontsize=8)
    ax.set_xlabel("input channel", fontsize=8)
    ax.tick_params(length=0)


def filters_title(trained: Trained, grid: FilterGrid) -> str:
    """What the picture shows, its colours included (a title of two or three lines)."""
    f, c, kh, kw = grid.shape
    first = f"{label(trained.name)} · {grid.layer}: {f} filters of {kh}x{kw}x{c}"
    if grid.shown_filters < f:
        first += f", the first {grid.shown_filters}"
    if grid.per_channel:
        first += f"; {'the first ' if grid.shown_channels < c else ''}{grid.shown_channels} input channels a row"
    return f"{first}\n" + "\n".join(colours(grid).split("; "))


def colours(grid: FilterGrid) -> str:
    """How the tiles' colours read, for the title and the run page's caption: a colour image of each filter's
    three channels (grey 0), or one weight a pixel on the diverging map (white 0)."""
    if grid.rgb:
        return ("each filter as an RGB image: mid grey is 0; a channel brighter than grey is a positive weight, "
                f"darker a negative one; one scale for all: a channel at full brightness is +{grid.vmax:.3g}, at none "
                f"-{grid.vmax:.3g}")
    return f"white is 0, red positive, blue negative; one scale for all: ±{grid.vmax:.3g}"


def show_filters(trained: Trained, layer: str | None, out: Path, rgb: bool | None = None) -> Path:
    """filters-LAYER.png in `out`: the kernels of the layer."""
    grid = filter_grid(trained, layer, rgb)
    with fonts.pictures():
        return tiles.save(draw_filters(grid, filters_title(trained, grid)), out / f"filters-{grid.layer}.png")


def filters_png(trained: Trained, layer: str | None = None) -> tuple[FilterGrid, bytes]:
    """The picture of `show filters` as PNG bytes, with its grid (for the run's page: one drawing for both)."""
    grid = filter_grid(trained, layer)
    with fonts.pictures():
        return grid, tiles.png(draw_filters(grid, filters_title(trained, grid)))


@dataclass
class FeatureMaps:
    """One layer's output for one image: a tile per channel."""

    layer: str
    maps: object  # numpy (C, H, W), exactly the captured output
    scale: str  # "shared": one -vmax..vmax for every tile; "tile": each tile its own
    vmax: list[float]  # per tile


def first_stage(trained: Trained) -> list[str]:
    """The convs of the first stage: those after the first conv whose output keeps its height and width."""
    from cnndsl.ops import REGISTRY

    convs = [f.layer for f in trained.report.analysis.layers if REGISTRY[f.layer.op].category == "convolution"]
    if not convs:
        raise UsageError(f"{trained.name} has no convolution; name the layers with --layer")
    size = convs[0].shape[1:]
    stage = []
    for layer in convs:
        if layer.shape[1:] != size:
            break
        stage.append(layer.id)
    return stage


def feature_maps(trained: Trained, sample: Sample, layers: list[str] | None = None, scale: str = "shared"):
    """(scores, [FeatureMaps of each layer]) for the image; layers default to the first stage's convs."""
    layers = layers or first_stage(trained)
    for name in layers:
        shape = trained.report.layer(name).layer.shape if name in trained.report.analysis.by_id else None
        if shape is not None and len(shape) != 3:
            raise UsageError(f"layer `{name}` gives {'x'.join(map(str, shape))} values, not feature maps",
                             hint="name a layer before the flatten or global pooling")
    scores, outputs = capture(trained.model, trained.report, sample.x, layers)
    result = []
    for name in layers:
        maps = outputs[name][0].float().cpu().numpy()
        peaks = [float(abs(m).max()) or 1.0 for m in maps]
        vmax = [max(peaks)] * len(peaks) if scale == "shared" else peaks
        result.append(FeatureMaps(name, maps, scale, vmax))
    return scores, result


def draw_maps(fm: FeatureMaps, sample: Sample, title: str):
    """The input image beside a grid of the layer's channels."""
    scaled = [m / v for m, v in zip(fm.maps, fm.vmax)]  # each tile in -1..1 of its own scale
    image = tiles.mosaic(scaled)
    width, height = tiles.figure_size(image.shape[:2], 1.2)
    side = min(2.5, 0.35 * height)  # the input image
    fig = tiles.figure(figsize=(width + side, height), layout="constrained")
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [side, width]})
    tiles.show_image(left, sample.shown.numpy(), label(sample.source))
    shown = right.imshow(image, cmap=tiles.diverging(), vmin=-1, vmax=1, interpolation="nearest")
    tiles.number_tiles(right, len(scaled), tiles.columns_for(len(scaled)), fm.maps.shape[1:])
    if fm.scale == "shared":
        bar = fig.colorbar(shown, ax=right, fraction=0.04, pad=0.02)
        bar.set_ticks([-1, 0, 1], labels=[f"{-fm.vmax[0]:.3g}", "0", f"{fm.vmax[0]:.3g}"])
    else:
        fig.colorbar(shown, ax=right, fraction=0.04, pad=0.02, label="fraction of each tile's largest |value|")
    right.set_title(title, fontsize=9)
    return fig


def maps_title(trained: Trained, fm: FeatureMaps, sample: Sample, scores) -> str:
    c, h, w = fm.maps.shape
    scale = "one scale for all channels" if fm.scale == "shared" else "each channel on its own scale"
    return (f"{label(trained.name)} · {fm.layer}: {c} maps of {h}x{w}, {scale}\n"
            f"{label(sample.source)}{_verdict(trained, sample, scores)}")


def _verdict(trained: Trained, sample: Sample, scores) -> str:
    import torch

    probs = torch.softmax(scores[0].float(), 0)
    best = int(probs.argmax())
    truth = f", true class {label(sample.label)}" if sample.label is not None else ""
    return f"{truth}, predicted {label(trained.classes[best])} ({float(probs[best]):.1%})"


def show_maps(trained: Trained, sample: Sample, layers: list[str] | None, out: Path,
              scale: str = "shared") -> list[Path]:
    """maps-IMAGE-LAYER.png in `out` for each layer."""
    scores, found = feature_maps(trained, sample, layers, scale)
    with fonts.pictures():
        return [tiles.save(draw_maps(fm, sample, maps_title(trained, fm, sample, scores)),
                           out / f"maps-{sample.tag}-{fm.layer}.png") for fm in found]
