"""Datasets: file formats from small fixtures, downloads from a server on 127.0.0.1, bad files refused."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import struct
import tarfile

import pytest

torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")

from cnndsl.data import sources  # noqa: E402
from cnndsl.data.datasets import load_dataset  # noqa: E402
from cnndsl.errors import CnnError  # noqa: E402


def idx_bytes(array: np.ndarray) -> bytes:
    header = b"\x00\x00\x08" + bytes([array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def write_mnist(folder, n_train=60, n_test=20):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (n_train, 28, 28)), rng.integers(0, 10, n_train),
              rng.integers(0, 256, (n_test, 28, 28)), rng.integers(0, 10, n_test)]
    for name, array in zip(sources._IDX_FILES, arrays):
        (folder / name).write_bytes(idx_bytes(array))
    return arrays


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNDSL_DATA", str(tmp_path / "cache"))
    monkeypatch.delenv("CNNDSL_MIRROR", raising=False)
    return tmp_path / "cache"


def test_mnist_from_the_cache(cache):
    arrays = write_mnist(cache / "fashion-mnist")
    data = load_dataset("fashion-mnist", (1, 28, 28), seed=1)
    assert (len(data.train), len(data.val), len(data.test)) == (54, 6, 20)
    assert data.classes[0] == "T-shirt/top" and data.notes == []
    assert torch.equal(data.test.x[3, 0], torch.tensor(arrays[2][3], dtype=torch.float32) / 255)
    assert torch.equal(data.test.y, torch.tensor(arrays[3]))


def test_corrupt_idx_files_are_refused(cache):
    write_mnist(cache / "mnist")
    path = cache / "mnist" / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-100]))
    with pytest.raises(CnnError, match="truncated or corrupt") as info:
        load_dataset("mnist", (1, 28, 28))
    assert "delete it" in info.value.hint
    path.write_bytes(b"garbage")
    with pytest.raises(CnnError, match="not an IDX file"):
        load_dataset("mnist", (1, 28, 28))


def test_download_checks_the_checksum_and_never_keeps_a_bad_file(tmp_path, server):
    root, url = server
    (root / "a.bin").write_bytes(b"payload")
    good = hashlib.md5(b"payload").hexdigest()
    remote = sources.Remote("toy", (("a.bin", good),), (url,))
    folder = sources.fetch(remote, tmp_path / "toy")
    assert (folder / "a.bin").read_bytes() == b"payload"
    bad = sources.Remote("toy", (("a.bin", "0" * 32),), (url,))
    with pytest.raises(CnnError, match="checksum"):
        sources.fetch(bad, tmp_path / "bad")
    assert list((tmp_path / "bad").iterdir()) == []  # neither the file nor a .part


def test_a_missing_file_says_where_to_put_it(tmp_path, server):
    _, url = server
    remote = sources.Remote("toy", (("missing.bin", "0" * 32),), ("http://127.0.0.1:9/", url))
    with pytest.raises(CnnError) as info:
        sources.fetch(remote, tmp_path / "toy")
    assert "cannot download toy (missing.bin)" in info.value.message and "404" in info.value.message
    assert f"put these files into {tmp_path / 'toy'}: missing.bin" in info.value.hint


def test_the_real_checksums_guard_the_real_datasets(cache, server, monkeypatch):
    root, url = server
    write_mnist(root)  # files that are not the real MNIST
    monkeypatch.setenv("CNNDSL_MIRROR", url)
    with pytest.raises(CnnError, match="is not the expected f68b3c2dcbeaaa9fbdd348bbdeb94873"):
        load_dataset("mnist", (1, 28, 28))


def cifar_archive(path, batches: dict[str, object]):
    with tarfile.open(path, "w:gz") as tar:
        for name, obj in batches.items():
            data = obj if isinstance(obj, bytes) else pickle.dumps(obj)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def cifar_batch(n, seed):
    rng = np.random.default_rng(seed)
    return {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": list(rng.integers(0, 10, n))}


def test_cifar10_from_its_archive(cache):
    (cache / "cifar10").mkdir(parents=True)
    batches = {f"data_batch_{i}": cifar_batch(10, i) for i in range(1, 6)}
    batches["test_batch"] = cifar_batch(8, 9)
    batches["batches.meta"] = {b"label_names": [f"c{i}".encode() for i in range(10)]}
    cifar_archive(cache / "cifar10" / "cifar-10-python.tar.gz", batches)
    data = load_dataset("cifar10", (3, 32, 32))
    assert (len(data.train), len(data.val), len(data.test)) == (45, 5, 8)
    first = torch.tensor(batches["test_batch"][b"data"][0].reshape(3, 32, 32), dtype=torch.float32) / 255
    assert torch.equal(data.test.x[0], first) and data.classes[9] == "c9"


def test_a_pickle_that_would_run_code_is_refused(cache):
    (cache / "cifar10").mkdir(parents=True)
    marker = cache / "marker"

    class Evil:
        def __reduce__(self):  # unpickling would create the marker
            return (os.system, (f"touch {marker}",))

    batches = {f"data_batch_{i}": cifar_batch(2, i) for i in range(1, 6)}
    batches["test_batch"] = pickle.dumps(Evil())
    batches["batches.meta"] = {b"label_names": [b"a"]}
    cifar_archive(cache / "cifar10" / "cifar-10-python.tar.gz", batches)
    with pytest.raises(CnnError, match="refusing to load (posix|os).system"):
        load_dataset("cifar10", (3, 32, 32))
    assert not marker.exists()


def test_npz_arrays_in_keras_layout(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "d.npz"
    np.savez(path, x=rng.integers(0, 256, (40, 12, 12, 3), dtype=np.uint8), y=rng.integers(0, 4, 40))
    data = load_dataset(f"npz:{path}", (3, 24, 24))
    assert data.train.x.shape[1:] == (3, 24, 24) and data.classes == ["0", "1", "2", "3"]
    assert data.notes == ["images resized 12x12 -> 24x24 (bilinear)"]
    np.savez(path, images=np.zeros((2, 3, 3)))
    with pytest.raises(CnnError, match="needs two arrays"):
        load_dataset(f"npz:{path}", (1, 3, 3))


def test_the_digits_are_scikit_learns_read_without_importing_it():
    """load_digits' own file, read as it reads it: scikit-learn's import (scipy's with it) took 1.8 s of a `show`."""
    import subprocess
    import sys

    from sklearn.datasets import load_digits

    from cnndsl.data.datasets import _digits

    x, y, classes = _digits()
    digits = load_digits()
    assert torch.equal(x, torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0)
    assert torch.equal(y, torch.tensor(digits.target, dtype=torch.int64)) and classes == [str(i) for i in range(10)]
    code = "import sys; from cnndsl.data.datasets import _digits; _digits(); assert 'sklearn' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_the_test_split_alone_is_load_datasets(tmp_path):
    from cnndsl.data.datasets import load_test_split

    for splits in (None, {"train": "train[:50%]", "val": "train[50%:60%]", "test": "train[60%:]"}):
        whole = load_dataset("digits", (1, 12, 12), seed=3, splits=splits).test
        alone = load_test_split("digits", (1, 12, 12), seed=3, splits=splits)
        assert torch.equal(alone.x, whole.x) and torch.equal(alone.y, whole.y) and alone.x.shape[1:] == (1, 12, 12)


def test_unknown_dataset():
    with pytest.raises(CnnError, match="unknown dataset `minst`") as info:
        load_dataset("minst", (1, 28, 28))
    assert "did you mean `mnist`" in info.value.hint


def write_folder(root, counts: dict[str, int], size=(10, 12)):
    from PIL import Image

    rng = np.random.default_rng(0)
    for name, count in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.{'png' if i % 2 else 'jpg'}")


def test_image_folders(tmp_path):
    write_folder(tmp_path / "flowers", {"daisy": 12, "rose": 8})
    data = load_dataset(f"folder:{tmp_path / 'flowers'}", (3, 16, 16), seed=0)
    assert data.classes == ["daisy", "rose"]
    assert len(data.train) + len(data.val) + len(data.test) == 20
    assert data.train.x.shape[1:] == (3, 16, 16) and 0 <= float(data.train.x.min()) <= float(data.train.x.max()) <= 1
    grey = load_dataset(f"folder:{tmp_path / 'flowers'}", (1, 8, 8))
    assert grey.train.x.shape[1:] == (1, 8, 8)


def test_a_corrupt_image_is_named(tmp_path):
    write_folder(tmp_path / "f", {"a": 3, "b": 3})
    (tmp_path / "f" / "b" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(CnnError, match="broken.png"):
        load_dataset(f"folder:{tmp_path / 'f'}", (3, 8, 8))
    with pytest.raises(CnnError, match="no such folder"):
        load_dataset(f"folder:{tmp_path / 'nope'}", (3, 8, 8))


def test_image_folders_decoded_by_workers(tmp_path):
    from cnndsl.data.folders import load_folder

    write_folder(tmp_path / "f", {"a": 40, "b": 30})
    x, y, classes = load_folder(str(tmp_path / "f"), (3, 8, 8), workers=2)
    serial, _, _ = load_folder(str(tmp_path / "f"), (3, 8, 8), workers=0)
    assert torch.equal(x, serial) and y.tolist() == [0] * 40 + [1] * 30
    (tmp_path / "f" / "a" / "bad.jpg").write_bytes(b"nope")
    with pytest.raises(CnnError, match=r"bad\.jpg") as info:
        load_folder(str(tmp_path / "f"), (3, 8, 8), workers=2)
    assert "Traceback" not in info.value.message


def test_split_expressions(cache):
    write_mnist(cache / "mnist", n_train=100, n_test=40)
    data = load_dataset("mnist", (1, 28, 28), splits={"train": "train[:10%]", "val": "train[10:30]",
                                                      "test": "test[50%:]"})
    assert (len(data.train), len(data.val), len(data.test)) == (10, 20, 20)
    default = load_dataset("digits", (1, 8, 8), splits={"train": "train[:50%]"})
    assert len(default.train) == 898 and len(default.val) == 180 and len(default.test) == 180
    for bad, message in (("train[:10", "bad split"), ("test", "no `test` part"), ("train[5:5]", "is empty")):
        with pytest.raises(CnnError, match=message):
            load_dataset("digits", (1, 8, 8), splits={"train": bad})
