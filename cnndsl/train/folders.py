"""`folder:PATH`: one sub-folder of PNG or JPEG images per class (the tf_flowers layout).

The images are decoded and resized once, in parallel by DataLoader workers, into one uint8 tensor;
training then runs from memory like every other dataset.
"""

from __future__ import annotations

from pathlib import Path

from cnndsl.errors import CnnError

EXTENSIONS = {".png", ".jpg", ".jpeg"}


def _decoder():
    import torch

    class Decode(torch.utils.data.Dataset):
        """One image file → a uint8 tensor (C, H, W) of the wanted size."""

        def __init__(self, files: list[Path], channels: int, size: tuple[int, int]):
            self.files, self.channels, self.size = files, channels, size

        def __len__(self) -> int:
            return len(self.files)

        def __getitem__(self, i: int):
            from PIL import Image

            path = self.files[i]
            try:
                with Image.open(path) as image:
                    image = image.convert("L" if self.channels == 1 else "RGB")
                    image = image.resize((self.size[1], self.size[0]), Image.BILINEAR)
                    data = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
            except Exception as e:  # a corrupt or unreadable file: say which
                raise ValueError(f"{path}: {e}") from None
            return data.reshape(self.size[0], self.size[1], -1).permute(2, 0, 1)

    return Decode


def load_folder(path: str, shape: tuple[int, ...], workers: int | None = None):
    """(images, labels, class names) of an image folder, images resized to the spec's input."""
    import os

    import torch

    root = Path(path)
    if not root.is_dir():
        raise CnnError(f"no such folder: {root}", hint="folder:PATH takes a folder with one sub-folder per class")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    files, labels = [], []
    for label, name in enumerate(classes):
        found = sorted(f for f in (root / name).rglob("*") if f.suffix.lower() in EXTENSIONS)
        files += found
        labels += [label] * len(found)
    if not files:
        raise CnnError(f"{root} holds no PNG or JPEG images in class sub-folders",
                       hint="lay it out as PATH/CLASS/image.jpg, one sub-folder per class")
    channels, size = (shape[0], shape[1:]) if len(shape) == 3 else (1, (28, 28))
    if workers is None:  # processes pay off beyond a few hundred images
        workers = min(4, os.cpu_count() or 1) if len(files) > 256 else 0
    loader = torch.utils.data.DataLoader(_decoder()(files, channels, tuple(size)), batch_size=64,
                                         num_workers=workers)
    try:
        images = torch.cat(list(loader))
    except (ValueError, RuntimeError) as e:  # from a worker it carries the worker's traceback: keep the end
        reason = str(e).strip().splitlines()[-1].removeprefix("ValueError: ")
        raise CnnError(f"cannot read an image: {reason}", hint="remove or replace the file") from None
    return images.float() / 255.0, torch.tensor(labels, dtype=torch.int64), classes
