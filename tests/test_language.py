"""The constructs of the language: what each one elaborates to."""

from __future__ import annotations

import pytest

import cnndsl
from conftest import ROOT, UNET


def layers(text: str, **params) -> list:
    return cnndsl.check(text, **params).layers


def ops(text: str, **params) -> list[str]:
    return [f.layer.op for f in layers(text, **params)]


def test_keras_activation_argument_is_a_separate_layer():
    got = layers("network n { input 3x8x8\n conv 4 kernel=3 activation=relu }")
    assert [(f.layer.id, f.layer.op) for f in got] == [("input1", "input"), ("conv1", "conv"), ("relu1", "relu")]


def test_semicolons_and_newlines_both_end_statements():
    assert ops("network n {\n input 3x8x8; relu\n tanh;; sigmoid\n}") == ["input", "relu", "tanh", "sigmoid"]


def test_newlines_inside_parentheses_and_before_braces_and_else():
    text = """network n(a = 2) {
        input 3x8x8
        conv (a *
              4) kernel=1
        if a == 2
        {
            relu
        }
        else {
            tanh
        }
    }"""
    assert ops(text) == ["input", "conv", "relu"]


def test_line_continuation_and_comments():
    assert ops("network n { # comment\n input 3x8x8 # more\n conv 4 \\\n kernel=1\n}") == ["input", "conv"]


def test_repeat_count_and_range_with_index():
    text = """network n {
        input 3x8x8
        repeat 2 { relu }
        repeat i in 1..4 { conv (i * 8) kernel=1 }
    }"""
    got = layers(text)
    assert [f.layer.op for f in got] == ["input", "relu", "relu", "conv", "conv", "conv"]
    assert [f.layer.shape[0] for f in got[3:]] == [8, 16, 24]


def test_repeat_zero_times():
    assert ops("network n { input 3x8x8\n repeat 0 { relu } }") == ["input"]


def test_if_else_chain():
    text = """network n(x = 2) {
        input 3x8x8
        if x < 1 { relu } else if x < 3 { tanh } else { sigmoid }
    }"""
    assert ops(text)[-1] == "tanh"
    assert ops(text, x=5)[-1] == "sigmoid"
    assert ops(text, x=0)[-1] == "relu"


def test_expressions():
    text = """network n(w = 0.5) {
        input 3x8x8
        let a = 2 ** 3 ** 2          # right-associative: 2 ** 9
        let b = (17 // 5) * 10 + 17 % 5
        conv (a // 64) kernel=1
        conv b kernel=1
        conv (max(1, 3, 2) + min(4, 5)) kernel=1
        conv (floor(2.7) + ceil(2.1) + round(2.5) + abs(0 - 3)) kernel=1
        conv (64 * w) kernel=1
        if not (1 < 2 < 3 and 3 >= 3 or false) { relu } else { tanh }
    }"""
    got = layers(text)
    assert [f.layer.shape[0] for f in got if f.layer.op == "conv"] == [8, 32, 7, 2 + 3 + 2 + 3, 32]
    assert got[-1].layer.op == "tanh"


def test_in_is_the_shape_entering_the_block():
    text = """
    block widen(factor) {
        conv (in.channels * factor) kernel=1
        conv (in.height + in.width) kernel=1     # still the block's input, not the current tensor
    }
    network n {
        input 3x8x6
        widen 4
        conv in.channels kernel=1                # at network level: the input
    }"""
    got = layers(text)
    assert [f.layer.shape[0] for f in got[1:]] == [12, 14, 3]


def test_block_defaults_may_use_earlier_parameters_and_in():
    text = """
    block b(f = in.channels * 2, g = f + 1) { conv g kernel=1 }
    network n { input 5x8x8
     b }"""
    assert layers(text)[-1].layer.shape[0] == 11


def test_block_names_and_groups():
    text = """
    block unit(f) { conv f kernel=3 padding=same; relu }
    network n {
        input 3x8x8
        unit 4
        unit 8
        head: unit 2
    }"""
    report = cnndsl.check(text)
    ids = [f.layer.id for f in report.layers]
    assert ids == ["input1", "unit1.conv1", "unit1.relu1", "unit2.conv1", "unit2.relu1", "head.conv1", "head.relu1"]
    assert report.analysis.graph.groups["unit2"].title == "unit 8"


