"""`cnndsl.from_keras` and `cnndsl import model.keras`: a Keras 3 model as a spec that computes what it does.

Models are built in Keras itself (the torch backend, as tests/test_keras.py does), saved, imported, checked against
Keras' own parameter count, built, loaded with the saved file's weights and run beside Keras' prediction.
"""

from __future__ import annotations

import json
import os
import zipfile

import pytest

import cnndsl
from cnndsl.errors import CnnError
from cnndsl.interop.keras_import import ImportRefused, from_config
from conftest import ROOT, keras_honkong

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

RESCONCAT = """\
# Imported by `cnndsl import` from resconcat.keras: layer names are Keras'.
network resconcat {
    input_layer: input 3x12x12
    stem: conv 8 kernel=3 padding=same activation=relu
    add_: residual {
        conv2d: conv 8 kernel=3 padding=same
        batch_normalization: batchnorm eps=0.001 momentum=0.01
        re_lu: relu
        conv2d_1: conv 8 kernel=3 padding=same bias=false
    }
    mixed: concat {
        branch {
            conv2d_2: conv 4 kernel=1
        }
        branch {
            conv2d_3: conv 6 kernel=3x1 padding=same
            conv2d_4: conv 6 kernel=1x3 padding=same activation=relu
        }
        branch {
            average_pooling2d: avgpool 3 stride=1 padding=same
        }
    }
    down: conv 16 kernel=3 stride=2 padding=same activation=relu
    flatten: flatten
    dropout: dropout 0.3
    head: dense 5 activation=softmax
}
"""


@pytest.fixture(scope="module")
def keras():
    """Keras 3 on the torch backend, or a skip."""
    if os.environ.setdefault("KERAS_BACKEND", "torch") != "torch":
        pytest.skip("KERAS_BACKEND is not torch")
    pytest.importorskip("torch")
    pytest.importorskip("h5py")
    return pytest.importorskip("keras")


def resconcat(keras):
    """A functional model: a stem, a residual block (Add of the stem and a body), an Inception-like Concatenate of
    three branches, a strided conv, and a flattened 6x6 map read by a Dense (whose rows the loader reorders)."""
    keras.backend.clear_session()  # Keras' default names count from 0 again
    L = keras.layers
    inp = keras.Input((12, 12, 3))
    x = L.Conv2D(8, 3, padding="same", activation="relu", name="stem")(inp)
    y = L.Conv2D(8, 3, padding="same")(x)
    y = L.BatchNormalization()(y)
    y = L.ReLU()(y)
    y = L.Conv2D(8, 3, padding="same", use_bias=False)(y)
    x = L.Add()([y, x])
    a = L.Conv2D(4, 1)(x)
    b = L.Conv2D(6, (3, 1), padding="same")(x)
    b = L.Conv2D(6, (1, 3), padding="same", activation="relu")(b)
    c = L.AveragePooling2D(3, strides=1, padding="same")(x)
    x = L.Concatenate(name="mixed")([a, b, c])
    x = L.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="down")(x)
    x = L.Flatten()(x)
    x = L.Dropout(0.3)(x)
    out = L.Dense(5, activation="softmax", name="head")(x)
    return keras.Model(inp, out, name="resconcat")


def _trained_statistics(keras, model):
    """Batchnorm statistics that are not the initial 0 and 1, so that loading them is tested."""
    import numpy as np

    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            rng = np.random.default_rng(1)
            n = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(size=n).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 2, size=n).astype("float32"))


