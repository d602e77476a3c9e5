"""Issue 19: the habits of Keras and PyTorch readers get errors that say the cnndsl way (shapes channels first,
a pasted call's cnndsl line, Keras and PyTorch class names known to did-you-mean), a size that shrank too far
shows how, and a hint inside a block speaks in the block's parameters."""

from __future__ import annotations

import re

import pytest

import cnndsl
from cnndsl.errors import CnnError
from conftest import ROOT


def errors_of(text: str) -> list[CnnError]:
    """Every error of a spec's text, as `check` finds them (diagnose raises nothing)."""
    return cnndsl.diagnose(text).errors


def net(*lines: str) -> str:
    body = "\n".join(f"    {line}" for line in lines)
    return f"network n {{\n{body}\n}}\n"


def where(e: CnnError) -> tuple[int, int, int, int]:
    return e.span.line, e.span.col, e.span.end_line, e.span.end_col


# ---- 1. Keras' H x W x C input -------------------------------------------------------------------------------


@pytest.mark.parametrize(("shape", "fixed"), [("32x32x3", "3x32x32"), ("28x28x1", "1x28x28"),
                                              ("224x224x3", "3x224x224"), ("64x64x4", "4x64x64")])
def test_an_input_in_keras_order_is_an_error_at_the_shape_whose_hint_writes_it_channels_first(shape, fixed):
    [e] = errors_of(net(f"input {shape}", "conv 8 kernel=3"))
    assert e.message == (f"input {shape} reads as H x W x C, Keras' order; cnndsl shapes are channels first, "
                         "C x H x W, as PyTorch's")
    assert where(e) == (2, 11, 2, 11 + len(shape))
    assert e.hint == f"write `input {fixed}`"


def test_the_error_as_check_prints_it():
    e = errors_of(net("input 32x32x3", "conv 32 kernel=3"))[0]
    assert e.render().splitlines() == [
        "<string>:2:11: error: input 32x32x3 reads as H x W x C, Keras' order; cnndsl shapes are channels first, "
        "C x H x W, as PyTorch's",
        " 2 |     input 32x32x3",
        "   |           ^^^^^^^",
        "  hint: write `input 3x32x32`",
    ]


@pytest.mark.parametrize("shape", ["3x32x32", "1x28x28", "3x224x224", "4x4x3", "3x3x3", "8x4x4", "16x4x4",
                                   "3x2x1", "16x7x9", "8x8x8"])
def test_channels_first_and_ambiguous_shapes_stay_valid(shape):
    report = cnndsl.check(net(f"input {shape}", "relu"))
    assert report.input == tuple(map(int, shape.split("x")))


def test_an_input_shape_from_a_parameter_is_read_the_same_way():
    [e] = errors_of("network n(image = (28, 28, 1)) {\n    input image\n}\n")
    assert e.hint == "write `input 1x28x28`" and where(e) == (2, 11, 2, 16)


def test_a_shape_that_is_no_image_is_underlined_at_the_shape_too():
    [e] = errors_of(net("input 28x28"))
    assert where(e) == (2, 11, 2, 16) and e.hint == "for a grey image write `input 1x28x28`"


def test_every_spec_of_the_repository_still_checks():
    for path in sorted([*ROOT.glob("specs/*.cnn"), *ROOT.glob("examples/*.cnn")]):
        cnndsl.load(path).check()


# ---- 2. a Keras or PyTorch call gets its cnndsl line -------------------------------------------------------------

