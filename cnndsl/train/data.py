"""Datasets as tensors: loaded once, adapted to the spec's input, split, and kept on the training device.

The offline default is scikit-learn's bundled handwritten digits (1,797 8x8 grey images, 10 classes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cnndsl.errors import CnnError, did_you_mean

DATASETS = ("digits",)


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


def load_dataset(name: str, input_shape: tuple[int, ...], seed: int = 0, val: float = 0.1,
                 test: float = 0.1) -> Dataset:
    """The named dataset, adapted to `input_shape` and split into train, validation and test."""
    if name == "digits":
        x, y, classes = _digits()
    else:
        raise CnnError(f"unknown dataset `{name}`",
                       hint=did_you_mean(name, DATASETS) or f"datasets: {', '.join(DATASETS)}")
    x, notes = adapt(x, input_shape)
    train, val_split, test_split = _split(x, y, seed, val, test)
    return Dataset(name, train, val_split, test_split, classes, notes)


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
