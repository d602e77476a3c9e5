"""Datasets as tensors: loaded once, adapted to the spec's input, and split.

The offline default is scikit-learn's bundled handwritten digits (1,797 8x8 grey images, 10 classes).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from cnndsl.data.arrays import PREFIX
from cnndsl.errors import CnnError, did_you_mean
from cnndsl.files import Missing, open_file
from cnndsl.optional import require

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
                 test: float = 0.1, splits: dict[str, str] | None = None, reserve: int = 0) -> Dataset:
    """The named dataset, adapted to `input_shape` and split into train, validation and test.

    Datasets that ship a test split keep it and give `val` of their training images to validation;
    the others are cut into train, validation and test. `splits` replaces these cuts with
    expressions such as {"train": "train[:10%]", "val": "train[90%:]", "test": "test"}. The images at
    the input's size, with `reserve` bytes more (the model's), must fit in memory.
    """
    parts, classes = _cut(name, input_shape, seed, val, test, splits, reserve)
    notes: list[str] = []
    for split in parts:
        split.x, notes = adapt(split.x, input_shape)
    return Dataset(name, *parts, classes, notes)


def load_test_split(name: str, input_shape: tuple[int, ...], seed: int = 0, val: float = 0.1, test: float = 0.1,
                    splits: dict[str, str] | None = None) -> Split:
    """The test split of load_dataset(...) with the same arguments, alone: cut the same way, and only it adapted
    to the input (what `show` needs of a run's data; resizing the training images was a tenth of a `show`)."""
    (_, _, test_split), _ = _cut(name, input_shape, seed, val, test, splits, 0)
    test_split.x, _ = adapt(test_split.x, input_shape)
    return test_split


def _cut(name: str, input_shape: tuple[int, ...], seed: int, val: float, test: float, splits: dict[str, str] | None,
         reserve: int) -> tuple[tuple[Split, Split, Split], list[str]]:
    """((train, validation, test) as they come, not yet adapted to the input; the class names)."""
    sources, classes = _sources(name, input_shape)
    return split_sources(name, sources, classes, input_shape, seed, val, test, splits, reserve)


def given_dataset(given, input_shape: tuple[int, ...], seed: int = 0, splits: dict[str, str] | None = None,
                  reserve: int = 0) -> Dataset:
    """Data given in Python (data.arrays.Given), split as a named dataset is: a part given is kept (training,
    validation, test); without validation_data the training data are cut 80/10/10, or 90/10 with test_data.
    With validation_data and no test_data, the test figures are the validation data's (the log says so)."""
    sources = {"train": given.parts["train"], **({"test": given.parts["test"]} if "test" in given.parts else {})}
    if "val" not in given.parts:
        parts, classes = split_sources(given.name, sources, given.classes, input_shape, seed, splits=splits,
                                       reserve=reserve)
        notes: list[str] = []
        for split in parts:
            split.x, notes = adapt(split.x, input_shape)
        data = Dataset(given.name, *parts, classes, notes)
    else:
        if splits:
            raise CnnError("the recipe's `splits` cut a dataset into parts, and validation_data gives the "
                           "validation part: leave out one of them")
        _check_size(given.name, {**sources, "val": given.parts["val"]}, input_shape, reserve)
        val = Split(*given.parts["val"])
        test = Split(*sources["test"]) if "test" in sources else val
        data = Dataset(given.name, Split(*sources["train"]), val, test, given.classes)
        if "test" not in sources:
            data.notes.append("no test_data: the test figures are those of validation_data")
    data.notes[:0] = given.notes
    return data


def split_sources(name: str, sources: dict, classes: list[str], input_shape: tuple[int, ...], seed: int = 0,
                  val: float = 0.1, test: float = 0.1, splits: dict[str, str] | None = None,
                  reserve: int = 0) -> tuple[tuple[Split, Split, Split], list[str]]:
    """A dataset's parts ({"train": (x, y), "test": ...}) split as `load_dataset` says, not yet adapted; the
    class names."""
    _check_size(name, sources, input_shape, reserve)
    if splits:
        cut = {part: slice_expression(splits.get(part) or DEFAULT_SPLITS["test" in sources][part], sources, seed)
               for part in ("train", "val", "test")}
        train_split, val_split, test_split = cut["train"], cut["val"], cut["test"]
    elif "test" in sources:
        train_split, val_split, _ = _split(*sources["train"], seed, val, 0.0)
        test_split = Split(*sources["test"])
    else:
        train_split, val_split, test_split = _split(*sources["train"], seed, val, test)
    _check_filled(name, {"training": train_split, "validation": val_split, "test": test_split}, sources,
                  len(classes), val, test if "test" not in sources else 0.0)
    return (train_split, val_split, test_split), classes


def _check_filled(name: str, parts: dict, sources: dict, classes: int, val: float, test: float) -> None:
    """Refuses a split without images, saying how many the dataset needs: every epoch validates and a run
    ends with a test."""
    empty = [part for part, split in parts.items() if len(split.y) == 0]
    if not empty:
        return
    have = len(sources["train"][1])
    need = next((n for n in range(3, 1_000_000) if min(_cuts(n, val, test)) > 0), have)
    per_class = -(-need // max(classes, 1))
    raise CnnError(f"the {' and '.join(empty)} split{'s are' if len(empty) > 1 else ' is'} empty: {name} has "
                   f"{have:,} image{'s' if have != 1 else ''} to cut {val:.0%} for validation"
                   + (f" and {test:.0%} for the test" if test else ""),
                   hint=f"give it at least {need:,} images ({per_class:,} of each of its {classes} classes), or "
                   "choose the splits yourself (recipe key `splits`)")


def _cuts(n: int, val: float, test: float) -> tuple[int, int, int]:
    """How many of n images go to training, validation and test."""
    n_test, n_val = int(n * test), int(n * val)
    return n - n_val - n_test, n_val, n_test


def _check_size(name: str, sources: dict, input_shape: tuple[int, ...], reserve: int) -> None:
    """Refuses data that would not fit once resized to the input (float32), before resizing it."""
    from cnndsl import memory

    count = sum(len(y) for _, y in sources.values())
    needed = count * math.prod(input_shape) * 4
    also = f" with the network's {memory.size(reserve)}" if reserve else ""
    memory.ensure_fits(needed + reserve, f"{name} at the input's size ({count:,} images of "
                       f"{'x'.join(map(str, input_shape))}: {memory.size(needed)}){also}",
                       "lower the input size, or use fewer images (e.g. splits: {train: \"train[:10%]\"})")


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
    from cnndsl.data import sources

    if name.startswith(PREFIX):
        raise CnnError(f"`{name}` is data given in Python to cnndsl.train, which a run does not keep",
                       hint="give it again: cnndsl.train(spec, resume=RUN, data=(x, y), ...); to draw one of its "
                       "images, cnndsl.show(..., image=x[i]); or name a dataset (--data)")
    if name in IDX or name in CIFAR:
        train, test, classes = (sources.load_idx if name in IDX else sources.load_cifar)(name)
        return {"train": train, "test": test}, classes
    if name.startswith("folder:"):
        from cnndsl.data.folders import load_folder

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


# the preprocessing that pretrained weights expect, on images scaled to [0, 1], as mean and std per channel
IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}  # torchvision's ImageNet weights
PRESETS = {"imagenet": "torchvision's ImageNet mean and deviation",
           "inception": "scaled to [-1, 1], as Keras' Inception and Xception expect",
           "keras_xception": "scaled to [-1, 1], as Keras' Inception and Xception expect"}


def preset(name: str, channels: int) -> dict:
    """A preset's statistics for `channels`: (x - mean) / std in the same form `normalize` saves."""
    if name == "imagenet":
        if channels != 3:
            raise CnnError(f"`normalize: imagenet` is for 3-channel (RGB) inputs; the network takes {channels}",
                           hint="give the spec `input 3xHxW` (grey images are repeated to 3 channels), or use "
                           "`normalize: true`")
        return {"mean": list(IMAGENET["mean"]), "std": list(IMAGENET["std"])}
    return {"mean": [0.5] * channels, "std": [0.5] * channels}  # (x - 0.5) / 0.5 = 2x - 1


def normalize_with(data: Dataset, stats: dict) -> dict:
    """Every split scaled with given statistics (a preset's)."""
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


MAX_CLASSES = 1_000_000  # labels name classes 0..max: a label of 10**12 would make a list of 10**12 names


def _npz(name: str):
    """`npz:PATH`: arrays `x` (N, H, W), (N, H, W, C) or (N, C, H, W) and integer labels `y`."""
    import numpy as np
    import torch

    if not name.startswith("npz:"):
        raise CnnError(f"unknown dataset `{name}`",
                       hint=did_you_mean(name, DATASETS) or f"datasets: {', '.join(DATASETS)}")
    path = name[4:]
    x, y = _npz_arrays(path)
    _check_npz(path, x, y)
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.transpose(0, 3, 1, 2)  # channels last, as Keras keeps images
    images = torch.from_numpy(np.ascontiguousarray(x)).float()
    if x.dtype == np.uint8:
        images = images / 255.0
    labels = torch.from_numpy(y.astype(np.int64))
    classes = [str(i) for i in range(int(labels.max()) + 1)]
    return images, labels, classes


def _npz_arrays(path: str):
    """`x` and `y` of an npz archive, read without pickle, after their headers say they fit in memory."""
    import zipfile

    import numpy as np

    try:
        f = open_file(path, f"the dataset {path}", expect="npz:PATH names a NumPy .npz archive")
    except Missing:
        raise CnnError(f"no such file: {path}") from None
    with f:
        if f.read(4) != b"PK\x03\x04":
            raise CnnError(f"{path} is not a NumPy .npz archive",
                           hint="write one with np.savez(PATH, x=images, y=labels)")
        f.seek(0)
        try:
            with np.load(f, allow_pickle=False) as data:
                if not {"x", "y"} <= set(data.files):
                    raise CnnError(f"{path} needs two arrays, `x` (images) and `y` (labels); it has "
                                   f"{', '.join(data.files) or 'none'}")
                for key in ("x", "y"):
                    _check_header(path, key, data.zip)
                return data["x"], data["y"]
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
            raise CnnError(f"cannot read {path}: {e}") from None


def _check_header(path: str, key: str, archive) -> None:
    """Refuses an array of Python objects (only pickle reads those) and one too large for memory."""
    import numpy as np

    from cnndsl import memory

    with archive.open(f"{key}.npy") as f:
        version = np.lib.format.read_magic(f)
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = reader(f)
    if dtype.hasobject:
        raise CnnError(f"{path}: `{key}` is an array of Python objects, which is not read (unpickling it could "
                       "run code)", hint="save numbers: np.savez(PATH, x=images.astype('uint8'), y=labels)")
    count = math.prod(shape)
    memory.ensure_fits(count * (dtype.itemsize + 4), f"{path}: `{key}` of shape {tuple(shape)} ({dtype})",
                       "use fewer or smaller images")


def _check_npz(path: str, x, y) -> None:
    """Shapes, types and values that training can use; each refusal names what is wrong and where."""
    import numpy as np

    if x.ndim not in (3, 4) or len(x) != len(y) or y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise CnnError(f"{path}: expected x of shape (N, H, W[, C]) and y of N integer labels, got x {x.shape}, "
                       f"y {y.shape} {y.dtype}")
    if x.dtype.kind not in "biuf":
        raise CnnError(f"{path}: x holds {x.dtype} values, not numbers", hint="save the images as uint8 or float32")
    if len(x) == 0:
        raise CnnError(f"{path} holds no examples (x has shape {x.shape})")
    if 0 in x.shape:
        raise CnnError(f"{path}: the images have no pixels (x has shape {x.shape})")
    if x.dtype.kind == "f":
        bad = ~np.isfinite(x)
        if bad.any():
            where = np.unravel_index(int(np.argmax(bad)), x.shape)
            raise CnnError(f"{path}: x holds NaN or infinite values, the first at x[{', '.join(map(str, where))}] "
                           f"= {x[where]}", hint="replace them (e.g. np.nan_to_num) or drop those images")
    low, high = int(y.min()), int(y.max())
    if low < 0:
        raise CnnError(f"{path}: labels must be 0 or more, but y[{int(np.argmin(y))}] is {low}",
                       hint="number the classes 0, 1, 2, ...")
    if high >= MAX_CLASSES:
        raise CnnError(f"{path}: y[{int(np.argmax(y))}] is {high:,}, but labels are class numbers below "
                       f"{MAX_CLASSES:,}", hint="number the classes 0, 1, 2, ...")


def _digits():
    import torch

    table = _digits_table()  # a row per image: 64 pixel values 0..16, then the class
    x = torch.tensor(table[:, :-1].reshape(-1, 8, 8), dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(table[:, -1].astype("int64"))
    return x, y, [str(c) for c in range(10)]


def _digits_table():
    """scikit-learn's digits as load_digits reads them (its own digits.csv.gz), without importing scikit-learn:
    that import (scipy's with it) took 1.8 s of the 4.5 s of a `cnndsl show`. load_digits where the file is not
    where this scikit-learn keeps it."""
    import importlib.util

    import numpy as np

    found = importlib.util.find_spec("sklearn")  # finds the package without running it
    for folder in (found.submodule_search_locations or []) if found else []:
        path = Path(folder, "datasets", "data", "digits.csv.gz")
        if path.is_file():
            return np.loadtxt(path, delimiter=",")
    data = require("sklearn.datasets", "the offline digits dataset (`--data digits`, the default)").load_digits()
    return np.column_stack([data.data, data.target])


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


def input_image(path: Path, shape: tuple[int, ...]):
    """One image file as a float batch of one, fitted to a network's input `shape` as its run's images were
    (see read_image for the limits): what `predict` classifies and `show` draws."""
    from cnndsl.data.images import read_image

    grey = len(shape) == 1 or shape[0] == 1
    side = round(shape[0] ** 0.5) if len(shape) == 1 else 0
    size = tuple(shape[1:]) if len(shape) == 3 else (side, side) if side * side == shape[0] else None
    x = read_image(path, grey, size).float() / 255.0
    adapted, _ = adapt(x.unsqueeze(0), shape)
    return adapted


def _split(x, y, seed: int, val: float, test: float):
    """Shuffled with `seed`, then cut: the same seed gives the same split."""
    import torch

    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    x, y = x[order], y[order]
    n_train, n_val, _ = _cuts(len(y), val, test)
    return (Split(x[:n_train], y[:n_train]), Split(x[n_train:n_train + n_val], y[n_train:n_train + n_val]),
            Split(x[n_train + n_val:], y[n_train + n_val:]))