PASTED = [
    ('Conv2D(32, 3, activation="relu")', "Keras' Conv2D call", "conv 32 kernel=3 activation=relu", []),
    ('layers.Conv2D(64, (3, 3), padding="same")', "Keras' Conv2D call", "conv 64 kernel=3 padding=same", []),
    ("keras.layers.Dense(10, activation='softmax')", "Keras' Dense call", "dense 10 activation=softmax", []),
    ("MaxPooling2D(2)", "Keras' MaxPooling2D call", "maxpool 2", []),
    ("MaxPool2D(pool_size=2)", "Keras' MaxPool2D call", "maxpool 2", []),
    ("Flatten()", "Keras' Flatten call", "flatten", []),
    ("Dropout(0.5)", "Keras' Dropout call", "dropout 0.5", []),
    ("BatchNormalization()", "Keras' BatchNormalization call", "batchnorm eps=0.001 momentum=0.01",
     ["eps=0.001 and momentum=0.01 are Keras' defaults, written out (cnndsl's are PyTorch's)"]),
    ("GlobalAveragePooling2D()", "Keras' GlobalAveragePooling2D call", "globalavgpool", []),
    ("nn.Conv2d(3, 16, 3)", "PyTorch's nn.Conv2d call", "conv 16 kernel=3",
     ["`in_channels=3` is not written: cnndsl infers it from the layer before"]),
    ("nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=1)", "PyTorch's nn.Conv2d call", "conv 16 kernel=3 padding=1",
     ["`in_channels=3` is not written: cnndsl infers it from the layer before"]),
    ("nn.ReLU()", "PyTorch's nn.ReLU call", "relu", []),
    ("nn.MaxPool2d(2, 2)", "PyTorch's nn.MaxPool2d call", "maxpool 2 stride=2", []),
    ("nn.Linear(128, 10)", "PyTorch's nn.Linear call", "dense 10",
     ["`in_features=128` is not written: cnndsl infers it from the layer before"]),
    ("nn.BatchNorm2d(16)", "PyTorch's nn.BatchNorm2d call", "batchnorm",
     ["`num_features=16` is not written: cnndsl infers it from the layer before"]),
    ("nn.Dropout(p=0.2)", "PyTorch's nn.Dropout call", "dropout 0.2", []),
    ('model.add(layers.Conv2D(64, (3, 3), padding="same"))', "Keras' Conv2D call", "conv 64 kernel=3 padding=same",
     []),
    ("x = layers.Conv2D(32, 3)(x)", "Keras' Conv2D call", "conv 32 kernel=3", []),
    ("self.conv1 = nn.Conv2d(1, 6, 5)", "PyTorch's nn.Conv2d call", "conv 6 kernel=5",
     ["`in_channels=1` is not written: cnndsl infers it from the layer before"]),
    ('layers.Conv2D(32, 3, activation="relu"),', "Keras' Conv2D call", "conv 32 kernel=3 activation=relu", []),
    ("Conv2D(32, (3, 3))", "Keras' Conv2D call", "conv 32 kernel=3", []),  # cnndsl reads it: an unknown layer
    ("layers.Activation('relu')", "Keras' Activation call", "relu", []),
    ("layers.Dense(10, activation=tf.nn.softmax)", "Keras' Dense call", "dense 10 activation=softmax", []),
    ("layers.Rescaling(1./255)", "Keras' Rescaling call", "scale (1.0 / 255)", []),
    ("layers.Conv2D(filters, 3, strides=stride)", "Keras' Conv2D call", "conv filters kernel=3 stride=stride", []),
]


@pytest.mark.parametrize(("line", "what", "cnn", "notes"), PASTED, ids=[p[0] for p in PASTED])
def test_a_pasted_call_is_one_error_whose_hint_is_the_cnndsl_line(line, what, cnn, notes):
    [e] = errors_of(net("input 3x32x32", line, "relu"))
    assert e.message == f"this is {what}; in cnndsl write:"
    assert e.hint == cnn
    assert [text for text, _ in e.diagnostic.notes] == notes
    assert where(e) == (3, 5, 3, 5 + len(line.rstrip(",")))


def test_the_keras_line_as_check_prints_it():
    [e] = errors_of(net("input 3x32x32", 'Conv2D(32, 3, activation="relu")'))
    assert e.render().splitlines() == [
        "<string>:3:5: error: this is Keras' Conv2D call; in cnndsl write:",
        ' 3 |     Conv2D(32, 3, activation="relu")',
        "   |     ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
        "  hint: conv 32 kernel=3 activation=relu",
    ]


