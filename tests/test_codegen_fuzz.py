"""Property: for random valid specs, the generated module is what `check` reports, layer by layer."""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

import cnndsl  # noqa: E402
from cnndsl.errors import CnnError  # noqa: E402
from cnndsl.ops.source import MODULE_ATTRIBUTES  # noqa: E402
from conftest import module_of  # noqa: E402
from fuzz_specs import big, fuzz_settings  # noqa: E402

LAYERS = [
    "conv {f} kernel=3 padding=same", "conv {f} kernel=1", "conv {f} kernel=3 stride=2 padding=same",
    "conv {f} kernel=(1, 3) padding=(0, 1) bias=false", "conv (in.channels * 2) kernel=1",
    "dwconv kernel=3 padding=1", "sepconv {f} kernel=3 padding=same", "sepconv {f} kernel=3 stride=2 padding=same",
    "batchnorm", "relu", "leakyrelu 0.2", "sigmoid", "tanh", "dropout 0.1", "identity",
    "maxpool 2 padding=same", "maxpool 3 stride=2 padding=same", "avgpool 2 ceil=true", "maxpool 3 stride=1 padding=1",
    "zeropad 1", "upsample 2", "conv {f} kernel=3 dilation=2 padding=same activation=relu",
    "layernorm", "layernorm eps=1e-6", "groupnorm 1", "groupnorm (in.channels)", "instancenorm affine=true",
    "scale 0.17", "layerscale 0.5", "droppath 0.2",
    "convtranspose {f} kernel=3 stride=2 padding=same", "convtranspose {f} kernel=4 padding=same bias=false",
    "deconv {f} 2 stride=2", "convtranspose {f} 3 stride=2 padding=1 output_padding=1 activation=relu",
    "convtranspose {f} kernel=(1, 3) padding=valid", "conv ({f} * 2) kernel=1\nsplit 2 part=1",
    "conv ({f} * 2) kernel=1\nchannelshuffle 2",
    "conv ({f} * 2) kernel=1\nconcat {{ branch {{ split 2 part=0 }} branch {{ split 2 part=1; conv {f} kernel=1 }} }}",
    "conv {f} kernel=1 activation=act", "act",  # an activation a parameter gives: named by its kind
]


@st.composite
def statements(draw, depth: int = 0, in_block: bool = False, f: str = "f"):
    calls = [] if in_block else ["call"]  # the block calls no block: recursion is refused
    many = ["many"] if not in_block else []
    kind = draw(st.sampled_from(["layer"] * 5 + ["if", "repeat", "residual", "concat", "let", "from", *calls, *many]
                                if depth < 2 else ["layer"]))
    if kind == "layer":
        return draw(st.sampled_from(LAYERS)).format(f=f)
    body = lambda: "\n".join(draw(st.lists(statements(depth + 1, in_block, f), min_size=0, max_size=3)))  # noqa: E731
    if kind == "if":
        cond = draw(st.sampled_from(["flag", "n > 1", "in.channels == f", "not flag"]))
        return f"if {cond} {{\n{body()}\n}} else {{\n{body()}\n}}"
    if kind == "repeat":
        count = draw(st.sampled_from(["n", "2", "n - 1", "0"]))
        return f"repeat i in 0..({count}) {{\n{body()}\nconv ({f} + i) kernel=1\n}}"
    if kind == "residual":
        short = draw(st.sampled_from(["", " shortcut { conv f kernel=1 }", " shortcut if flag { identity }"]))
        return f"residual {{\n{body()}\nconv f kernel=3 padding=same\n}}{short}"
    if kind == "concat":
        return f"concat {{\nbranch {{ {body()} }}\nbranch {{ conv {f} kernel=1 }}\nbranch {{ }}\n}}"
    if kind == "let":
        return "let g = f * 2\nconv g kernel=1"
    if kind == "from":  # a named output read again after what follows it (in a loop: each turn's)
        return f"e: conv {f} kernel=1\n{body()}\nfrom e"
    if kind == "many":  # counters past 15: a block `bfloat` makes a 16th child named as no attribute is
        return f"repeat {draw(st.sampled_from(['16', '17', 'n + 14']))} {{\nunit f n=1 flag=false\n}}"
    return draw(st.sampled_from(["unit f", "unit (f + 1) flag=false", "unit 3 n=1", "unit f act=none"]))


@st.composite
def specs(draw):
    block = "\n".join(draw(st.lists(statements(1, in_block=True), min_size=1, max_size=4)))
    net = "\n".join(draw(st.lists(statements(0), min_size=1, max_size=5)))
    head = draw(st.sampled_from(["globalavgpool\ndense classes", "flatten\ndense classes activation=softmax", ""]))
    size = draw(st.sampled_from(["3x16x16", "2x9x12", "4x8x8"]))
    act = draw(st.sampled_from(["relu", "none", "hardswish"]))
    name = draw(st.sampled_from(["unit", "bfloat", "half", "cuda"]))  # kinds whose counters meet attributes
    text = (f"block unit(f, n = 2, flag = true, act = relu) {{\n{block}\n}}\n"
            f"network fuzz(f = 4, n = {draw(st.integers(0, 3))}, flag = {draw(st.sampled_from(['true', 'false']))}, "
            f"classes = 5, act = {act}) {{\ninput {size}\n{net}\n{head}\n}}\n")
    return re.sub(r"\bunit\b", name, text)


@fuzz_settings(ci=60, deep=1500)
@given(specs())
def test_generated_module_matches_the_report(text):
    try:
        spec = cnndsl.loads(text, max_layers=400)
        report = spec.check()
    except CnnError:
        assume(False)
    assume(not big(report))  # (17 calls of a block that doubles its channels: 2**17 times the weights)
    model = spec.build().eval()
    assert sum(p.numel() for p in model.parameters()) == report.params
    modules = dict(model.named_modules())
    for name in modules:  # no generated name hides an attribute of nn.Module (a 16th `bfloat` is bfloat_16)
        assert name.rpartition(".")[2] not in MODULE_ATTRIBUTES, name
    seen = {}
    for f in report.layers[1:]:
        f.module_name = module_of(f.layer, modules)
        if f.module_name is not None:
            modules[f.module_name].register_forward_hook(
                lambda m, i, o, name=f.module_name: seen.__setitem__(name, tuple(o.shape[1:])))
    with torch.no_grad():
        out = model(torch.randn(2, *report.input))
    assert tuple(out.shape[1:]) == report.output
    for f in report.layers[1:]:
        if f.module_name is not None:
            assert seen[f.module_name] == f.layer.shape, f.layer.id
