"""At home for the Keras books' readers: `check --keras` prints Keras 3's model.summary(), and Keras 3 files load.

The tutorials' models are built in Keras itself (the torch backend) where keras is installed (`make test` installs
it: pyproject's dev extra) and compared with cnndsl's, character for character; without keras, those tests skip
and the figures recorded from Keras 3.15 below still hold cnndsl to them.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest

import cnndsl
from cnndsl import keras_summary
from conftest import ROOT, keras_honkong

EXAMPLES = ROOT / "examples"
# Keras 3.15 converts its tensors with np.array(x, copy=False), which numpy 2 warns about on every call
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

# What Keras 3.15 prints for the 혼공 머신러닝 8-2 model built as keras.Sequential(..., name="fashion_cnn_honkong")
# at its 76 columns (an 80-column terminal)
HONKONG = """\
Model: "fashion_cnn_honkong"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
│ conv2d (Conv2D)                 │ (None, 28, 28, 32)     │           320 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ max_pooling2d (MaxPooling2D)    │ (None, 14, 14, 32)     │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ conv2d_1 (Conv2D)               │ (None, 14, 14, 64)     │        18,496 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ max_pooling2d_1 (MaxPooling2D)  │ (None, 7, 7, 64)       │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ flatten (Flatten)               │ (None, 3136)           │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dense (Dense)                   │ (None, 100)            │       313,700 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dropout (Dropout)               │ (None, 100)            │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dense_1 (Dense)                 │ (None, 10)             │         1,010 │
└─────────────────────────────────┴────────────────────────┴───────────────┘
 Total params: 333,526 (1.27 MB)
 Trainable params: 333,526 (1.27 MB)
 Non-trainable params: 0 (0.00 B)
