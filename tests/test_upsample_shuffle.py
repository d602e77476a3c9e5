"""convtranspose, split and channelshuffle: figures against PyTorch, Keras' padding, source and errors."""

from __future__ import annotations

import ast
import itertools
import subprocess
import sys

import pytest

import cnndsl
from cnndsl.codegen.prelude import HELPERS
from cnndsl.errors import CnnError
from cnndsl.ops.conv import tconv_axis, tconv_out
from conftest import ROOT

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402


def net(*lines: str, shape: str = "16x7x9") -> str:
    return "network n {\n  input " + shape + "\n" + "".join(f"  {line}\n" for line in lines) + "}\n"


def error_of(text: str) -> CnnError:
    with pytest.raises(CnnError) as info:
        cnndsl.loads(text).check()
    return info.value


def one(layer: str, shape: str = "16x7x9"):
    """(the layer's report row, the built model in eval)."""
    spec = cnndsl.loads(net(layer, shape=shape))
    return spec.check().layers[1], spec.build().eval()


# ---- convtranspose --------------------------------------------------------------------------------


@pytest.mark.parametrize("layer,reference", [
    ("convtranspose 8 3", nn.ConvTranspose2d(16, 8, 3)),
    ("convtranspose 8 3 stride=2 padding=1 output_padding=1", nn.ConvTranspose2d(16, 8, 3, 2, 1, 1)),
    ("convtranspose 6 (2, 5) stride=(2, 3) padding=(0, 2) output_padding=(1, 2) groups=2 bias=false",
     nn.ConvTranspose2d(16, 6, (2, 5), (2, 3), (0, 2), (1, 2), groups=2, bias=False)),
    ("deconv 4 3 stride=1 padding=2 dilation=2 output_padding=1",
     nn.ConvTranspose2d(16, 4, 3, 1, 2, 1, dilation=2)),
    ("conv2dtranspose filters=8 kernel_size=3 strides=2 padding=same", nn.ConvTranspose2d(16, 8, 3, 2, 1, 1)),
    ("convtranspose2d 8 4 stride=2 padding=same", nn.ConvTranspose2d(16, 8, 4, 2, 1)),
    ("convtranspose 8 1 stride=2 padding=valid", nn.ConvTranspose2d(16, 8, 1, 2, 0, 1)),
])
def test_shape_params_and_macs_equal_pytorch(layer, reference):
    f, model = one(layer)
    x = torch.randn(1, 16, 7, 9)  # the report's MACs are per sample
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = model(x)
    with torch.no_grad():
        expected = reference(x).shape[1:]
    assert f.layer.op == "convtranspose"
    assert f.layer.shape == tuple(out.shape[1:]) == tuple(expected)
    assert f.params == sum(p.numel() for p in reference.parameters()) == sum(p.numel() for p in model.parameters())
    assert f.macs == counter.get_total_flops() // 2  # counted over the input positions


def test_the_figures_of_one_layer():
    f, _ = one("convtranspose 8 3 stride=2 padding=same")
    assert (f.layer.shape, f.params, f.macs) == ((8, 14, 18), 1_160, 7 * 9 * 8 * 16 * 9)
    assert f.explain() == [
        "out H = (7-1)*2 - 2*1 + 1*(3-1) + 1 + 1 = 14  (same: 7*2; padding=1, output_padding=1 as Keras computes them)",
        "out W = (9-1)*2 - 2*1 + 1*(3-1) + 1 + 1 = 18  (same: 9*2; padding=1, output_padding=1 as Keras computes them)",
        "params = (3*3*16 + 1) * 8 = 1,160",
        "MACs = 7*9 = 63 input positions * 8 filters * 3*3*16 = 144 multiplications each = 72,576"]
    assert one("convtranspose 4 3 padding=valid", "2x5x5")[0].explain()[0] == (
        "out H,W = (5-1)*1 - 2*0 + 1*(3-1) + 0 + 1 = 7  (valid: (5-1)*1 + max(3, 1))")
    assert one("convtranspose 4 4 padding=same", "2x5x5")[0].explain()[0] == (
        "out H,W = (5-1)*1 - 2*1 + 1*(4-1) + 0 + 1 - 1 trimmed = 5  (same: 5*1; padding=1, output_padding=0 as "
        "Keras computes them)")


