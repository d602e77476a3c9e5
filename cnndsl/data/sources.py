"""Downloadable datasets: canonical addresses, checksums, a cache, and readers for their file formats.

A download goes to `NAME.part`, is checked against its MD5, then renamed: a partial or corrupt file is
never used. Files already in the cache are trusted (they got there that way, or were put there by
hand for a machine without network). CIFAR's pickles are read by an unpickler that builds nothing but
plain containers and numpy arrays.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
import tarfile
from dataclasses import dataclass
from pathlib import Path

from cnndsl.download import digest, download
from cnndsl.errors import CnnError


@dataclass(frozen=True)
class Remote:
    name: str
    files: tuple[tuple[str, str], ...]  # (file name, MD5)
    mirrors: tuple[str, ...]  # base addresses, tried in order


_IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
              "t10k-labels-idx1-ubyte.gz")

REMOTES = {
    "mnist": Remote("mnist", tuple(zip(_IDX_FILES, (
        "f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
        "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"))),
        ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")),
    "fashion-mnist": Remote("fashion-mnist", tuple(zip(_IDX_FILES, (
        "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
        "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"))),
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)),
    "kmnist": Remote("kmnist", tuple(zip(_IDX_FILES, (
        "bdb82020997e1d708af4cf47b453dcf7", "e144d726b3acfaa3e44228e80efcd344",
        "5c965bf0a639b31b8f53240b1b52f4d7", "7320c461ea6c1c855c0b718fb2a4b134"))),
        ("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",)),
    "cifar10": Remote("cifar10", (("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),),
                      ("https://www.cs.toronto.edu/~kriz/",)),
    "cifar100": Remote("cifar100", (("cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85"),),
                       ("https://www.cs.toronto.edu/~kriz/",)),
}

CLASS_NAMES = {
    "mnist": [str(i) for i in range(10)],
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                      "Ankle boot"],
    "kmnist": ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"],
}


def cache_dir() -> Path:
    return Path(os.environ.get("CNNDSL_DATA") or Path.home() / ".cache" / "cnndsl")


def fetch(remote: Remote, folder: Path | None = None, timeout: float = 30.0) -> Path:
    """The folder holding every file of `remote`, downloading what is missing."""
    folder = folder or cache_dir() / remote.name
    folder.mkdir(parents=True, exist_ok=True)
    mirrors = (os.environ["CNNDSL_MIRROR"],) if os.environ.get("CNNDSL_MIRROR") else remote.mirrors
    for name, checksum in remote.files:
        target = folder / name
        if target.exists():
            continue
        problems = []
        for base in mirrors:
            try:
                _download(base.rstrip("/") + "/" + name, target, checksum, timeout)
                break
            except (OSError, ValueError) as e:
                problems.append(f"{base}: {e}")
        else:
            raise CnnError(f"cannot download {remote.name} ({name}): {'; '.join(problems)}",
                           hint=f"offline? put these files into {folder}: "
                           f"{', '.join(n for n, _ in remote.files)} (or set CNNDSL_DATA to a folder holding "
                           f"{remote.name}/)")
    return folder


def _download(url: str, target: Path, checksum: str, timeout: float) -> None:
    def verify(part: Path) -> str | None:
        got = digest(part, "md5")
        return None if got == checksum else f"checksum {got} is not the expected {checksum}"

    download(url, target, verify, timeout)


# ---- IDX (the MNIST family) ------------------------------------------------------------------------


def read_idx(path: Path):
    """An IDX file (gzip or plain) as a uint8 tensor: images (N, H, W) or labels (N,)."""
    import torch

    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise CnnError(f"{path} is not a valid gzip file: {e}", hint="delete it and run again") from None
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise CnnError(f"{path} is not an IDX file of unsigned bytes", hint="delete it and run again")
    dims = raw[3]
    shape = struct.unpack(f">{dims}I", raw[4:4 + 4 * dims])
    body = raw[4 + 4 * dims:]
    count = 1
    for d in shape:
        count *= d
    if len(body) != count:
        raise CnnError(f"{path} is truncated or corrupt: {len(body):,} bytes for a {shape} array",
                       hint="delete it and run again")
    return torch.frombuffer(bytearray(body), dtype=torch.uint8).reshape(shape)


def load_idx(name: str):
    """((train_x, train_y), (test_x, test_y), classes) of an MNIST-like dataset, images scaled to 0..1."""
    folder = fetch(REMOTES[name])
    arrays = [read_idx(folder / f) for f in _IDX_FILES]
    train_x, train_y, test_x, test_y = arrays
    if len(train_x) != len(train_y) or len(test_x) != len(test_y):
        raise CnnError(f"{folder}: images and labels differ in number", hint="delete the files and run again")
    scale = lambda x: x.float().unsqueeze(1) / 255.0  # noqa: E731
    return (scale(train_x), train_y.long()), (scale(test_x), test_y.long()), CLASS_NAMES[name]


# ---- CIFAR (python pickles in a tar.gz) -----------------------------------------------------------------


class _ArraysOnly(pickle.Unpickler):
    """Unpickles containers and numpy arrays, refusing every other class (a pickle can run code)."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _unpickle(data: bytes) -> dict:
    try:
        return _ArraysOnly(io.BytesIO(data), encoding="bytes").load()
    except Exception as e:
        raise CnnError(f"a CIFAR batch file cannot be read: {e}", hint="delete the archive and run again") from None


def load_cifar(name: str):
    """((train_x, train_y), (test_x, test_y), classes) of CIFAR-10 or -100, images scaled to 0..1."""
    import numpy as np
    import torch

    remote = REMOTES[name]
    archive = fetch(remote) / remote.files[0][0]
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = {Path(m.name).name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    except (tarfile.TarError, OSError, EOFError) as e:
        raise CnnError(f"{archive} is not a valid archive: {e}", hint="delete it and run again") from None
    if name == "cifar10":
        train = [_unpickle(members[f"data_batch_{i}"]) for i in range(1, 6)]
        test = [_unpickle(members["test_batch"])]
        classes = [c.decode() for c in _unpickle(members["batches.meta"])[b"label_names"]]
        key = b"labels"
    else:
        train, test = [_unpickle(members["train"])], [_unpickle(members["test"])]
        classes = [c.decode() for c in _unpickle(members["meta"])[b"fine_label_names"]]
        key = b"fine_labels"

    def tensors(batches):
        x = np.concatenate([np.asarray(b[b"data"], dtype=np.uint8) for b in batches]).reshape(-1, 3, 32, 32)
        y = np.concatenate([np.asarray(b[key], dtype=np.int64) for b in batches])
        return torch.from_numpy(x).float() / 255.0, torch.from_numpy(y)

    return tensors(train), tensors(test), classes
