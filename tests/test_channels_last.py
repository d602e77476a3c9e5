"""Layers at each position of a map: `dense per_position=true` and `layernorm` on C x H x W, their figures,
the channels-last code the generator writes for them (torchvision's CNBlock form, bit for bit) and the import
of a ConvNeXt-like block written in plain torch."""

from __future__ import annotations

import pytest

import cnndsl
from cnndsl.errors import CnnError

SPEC = """\
network t(image = 8x5x6) {
    input image
    layernorm eps=1e-6
    dense 32 per_position=true
    gelu
    dense 8 per_position=true
    flatten
    dense 10
}
"""


def test_figures_of_dense_and_layernorm_on_a_map():
    report = cnndsl.loads(SPEC).check()
    norm, up, down = report.layer("layernorm1"), report.layer("dense1"), report.layer("dense2")
    assert norm.layer.shape == (8, 5, 6) and norm.params == 16
    assert up.layer.shape == (32, 5, 6) and up.op_text == "dense 8 → 32 per position"
    assert up.params == 8 * 32 + 32 and up.macs == 5 * 6 * 8 * 32
    assert down.params == 32 * 8 + 8 and down.macs == 5 * 6 * 32 * 8
    assert up.receptive_field == 1
    assert report.params == 16 + 288 + 264 + 2410
    assert report.macs == 7680 + 7680 + 2400
    explained = report.text(explain=True)
    assert "one Linear over the 8 channels, applied at each of the 5x6 positions" in explained
    assert "MACs = 5x6 positions * 8 * 32 = 7,680" in explained


def test_dense_on_a_map_without_per_position_is_still_an_error():
    with pytest.raises(CnnError) as e:
        cnndsl.loads("network u {\n    input 8x5x6\n    dense 3\n}\n").check()
    assert "flat input, got 8x5x6" in e.value.message and e.value.span.line == 3
    assert "`flatten`" in e.value.hint and "`dense 3 per_position=true`" in e.value.hint


def test_generated_forward_is_one_channels_last_run():
    source = cnndsl.loads(SPEC).source()
    forward = source[source.index("def forward"):]
    assert forward.index("x = x.permute(0, 2, 3, 1)") < forward.index("self.layernorm1(x)") \
        < forward.index("self.dense2(x)") < forward.index("x = x.permute(0, 3, 1, 2)") < forward.index("flatten1")
    assert "self.dense1 = nn.Linear(image[0], 32)" in source and "self.layernorm1 = nn.LayerNorm(" in source


torch = pytest.importorskip("torch")
from test_import_torch import roundtrip  # noqa: E402
from torch import nn  # noqa: E402


class Block(nn.Module):
    """torchvision's CNBlock in plain torch: depthwise conv, channels last, LayerNorm, Linear, GELU, Linear,
    channels first, the block's own layer scale, + input."""

    def __init__(self, c: int):
        super().__init__()
        self.dw = nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.norm = nn.LayerNorm(c, eps=1e-6)
        self.up = nn.Linear(c, 4 * c)
        self.act = nn.GELU()
        self.down = nn.Linear(4 * c, c)
        self.layer_scale = nn.Parameter(torch.rand(c, 1, 1) + 0.5)

    def forward(self, x):
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.down(self.act(self.up(self.norm(y))))
        y = self.layer_scale * torch.permute(y, (0, 3, 1, 2))
        return y + x  # as torchvision's `result += input`: the sum keeps the branch's channels-last strides


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 4, stride=4)
        self.blocks = nn.Sequential(Block(16), Block(16))
        self.pool = nn.AdaptiveAvgPool2d(1)  # as torchvision's: x.mean((2, 3)) sums a channels-last map otherwise
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        return self.head(torch.flatten(self.pool(x), 1))


def test_convnext_like_block_imports_exactly_and_bit_identically():
    torch.manual_seed(0)
    model = Net()
    for m in model.modules():  # norms away from 1 and 0, so that a swapped tensor shows
        if isinstance(m, nn.LayerNorm):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    imported, report = roundtrip(model, (3, 32, 32))
    assert "per_position=true" in imported.text
    assert "layerscale" in imported.text and "permute" not in imported.text
    assert imported.names["block_block1.layerscale1.gamma"] == "blocks.0.layer_scale"
    assert imported.names["block_block2.layerscale1.gamma"] == "blocks.1.layer_scale"
    assert report.params == sum(p.numel() for p in model.parameters())


class OverWidth(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm(8)

    def forward(self, x):
        return self.norm(x)


def test_layernorm_over_the_width_is_refused():
    with pytest.raises(CnnError) as e:
        cnndsl.from_module(OverWidth(), (4, 8, 8))
    assert "acts on its last axis (W)" in e.value.message


def test_a_lone_dense_per_position_equals_the_torch_form():
    spec = cnndsl.loads("network v {\n    input 6x4x5\n    dense 7 per_position=true\n}\n")
    built = spec.build().eval()
    linear = nn.Linear(6, 7)
    built.load_state_dict(dict(zip(built.state_dict(), linear.state_dict().values())))
    x = torch.randn(2, 6, 4, 5)
    with torch.no_grad():
        assert torch.equal(built(x), linear(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2))
