"""Grids of small images drawn as one picture (a mosaic), and PNGs written beside a run without replacing any.

Hundreds of 3x3 kernels or 7x7 maps as subplots would be slow and unreadable; one array with a one-pixel
gap between tiles, drawn with nearest-pixel scaling, stays sharp at any count.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

from cnndsl.files import atomic_write

GAP = float("nan")  # gaps between tiles: drawn in the background colour
DIVERGING = "RdBu_r"  # white is zero, red positive, blue negative (on a symmetric scale)
GAP_COLOUR = "#a0a0a0"  # between tiles: a mid grey, which the diverging map never draws
DPI = 110  # figures are made at the dpi they are saved at: what a layout measures is what is drawn


def columns_for(n: int) -> int:
    """Columns for n tiles: a divisor of n a little above its square root, so rows are full; else about square."""
    root = math.sqrt(n)
    return next((c for c in range(math.ceil(root), int(root * 1.6) + 1) if n % c == 0), math.ceil(root))


def mosaic(tiles, columns: int | None = None, gap: int = 1):
    """Tiles of one size, (h, w) or (h, w, 3), in rows of `columns` (default columns_for), NaN between."""
    import numpy as np

    n = len(tiles)
    columns = columns or columns_for(n)
    rows = math.ceil(n / columns)
    h, w = tiles[0].shape[:2]
    extra = tiles[0].shape[2:]
    out = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap, *extra), GAP, dtype=np.float32)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = tile
    return out


def tile_of(grid, index: int, shape: tuple[int, int], columns: int, gap: int = 1):
    """Tile `index` read back out of a mosaic (for tests and callers that check what was drawn)."""
    r, c = divmod(index, columns)
    h, w = shape
    return grid[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w]


def figure(**options):
    """A Figure on Agg's canvas, without pyplot: no display, no backend to choose, no figure manager to close
    (pyplot's import and its backend selection were a tenth of a `cnndsl show`)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(dpi=DPI, **options)
    FigureCanvasAgg(fig)
    return fig


def diverging():
    """The colour map of filters and maps, with the gaps between tiles (NaN) in a mid grey it never draws."""
    from matplotlib import colormaps

    return colormaps[DIVERGING].with_extremes(bad=GAP_COLOUR)


def figure_size(pixels: tuple[int, int], extra_width: float = 0.0) -> tuple[float, float]:
    """Inches for a mosaic of (rows, columns) pixels: tiles large enough to see, the page not too wide."""
    rows, cols = pixels
    scale = min(0.25, 7.0 / cols, 7.0 / rows)  # inches per pixel of the mosaic
    scale = max(scale, 3.0 / max(rows, cols))
    return max(5.5, cols * scale + extra_width), rows * scale + 0.9  # wide enough for a two-line title


NUMBERED = 64  # tiles up to this count carry their number; beyond, the rows are labelled


def number_tiles(ax, count: int, columns: int, shape: tuple[int, int], gap: int = 1) -> None:
    """Each tile's number in its top left corner (filter or channel), or the first number of each row."""
    h, w = shape
    ax.set_xticks([])
    if count > NUMBERED:
        rows = math.ceil(count / columns)
        every = max(1, math.ceil(rows / 16))  # at most 16 labels down the side
        ax.set_yticks([r * (h + gap) + (h - 1) / 2 for r in range(0, rows, every)],
                      [str(r * columns) for r in range(0, rows, every)], fontsize=7)
        ax.tick_params(length=0)
        return
    ax.set_yticks([])
    for i in range(count):
        r, c = divmod(i, columns)
        ax.text(c * (w + gap) - 0.5, r * (h + gap) - 0.5, str(i), fontsize=6, va="top", ha="left",
                bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "alpha": 0.6, "linewidth": 0},
                in_layout=False)  # inside its tile: the layout pass need not measure 64 labels


def png(fig) -> bytes:
    """The figure as PNG bytes, its size exactly (figures use constrained layout or fixed margins)."""
    buffer = io.BytesIO()
    # zlib level 3, not 6: 40% less time to encode for about 10% more bytes (mostly flat colour)
    fig.savefig(buffer, format="png", dpi=DPI, pil_kwargs={"compress_level": 3})
    return buffer.getvalue()


def save(fig, path: Path) -> Path:
    """The figure as a PNG, written atomically, to a name nothing holds yet (NAME-2.png, ... when taken)."""
    from cnndsl.errors import UsageError

    if not path.parent.is_dir():
        raise UsageError(f"cannot write {path}: {path.parent} is not a folder", hint="create it, or give --out DIR")
    return atomic_write(path, png(fig), replace=False)  # never over a file, even one made meanwhile


def show_image(ax, image, title: str | None = None) -> None:
    """An input image (C, H, W) as the network sees it: grey or RGB, scaled to 0..1 if it is not already."""
    import numpy as np

    data = np.asarray(image, dtype=np.float32)
    low, high = float(data.min()), float(data.max())
    if low < 0 or high > 1:
        data = (data - low) / (high - low) if high > low else np.zeros_like(data)
    if data.shape[0] == 3:
        ax.imshow(data.transpose(1, 2, 0), interpolation="nearest")
    else:
        ax.imshow(data.mean(0), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
