"""Datasets as tensors: loaded once, adapted to the spec's input, split, and kept on the training device.

The offline default is scikit-learn's bundled handwritten digits (1,797 8x8 grey images, 10 classes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cnndsl.errors import CnnError, did_you_mean

DATASETS = ("digits", "mnist", "fashion-mnist", "kmnist", "cifar10", "cifar100", "npz:PATH", "folder:PATH")
IDX = ("mnist", "fashion-mnist", "kmnist")
CIFAR = ("cifar10", "cifar100")


@dataclass
class Split:
    x: object  # float32 tensor (N, C, H, W) or (N, F)
    y: object  # int64 tensor (N,)

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class Dataset:
    name: str
    train: Split
    val: Split
    test: Split
    classes: list[str]
    notes: list[str] = field(default_factory=list)  # what was done to fit the spec, for the log
    normalization: dict = field(default_factory=dict)  # {"mean": [...], "std": [...]} once normalised


def load_dataset(name: str, input_shape: tuple[int, ...], seed: int = 0, val: float = 0.1,
                 test: float = 0.1, splits: dict[str, str] | None = None) -> Dataset:
    """The named dataset, adapted to `input_shape` and split into train, validation and test.

    Datasets that ship a test split keep it and give `val` of their training images to validation;
    the others are cut into train, validation and test. `splits` replaces these cuts with
    expressions such as {"train": "train[:10%]", "val": "train[90%:]", "test": "test"}.
    """
    sources, classes = _sources(name, input_shape)
    if splits:
        cut = {part: slice_expression(splits.get(part) or DEFAULT_SPLITS["test" in sources][part], sources, seed)
               for part in ("train", "val", "test")}
        train_split, val_split, test_split = cut["train"], cut["val"], cut["test"]
    elif "test" in sources:
        train_split, val_split, _ = _split(*sources["train"], seed, val, 0.0)
        test_split = Split(*sources["test"])
    else:
        train_split, val_split, test_split = _split(*sources["train"], seed, val, test)
    notes: list[str] = []
    for split in (train_split, val_split, test_split):
        split.x, notes = adapt(split.x, input_shape)
    return Dataset(name, train_split, val_split, test_split, classes, notes)


DEFAULT_SPLITS = {  # by whether the dataset ships a test split
    False: {"train": "train[:80%]", "val": "train[80%:90%]", "test": "train[90%:]"},
    True: {"train": "train[:90%]", "val": "train[90%:]", "test": "test"},
}

_EXPRESSION = re.compile(r"^(train|test)(?:\[(\d+%?)?:(\d+%?)?\])?$")


def slice_expression(text: str, sources: dict, seed: int) -> Split:
    """`train[:10%]`, `train[1000:2000]`, `test`: a slice of a source in its shuffled order."""
    import torch

    match = _EXPRESSION.match(text.replace(" ", ""))
    if not match:
        raise CnnError(f"bad split `{text}`", hint="write SOURCE[start:end], e.g. `train[:10%]` or "
                       "`train[80%:90%]` or `test`; start and end are counts or percentages")
    source, start, end = match.groups()
    if source not in sources:
        raise CnnError(f"split `{text}`: this dataset has no `{source}` part",
                       hint=f"it has: {', '.join(sources)}")
    x, y = sources[source]
    n = len(y)

    def position(bound: str | None, default: int) -> int:
        if bound is None:
            return default
        return min(n, int(n * int(bound[:-1]) / 100) if bound.endswith("%") else int(bound))

    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    picked = order[position(start, 0):position(end, n)]
    if len(picked) == 0:
        raise CnnError(f"split `{text}` is empty ({n:,} examples in `{source}`)")
    return Split(x[picked], y[picked])


def _sources(name: str, input_shape: tuple[int, ...]):
    """The dataset's parts as (images, labels): `train`, and `test` where it ships one."""
    from cnndsl.train import sources

    if name in IDX or name in CIFAR:
        train, test, classes = (sources.load_idx if name in IDX else sources.load_cifar)(name)
        return {"train": train, "test": test}, classes
    if name.startswith("folder:"):
        from cnndsl.train.folders import load_folder

        x, y, classes = load_folder(name[len("folder:"):], input_shape)
    else:
        x, y, classes = _digits() if name == "digits" else _npz(name)
    return {"train": (x, y)}, classes


