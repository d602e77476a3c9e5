"""Image files read safely, for `predict`, `show` (datasets.input_image) and `folder:PATH` datasets.

Only plain raster formats are opened: Pillow's EPS and PostScript plugins start Ghostscript, a
program, on the file, and other plugins read formats nobody trains on. The size in the file's header
is checked against a pixel limit before anything is decoded, so a small file that claims 30000x30000
pixels (a decompression bomb) costs nothing. `CNNDSL_MAX_PIXELS=N` raises the limit.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from cnndsl.errors import CnnError, UsageError
from cnndsl.optional import require

FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")
ENV = "CNNDSL_MAX_PIXELS"
# A 40-megapixel photo decodes to about 160 MB (Pillow keeps 4 bytes a pixel); larger ones are rare in
# training data and usually a mistake or an attack.
MAX_PIXELS = 40_000_000


def max_pixels() -> int:
    """The pixel limit: CNNDSL_MAX_PIXELS, or MAX_PIXELS."""
    text = os.environ.get(ENV, "").strip().replace("_", "").replace(",", "")
    if not text:
        return MAX_PIXELS
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"{ENV}={os.environ[ENV]!r} is not a number of pixels", hint=f"e.g. {ENV}=100000000")
    return int(text)


def read_image(path: Path, grey: bool, size: tuple[int, int] | None = None, exact: bool = False,
               limit: int | None = None):
    """The image as a uint8 tensor (C, H, W), 1 channel if `grey` else 3.

    With `size` (H, W), an image larger than that is shrunk to it by Pillow (antialiased bilinear), so
    a large photo never becomes a large tensor; smaller images keep their size unless `exact`.
    """
    import torch

    image = _decoded(Path(path), grey, size, exact, limit or max_pixels())
    data = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
    return data.reshape(image.height, image.width, -1).permute(2, 0, 1)


def _decoded(path: Path, grey: bool, size: tuple[int, int] | None, exact: bool, limit: int):
    Image = require("PIL.Image", "reading images")
    from PIL import UnidentifiedImageError

    pillow_limit = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = None  # opening reads the header alone: ours is checked first, with our message
        with Image.open(path, formats=FORMATS) as image:
            _check_pixels(path, image.size, limit)
            # while decoding, Pillow's check (an error beyond twice its value) guards frames beyond the first
            Image.MAX_IMAGE_PIXELS = limit // 2 + 1
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                return _fitted(image, "L" if grey else "RGB", size, exact)
    except FileNotFoundError:
        raise CnnError(f"no such image: {path}") from None
    except IsADirectoryError:
        raise CnnError(f"{path} is a folder, not an image") from None
    except UnidentifiedImageError:
        raise CnnError(f"cannot read {path} as an image: it is not a {', '.join(FORMATS[:-1])} or {FORMATS[-1]} "
                       "file", hint="convert it to PNG or JPEG") from None
    except Image.DecompressionBombError as e:  # a frame beyond the first, larger than the header said
        raise CnnError(f"{path}: {e}", hint=f"{ENV}=N raises the limit") from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:  # truncated or corrupt data
        raise CnnError(f"cannot read {path} as an image: {e}") from None
    finally:
        Image.MAX_IMAGE_PIXELS = pillow_limit


def _fitted(image, mode: str, size: tuple[int, int] | None, exact: bool):
    """`image` in `mode`, resized to `size` (H, W) when larger (or different, if `exact`).

    Pillow decodes the full image once; shrinking before converting keeps a second full-size copy away.
    """
    from PIL import Image

    if size and image.format == "JPEG":
        image.draft(mode, (size[1], size[0]))  # decode at 1/2, 1/4 or 1/8 scale when that is enough
    wanted = (size[1], size[0]) if size else image.size
    resize = image.size != wanted if exact else image.width > wanted[0] or image.height > wanted[1]
    if resize and image.mode not in ("1", "P"):  # (Pillow resizes these two modes by nearest pixel)
        image = image.resize(wanted, Image.BILINEAR)
        resize = False
    image = image.convert(mode)
    return image.resize(wanted, Image.BILINEAR) if resize else image


def _check_pixels(path: Path, size: tuple[int, int], limit: int) -> None:
    width, height = size
    if width * height > limit:
        raise CnnError(f"{path} is {width}x{height} = {width * height:,} pixels, more than the limit of {limit:,}",
                       hint=f"shrink the image, or raise the limit: {ENV}={width * height} (decoding takes "
                       f"about 4 bytes a pixel: {width * height * 4 / 2**20:,.0f} MiB)")
    if width < 1 or height < 1:
        raise CnnError(f"{path} has no pixels ({width}x{height})")
