"""`folder:PATH`: one sub-folder of PNG or JPEG images per class (the tf_flowers layout).

The images are decoded and resized once, in parallel by DataLoader workers, into one uint8 tensor;
training then runs from memory like every other dataset.
"""

from __future__ import annotations

from pathlib import Path

from cnndsl.errors import CnnError
from cnndsl.optional import require

EXTENSIONS = {".png", ".jpg", ".jpeg"}


# A worker's exception reaches the main process as the text of its traceback: the message and the hint
# travel on its last line, joined by a character that paths and messages do not hold.
_HINT = "\x1f"  # (not a line break for str.splitlines, unlike \\x1e)


def _decoder():
    import torch

    class Decode(torch.utils.data.Dataset):
        """One image file → a uint8 tensor (C, H, W) of the wanted size."""

        def __init__(self, files: list[Path], channels: int, size: tuple[int, int], limit: int):
            self.files, self.channels, self.size, self.limit = files, channels, size, limit

        def __len__(self) -> int:
            return len(self.files)

        def __getitem__(self, i: int):
            from cnndsl.data.images import read_image

            try:
                return read_image(self.files[i], self.channels == 1, self.size, exact=True, limit=self.limit)
            except CnnError as e:
                raise ValueError(" ".join(e.message.split()) + _HINT + (e.hint or "")) from None

    return Decode


def class_files(root: Path) -> tuple[list[str], list[Path], list[int]]:
    """The class names (sub-folders, sorted), and the image files with their labels; an empty class is refused."""
    if not root.is_dir():
        raise CnnError(f"no such folder: {root}", hint="folder:PATH takes a folder with one sub-folder per class")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    if not classes:
        raise CnnError(f"{root} has no class sub-folders",
                       hint="lay it out as PATH/CLASS/image.jpg, one sub-folder per class")
    files, labels = [], []
    for label, name in enumerate(classes):
        found = sorted(f for f in (root / name).rglob("*") if f.suffix.lower() in EXTENSIONS and f.is_file())
        if not found:
            raise CnnError(f"the class folder {root / name} holds no PNG or JPEG images",
                           hint="add its images, or remove the folder (every sub-folder is a class)")
        files += found
        labels += [label] * len(found)
    return classes, files, labels


def load_folder(path: str, shape: tuple[int, ...], workers: int | None = None):
    """(images, labels, class names) of an image folder, images resized to the spec's input."""
    import os

    import torch

    from cnndsl import memory
    from cnndsl.data.images import max_pixels

    root = Path(path)
    require("PIL.Image", "reading the images of folder:PATH")  # here, not once per worker
    classes, files, labels = class_files(root)
    channels, size = (shape[0], tuple(shape[1:])) if len(shape) == 3 else (1, (28, 28))
    per_image = channels * size[0] * size[1] * 5  # uint8 as decoded, then float32
    memory.ensure_fits(len(files) * per_image, f"{root}: {len(files):,} images of {channels}x{size[0]}x{size[1]}",
                       "lower the input size, or train on fewer images")
    if workers is None:  # processes pay off beyond a few hundred images
        workers = min(4, os.cpu_count() or 1) if len(files) > 256 else 0
    loader = torch.utils.data.DataLoader(_decoder()(files, channels, size, max_pixels()), batch_size=64,
                                         num_workers=workers)
    try:
        images = torch.cat(list(loader))
    except (ValueError, RuntimeError) as e:  # from a worker it carries the worker's traceback: keep the end
        reason = str(e).strip().splitlines()[-1].removeprefix("ValueError: ")
        message, _, hint = reason.partition(_HINT)
        raise CnnError(message, hint=hint or "remove or replace the file") from None
    return images.float() / 255.0, torch.tensor(labels, dtype=torch.int64), classes
