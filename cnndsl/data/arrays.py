"""Data a Python user holds, made into what the runner trains from: `cnndsl.train(spec, data=(x, y),
validation_data=..., test_data=..., classes=[...])`.

Each part is NumPy arrays or torch tensors `(x, y)` in Keras' layout (N, H, W, C) or torch's (N, C, H, W) (the
spec's input tells which; (N, H, W) for grey images), a torch Dataset of (image, label) items (PIL images,
arrays or tensors), or a DataLoader of such batches. The runner trains from tensors on its device, so a Dataset
or a DataLoader is read once, whole: random transforms in it are drawn once (the recipe's `augment` draws anew
every epoch). uint8 images are scaled to 0..1 as image files are; other numbers are taken as they are.

Wrong data is refused before anything is allocated, with one line that states the shapes and dtypes and what
to do; an array's values are never printed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from cnndsl.errors import CnnError
from cnndsl.ops.base import fmt_shape

PREFIX = "python:"  # the recipe's `data` of such a run: python:arrays, python:Dataset, python:DataLoader
ARGUMENTS = {"train": "data", "val": "validation_data", "test": "test_data"}  # as messages name each part


@dataclass
class Given:
    """The parts given (train, and val and test when given) as float32 (N, *input) and int64 (N,) tensors."""

    name: str  # python:arrays, python:Dataset or python:DataLoader: what the run's recipe records
    parts: dict[str, tuple]  # "train", "val", "test" -> (x, y)
    classes: list[str]
    notes: list[str] = field(default_factory=list)


def is_given(data) -> bool:
    """Whether `data` is data itself rather than a dataset's name (the recipe's `data` key)."""
    return data is not None and not isinstance(data, str)


def given(data, validation_data=None, test_data=None, classes=None, *, input_shape: tuple[int, ...],
          outputs: int) -> Given:
    """The parts checked against the network (its input shape, its `outputs` scores) and made into tensors."""
    if not is_given(data):
        raise CnnError("data given in Python is (x, y) arrays, a torch Dataset or a DataLoader, not a dataset's name")
    parts, notes, found = {}, [], None
    for part, value in zip(ARGUMENTS, (data, validation_data, test_data)):
        if value is not None:
            x, y, names, note = _tensors(value, ARGUMENTS[part], input_shape, outputs)
            parts[part], found = (x, y), found or names
            notes.append(note)
    return Given(PREFIX + _kind(data), parts, _classes(classes, found, outputs), notes)


def _kind(data) -> str:
    import torch

    if isinstance(data, torch.utils.data.DataLoader):
        return "DataLoader"
    return "arrays" if isinstance(data, (tuple, list)) else "Dataset"


def _classes(classes, found: list[str] | None, outputs: int) -> list[str]:
    """The class names given, else a Dataset's own (torchvision's `classes`), else "0", "1", ..."""
    if classes is None:
        return found if found is not None and len(found) == outputs else [str(i) for i in range(outputs)]
    names = [str(c) for c in classes] if isinstance(classes, (list, tuple)) else None
    if names is None:
        raise CnnError(f"classes takes a list of class names, got a {type(classes).__name__}")
    if len(names) != outputs:
        raise CnnError(f"classes holds {len(names)} name{'s' * (len(names) != 1)} where the network outputs "
                       f"{outputs}: give one name per output")
    return names


def _tensors(value, what: str, shape: tuple[int, ...], outputs: int):
    """(x, y, the class names a Dataset carries, a note for the log) of one part."""
    import torch

    names = None
    if isinstance(value, torch.utils.data.DataLoader):
        x, y = _from_loader(value, what)
        names = _names(value.dataset)
    elif isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise CnnError(f"{what} takes (x, y), a torch Dataset or a DataLoader; got a {type(value).__name__} of "
                           f"{len(value)} items")
        x, y = value
    elif _is_dataset(value):
        x, y = _from_dataset(value, what, shape)
        names = _names(value)
    elif hasattr(value, "shape") and hasattr(value, "dtype"):
        raise CnnError(f"{what} takes (x, y), a torch Dataset or a DataLoader; got one array, "
                       f"{describe(_array(value, what, 'x'), 'x')}: give its labels too, {what}=(x, y)")
    else:
        raise CnnError(f"{what} takes (x, y), a torch Dataset or a DataLoader; got a {type(value).__name__}")
    x, y = _array(x, what, "x"), _array(y, what, "y")
    _check_pair(x, y, what)
    images, note = _fitted(x, what, shape)
    _check_labels(y, what, outputs)
    return images, torch.as_tensor(y).to(torch.int64), names, note


def _is_dataset(value) -> bool:
    """A torch Dataset, or any object that is read as one (items by index, a length), arrays aside."""
    import torch

    if isinstance(value, torch.utils.data.Dataset):
        return True
    return hasattr(value, "__getitem__") and hasattr(value, "__len__") and not hasattr(value, "shape")


def _names(dataset) -> list[str] | None:
    names = getattr(dataset, "classes", None)
    return [str(c) for c in names] if isinstance(names, (list, tuple)) else None


def _array(value, what: str, which: str):
    """A NumPy array of the value (a tensor's on the CPU, without copying where it can)."""
    import numpy as np

    if hasattr(value, "detach"):  # a torch tensor
        return value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as e:
        raise CnnError(f"{what}: {which} is not an array of numbers ({type(value).__name__}: {e})") from None


def describe(a, which: str) -> str:
    """`x (60000, 28, 28) uint8`: how a message names an array, never by its values."""
    return f"{which} {tuple(a.shape)} {a.dtype}"


def _check_numbers(x, what: str) -> None:
    """Numbers, and no NaN or infinity among them."""
    import numpy as np

    if x.dtype.kind not in "biuf" or x.ndim == 0:
        raise CnnError(f"{what}: {describe(x, 'x')} holds no numbers: give images as uint8 or float32 arrays")
    if x.dtype.kind == "f":
        bad = ~np.isfinite(x)
        if bad.any():
            where = ", ".join(map(str, np.unravel_index(int(np.argmax(bad)), x.shape)))
            raise CnnError(f"{what}: {describe(x, 'x')} holds NaN or infinite values, the first at x[{where}]: "
                           "replace them (np.nan_to_num) or leave those images out")


def _check_pair(x, y, what: str) -> None:
    """Images of numbers, one integer label each."""
    import numpy as np

    _check_numbers(x, what)
    if y.ndim == 2 and y.shape[1] > 1:
        raise CnnError(f"{what}: {describe(y, 'y')} holds a row per label (one-hot?): give class numbers, "
                       "y.argmax(1)")
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise CnnError(f"{what}: {describe(y, 'y')} is not a list of class numbers: give y as integers of shape "
                       f"({len(x)},)")
    if len(x) != len(y):
        raise CnnError(f"{what}: {describe(x, 'x')} vs {describe(y, 'y')}: {len(x):,} images but {len(y):,} labels; "
                       "give one label per image")
    if len(x) == 0:
        raise CnnError(f"{what}: {describe(x, 'x')} holds no images")


def _fitted(x, what: str, shape: tuple[int, ...]):
    """x as float32 (N, *shape): its layout decided by the spec's input; uint8 scaled to 0..1."""
    import numpy as np
    import torch

    sample, layout = tuple(x.shape[1:]), None
    if len(shape) == 1:
        if math.prod(sample) != shape[0]:
            raise CnnError(f"{what}: {describe(x, 'x')} holds {math.prod(sample):,} values per example where the "
                           f"network's input takes {shape[0]:,}: give x of shape (N, {shape[0]})")
        x = x.reshape(len(x), -1)
    else:
        c, h, w = shape
        if sample == (c, h, w):
            layout = "(N, C, H, W)"
        elif sample == (h, w, c):
            x, layout = x.transpose(0, 3, 1, 2), "Keras' (N, H, W, C), moved to (N, C, H, W)"
        elif sample == (h, w) and c == 1:
            x, layout = x[:, None], "(N, H, W), grey"
        else:
            grey = f", or (N, {h}, {w}) for grey images" if c == 1 else ""
            raise CnnError(f"{what}: {describe(x, 'x')} fits neither layout of the network's input "
                           f"{fmt_shape(shape)}: give (N, {c}, {h}, {w}) or (N, {h}, {w}, {c}){grey}")
    images = torch.from_numpy(np.ascontiguousarray(x)).to(torch.float32)
    scaled = x.dtype == np.uint8
    if scaled:
        images /= 255.0
    note = (f"{what} given in Python" + (f" as {layout}" if layout else "")
            + (", uint8 scaled to 0..1" if scaled else ""))
    return images, note


def _check_labels(y, what: str, outputs: int) -> None:
    import numpy as np

    low, high = int(y.min()), int(y.max())
    if low < 0:
        raise CnnError(f"{what}: {describe(y, 'y')} holds {low} at y[{int(np.argmin(y))}]; labels are class numbers "
                       f"0 to {outputs - 1}")
    if low == 1 and high == outputs:  # 1..C: numbered from 1, as in MATLAB or R
        raise CnnError(f"{what}: {describe(y, 'y')} holds labels 1 to {high}, and the network's {outputs} outputs "
                       f"are classes 0 to {outputs - 1}",
                       hint="class numbers start at 0: subtract 1 from every label (y - 1)")
    if high >= outputs:
        raise CnnError(f"{what}: {describe(y, 'y')} holds labels up to {high} ({high + 1} classes) where the network "
                       f"outputs {outputs}: load the spec with classes={high + 1}, or leave out the labels above "
                       f"{outputs - 1}")


def _from_dataset(dataset, what: str, shape: tuple[int, ...]):
    """A Dataset's (image, label) items read once, whole, after its size is checked against the memory."""
    import numpy as np

    from cnndsl import memory

    count = len(dataset)
    if count == 0:
        raise CnnError(f"{what}: the {type(dataset).__name__} holds no items")
    memory.ensure_fits(count * math.prod(shape) * 8, f"{what}: {count:,} items of {fmt_shape(shape)} read into "
                       "memory", "give fewer items (torch.utils.data.Subset)")
    xs, ys = [], []
    for i in range(count):
        item = dataset[i]
        if not isinstance(item, (tuple, list)) or len(item) < 2:
            raise CnnError(f"{what}: item {i} of the {type(dataset).__name__} is a {type(item).__name__}, not "
                           "(image, label)")
        xs.append(_array(item[0], what, f"the image of item {i}"))
        ys.append(_array(item[1], what, f"the label of item {i}").reshape(-1)[:1])
    first = xs[0].shape
    odd = next((i for i, a in enumerate(xs) if a.shape != first), None)
    if odd is not None:
        raise CnnError(f"{what}: item {odd} of the {type(dataset).__name__} is an image of shape {xs[odd].shape}, "
                       f"item 0 one of {first}: give images of one size (a transform that resizes them)")
    return np.stack(xs), np.concatenate(ys)


def _from_loader(loader, what: str):
    """A DataLoader's batches of (images, labels), read once and put together."""
    import numpy as np

    xs, ys = [], []
    for i, batch in enumerate(loader):
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise CnnError(f"{what}: batch {i} of the DataLoader is a {type(batch).__name__}, not (images, labels)")
        xs.append(_array(batch[0], what, f"the images of batch {i}"))
        ys.append(_array(batch[1], what, f"the labels of batch {i}").reshape(-1))
    if not xs:
        raise CnnError(f"{what}: the DataLoader gives no batches")
    return np.concatenate(xs), np.concatenate(ys)



def one_image(value, shape: tuple[int, ...]):
    """One image given in Python ((H, W), (H, W, C), (C, H, W), or a batch of one) as a float32 batch (1, C, H, W),
    made as `train` makes its data: what `show` draws for an image that is not a file."""
    x = _array(value, "image", "image")
    if not (x.ndim == len(shape) + 1 and len(x) == 1):
        x = x[None]  # one image: a batch of one
    _check_numbers(x, "image")
    return _fitted(x, "image", shape)[0]