def test_residual_with_conditional_shortcut():
    text = """
    block res(f, stride = 1) {
        residual {
            conv f kernel=3 stride=stride padding=1
        } shortcut if stride != 1 or in.channels != f {
            conv f kernel=1 stride=stride
        }
    }
    network n {
        input 8x16x16
        res 8
        res 16 stride=2
    }"""
    report = cnndsl.check(text)
    ids = [f.layer.id for f in report.layers]
    # the body's layers are named in the block, the shortcut is a module `shortcut`, the sum a layer `add1`
    assert ids == ["input1", "res1.conv1", "res1.add1", "res2.conv1", "res2.shortcut.conv1", "res2.add1"]
    add = report.layer("res2.add1")
    assert add.layer.inputs == ["res2.conv1", "res2.shortcut.conv1"]
    assert report.output == (16, 8, 8)


def test_residual_without_shortcut_adds_the_input():
    report = cnndsl.check("network n { input 4x8x8\n residual { conv 4 kernel=3 padding=same } }")
    assert report.layer("add1").layer.inputs == ["conv1", "input1"]


def test_merges_with_branches():
    text = """network n {
        input 8x8x8
        concat {
            branch { conv 4 kernel=1 }
            branch { }
            branch { maxpool 3 stride=1 padding=1; conv 2 kernel=1 }
        }
        add {
            branch { conv 14 kernel=1 }
            branch { conv 14 kernel=3 padding=same }
        }
        multiply {
            branch { }
            branch { globalavgpool; dense 14; sigmoid }
        }
    }"""
    report = cnndsl.check(text)
    assert report.layer("concat1").layer.shape == (14, 8, 8)
    # branches are numbered through the block; an empty one (the input itself) takes its number
    assert report.layer("concat1").layer.inputs == ["branch1.conv1", "input1", "branch3.conv1"]
    assert report.layer("add1").layer.inputs == ["branch4.conv1", "branch5.conv1"]
    assert report.layer("multiply1").layer.inputs == ["add1", "branch7.sigmoid1"]
    assert report.output == (14, 8, 8)


def test_named_outputs_from_and_merge_with_names():
    report = cnndsl.check(UNET)
    concat = report.layer("concat1")
    assert concat.layer.inputs == ["upsample1", "e1"] and concat.layer.shape == (16, 16, 16)
    assert report.layer("conv2").layer.inputs == ["e1"]   # labelled layers take no number
    assert report.layer("add1").layer.inputs == ["conv2", "side"]
    assert report.warnings == []


def test_label_on_a_layer_with_activation_names_the_output_after_it():
    report = cnndsl.check("network n { input 3x8x8\n e: conv 4 kernel=1 activation=relu\n relu\n from e }")
    assert report.layer("e").layer.op == "conv"
    assert report.analysis.graph.output == "relu1"   # `from e` continues after the conv's relu


def test_unused_branch_is_a_warning():
    report = cnndsl.check("network n { input 3x8x8\n a: conv 4 kernel=1\n from input1x\n}".replace(
        "from input1x", "b: conv 2 kernel=1\n from a"))
    assert [w.message for w in report.warnings] == ["the output of `b` is never used"]


@pytest.mark.parametrize("path", sorted([*ROOT.glob("specs/*.cnn"), *ROOT.glob("examples/*.cnn")]),
                         ids=lambda p: p.stem)
def test_the_graph_is_networkx_dag_in_topological_order_and_its_unused_layers_are_its_non_ancestors(path):
    """check reads the layer list (networkx is not imported on its path); the DiGraph made on demand agrees."""
    import networkx as nx

    from cnndsl.graph import unused_layers

    graph = cnndsl.load(path).graph
    dag = graph.dag
    assert list(dag.nodes) == [layer.id for layer in graph.layers]
    assert set(dag.edges) == {(src, layer.id) for layer in graph.layers for src in layer.inputs}
    assert nx.is_directed_acyclic_graph(dag) and graph.dag is dag  # made once
    order = {layer.id: i for i, layer in enumerate(graph.layers)}
    assert all(order[u] < order[v] for u, v in dag.edges)
    reached = nx.ancestors(dag, graph.output) | {graph.output}
    assert [layer.id for layer in unused_layers(graph)] == [n for n in dag.nodes if n not in reached]


