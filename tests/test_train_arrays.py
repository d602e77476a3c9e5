"""Training from what a Python user holds: arrays in Keras' layout and in torch's, a torch Dataset, a DataLoader
(each the same images: the same run, figure for figure), callbacks with Keras' methods that stop a run, Keras'
EarlyStopping as the recipe's, and each refusal of bad data in one line that names shapes and dtypes."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import cnndsl
from cnndsl import saved
from conftest import SMALL

SPEC = cnndsl.loads(SMALL)  # 1x8x8 -> 10


@pytest.fixture(scope="module")
def digits():
    """The 8x8 digits as a Keras user holds images: uint8 0..255, (N, H, W, C); and their labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images * 255 / 16).round().astype(np.uint8)[..., None], d.target.astype(np.int64)


def parts(x, y):
    return {"data": (x[:1200], y[:1200]), "validation_data": (x[1200:1500], y[1200:1500]),
            "test_data": (x[1500:], y[1500:])}


def train(tmp_path, name: str, **kwargs):
    lines = []
    run = cnndsl.train(SPEC, **{"epochs": 1, "seed": 3, **kwargs}, out=tmp_path / name, log=lines.append)
    return run, lines


def figures(run) -> list:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in run.history] + [run.test_accuracy]


@pytest.fixture(scope="module")
def keras_run(digits, tmp_path_factory):
    x, y = digits
    return train(tmp_path_factory.mktemp("keras"), "run", classes=[f"digit {i}" for i in range(10)], **parts(x, y))


def test_arrays_in_keras_layout_train(keras_run, digits):
    run, lines = keras_run
    assert lines[0] == "data: data given in Python as Keras' (N, H, W, C), moved to (N, C, H, W), uint8 scaled to 0..1"
    assert "training small (5,130 parameters) on python:arrays: 1200 train, 300 validation, 297 test images" in lines[3]
    checkpoint = saved.load(run.last)
    assert checkpoint.classes == [f"digit {i}" for i in range(10)] and checkpoint.data["name"] == "python:arrays"
    assert len(run.history) == 1 and 0 < run.test_accuracy <= 1


def test_torch_layout_tensors_give_the_same_run(keras_run, digits, tmp_path):
    x, y = digits
    nchw = torch.from_numpy(x.transpose(0, 3, 1, 2).astype(np.float32) / 255)  # scaled already: taken as they are
    run, lines = train(tmp_path, "torch", classes=[f"digit {i}" for i in range(10)],
                       **parts(nchw, torch.from_numpy(y)))
    assert lines[0] == "data: data given in Python as (N, C, H, W)"
    assert figures(run) == figures(keras_run[0])
    grey, _ = train(tmp_path, "grey", **parts(x[..., 0], y))  # (N, H, W): grey images
    assert figures(grey) == figures(keras_run[0])


class Digits(torch.utils.data.Dataset):
    """Items as torchvision's datasets give them without a transform: (PIL image, int)."""

    classes = [f"digit {i}" for i in range(10)]

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        from PIL import Image

        return Image.fromarray(self.x[i, :, :, 0]), int(self.y[i])


def test_a_dataset_and_a_dataloader_give_the_same_run(keras_run, digits, tmp_path):
    x, y = digits
    split = parts(x, y)
    sets = {k: Digits(*v) for k, v in split.items()}
    run, lines = train(tmp_path, "dataset", **sets)  # its classes are the Dataset's own
    assert "on python:Dataset: 1200 train" in lines[3] and saved.load(run.last).classes == Digits.classes
    assert figures(run) == figures(keras_run[0])
    loaders = {k: torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.from_numpy(a), torch.from_numpy(b)),
                                              batch_size=100) for k, (a, b) in split.items()}
    run, lines = train(tmp_path, "loader", classes=Digits.classes, **loaders)
    assert "on python:DataLoader: 1200 train" in lines[3] and figures(run) == figures(keras_run[0])


def test_without_validation_data_the_data_is_cut_as_npz_is(digits, tmp_path):
    x, y = digits
    run, lines = train(tmp_path, "cut", data=(x, y))
    assert "on python:arrays: 1439 train, 179 validation, 179 test images" in lines[1]  # as the digits by name
    assert saved.load(run.last).classes == [str(i) for i in range(10)]