def normalize(data: Dataset) -> dict:
    """Each channel to mean 0 and deviation 1, with the training images' statistics, in every split."""
    x = data.train.x
    dims = [0, 2, 3] if x.dim() == 4 else [0]
    stats = {"mean": x.mean(dims).tolist(), "std": x.std(dims).clamp(min=1e-6).tolist()}
    for split in (data.train, data.val, data.test):
        split.x = apply_normalization(split.x, stats)
    return stats


def apply_normalization(x, stats: dict):
    """`x` scaled with saved statistics (as `eval` and `predict` must, for a run that normalised)."""
    import torch

    if not stats:
        return x
    shape = (1, -1, 1, 1) if x.dim() == 4 else (1, -1)
    mean = torch.tensor(stats["mean"], dtype=x.dtype, device=x.device).reshape(shape)
    std = torch.tensor(stats["std"], dtype=x.dtype, device=x.device).reshape(shape)
    return (x - mean) / std


def _npz(name: str):
    """`npz:PATH`: arrays `x` (N, H, W), (N, H, W, C) or (N, C, H, W) and integer labels `y`."""
    import numpy as np
    import torch

    if not name.startswith("npz:"):
        raise CnnError(f"unknown dataset `{name}`",
                       hint=did_you_mean(name, DATASETS) or f"datasets: {', '.join(DATASETS)}")
    path = name[4:]
    try:
        with np.load(path, allow_pickle=False) as data:
            x, y = data["x"], data["y"]
    except FileNotFoundError:
        raise CnnError(f"no such file: {path}") from None
    except KeyError:
        raise CnnError(f"{path} needs two arrays, `x` (images) and `y` (labels)") from None
    except (OSError, ValueError) as e:
        raise CnnError(f"cannot read {path}: {e}") from None
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.transpose(0, 3, 1, 2)  # channels last, as Keras keeps images
    if x.ndim != 4 or len(x) != len(y) or y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise CnnError(f"{path}: expected x of shape (N, H, W[, C]) and y of N integer labels, got x {x.shape}, "
                       f"y {y.shape} {y.dtype}")
    images = torch.from_numpy(np.ascontiguousarray(x)).float()
    if x.dtype == np.uint8:
        images = images / 255.0
    labels = torch.from_numpy(y.astype(np.int64))
    classes = [str(i) for i in range(int(labels.max()) + 1)]
    return images, labels, classes


def _digits():
    import torch
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0  # pixel values 0..16
    y = torch.tensor(data.target, dtype=torch.int64)
    return x, y, [str(c) for c in data.target_names]


def adapt(x, shape: tuple[int, ...]):
    """Images resized and their channels matched to the spec's input; a flat input gets flat vectors."""
    import torch.nn.functional as F

    notes = []
    have = tuple(x.shape[1:])
    if len(shape) == 1:
        if x[0].numel() != shape[0]:
            c, h, w = have
            side = int(round((shape[0] / c) ** 0.5))
            if c * side * side != shape[0]:
                raise CnnError(f"the spec takes {shape[0]} values, the images have {c}x{h}x{w}",
                               hint="give the network an image input (`input 1x28x28`) or a matching size")
            x, _ = adapt(x, (c, side, side))
        notes.append(f"images {'x'.join(map(str, have))} flattened to {shape[0]} values")
        return x.flatten(1), notes
    c, h, w = shape
    if have[1:] != (h, w):
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
        notes.append(f"images resized {have[1]}x{have[2]} -> {h}x{w} (bilinear)")
    if x.shape[1] != c:
        if x.shape[1] == 1:
            x = x.repeat(1, c, 1, 1)
            notes.append(f"grey images repeated to {c} channels")
        elif c == 1:
            x = x.mean(1, keepdim=True)
            notes.append("colour images averaged to grey")
        else:
            raise CnnError(f"the spec takes {c} channels, the images have {x.shape[1]}")
    return x.contiguous(), notes


def _split(x, y, seed: int, val: float, test: float):
    """Shuffled with `seed`, then cut: the same seed gives the same split."""
    import torch

    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    x, y = x[order], y[order]
    n_test, n_val = int(len(y) * test), int(len(y) * val)
    n_train = len(y) - n_val - n_test
    return (Split(x[:n_train], y[:n_train]), Split(x[n_train:n_train + n_val], y[n_train:n_train + n_val]),
            Split(x[n_train + n_val:], y[n_train + n_val:]))