def test_unused_layers_in_a_branch_and_after_a_from():
    from cnndsl.graph import unused_layers

    spec = cnndsl.loads("""network n { input 3x8x8
        a: conv 4 kernel=1
        b: conv 2 kernel=1; relu
        concat { branch { conv 2 kernel=1 } branch { } }
        from a
        conv 3 kernel=1 }""")
    assert [layer.id for layer in unused_layers(spec.graph)] == ["b", "relu1", "branch1.conv1", "concat1"]


def test_frozen_statement_and_block_call():
    text = """
    block unit(f) { conv f kernel=3 padding=same; batchnorm }
    network n {
        input 3x8x8
        frozen unit 4
        frozen {
            conv 4 kernel=1
        }
        conv 2 kernel=1
    }"""
    report = cnndsl.check(text)
    frozen = {f.layer.id: f.layer.frozen for f in report.layers if f.params}
    assert frozen == {"unit1.conv1": True, "unit1.batchnorm1": True, "conv1": True, "conv2": False}
    assert report.frozen_params == 112 + 8 + 20
    assert report.trainable_params == 10
    assert report.params == report.frozen_params + report.trainable_params


def test_use_relative_files(spec_file):
    spec_file("block twice(f) { conv f kernel=1; conv f kernel=1 }\n", "lib/blocks.cnn")
    spec_file('use "blocks"\nblock thrice(f) { twice f; conv f kernel=1 }\n', "lib/more.cnn")
    main = spec_file('use "lib/more.cnn"\nnetwork n { input 3x4x4\n thrice 5 }\n', "main.cnn")
    assert cnndsl.check(main).params == 3 * 5 + 2 * (5 * 5 + 5) + 5


def test_network_parameters_from_set():
    text = "network n(classes = 10, width = 1.0, shape = 3x32x32) { input shape\n conv (16 * width) kernel=3\n" \
           " flatten\n dense classes }"
    assert cnndsl.check(text).output == (10,)
    report = cnndsl.check(text, classes=3, width=0.5, shape=(1, 8, 8))
    assert report.output == (3,) and report.layers[1].layer.shape == (8, 6, 6)


def test_strings_and_symbols_compare_by_name():
    text = 'network n(mode = same) { input 3x8x8\n if mode == "same" { relu } else { tanh } }'
    assert ops(text)[-1] == "relu"
    assert ops(text, mode="valid")[-1] == "tanh"


@pytest.mark.parametrize("alias,canonical", [("linear", "dense"), ("fc", "dense"), ("bn", "batchnorm"),
                                             ("conv2d", "conv"), ("swish", "silu")])
def test_layer_aliases(alias, canonical):
    shape = "100" if canonical in ("dense",) else "3x8x8"
    args = {"dense": " 4", "conv": " 4 kernel=1"}.get(canonical, "")
    assert ops(f"network n {{ input {shape}\n {alias}{args} }}")[-1] == canonical


def test_keras_argument_aliases():
    got = layers("network n { input 3x9x9\n conv filters=4 kernel_size=3 strides=2 use_bias=false }")
    assert got[1].layer.shape == (4, 4, 4) and got[1].params == 4 * 27


def test_a_named_frozen_group_keeps_every_statement():
    report = cnndsl.check("network n { input 3x8x8\n e: frozen { conv 4 kernel=1; conv 2 kernel=1 }\n relu }")
    assert [f.layer.id for f in report.layers] == ["input1", "conv1", "e", "relu1"]
    assert report.frozen_params == report.params == 16 + 10


def test_branches_may_share_a_line():
    report = cnndsl.check("network n { input 3x8x8\n concat { branch { conv 2 kernel=1 } branch { } } }")
    assert report.output == (5, 8, 8)


def test_upsampling_narrows_the_step_of_the_receptive_field():
    report = cnndsl.check("network n { input 1x16x16\n maxpool 2\n upsample 2\n conv 1 kernel=3 padding=1 }")
    # pool: field 2, step 2; upsample: step back to 1; a 3x3 conv adds 2 input pixels, not 4
    assert [f.receptive_field for f in report.layers] == [1, 2, 2, 4]