"""


def test_the_honkong_model_is_what_keras_prints():
    assert cnndsl.check(EXAMPLES / "fashion_cnn_honkong.cnn").keras_summary(76) == HONKONG


def test_batchnorm_statistics_and_frozen_weights_are_non_trainable():
    s = cnndsl.check(EXAMPLES / "cifar_cnn_bn.cnn").keras()
    assert (s.total, s.trainable, s.non_trainable) == (592_554, 591_914, 640)  # Keras' own figures
    assert [(r.name, r.type, r.shape, r.params) for r in s.rows[:3]] == [
        ("conv2d", "Conv2D", (None, 32, 32, 32), 896),
        ("batch_normalization", "BatchNormalization", (None, 32, 32, 32), 128),  # gamma, beta, mean, variance
        ("leaky_re_lu", "LeakyReLU", (None, 32, 32, 32), 0)]
    frozen = cnndsl.loads("network f {\n    input 3x8x8\n    frozen conv 4 kernel=3\n    batchnorm\n    flatten\n"
                          "    dense 2\n}").check().keras()
    assert (frozen.total, frozen.trainable, frozen.non_trainable) == (112 + 16 + 290, 8 + 290, 112 + 8)


def test_xceptions_total_is_keras_applications():
    s = cnndsl.check(ROOT / "specs/xception.cnn").keras()  # keras.applications.Xception().summary()'s figures
    assert (s.total, s.trainable, s.non_trainable) == (22_910_480, 22_855_952, 54_528)


def test_activation_arguments_are_part_of_their_layer():
    rows = cnndsl.check(EXAMPLES / "fashion_cnn_handson.cnn").keras().rows
    assert [r.name for r in rows] == [
        "conv2d", "max_pooling2d", "conv2d_1", "conv2d_2", "max_pooling2d_1", "conv2d_3", "conv2d_4",
        "max_pooling2d_2", "flatten", "dense", "dropout", "dense_1", "dropout_1", "dense_2"]
    spelled = cnndsl.loads("network r {\n    input 1x8x8\n    conv 4 kernel=3\n    relu\n    flatten\n    dense 2\n"
                           "    softmax\n}").check().keras().rows
    assert [(r.name, r.type) for r in spelled] == [("conv2d", "Conv2D"), ("activation", "Activation"),
                                                   ("flatten", "Flatten"), ("dense", "Dense"),
                                                   ("activation_1", "Activation")]


def test_a_network_with_a_merge_is_a_functional_model_in_keras_order():
    s = cnndsl.check(EXAMPLES / "cifar_resnet_small.cnn").keras()
    assert s.functional and (s.total, s.trainable, s.non_trainable) == (78_442, 77_866, 576)
    names = [r.name for r in s.rows]
    assert names[:2] == ["input_layer", "conv2d"]
    # Keras lists the deepest layers first: the second unit's two convs, then their batchnorms
    assert names[14:18] == ["conv2d_4", "conv2d_5", "batch_normalization_4", "batch_normalization_5"]
    add = next(r for r in s.rows if r.name == "add")
    assert add.inputs == ["batch_normalization_2", "activation"]
    text = cnndsl.check(EXAMPLES / "cifar_resnet_small.cnn").keras_summary(76)
    assert "┃ Connected to      ┃" in text and "│ input_layer[0][0] │" in text


def test_snake_case_is_keras_naming():
    assert [keras_summary.snake_case(c) for c in ("Conv2D", "MaxPooling2D", "ReLU", "LeakyReLU", "BatchNormalization",
                                                  "GlobalAveragePooling2D", "DepthwiseConv2D", "InputLayer")] == [
        "conv2d", "max_pooling2d", "re_lu", "leaky_re_lu", "batch_normalization", "global_average_pooling2d",
        "depthwise_conv2d", "input_layer"]


def test_check_keras_on_the_command_line_imports_neither_torch_nor_keras(tmp_path):
    code = ("import sys; from cnndsl.cli import main; code = main(['check', sys.argv[1], '--keras']); "
            "assert not {'torch', 'keras', 'h5py'} & set(sys.modules), 'imported'; sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code, str(EXAMPLES / "fashion_cnn_honkong.cnn")], capture_output=True,
                          text=True, env=dict(os.environ, COLUMNS="80"), timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == HONKONG


# ---- against Keras itself -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keras():
    """Keras 3 on the torch backend, or a skip."""
    if os.environ.setdefault("KERAS_BACKEND", "torch") != "torch":
        pytest.skip("KERAS_BACKEND is not torch")
    pytest.importorskip("torch")
    return pytest.importorskip("keras")


honkong = keras_honkong


def handson(keras):
    """Hands-On Machine Learning, chapter 14: DefaultConv2D = partial(Conv2D, kernel_size=3, activation="relu",
    padding="SAME")."""
    L = keras.layers

    def conv(filters, kernel_size=3):
        return L.Conv2D(filters, kernel_size=kernel_size, activation="relu", padding="same")

    return keras.Sequential([
        keras.Input((28, 28, 1)), conv(64, 7), L.MaxPooling2D(2), conv(128), conv(128), L.MaxPooling2D(2),
        conv(256), conv(256), L.MaxPooling2D(2), L.Flatten(), L.Dense(128, activation="relu"), L.Dropout(0.5),
        L.Dense(64, activation="relu"), L.Dropout(0.5), L.Dense(10, activation="softmax"),
    ], name="fashion_cnn_handson")


def cifar(keras):
    """Generative Deep Learning (Foster), chapter 2: conv, batchnorm, LeakyReLU units."""
    L = keras.layers
    units = []
    for filters, stride in ((32, 1), (32, 2), (64, 1), (64, 2)):
        units += [L.Conv2D(filters, 3, strides=stride, padding="same"), L.BatchNormalization(), L.LeakyReLU()]
    return keras.Sequential([
        keras.Input((32, 32, 3)), *units, L.Flatten(), L.Dense(128), L.BatchNormalization(), L.LeakyReLU(),
        L.Dropout(0.5), L.Dense(10, activation="softmax"),
    ], name="cifar_cnn_bn")


def resnet(keras):
    """Residual units as Hands-On ML writes them, with Keras' functional API."""
    L = keras.layers

    def unit(x, filters, stride=1):
        y = L.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
        y = L.BatchNormalization()(y)
        y = L.Activation("relu")(y)
        y = L.Conv2D(filters, 3, padding="same", use_bias=False)(y)
        y = L.BatchNormalization()(y)
        skip = x
        if stride != 1 or x.shape[-1] != filters:
            skip = L.Conv2D(filters, 1, strides=stride, padding="same", use_bias=False)(x)
            skip = L.BatchNormalization()(skip)
        return L.Activation("relu")(L.Add()([y, skip]))

    inputs = keras.Input((32, 32, 3))
    x = L.Activation("relu")(L.BatchNormalization()(L.Conv2D(32, 3, padding="same", use_bias=False)(inputs)))
    x = unit(unit(x, 32), 64, 2)
    outputs = L.Dense(10, activation="softmax")(L.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs, name="cifar_resnet_small")


MODELS = {"fashion_cnn_honkong": honkong, "fashion_cnn_handson": handson, "cifar_cnn_bn": cifar,
          "cifar_resnet_small": resnet}


def printed(model) -> str:
    lines = []
    model.summary(print_fn=lambda text, **_: lines.append(text))
    return "".join(lines)