def test_the_pytorch_line_as_check_prints_it():
    [e] = errors_of(net("input 3x32x32", "nn.Conv2d(3, 16, 3)"))
    assert e.render().splitlines() == [
        "<string>:3:5: error: this is PyTorch's nn.Conv2d call; in cnndsl write:",
        " 3 |     nn.Conv2d(3, 16, 3)",
        "   |     ^^^^^^^^^^^^^^^^^^^",
        "  note: `in_channels=3` is not written: cnndsl infers it from the layer before",
        "  hint: conv 16 kernel=3",
    ]


def test_each_pasted_line_is_one_error_and_the_check_goes_on_after_them():
    text = net("input 3x32x32",
               "layers.Conv2D(32, 3, activation='relu')",  # a Python string in single quotes: its `)` still closes
               "layers.MaxPooling2D((2, 2))",
               "nn.Linear(512, 10)",
               "conv 8 kernal=3",
               "dense 10")
    assert [(e.span.line, e.message, e.hint) for e in errors_of(text)] == [
        (3, "this is Keras' Conv2D call; in cnndsl write:", "conv 32 kernel=3 activation=relu"),
        (4, "this is Keras' MaxPooling2D call; in cnndsl write:", "maxpool 2"),
        (5, "this is PyTorch's nn.Linear call; in cnndsl write:", "dense 10"),
        (6, "`conv` has no argument `kernal`", "did you mean `kernel`?"),
    ]


def test_past_100_characters_no_token_matches_the_error_says_the_rest_is_not_read():
    # each line has two: the lexer starts again after each (a Python string in single quotes is one)
    errors = errors_of(net("input 3x32x32", *["layers.Dense(10, activation='relu', name='d')"] * 60, "conv 8 kernal=3"))
    assert len(errors) == 52 and errors[-2].span.line == 53
    assert errors[-1].message == "more than 100 characters no token matches: the rest of the file is not read"
    assert where(errors[-1]) == (53, 33, 53, 34)  # the first quote of the 51st line


def test_a_call_over_several_lines_is_one_error_over_them():
    [e] = errors_of(net("input 3x32x32", "Conv2D(32, 3,", '       activation="relu")', "relu"))
    assert where(e) == (3, 5, 4, 30) and e.hint == "conv 32 kernel=3 activation=relu"


def test_a_sequential_model_gets_a_line_per_layer_and_its_input():
    text = net("model = keras.Sequential([",
               "    layers.Conv2D(32, 3, activation='relu', input_shape=(28, 28, 1)),",
               "    layers.MaxPooling2D(),",
               "    layers.Flatten(),",
               "    layers.Dense(10, activation='softmax'),",
               "])")
    [e] = errors_of(text)
    assert e.message == "this is a Keras Sequential model; in cnndsl write:"
    assert e.hint.splitlines() == ["input 1x28x28", "conv 32 kernel=3 activation=relu", "maxpool", "flatten",
                                   "dense 10 activation=softmax"]
    assert where(e) == (2, 5, 7, 7)


def test_what_has_no_cnndsl_form_is_left_out_with_a_note_naming_the_layer_help():
    [e] = errors_of(net("input 3x32x32", 'Conv2D(32, 3, kernel_initializer="he_normal")'))
    assert e.hint == "conv 32 kernel=3"
    assert [text for text, _ in e.diagnostic.notes] == [
        "`kernel_initializer='he_normal'` is left out: cnndsl's conv has no such argument",
        "`cnndsl layers conv` lists what conv takes"]


def test_a_call_python_cannot_read_still_names_the_layer_kind():
    [e] = errors_of(net("input 3x32x32", 'Conv2D(32, 3, activation=relu")'))
    assert e.message == "this is Keras' Conv2D call; in cnndsl it is the layer `conv`"
    assert e.hint == "write it as `conv` and its arguments, without parentheses or commas (`cnndsl layers conv` " \
                     "lists them)"