def test_the_op_column_shows_dilation_as_it_shows_groups():
    spec = cnndsl.loads("""network d {
    input 3x32x32
    conv 8 kernel=3 dilation=2 padding=same
    dwconv 3 dilation=3
    sepconv 4 kernel=3 dilation=2x1
    conv 8 kernel=3 stride=2 groups=4
}""")
    text = spec.check().text()
    for label in ("conv 3x3 d2 → 8", "dwconv 3x3 d3", "sepconv 3x3 d2x1 → 4", "conv 3x3/2 → 8 g4"):
        assert label in text


ACT_BLOCK = """block conv_bn(filters, act = relu) {
    conv filters kernel=3 padding=1 bias=false
    batchnorm
    act
}
"""


def test_a_parameter_holding_an_activation_applies_it_as_a_statement():
    text = ACT_BLOCK + """network n(a = gelu) {
        input 3x8x8
        conv_bn 4
        conv_bn 4 act=hardswish
        conv_bn 4 act=a
        conv_bn 4 act=none
        let b = silu
        b
    }"""
    got = [(f.layer.id, f.layer.op) for f in layers(text)[1:]]
    assert got == [("conv_bn1.conv1", "conv"), ("conv_bn1.batchnorm1", "batchnorm"), ("conv_bn1.relu1", "relu"),
                   ("conv_bn2.conv1", "conv"), ("conv_bn2.batchnorm1", "batchnorm"),
                   ("conv_bn2.hardswish1", "hardswish"),
                   ("conv_bn3.conv1", "conv"), ("conv_bn3.batchnorm1", "batchnorm"), ("conv_bn3.gelu1", "gelu"),
                   ("conv_bn4.conv1", "conv"), ("conv_bn4.batchnorm1", "batchnorm"),  # none: no layer
                   ("silu1", "silu")]
    assert ops(text, a="leakyrelu")[9] == "leakyrelu"  # --set a=leakyrelu reaches the block
    assert ops(text, a="swish")[9] == "silu"  # an alias names its layer


def test_a_layer_named_like_a_variable_stays_the_layer_with_a_warning():
    # layers and blocks come first, so specs written before activations were values keep their meaning
    report = cnndsl.check("block b(relu = tanh, dropout = 0.5) { relu\n dropout dropout }\n"
                          "network n { input 3x8x8\n b }")
    assert [f.layer.op for f in report.layers] == ["input", "relu", "dropout"]
    assert [(w.message, w.span.line, w.span.col) for w in report.warnings] == [
        ("`relu` here is the layer of that name, not the variable `relu` (which holds `tanh`)", 1, 39)]
    assert report.warnings[0].hint == "rename the variable to apply the activation it holds"


def test_batchnorm_takes_an_activation_as_keras_layers_do():
    text = ("block b(act = relu6) { conv 4 kernel=1\n batchnorm activation=act }\n"
            "network n { input 3x8x8\n b\n batchnorm activation=elu }")
    got = layers(text)
    assert [f.layer.op for f in got] == ["input", "conv", "batchnorm", "relu6", "batchnorm", "elu"]
    assert "activation" not in got[2].layer.args  # the activation is a layer of its own


def test_graph_invariants_refuse_what_elaboration_must_never_make():
    from cnndsl.errors import CnnError
    from cnndsl.graph import Layer, build_graph

    def layer(id, *inputs):
        return Layer(id, "relu" if inputs else "input", {}, list(inputs), (3, 8, 8), None)

    with pytest.raises(CnnError, match="`a` reads `b`, which does not come before it"):
        build_graph("n", {}, [layer("in"), layer("a", "b"), layer("b", "a")], {}, "b")  # a cycle
    with pytest.raises(CnnError, match="duplicate layer names"):
        build_graph("n", {}, [layer("in"), layer("a", "in"), layer("a", "in")], {}, "a")
    with pytest.raises(CnnError, match=r"has inputs \['in', 'x'\]"):
        build_graph("n", {}, [layer("in"), layer("x"), layer("a", "in")], {}, "a")
    assert build_graph("n", {}, [layer("in"), layer("a", "in")], {}, "a").layer("a").inputs == ["in"]