class Recorder(cnndsl.Callback):
    """Every call, in order; stops the run as Keras' callbacks do, at epoch `stop_at` or after batch `batch`."""

    def __init__(self, stop_at: int | None = None, batch: int | None = None):
        self.calls, self.stop_at, self.batch = [], stop_at, batch

    def on_train_begin(self, logs=None):
        self.calls.append(("train_begin", logs))

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append(("epoch_begin", epoch))

    def on_train_batch_end(self, batch, logs=None):
        self.calls.append(("batch_end", batch, sorted(logs)))
        if batch == self.batch:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(("epoch_end", epoch, sorted(logs)))
        if epoch == self.stop_at:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        self.calls.append(("train_end", sorted(logs)))


def test_a_callback_stops_the_run_at_an_epochs_end(digits, tmp_path):
    x, y = digits
    recorder = Recorder(stop_at=1)
    run, lines = train(tmp_path, "stopped", callbacks=[recorder], **{**parts(x, y), "test_data": None}, epochs=5)
    assert len(run.history) == 2 and "stopped by a callback: Recorder.on_epoch_end set model.stop_training" in lines
    keys = ["accuracy", "loss", "lr", "seconds", "val_accuracy", "val_loss"]
    epochs = [c for c in recorder.calls if c[0] != "batch_end"]
    end = sorted([*keys, "best_epoch", "test_accuracy", "test_loss"])
    assert epochs == [("train_begin", {}), ("epoch_begin", 0), ("epoch_end", 0, keys), ("epoch_begin", 1),
                      ("epoch_end", 1, keys), ("train_end", end)]
    assert [c[1] for c in recorder.calls if c[0] == "batch_end"] == [*range(38), *range(38)]  # ceil(1200 / 32) each
    assert recorder.model is not None and recorder.model.stop_training is True
    assert "data: no test_data: the test figures are those of validation_data" in lines


def test_a_callback_stops_the_run_within_an_epoch(digits, tmp_path):
    class Plain:  # no base class: any object with some of Keras' methods
        def on_epoch_end(self, epoch, logs):
            self.val_loss = logs["val_loss"]

    x, y = digits
    recorder, plain = Recorder(batch=4), Plain()
    run, lines = train(tmp_path, "batch", callbacks=[recorder, plain], epochs=3, **parts(x, y))
    assert [c[1] for c in recorder.calls if c[0] == "batch_end"] == [0, 1, 2, 3, 4]
    assert len(run.history) == 1 and plain.val_loss == run.history[0]["val_loss"]
    assert "stopped by a callback: Recorder.on_train_batch_end set model.stop_training" in lines


def test_early_stopping_is_the_recipes(digits, tmp_path):
    x, y = digits
    stop = cnndsl.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    run, _ = train(tmp_path, "early", callbacks=[stop], **parts(x, y))
    recipe = saved.load(run.last).recipe
    assert (recipe["monitor"], recipe["patience"], recipe["restore_best"]) == ("val_loss", 2, True)
    assert run.monitor == "val_loss" and repr(run).startswith(f"<Run {run.out}: 1 epoch, best epoch 1 val_loss ")
    assert cnndsl.EarlyStopping(patience=0).recipe()["patience"] == 1  # Keras stops at once with 0 as with 1


def test_a_run_on_arrays_is_drawn_and_resumed_with_its_data_given_again(keras_run, digits, tmp_path):
    x, y = digits
    run, _ = keras_run
    shown = cnndsl.show("cam", run, x[1500], out=tmp_path)  # an image of the test part, as an array
    assert shown.paths[0].parent == tmp_path and shown.paths[0].name.startswith(("cam-image-", "gradcam-image-"))
    assert 'src="data:image/png;base64,' in shown._repr_html_()
    with pytest.raises(cnndsl.CnnError) as e:
        cnndsl.evaluate(run)
    assert e.value.message == "`python:arrays` is data given in Python to cnndsl.train, which a run does not keep"
    with pytest.raises(cnndsl.CnnError) as e:
        cnndsl.show("maps", run, index=3, out=tmp_path)
    assert e.value.message.startswith("`python:arrays` is data given in Python")