def test_a_merge_and_a_class_cnndsl_lacks_are_named():
    add, lstm = errors_of(net("input 3x32x32", "layers.Add()([x, y])", "layers.LSTM(64)"))
    assert add.message == "this is Keras' Add call; in cnndsl it is the merge `add`"
    assert add.hint == ("a merge is a statement of its own: `add { branch { ... } branch { ... } }`,\n"
                        "or `add e1` for the current tensor and the output named `e1`")
    assert lstm.message == "this is Keras' LSTM call; cnndsl has no such layer"
    assert lstm.hint == "`cnndsl layers` lists the layers it has"


def test_other_python_keeps_its_syntax_error():
    [e] = errors_of(net("input 3x32x32", "foo(1, x=2)"))
    assert e.message.startswith("unexpected `=`")


def test_nothing_of_a_pasted_call_runs(tmp_path):
    marker = tmp_path / "ran"
    [e] = errors_of(net("input 3x32x32", f'Conv2D(32, 3, activation=__import__("os").system("touch {marker}"))'))
    assert e.hint == "conv 32 kernel=3" and not marker.exists()
    assert "is left out: it is not a value cnndsl can write" in e.diagnostic.notes[0][0]


DOC = (ROOT / "docs/keras-pytorch.md").read_text()
TABLE = re.findall(r"^\| `(.+?)` \| `(.+?)` \|$", DOC, re.M)


@pytest.mark.parametrize(("line", "cnn"), TABLE, ids=[row[0] for row in TABLE])
def test_the_docs_table_is_what_the_error_says_and_its_line_checks(line, cnn):
    [e] = errors_of(net("input 64x8x8", line))
    assert e.hint == cnn
    first = {"input": "", "dense": "input 128", "reshape": "input 3136"}.get(cnn.split()[0], "input 64x8x8")
    cnndsl.check(net(*filter(None, [first, cnn])))


# ---- 3. did-you-mean knows Keras' and PyTorch's class names, in any case ------------------------------------------

NAMES = {"MaxPooling2D": "maxpool", "BatchNormalization": "batchnorm", "GlobalAveragePooling2D": "globalavgpool",
         "Conv2d": "conv", "Conv2D": "conv", "Dense": "dense", "Linear": "dense", "ReLU": "relu",
         "AvgPool2d": "avgpool", "AveragePooling2D": "avgpool", "SeparableConv2D": "sepconv",
         "DepthwiseConv2D": "dwconv", "Conv2DTranspose": "convtranspose", "ConvTranspose2d": "convtranspose",
         "UpSampling2D": "upsample", "ZeroPadding2D": "zeropad", "Add": "add", "Concatenate": "concat",
         "LayerNormalization": "layernorm", "GroupNorm": "groupnorm", "maxpooling2d": "maxpool"}


@pytest.mark.parametrize(("name", "kind"), NAMES.items())
def test_a_keras_or_pytorch_class_name_as_a_layer_gets_the_registrys_kind(name, kind):
    [e] = errors_of(net("input 3x32x32", f"{name} 2"))
    assert e.message == f"unknown layer or block `{name}`"
    assert e.hint.startswith(f"did you mean `{kind}`? (")


def test_the_hint_names_the_class():
    assert errors_of(net("input 3x32x32", "MaxPooling2D 2"))[0].hint == "did you mean `maxpool`? (Keras' MaxPooling2D)"
    assert errors_of(net("input 3x32x32", "Conv2d 16 3"))[0].hint == "did you mean `conv`? (PyTorch's nn.Conv2d)"


def test_activation_says_activations_are_layers():
    [e] = errors_of(net("input 3x32x32", "Activation relu"))
    assert e.hint == "an activation is a layer of its own in cnndsl: `relu`, `sigmoid`, `softmax`, ... " \
                     "(or `activation=relu` on the layer before)"


def test_did_you_mean_ignores_case_for_close_names_too():
    assert errors_of(net("input 3x32x32", "MaxPool 2"))[0].hint == "did you mean `maxpool`?"
    assert errors_of(net("input 3x32x32", "conv 8 Kernal=3"))[0].hint == "did you mean `kernel`?"