@pytest.mark.parametrize("name", MODELS)
def test_the_tutorials_models_print_as_keras_prints_them(keras, name, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")  # Keras' width follows the terminal: both get 88 (108) columns
    keras.backend.clear_session()  # a fresh session's names: conv2d, conv2d_1...
    model = MODELS[name](keras)
    report = cnndsl.check(EXAMPLES / f"{name}.cnn")
    ours = report.keras()
    theirs = [(layer.name, type(layer).__name__, tuple(layer.output.shape), layer.count_params())
              for layer in model.layers]  # a functional model's list starts with its InputLayer, as its table
    assert [(r.name, r.type, r.shape, r.params) for r in ours.rows] == theirs
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    assert (ours.total, ours.trainable) == (model.count_params(), trainable)
    assert report.keras_summary() == printed(model)


def test_frozen_layers_as_keras_counts_them(keras, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    keras.backend.clear_session()
    model = honkong(keras)
    model.layers[2].trainable = False  # conv2d_1
    text = (EXAMPLES / "fashion_cnn_honkong.cnn").read_text().replace("    conv 64", "    frozen conv 64")
    assert cnndsl.loads(text).check().keras_summary() == printed(model)


# ---- Keras' weights ----------------------------------------------------------------------------------------------

FORMATS = (".keras", ".weights.h5", ".h5")  # model.save, model.save_weights, and Keras 2's HDF5 (model.save)
TOLERANCE = 1e-5  # float32 arithmetic in another order: the largest difference seen is 8.3e-7


def randomised(keras, model, seed: int = 0):
    """Weights away from Keras' initial values (zero biases, unit batchnorm statistics would hide a swap), at
    scales that keep every layer's outputs near 1, so that no difference is lost in a saturated layer."""
    import numpy as np

    rng = np.random.default_rng(seed)

    def value(w, path: str):
        if "variance" in path or "gamma" in path:
            return rng.uniform(0.5, 1.5, w.shape)
        return rng.normal(0, 1 / math.sqrt(math.prod(w.shape[:-1])) if w.ndim > 1 else 0.2, w.shape)

    for layer in model.layers:
        layer.set_weights([value(w, v.path).astype("float32") for w, v in zip(layer.get_weights(), layer.weights)])
    return model


def saved(keras, model, folder, suffix: str):
    path = folder / f"model{suffix}"
    model.save_weights(path) if suffix == ".weights.h5" else model.save(path)
    return path


def difference(keras, model, module, seed: int = 1) -> float:
    """The largest difference between the Keras model's scores and the module's, before the final softmax (whose
    saturated outputs could hide one), on the same images (NHWC to Keras, NCHW to PyTorch), in inference mode."""
    import numpy as np
    import torch

    x = np.random.default_rng(seed).normal(size=(4, *model.inputs[0].shape[1:])).astype("float32")
    last = model.layers[-1]
    softmax, last.activation = last.activation, keras.activations.linear  # Dense(10, activation="softmax")
    try:
        want = np.asarray(keras.ops.convert_to_numpy(model(x, training=False)))
    finally:
        last.activation = softmax
    module.eval()
    with torch.no_grad():
        images = torch.from_numpy(x).permute(0, 3, 1, 2)
        got = (module.logits(images) if getattr(module, "ends_in_softmax", False) else module(images)).numpy()
    assert np.abs(want).max() > 0.1  # scores that say something
    return float(np.abs(got - want).max())


def keras_eps(name: str) -> str:
    """The example's spec with Keras' batchnorm epsilon (0.001; PyTorch's is 1e-5)."""
    return (EXAMPLES / f"{name}.cnn").read_text().replace("batchnorm\n", "batchnorm eps=0.001\n")


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize("name", ["fashion_cnn_honkong", "cifar_cnn_bn", "cifar_resnet_small"])
def test_keras_weights_give_keras_outputs(keras, tmp_path, name, suffix):
    keras.backend.clear_session()
    model = randomised(keras, MODELS[name](keras))
    path = saved(keras, model, tmp_path, suffix)
    module = cnndsl.loads(keras_eps(name)).build()
    report = cnndsl.load_weights(module, path)
    assert report.complete and report.keras and len(report.loaded) == len(module.state_dict()) - sum(
        1 for n in module.state_dict() if n.endswith("num_batches_tracked"))
    assert difference(keras, model, module) < TOLERANCE
    if name != "cifar_resnet_small":  # a flatten then dense: Keras flattens (H, W, C), PyTorch (C, H, W)
        assert any("reordered from Keras' (H, W, C)" in note for note in report.notes)


def test_keras_batchnorm_epsilon_is_noted(keras, tmp_path):
    keras.backend.clear_session()
    model = randomised(keras, cifar(keras))
    module = cnndsl.load(EXAMPLES / "cifar_cnn_bn.cnn").build()  # batchnorm's eps is PyTorch's 1e-5
    report = cnndsl.load_weights(module, saved(keras, model, tmp_path, ".keras"))
    assert "5 batchnorm layers divide by sqrt(var + 1e-05) where Keras' divided by sqrt(var + 0.001)" in \
        report.summary()
    assert "`batchnorm momentum=0.01` to match" in report.summary()
    assert TOLERANCE < difference(keras, model, module) < 1e-2  # close, not equal


def test_depthwise_and_separable_convolutions(keras, tmp_path):
    L = keras.layers
    keras.backend.clear_session()
    model = randomised(keras, keras.Sequential([
        keras.Input((12, 12, 3)), L.DepthwiseConv2D(3, depth_multiplier=2, padding="same"),
        L.SeparableConv2D(8, 3, strides=2, padding="same", depth_multiplier=2, activation="relu"),
        L.Conv2D(6, 3, groups=2), L.GlobalAveragePooling2D(), L.Dense(5)]))
    spec = cnndsl.loads("network s {\n    input 3x12x12\n    dwconv 3 multiplier=2 padding=same\n"
                        "    sepconv 8 3 stride=2 padding=same multiplier=2 activation=relu\n"
                        "    conv 6 kernel=3 groups=2\n    globalavgpool\n    dense 5\n}")
    for suffix in FORMATS:
        module = spec.build()
        assert cnndsl.load_weights(module, saved(keras, model, tmp_path, suffix)).complete
        assert difference(keras, model, module) < TOLERANCE


def test_a_keras_layer_that_does_not_fit_is_named(keras, tmp_path):
    keras.backend.clear_session()
    path = saved(keras, honkong(keras), tmp_path, ".keras")
    module = cnndsl.load(EXAMPLES / "fashion_cnn_handson.cnn").build()
    with pytest.raises(cnndsl.CnnError) as info:
        cnndsl.load_weights(module, path)
    assert info.value.message.startswith("Keras' Conv2D `conv2d` does not fit `default_conv1.conv1`: its kernel "
                                         "(3, 3, 1, 32) gives (32, 1, 3, 3) where `default_conv1.conv1.weight` is "
                                         "(64, 1, 7, 7)")
    assert "the file's 1st Conv2D" in info.value.hint
    headless = (EXAMPLES / "fashion_cnn_honkong.cnn").read_text().replace("    dense classes activation=softmax\n", "")
    with pytest.raises(cnndsl.CnnError, match="do not fit the model exactly") as info:
        cnndsl.load_weights(cnndsl.loads(headless).build(), path)  # a dense too few: strict says which
    assert "theirs dense_1/kernel (100, 10): fits nothing" in info.value.message
    five = cnndsl.load(EXAMPLES / "fashion_cnn_honkong.cnn", classes=5).build()  # a new head: strict=False
    report = cnndsl.load_weights(five, path, strict=False)
    assert report.missing == ["dense2.weight", "dense2.bias"] and report.skipped == ["dense_1/kernel", "dense_1/bias"]
    assert "Keras' Dense `dense_1` does not fit `dense2`: its kernel (100, 10) gives (10, 100) where `dense2.weight` " \
           "is (5, 100): left as it was" in report.notes


def test_links_out_of_the_file_are_refused(tmp_path):
    h5py = pytest.importorskip("h5py")
    pytest.importorskip("torch")
    with h5py.File(tmp_path / "other.h5", "w") as other:
        other["kernel"] = [[1.0]]
    with h5py.File(tmp_path / "model.weights.h5", "w") as f:
        f["layers/dense/vars/0"] = h5py.ExternalLink("other.h5", "kernel")
    module = cnndsl.loads("network d {\n    input 1\n    dense 1 bias=false\n}").build()
    with pytest.raises(cnndsl.CnnError, match=r"`0` is a link \(ExternalLink\), not part of the file"):
        cnndsl.load_weights(module, tmp_path / "model.weights.h5")
    with h5py.File(tmp_path / "huge.weights.h5", "w") as f:  # 8 GiB declared, nothing written: a tiny file
        f.create_dataset("layers/dense/vars/0", shape=(1 << 31, 1), dtype="float32", chunks=(1 << 20, 1),
                         compression="gzip")
    with pytest.raises(cnndsl.CnnError, match="is 8,589,934,592 bytes, more than any layer's"):
        cnndsl.load_weights(module, tmp_path / "huge.weights.h5")
    (tmp_path / "not.keras").write_bytes(b"not a zip")
    with pytest.raises(cnndsl.CnnError, match="is not a Keras weights file"):
        cnndsl.load_weights(module, tmp_path / "not.keras")


def test_train_init_from_a_keras_file(keras, tmp_path):
    pytest.importorskip("sklearn")
    keras.backend.clear_session()
    path = saved(keras, randomised(keras, honkong(keras)), tmp_path, ".keras")
    lines = []
    cnndsl.train(EXAMPLES / "fashion_cnn_honkong.cnn", epochs=1, init=str(path), out=tmp_path / "run",
                 log=lines.append)
    init = next(line for line in lines if line.startswith("init from"))
    assert "loaded 8 tensors (from Keras, by kind and order, in PyTorch's layouts), skipped 0, missing 0" in init