def test_resume_takes_the_data_again(digits, tmp_path):
    x, y = digits
    first, _ = train(tmp_path, "resumed", callbacks=[Recorder(stop_at=0)], epochs=2, **parts(x, y))
    assert len(first.history) == 1
    again = cnndsl.train(SPEC, resume=first.out, log=None, **parts(x, y))
    assert [row["epoch"] for row in again.history] == [1, 2]
    named = cnndsl.train(SPEC, epochs=1, out=tmp_path / "named", log=None)  # on the digits, by name
    with pytest.raises(cnndsl.UsageError, match=r"trained on digits, which it reads again; data= is for a run"):
        cnndsl.train(SPEC, resume=named.out, data=(x, y))


# ---- refusals: one line each, before anything is allocated or any folder made ------------------------------

FASHION = cnndsl.loads("network f(classes = 10) {\n    input 1x28x28\n    conv 4 kernel=3\n    flatten\n"
                       "    dense classes activation=softmax\n}\n")
x28 = np.zeros((60000, 28, 28), np.uint8)
BAD = [
    ({"data": (x28, np.zeros(59999, np.int64))},
     "data: x (60000, 28, 28) uint8 vs y (59999,) int64: 60,000 images but 59,999 labels; give one label per image"),
    ({"data": (x28, np.arange(60000) % 11)},
     "data: y (60000,) int64 holds labels up to 10 (11 classes) where the network outputs 10: load the spec with "
     "classes=11, or leave out the labels above 9"),
    ({"data": (np.zeros((10, 32, 32), np.uint8), np.zeros(10, np.int64))},
     "data: x (10, 32, 32) uint8 fits neither layout of the network's input 1x28x28: give (N, 1, 28, 28) or "
     "(N, 28, 28, 1), or (N, 28, 28) for grey images"),
    ({"data": (x28[:10], np.zeros(10, np.int64)), "validation_data": (torch.zeros(5, 3, 28, 28), torch.zeros(5))},
     "validation_data: y (5,) float32 is not a list of class numbers: give y as integers of shape (5,)"),
    ({"data": (x28[:10], np.eye(10)[np.zeros(10, int)])},
     "data: y (10, 10) float64 holds a row per label (one-hot?): give class numbers, y.argmax(1)"),
    ({"data": (np.full((4, 28, 28), np.nan, np.float32), np.zeros(4, np.int64))},
     "data: x (4, 28, 28) float32 holds NaN or infinite values, the first at x[0, 0, 0]: replace them "
     "(np.nan_to_num) or leave those images out"),
    ({"data": (x28[:4], np.array([0, 1, -1, 2]))},
     "data: y (4,) int64 holds -1 at y[2]; labels are class numbers 0 to 9"),
    ({"data": x28}, "data takes (x, y), a torch Dataset or a DataLoader; got one array, x (60000, 28, 28) uint8: give "
                    "its labels too, data=(x, y)"),
    ({"data": (x28[:4], np.zeros(4, np.int64)), "classes": ["a", "b"]},
     "classes holds 2 names where the network outputs 10: give one name per output"),
    ({"validation_data": (x28[:4], np.zeros(4, np.int64))},
     "validation_data, test_data and classes go with data given in Python"),
    ({"data": (x28[:4], np.zeros(4, np.int64)), "callbacks": ["print"]},
     "callbacks[0] (a str) has none of the methods on_train_begin, on_epoch_begin, on_train_batch_end, "
     "on_epoch_end, on_train_end"),
    ({"data": (x28[:4], np.zeros(4, np.int64)), "callbacks": [cnndsl.EarlyStopping(patience=2)], "patience": 3},
     "EarlyStopping sets patience, given also as a key"),
]


@pytest.mark.parametrize(("given", "message"), BAD, ids=[m.split(":")[0] + str(i) for i, (_, m) in enumerate(BAD)])
def test_bad_data_is_one_line_naming_shapes_and_dtypes(given, message, tmp_path):
    with pytest.raises(cnndsl.CnnError) as e:
        cnndsl.train(FASHION, out=tmp_path / "run", log=None, **given)
    assert e.value.message == message and "\n" not in message
    assert not re.search(r"array\(|\.\.\.|nan,|\[0 0", e.value.render())  # an array's values are never printed
    assert not (tmp_path / "run").exists()