def _round_trip(keras, model, path, text):
    """The spec built, loaded from the .keras file: the largest difference from Keras' own prediction."""
    import numpy as np
    import torch

    module = cnndsl.loads(text).build().eval()
    report = cnndsl.load_weights(module, path)
    x = np.random.default_rng(0).normal(size=(4, *model.input_shape[1:])).astype("float32")
    expected = np.asarray(model.predict(x, verbose=0))
    with torch.no_grad():
        got = module(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
    return report, float(np.abs(got - expected).max())


def test_a_functional_model_with_a_residual_and_a_concat_imports_exactly(keras, tmp_path):
    model = resconcat(keras)
    _trained_statistics(keras, model)
    path = tmp_path / "resconcat.keras"
    model.save(path)
    text = cnndsl.from_keras(path)
    assert text == RESCONCAT
    report = cnndsl.loads(text).check()
    assert report.params + report.buffers == model.count_params() == 7_209
    load, diff = _round_trip(keras, model, path, text)
    assert (len(load.loaded), len(load.skipped), len(load.missing)) == (19, 0, 0)
    assert load.summary().startswith("loaded 19 tensors (from Keras, by layer name, in PyTorch's layouts), skipped 0")
    assert diff < 1e-6  # measured 6e-8 (float32 sums in another order)
    assert cnndsl.from_keras(model) == text.replace("from resconcat.keras", "from the Keras model `resconcat`")


def test_layers_pair_with_the_weights_by_name(keras, tmp_path):
    """Two convs of equal shape made in the other order than they run: Keras names the one made first `conv2d`
    though it runs second. Paired by made order they would swap without a word; by name each gets its own."""
    keras.backend.clear_session()
    L = keras.layers
    inp = keras.Input((6, 6, 4))
    runs_second, runs_first = L.Conv2D(4, 3, padding="same"), L.Conv2D(4, 3, padding="same")
    out = L.Dense(3)(L.GlobalAveragePooling2D()(runs_second(runs_first(inp))))
    model = keras.Model(inp, out, name="made_late")
    path = tmp_path / "made_late.keras"
    model.save(path)
    text = cnndsl.from_keras(path)
    assert "conv2d_1: conv 4 kernel=3 padding=same\n    conv2d: conv 4" in text  # in the order they run
    load, diff = _round_trip(keras, model, path, text)
    assert ("conv2d_1.weight", "conv2d_1/kernel") in load.loaded and ("conv2d.weight", "conv2d/kernel") in load.loaded
    assert diff < 1e-6


def honkong(keras):
    keras.backend.clear_session()  # Keras' default names count from 0 again
    return keras_honkong(keras)


def test_the_books_sequential_fashion_cnn_is_its_example_spec(keras, tmp_path):
    model = honkong(keras)
    path = tmp_path / "honkong.keras"
    model.save(path)
    text = cnndsl.from_keras(path)
    imported = cnndsl.loads(text).check()
    example = cnndsl.check(ROOT / "examples/fashion_cnn_honkong.cnn")
    assert imported.params == example.params == model.count_params() == 333_526
    assert imported.macs == example.macs
    assert [row.layer.shape for row in imported.layers] == [row.layer.shape for row in example.layers]
    load, diff = _round_trip(keras, model, path, text)
    assert (len(load.loaded), len(load.skipped), len(load.missing)) == (8, 0, 0)
    assert diff < 1e-6  # measured 7e-8
    assert cnndsl.from_keras(model).split("\n", 1)[1] == text.split("\n", 1)[1]  # the live model: the same spec


def test_a_model_without_a_layer_graph_is_refused(keras):
    """A subclassed keras.Model's call() is Python code: its config holds no graph to read."""
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(4, 3)

        def call(self, x):
            return self.conv(x) * 2

    with pytest.raises(CnnError, match="has no layer graph in its config"):
        cnndsl.from_keras(Net())
    with pytest.raises(CnnError, match="a dict is not a Keras model"):
        cnndsl.from_keras({"layers": []})


def _with_config(tmp_path, name, edit):
    """A copy of a saved model's file whose config.json `edit` changed."""
    source = tmp_path / "base.keras"
    with zipfile.ZipFile(source) as z:
        files = {n: z.read(n) for n in z.namelist()}
    config = json.loads(files["config.json"])
    edit(config)
    files["config.json"] = json.dumps(config).encode()
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as z:
        for n, data in files.items():
            z.writestr(n, data)
    return path


def test_a_lambda_layer_is_refused_with_the_tree_and_never_run(keras, tmp_path):
    keras.backend.clear_session()
    L = keras.layers
    inp = keras.Input((8, 8, 3))
    x = L.Conv2D(4, 3)(inp)
    x = L.Lambda(lambda t: t * 2, name="doubled")(x)
    out = L.Dense(2)(L.GlobalAveragePooling2D()(x))
    path = tmp_path / "lambda.keras"
    keras.Model(inp, out, name="with_lambda").save(path)
    with pytest.raises(ImportRefused) as caught:
        cnndsl.from_keras(path)
    assert caught.value.tree.splitlines() == [
        "with_lambda (Functional)",
        "    input_layer (InputLayer)",
        "    conv2d (Conv2D)",
        "    doubled (Lambda)  ✗ a Lambda layer is Python code, which an import never runs",
        "    global_average_pooling2d (GlobalAveragePooling2D)",
        "    dense (Dense)",
    ]
    assert "1 layer has no cnndsl form" in caught.value.message


def test_a_custom_class_is_refused_unless_the_user_names_its_kind(keras, tmp_path):
    honkong(keras).save(tmp_path / "base.keras")

    def rename(config):
        config["config"]["layers"][1]["class_name"] = "MyConv"

    path = _with_config(tmp_path, "custom.keras", rename)
    with pytest.raises(ImportRefused, match=r"conv2d \(MyConv\)  ✗ a class no layer kind is \(.*--custom CLASS=KIND"):
        cnndsl.from_keras(path)
    text = cnndsl.from_keras(path, custom={"MyConv": "conv"})
    assert "conv2d: conv 32 kernel=3 padding=same activation=relu" in text
    with pytest.raises(CnnError, match="`nothing`, which is no layer kind"):
        cnndsl.from_keras(path, custom={"MyConv": "nothing"})


def test_an_option_cnndsl_lacks_is_refused_never_dropped(keras, tmp_path):
    honkong(keras).save(tmp_path / "base.keras")

    def channels_first(config):
        config["config"]["layers"][1]["config"]["data_format"] = "channels_first"

    def causal(config):
        config["config"]["layers"][1]["config"]["padding"] = "causal"

    for edit, marked in ((channels_first, "data_format='channels_first'"), (causal, "padding='causal'")):
        with pytest.raises(ImportRefused, match=marked):
            cnndsl.from_keras(_with_config(tmp_path, "edited.keras", edit))


def test_malformed_and_truncated_files_are_clean_errors(keras, tmp_path):
    honkong(keras).save(tmp_path / "base.keras")
    data = (tmp_path / "base.keras").read_bytes()
    cases = {
        "truncated.keras": data[: len(data) // 2],
        "empty.keras": b"",
        "text.keras": b"not a zip at all",
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    cases["noconfig"] = None
    with zipfile.ZipFile(tmp_path / "noconfig.keras", "w") as z:
        z.writestr("model.weights.h5", b"")
    with zipfile.ZipFile(tmp_path / "badjson.keras", "w") as z:
        z.writestr("config.json", b"{\"class_name\": ")
    with zipfile.ZipFile(tmp_path / "nolayers.keras", "w") as z:
        z.writestr("config.json", json.dumps({"class_name": "Functional", "config": {"layers": 3}}))
    for name in ("truncated", "empty", "text", "noconfig", "badjson", "nolayers"):
        with pytest.raises(CnnError) as caught:
            cnndsl.from_keras(tmp_path / f"{name}.keras")
        assert "Traceback" not in caught.value.render()


def test_the_command_line_writes_the_spec_or_exits_1_with_the_tree(keras, tmp_path, capsys):
    from cnndsl.cli import main

    honkong(keras).save(tmp_path / "honkong.keras")
    out = tmp_path / "honkong.cnn"
    assert main(["import", str(tmp_path / "honkong.keras"), "-o", str(out)]) == 0
    assert cnndsl.check(out).params == 333_526
    assert main(["import", str(tmp_path / "honkong.keras"), "-o", str(out)]) == 2  # exists: not replaced
    assert main(["import", str(tmp_path / "honkong.keras"), "-o", str(out), "--force"]) == 0
    assert main(["import", str(tmp_path / "honkong.keras"), "-o", str(tmp_path / "honkong.keras"), "--force"]) == 2
    assert (tmp_path / "honkong.keras").stat().st_size > 1000  # the model is never written over

    def lam(config):
        config["config"]["layers"][2]["class_name"] = "Lambda"

    (tmp_path / "base.keras").write_bytes((tmp_path / "honkong.keras").read_bytes())
    bad = _with_config(tmp_path, "lambda.keras", lam)
    assert main(["import", str(bad), "-o", str(tmp_path / "lambda.cnn")]) == 1
    err = capsys.readouterr().err
    assert "max_pooling2d (Lambda)  ✗ a Lambda layer is Python code" in err and "Traceback" not in err
    assert not (tmp_path / "lambda.cnn").exists()


def test_reading_a_keras_file_imports_neither_keras_nor_torch(keras, tmp_path):
    """The file is data: the command reads it with zipfile, json and h5py, never through Keras."""
    import subprocess
    import sys

    honkong(keras).save(tmp_path / "honkong.keras")
    code = ("import sys; from cnndsl.cli import main; code = main(['import', sys.argv[1], '-o', sys.argv[2]]); "
            "assert not {'torch', 'keras'} & set(sys.modules), 'imported'; sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "honkong.keras"), str(tmp_path / "h.cnn")],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert cnndsl.check(tmp_path / "h.cnn").params == 333_526


def test_a_graph_that_is_no_nest_is_written_with_names_and_from():
    """Two merges that share a fork (a DenseNet-like skip across two blocks): named outputs and `from`."""
    def conv(name, source, filters):
        return {"class_name": "Conv2D", "name": name, "config": {"name": name, "filters": filters,
                "kernel_size": [1, 1], "padding": "same"}, "inbound_nodes": [[[source, 0, 0, {}]]]}

    layers = [{"class_name": "InputLayer", "name": "inp", "config": {"name": "inp", "batch_shape": [None, 4, 4, 2]},
               "inbound_nodes": []},
              conv("a", "inp", 3), conv("b", "a", 3),
              {"class_name": "Concatenate", "name": "c1", "config": {"axis": -1},
               "inbound_nodes": [[["a", 0, 0, {}], ["b", 0, 0, {}]]]},
              conv("d", "c1", 3),
              {"class_name": "Concatenate", "name": "c2", "config": {"axis": -1},
               "inbound_nodes": [[["a", 0, 0, {}], ["d", 0, 0, {}]]]}]
    text = from_config({"class_name": "Functional", "config": {"name": "skips", "layers": layers,
                                                               "output_layers": [["c2", 0, 0]]}}, "a test")
    assert text.split("\n", 1)[1] == """\
network skips {
    inp: input 2x4x4
    a: conv 3 kernel=1 padding=same
    b: conv 3 kernel=1 padding=same
    from a
    c1: concat b
    d: conv 3 kernel=1 padding=same
    from a
    c2: concat d
}
"""
    assert cnndsl.loads(text).check().output == (6, 4, 4)


def test_nested_models_become_blocks(keras, tmp_path):
    keras.backend.clear_session()
    L = keras.layers
    stage = keras.Sequential([L.Conv2D(8, 3, padding="same", activation="relu"), L.BatchNormalization()],
                             name="stage")
    inner_input = keras.Input((8, 8, 8))
    residual = keras.Model(inner_input, L.Add()([inner_input, L.Conv2D(8, 1)(inner_input)]), name="resblock")
    inp = keras.Input((8, 8, 3))
    out = L.Dense(2)(L.GlobalAveragePooling2D()(residual(stage(inp))))
    model = keras.Model(inp, out, name="nested")
    _trained_statistics(keras, stage)
    path = tmp_path / "nested.keras"
    model.save(path)
    text = cnndsl.from_keras(path)
    assert text.split("\n", 1)[1] == """\
block stage_block {
    conv2d: conv 8 kernel=3 padding=same activation=relu
    batch_normalization: batchnorm eps=0.001 momentum=0.01
}

block resblock_block {
    add_: residual {
        conv2d_1: conv 8 kernel=1
    }
}

network nested {
    input_layer_1: input 3x8x8
    stage: stage_block
    resblock: resblock_block
    global_average_pooling2d: globalavgpool
    dense: dense 2
}
"""
    load, diff = _round_trip(keras, model, path, text)
    assert ("stage.batch_normalization.running_mean", "batch_normalization/moving_mean") in load.loaded
    assert (len(load.loaded), load.missing) == (10, []) and diff < 1e-6


def _small_config():
    """A functional model's config as Keras 3 writes it (a residual and a head), by hand: no Keras needed."""
    def tensor(name):
        return {"class_name": "__keras_tensor__", "config": {"shape": [None, 6, 6, 4], "keras_history": [name, 0, 0]}}

    def layer(cls, name, inputs, **config):
        args = [tensor(i) for i in inputs]
        return {"module": "keras.layers", "class_name": cls, "name": name, "config": {"name": name, **config},
                "build_config": {"input_shape": [None, 4] if cls in ("Dense", "Dropout") else [None, 6, 6, 4]},
                "inbound_nodes": [{"args": args if len(args) == 1 else [args], "kwargs": {}}] if inputs else []}

    layers = [layer("InputLayer", "inp", [], batch_shape=[None, 6, 6, 4]),
              layer("Conv2D", "c1", ["inp"], filters=4, kernel_size=[3, 3], strides=[1, 1], padding="same",
                    activation="relu", use_bias=True, data_format="channels_last"),
              layer("BatchNormalization", "bn", ["c1"], axis=-1, momentum=0.99, epsilon=0.001, center=True,
                    scale=True),
              layer("Add", "sum", ["bn", "inp"]),
              layer("GlobalAveragePooling2D", "gap", ["sum"], keepdims=False),
              layer("Dropout", "drop", ["gap"], rate=0.5),
              layer("Dense", "out", ["drop"], units=3, activation="softmax")]
    return {"class_name": "Functional", "config": {"name": "small", "layers": layers,
                                                  "input_layers": [["inp", 0, 0]], "output_layers": [["out", 0, 0]]}}


def test_a_config_written_by_hand_imports_without_keras():
    text = from_config(_small_config(), "a test")
    assert text.split("\n", 1)[1] == """\
network small {
    inp: input 4x6x6
    sum: residual {
        c1: conv 4 kernel=3 padding=same activation=relu
        bn: batchnorm eps=0.001 momentum=0.01
    }
    gap: globalavgpool
    drop: dropout 0.5
    out: dense 3 activation=softmax
}
"""


JUNK = (None, -1, 0, 10**30, 1.5, float("nan"), True, "", "x\ny", "same", [], [None], [[1, 2], [3]], {}, {"a": 1},
        "inp", ["inp", 0, 0], -0.0)


def test_mangled_configs_are_imported_exactly_or_refused_cleanly():
    """Each value of the config, each key and each class replaced by junk: an import gives a spec that checks,
    or a CnnError; never a traceback (400 mutations, deterministic)."""
    import copy
    import random

    rng = random.Random(0)
    base = _small_config()
    outcomes = {"spec": 0, "refused": 0}
    for _ in range(400):
        config = copy.deepcopy(base)
        for _ in range(rng.randint(1, 3)):
            _mangle(config, rng)
        try:
            text = from_config(config, "a mangled config")
            cnndsl.loads(text).check()
            outcomes["spec"] += 1
        except CnnError:
            outcomes["refused"] += 1
    assert outcomes["spec"] > 20 and outcomes["refused"] > 100, outcomes


def _mangle(node, rng) -> None:
    """One random place of the tree given a junk value, or a key dropped."""
    import copy

    path = []
    while True:
        items = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        if not items:
            return
        key, value = rng.choice(items)
        if not isinstance(value, (dict, list)) or not value or rng.random() < 0.25:
            break
        path.append(key)
        node = value
    if isinstance(node, dict) and rng.random() < 0.3:
        del node[key]
    else:
        node[key] = copy.deepcopy(rng.choice(JUNK))


def test_every_class_the_importer_maps_computes_what_keras_does(keras, tmp_path):
    """Rescaling, ZeroPadding2D, strided and dilated and grouped Conv2D, LeakyReLU, DepthwiseConv2D, Activation,
    SeparableConv2D, MaxPooling2D and AveragePooling2D with `same` padding (Keras leaves the padding out of the
    average), a squeeze-and-excitation Multiply, bilinear UpSampling2D, ELU, an Add of three, GlobalMaxPooling2D:
    imported, loaded from the file by name, run beside Keras' prediction."""
    keras.backend.clear_session()
    L = keras.layers
    inp = keras.Input((15, 15, 3))
    x = L.ZeroPadding2D(1)(L.Rescaling(1 / 255)(inp))
    x = L.LeakyReLU(0.2)(L.Conv2D(8, 3, strides=2, padding="same")(x))
    x = L.Activation("swish")(L.DepthwiseConv2D(3, padding="same", depth_multiplier=2)(x))
    x = L.SeparableConv2D(12, 3, padding="same", activation="relu")(x)
    x = L.MaxPooling2D(3, strides=2, padding="same")(x)
    gate = L.Conv2D(12, 1, activation="sigmoid")(L.GlobalAveragePooling2D(keepdims=True)(x))
    x = L.UpSampling2D(2, interpolation="bilinear")(L.Multiply()([x, gate]))
    x = L.ELU()(L.AveragePooling2D(3, strides=2, padding="same")(x))
    x = L.Conv2D(6, 3, dilation_rate=2, padding="same", groups=2)(x)
    x = L.Add()([L.Activation("tanh")(x), L.Activation("sigmoid")(x), L.Activation("relu")(x)])
    model = keras.Model(inp, L.Dense(4, activation="softmax")(L.GlobalMaxPooling2D()(x)), name="every")
    path = tmp_path / "every.keras"
    model.save(path)
    text = cnndsl.from_keras(path)
    for line in ("zero_padding2d: zeropad 1", "depthwise_conv2d: dwconv 3 padding=same multiplier=2",
                 "avgpool 3 stride=2 padding=same", "multiply_: multiply {",
                 "conv2d_2: conv 6 kernel=3 padding=same dilation=2 groups=2",
                 "up_sampling2d: upsample 2 mode=bilinear", "add_: add {"):
        assert line in text
    load, diff = _round_trip(keras, model, path, text)
    assert load.summary().startswith("loaded 13 tensors (from Keras, by layer name")
    assert diff < 1e-5  # measured 7e-7 (the bilinear interpolation's arithmetic; 3e-8 with nearest)


def test_asymmetric_zero_padding_is_left_right_top_bottom():
    """Keras' ((top, bottom), (left, right)) as zeropad's (left, right, top, bottom), nn.ZeroPad2d's order."""
    layers = [{"class_name": "InputLayer", "config": {"name": "inp", "batch_shape": [None, 6, 6, 4]}},
              {"class_name": "ZeroPadding2D", "config": {"name": "pad", "padding": [[1, 2], [3, 4]]}}]
    text = from_config({"class_name": "Sequential", "config": {"name": "pads", "layers": layers}}, "a test")
    assert "pad: zeropad 3x4x1x2" in text
    assert cnndsl.loads(text).check().output == (4, 6 + 1 + 2, 6 + 3 + 4)


def test_keras_defaults_that_are_not_cnndsls_are_written_or_refused():
    """Keras' leaky_relu function slopes 0.2 (cnndsl's leakyrelu 0.01): an Activation layer writes the slope, an
    activation= of a layer, which cannot say it, is refused. Batchnorm with neither center nor scale is affine=false;
    with one of them, refused."""
    def model(*layers):
        first = {"class_name": "InputLayer", "config": {"name": "inp", "batch_shape": [None, 6, 6, 4]}}
        return {"class_name": "Sequential", "config": {"name": "m", "layers": [first, *layers]}}

    def conv(**config):
        return {"class_name": "Conv2D", "config": {"name": "c", "filters": 4, "kernel_size": [3, 3], **config}}

    def batchnorm(**config):
        return {"class_name": "BatchNormalization", "config": {"name": "bn", **config}}

    text = from_config(model({"class_name": "Activation", "config": {"name": "a", "activation": "leaky_relu"}}), "t")
    assert "a: leakyrelu 0.2" in text
    with pytest.raises(ImportRefused, match="slopes 0.2 in Keras"):
        from_config(model(conv(activation="leaky_relu")), "t")
    assert "c: conv 4 kernel=3 activation=gelu" in from_config(model(conv(activation="gelu")), "t")
    assert "bn: batchnorm eps=0.001 momentum=0.01 affine=false" in \
        from_config(model(batchnorm(center=False, scale=False)), "t")
    with pytest.raises(ImportRefused, match="center and scale differ"):
        from_config(model(batchnorm(center=False, scale=True)), "t")


def test_a_gate_multiplied_first_is_written_second():
    """Keras' Multiply([gate, x]): a spec's multiply takes the per-channel gate later; the product is the same."""
    def tensor(name):
        return {"class_name": "__keras_tensor__", "config": {"keras_history": [name, 0, 0]}}

    def layer(cls, name, inputs, **config):
        args = [tensor(i) for i in inputs]
        return {"class_name": cls, "name": name, "config": {"name": name, **config},
                "inbound_nodes": [{"args": args if len(args) == 1 else [args]}] if inputs else []}

    layers = [layer("InputLayer", "inp", [], batch_shape=[None, 6, 6, 4]),
              layer("GlobalAveragePooling2D", "squeeze", ["inp"], keepdims=True),
              layer("Activation", "gate", ["squeeze"], activation="sigmoid"),
              layer("Multiply", "scaled", ["gate", "inp"]),
              layer("Add", "alone", ["scaled"])]
    config = {"class_name": "Functional", "config": {"name": "se", "layers": layers[:4],
                                                    "output_layers": [["scaled", 0, 0]]}}
    text = from_config(config, "a test")
    assert "    scaled: multiply {\n        branch { }\n        branch {\n            squeeze:" in text
    assert cnndsl.loads(text).check().output == (4, 6, 6)
    config["config"].update(layers=layers, output_layers=[["alone", 0, 0]])
    with pytest.raises(ImportRefused, match=r"alone \(Add\)  ✗ a merge of 1 input"):
        from_config(config, "a test")


def test_the_models_output_is_the_specs_output():
    """A graph with a second end (not Keras' own, but a config may say so): flat, and ending `from` the output."""
    import copy

    config = _small_config()
    layers = config["config"]["layers"]
    extra = copy.deepcopy(layers[-1])
    extra["name"] = extra["config"]["name"] = "extra"
    extra["inbound_nodes"][0]["args"][0]["config"]["keras_history"] = ["gap", 0, 0]
    layers.append(extra)
    text = from_config(config, "a test")
    assert text.endswith("    from gap\n    extra: dense 3 activation=softmax\n    from out\n}\n")
    with pytest.raises(CnnError, match="`empty` has no layers"):
        from_config({"class_name": "Sequential", "config": {"name": "empty", "layers": []}}, "a test")


def test_dense_and_layernormalization_on_a_map_import_per_position(keras, tmp_path):
    """Keras' Dense on a map applies to the channels at each position, LayerNormalization(axis=-1) normalises
    them: `dense per_position=true` and `layernorm`, with Keras' weights and Keras' predictions."""
    import numpy as np

    keras.backend.clear_session()
    L = keras.layers
    inp = keras.Input((6, 5, 3))
    x = L.Conv2D(8, 3, padding="same")(inp)
    x = L.LayerNormalization(epsilon=1e-6)(x)
    x = L.Dense(16, activation="gelu")(x)
    x = L.Dense(8)(x)
    out = L.Dense(3)(L.GlobalAveragePooling2D()(x))
    model = keras.Model(inp, out, name="pointwise")
    norm = model.get_layer("layer_normalization")
    rng = np.random.default_rng(2)
    norm.gamma.assign(rng.uniform(0.5, 1.5, size=8).astype("float32"))
    norm.beta.assign(rng.uniform(-0.5, 0.5, size=8).astype("float32"))
    path = tmp_path / "pointwise.keras"
    model.save(path)
    text = cnndsl.from_keras(path)
    assert "    layer_normalization: layernorm eps=1e-6\n" in text
    assert "    dense: dense 16 activation=gelu per_position=true\n    dense_1: dense 8 per_position=true\n" in text
    report = cnndsl.loads(text).check()
    assert report.params == model.count_params() == 547
    assert report.layer("dense").macs == 6 * 5 * 8 * 16
    load, diff = _round_trip(keras, model, path, text)
    assert (len(load.loaded), len(load.skipped), len(load.missing)) == (10, 0, 0)
    assert diff < 1e-6  # measured 1.2e-7 (Keras' own kernels)