def test_report_label_and_receptive_field():
    report = cnndsl.loads(net("conv 8 3 padding=same", "convtranspose 8 3 stride=2 padding=same",
                              "conv 8 3 padding=same", shape="3x16x16")).check()
    rows = {f.layer.id: f for f in report.layers}
    assert rows["convtranspose1"].op_text == "convtranspose 3x3/2 → 8"
    # conv 3: RF 3; convtranspose: ceil(3/2) = 2 inputs (+1), jump 1/2; conv 3: +2 * 1/2
    assert [rows[n].receptive_field for n in ("conv1", "convtranspose1", "conv2")] == [3, 4, 5]
    assert one("convtranspose 8 3 groups=4 dilation=2")[0].op_text == "convtranspose 3x3 d2 → 8 g4"


def test_keras_same_and_valid_are_keras_3s_torch_arguments():
    # Keras 3 (keras/src/backend/common/backend_utils.py) for its torch backend, unclamped
    def keras(k, s, d, padding):
        ek = (k - 1) * d + 1
        if padding == "valid":
            return 0, max(ek, s) - ek
        op = s - ek % 2
        p = max(-((ek % 2 - ek + op) // 2), 0)
        return p, 2 * p + ek % 2 - ek + op

    for k, s, d, n in itertools.product(range(1, 7), range(1, 4), range(1, 3), (1, 4, 7)):
        for padding in ("same", "valid"):
            p, op, trim = tconv_axis(padding, 0, k, s, d)
            kp, kop = keras(k, s, d, padding)
            if kop < max(s, d):
                assert (p, op, trim) == (kp, kop, 0)
            else:  # PyTorch refuses the output padding: one padding less, the first row trimmed
                assert (s, d, kop, p, op, trim) == (1, 1, 1, kp - 1, 0, 1)
            ek = d * (k - 1) + 1
            assert tconv_out(n, padding, 0, k, s, d) == (n * s if padding == "same" else (n - 1) * s + max(ek, s))


def test_the_generated_helper_is_the_checkers_rule():
    scope: dict = {}
    exec(HELPERS["tconv_pads"] + HELPERS["tconv_out"], scope)
    for k, s, d, n, padding in itertools.product(range(1, 6), range(1, 4), range(1, 3), (1, 5), ("same", "valid", 2)):
        assert scope["tconv_pads"](padding, 0, k, s, d) == tconv_axis(padding, 0, k, s, d)
        assert scope["tconv_out"](n, (padding, 0), 0, k, s, d) == tconv_out(n, padding, 0, k, s, d)


def test_trimmed_same_padding_computes_the_transposed_conv_cropped_2_before_1_after():
    f, model = one("convtranspose 8 4 padding=same bias=false", "16x6x6")
    layer = model.convtranspose1
    assert f.layer.shape == (8, 6, 6) and layer.padding == (1, 1) and layer.trim == (1, 1)
    x = torch.randn(2, 16, 6, 6)
    full = torch.nn.functional.conv_transpose2d(x, layer.weight)  # 9x9
    with torch.no_grad():
        torch.testing.assert_close(model(x), full[:, :, 2:-1, 2:-1])


def test_generated_source_reads_as_pytorch_and_passes_ruff():
    source = cnndsl.loads(net("convtranspose 8 3 stride=2 padding=same activation=relu",
                              "convtranspose 4 2 stride=2", "convtranspose 4 4 padding=same")).source()
    for line in ("self.convtranspose1 = nn.ConvTranspose2d(16, 8, kernel_size=3, stride=2, padding=1, "
                 "output_padding=1)",
                 "self.relu1 = nn.ReLU(inplace=True)",
                 "self.convtranspose2 = nn.ConvTranspose2d(8, 4, kernel_size=2, stride=2)",
                 'self.convtranspose3 = ConvTranspose2dSame(4, 4, kernel_size=4, padding="same")',
                 "class ConvTranspose2dSame(nn.ConvTranspose2d):", "def tconv_pads("):
        assert line in source
    ruff = subprocess.run([sys.executable, "-m", "ruff", "check", "--isolated", "--stdin-filename", "net.py", "-"],
                          input=source, capture_output=True, text=True)
    assert ruff.returncode == 0, ruff.stdout
    plain = cnndsl.loads(net("convtranspose 8 3 stride=2 padding=1")).source()
    assert "ConvTranspose2dSame" not in plain and "tconv_pads" not in plain


def test_a_block_parameter_decides_the_padding_at_construction():
    text = ("block up(f, k = 3, pad = same) {\n  convtranspose f k stride=2 padding=pad\n  relu\n}\n"
            "network n(k = 4, pad = same) {\n  input 4x5x6\n  up 8 k=k pad=pad\n  up 2 k=3 pad=1\n}\n")
    assert "ConvTranspose2dSame(in_channels, f, kernel_size=k, stride=2, padding=pad)" in cnndsl.loads(text).source()
    for sets, shape in (({}, (2, 19, 23)), ({"k": 3, "pad": "valid"}, (2, 21, 25)), ({"k": 5, "pad": 2}, (2, 17, 21))):
        spec = cnndsl.loads(text, **sets)
        report, model = spec.check(), spec.build()
        assert report.output == shape
        assert tuple(model(torch.randn(1, 4, 5, 6)).shape[1:]) == shape
        assert sum(p.numel() for p in model.parameters()) == report.params


def test_convtranspose_errors_are_located_with_hints():
    e = error_of(net("convtranspose 8 3 stride=2 output_padding=2"))
    assert (e.span.line, e.span.col) == (3, 3)
    assert e.message == "convtranspose output_padding=2 must be smaller than the stride (2) or the dilation (1)"
    e = error_of(net("convtranspose 8 3 stride=2 padding=same output_padding=1"))
    assert e.message == "convtranspose output_padding goes with a numeric padding, not padding=same"
    assert error_of(net("convtranspose 8 3 groups=3")).message == (
        "convtranspose groups=3 must divide both the input channels (16) and filters (8)")
    assert error_of(net("convtranspose 8 3 padding=5")).message == "convtranspose turns its 7x9 input into -1x1"
    assert "needs a CxHxW input" in error_of(net("convtranspose 8 3", shape="10")).message


def test_deconv_is_an_alias_and_a_typo_suggests_convtranspose():
    assert one("deconv 8 3")[0].layer.op == "convtranspose"
    assert error_of(net("convtranpose 8 3")).hint == "did you mean `convtranspose`?"


# ---- split and channelshuffle ---------------------------------------------------------------------


def test_split_parts_are_chunks_of_the_channels():
    for part in (0, 1, 2):
        f, model = one(f"split 3 part={part}", "12x5x5")
        x = torch.randn(2, 12, 5, 5)
        assert f.layer.shape == (4, 5, 5) and f.params == 0 and f.macs == 0
        assert torch.equal(model(x), x[:, 4 * part:4 * part + 4])
    f, _ = one("chunk chunks=2 index=1", "12x5x5")
    assert f.op_text == "split 1/2" and f.explain() == ["channels 6..11 of 12 (part 1 of 2 equal parts); params = 0"]
    f, model = one("split part=1", "10")
    assert f.layer.shape == (5,) and torch.equal(model(torch.arange(10.0)[None]), torch.arange(5.0, 10)[None])


def test_channelshuffle_is_torchvisions_channel_shuffle():
    f, model = one("channelshuffle 3", "12x2x2")
    x = torch.randn(2, 12, 2, 2)
    expected = x.view(2, 3, 4, 2, 2).transpose(1, 2).reshape(2, 12, 2, 2)
    assert torch.equal(model(x), expected)
    assert torch.equal(model(x), nn.ChannelShuffle(3)(x))
    assert [int(c) for c in model(torch.arange(12.0).view(1, 12, 1, 1)).flatten()] == [0, 4, 8, 1, 5, 9, 2, 6, 10,
                                                                                        3, 7, 11]
    assert (f.layer.shape, f.params, f.macs, f.op_text) == ((12, 2, 2), 0, 0, "channelshuffle 3")
    assert f.explain() == ["12 channels as 3 groups of 4, interleaved: out[c] = in[(c % 3) * 4 + c // 3]; params = 0"]


def test_split_and_shuffle_errors():
    e = error_of(net("split 3 part=0", shape="16x4x4"))
    assert (e.span.line, e.message) == (3, "split cannot cut 16 channels into 3 equal parts")
    assert e.hint == "split into a divisor of 16 (2, 4, 8, 16), or change the channels before it"
    assert error_of(net("split 2 part=2")).message == "split 2 has parts 0 to 1, not part=2"
    assert "`split` is missing its `part` argument" in error_of(net("split 2")).message
    e = error_of(net("channelshuffle 3"))
    assert e.message == "channelshuffle cannot cut 16 channels into 3 groups"
    assert e.hint == "use groups among the divisors of 16 (2, 4, 8, 16)"


def test_a_shufflenet_unit_compiles_to_a_concat_of_chunks_and_a_shuffle():
    spec = cnndsl.loads('use "std/shufflenet"\nnetwork n {\n  input 8x6x6\n  shuffle_unit\n  shuffle_down 16\n}\n')
    report = spec.check()
    # unit: branch on 4 channels, 4*4 + 8 + 4*9 + 8 + 4*4 + 8 = 92; down: 8*9 + 16 + 8*8 + 16, + 8*8 + 16 + 8*9
    # + 16 + 8*8 + 16 = 168 + 248
    assert (report.output, report.params) == ((16, 3, 3), 92 + 168 + 248)
    source = spec.source()
    for line in ("self.branch1 = nn.Sequential(OrderedDict(split1=Split(2, 0)))",
                 "self.channelshuffle1 = ChannelShuffle(2)", "x = torch.cat([branch1, branch2], dim=1)",
                 "class ChannelShuffle(nn.Module):"):
        assert line in source
    tree = ast.parse(source)
    assert {n.names[0].name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)} <= {"torch", "math"}
    model = spec.build().eval()
    x = torch.randn(2, 8, 6, 6)
    unit = model.shuffle_unit1
    with torch.no_grad():
        x1, x2 = x.chunk(2, dim=1)
        expected = torch.cat((x1, unit.branch2.shuffle_branch1(x2)), dim=1)
        expected = expected.view(2, 2, 4, 6, 6).transpose(1, 2).reshape(2, 8, 6, 6)
        torch.testing.assert_close(unit(x), expected)


def test_the_unet_example_has_the_figures_of_the_same_net_written_in_pytorch():
    def double(cin, f):
        return [nn.Conv2d(cin, f, 3, padding=1, bias=False), nn.BatchNorm2d(f), nn.ReLU(),
                nn.Conv2d(f, f, 3, padding=1, bias=False), nn.BatchNorm2d(f), nn.ReLU()]

    e1, e2, mid = nn.Sequential(*double(3, 16)), nn.Sequential(*double(16, 32)), nn.Sequential(*double(32, 64))
    up1, d1 = nn.ConvTranspose2d(64, 32, 2, 2), nn.Sequential(*double(64, 32))
    up2, d2 = nn.ConvTranspose2d(32, 16, 2, 2), nn.Sequential(*double(32, 16))
    head = nn.Conv2d(16, 2, 1)
    reference = nn.ModuleList([e1, e2, mid, up1, d1, up2, d2, head])

    def forward(x):
        a = e1(x)
        b = e2(nn.functional.max_pool2d(a, 2))
        y = d1(torch.cat([up1(mid(nn.functional.max_pool2d(b, 2))), b], 1))
        return head(d2(torch.cat([up2(y), a], 1)))

    report = cnndsl.check(ROOT / "examples/unet_small.cnn")
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = forward(torch.randn(1, 3, 64, 64))
    assert report.output == tuple(out.shape[1:]) == (2, 64, 64)
    assert report.params == sum(p.numel() for p in reference.parameters()) == 117_378
    assert report.macs == counter.get_total_flops() // 2 == 100_466_688