def test_layers_shows_the_classes_and_knows_their_names(capsys):
    from cnndsl.cli import main

    assert main(["layers", "maxpool"]) == 0
    assert "Keras and PyTorch: MaxPooling2D, MaxPool2D, nn.MaxPool2d" in capsys.readouterr().out
    assert main(["layers", "MaxPooling2D"]) == 2
    assert "did you mean `maxpool`? (Keras' MaxPooling2D)" in capsys.readouterr().err


def test_the_names_are_the_registrys_data():
    from cnndsl.ops import REGISTRY

    assert [f.shown for f in REGISTRY["conv"].foreign] == ["Conv2D", "Convolution2D", "nn.Conv2d"]
    assert {f.framework for op in REGISTRY.values() for f in op.foreign} == {"keras", "torch"}


# ---- 4. a map too small for a layer shows how it got so small -------------------------------------------------------


def test_five_pools_on_28_show_the_trail_of_sizes():
    [e] = errors_of(net("input 1x28x28", *["maxpool 2"] * 5, "flatten", "dense 10"))
    assert e.message == "maxpool kernel 2x2 is larger than its 1x1 input" and where(e)[:2] == (7, 5)
    assert [text for text, _ in e.diagnostic.notes] == [
        "the map's size on the way here: 28 (input) → 14 (maxpool1) → 7 (maxpool2) → 3 (maxpool3) → 1 (maxpool4)"]


def test_a_kernel_larger_than_an_oblong_map_shows_both_sides():
    [e] = errors_of(net("input 3x32x20", "conv 8 kernel=3 stride=2", "conv 8 kernel=3 stride=2", "conv 8 kernel=5"))
    assert e.message == "conv kernel 5x5 is larger than its 7x4 input"
    assert e.diagnostic.notes[0][0] == "the map's size on the way here: 32x20 (input) → 15x9 (conv1) → 7x4 (conv2)"


def test_the_trail_goes_through_blocks_and_comes_before_the_calls():
    text = "block down(f) {\n    conv f kernel=3 padding=1\n    maxpool 2\n}\n" + net(
        "input 3x16x16", "down 8", "down 8", "down 8", "down 8", "down 8")
    [e] = errors_of(text)
    assert [text for text, _ in e.diagnostic.notes] == [
        "the map's size on the way here: 16 (input) → 8 (down1.maxpool1) → 4 (down2.maxpool1) → 2 (down3.maxpool1) "
        "→ 1 (down4.maxpool1)",
        "in block `down` called here"]


def test_no_trail_where_the_size_never_changed():
    [e] = errors_of(net("input 3x4x4", "conv 8 kernel=7"))
    assert e.diagnostic.notes == []


# ---- 5. a residual hint inside a block speaks in the block's parameters ---------------------------------------------

UNIT = """block unit(filters, stride = 1, width = 128) {{
    residual {{
        conv {conv} kernel=3 stride=stride padding=1
        batchnorm
    }}
    relu
}}

network n {{
    input 64x56x56
    unit 128 stride=2
}}
"""


def test_a_shortcut_hint_in_a_block_names_the_parameters_the_body_uses():
    [e] = errors_of(UNIT.format(conv="filters"))
    assert e.hint == ("the body changes channels 64 → 128 and stride 2; add a shortcut such as\n"
                      "`shortcut { conv filters kernel=1 stride=stride }`")


def test_of_two_parameters_with_the_size_the_one_the_body_uses_is_named():
    [e] = errors_of(UNIT.format(conv="width"))
    assert e.hint.endswith("`shortcut { conv width kernel=1 stride=stride }`")


def test_a_size_no_parameter_holds_stays_a_number():
    [e] = errors_of(UNIT.format(conv="(filters * 2)").replace("unit 128", "unit 64").replace("width = 128",
                                                                                         "width = 96"))
    assert e.hint.endswith("`shortcut { conv 128 kernel=1 stride=stride }`")


def test_at_the_top_level_the_hint_keeps_numbers():
    [e] = errors_of(net("input 64x56x56", "residual {", "    conv 128 kernel=3 stride=2 padding=1", "}"))
    assert e.hint.endswith("`shortcut { conv 128 kernel=1 stride=2 }`")
