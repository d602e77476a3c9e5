"""load_weights: by name, by order and shape, from files, and never a silent partial load."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import cnndsl  # noqa: E402
from cnndsl.errors import CnnError  # noqa: E402
from conftest import ROOT  # noqa: E402


class HandLeNet(nn.Module):
    """LeNet-5 written by hand, with other names: what a tutorial's pretrained weights look like."""

    def __init__(self):
        super().__init__()
        self.c1, self.c3, self.c5 = nn.Conv2d(1, 6, 5), nn.Conv2d(6, 16, 5), nn.Conv2d(16, 120, 5)
        self.f6, self.out = nn.Linear(120, 84), nn.Linear(84, 10)

    def forward(self, x):
        x = nn.functional.avg_pool2d(torch.tanh(self.c1(x)), 2)
        x = nn.functional.avg_pool2d(torch.tanh(self.c3(x)), 2)
        x = torch.tanh(self.c5(x)).flatten(1)
        return self.out(torch.tanh(self.f6(x)))


def lenet():
    return cnndsl.load(ROOT / "specs/lenet5.cnn").build().eval()


def test_by_order_and_shape_gives_the_same_outputs():
    theirs = HandLeNet().eval()
    ours = lenet()
    report = cnndsl.load_weights(ours, theirs.state_dict())
    assert report.complete and len(report.loaded) == 10
    assert report.loaded[0] == ("conv1.weight", "c1.weight")
    x = torch.randn(4, 1, 32, 32)
    assert torch.allclose(ours(x), theirs(x), atol=1e-6)


def test_by_name_between_generated_models():
    spec = cnndsl.load(ROOT / "specs/resnet18.cnn")
    a, b = spec.build().eval(), spec.build().eval()
    report = cnndsl.load_weights(b, a.state_dict())
    assert all(ours == theirs for ours, theirs in report.loaded) and report.complete
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))


def test_files_saved_by_torch_save_and_safetensors(tmp_path):
    theirs = HandLeNet()
    torch.save(theirs.state_dict(), tmp_path / "w.pt")
    x = torch.randn(2, 1, 32, 32)
    ours = lenet()
    cnndsl.load_weights(ours, tmp_path / "w.pt")
    assert torch.allclose(ours(x), theirs.eval()(x), atol=1e-6)
    safetensors = pytest.importorskip("safetensors.torch")
    safetensors.save_file(theirs.state_dict(), str(tmp_path / "w.safetensors"))
    ours = lenet()
    cnndsl.load_weights(ours, tmp_path / "w.safetensors")
    assert torch.allclose(ours(x), theirs(x), atol=1e-6)


def test_a_new_head_needs_strict_false_and_is_reported():
    theirs = HandLeNet().state_dict()
    ours = cnndsl.load(ROOT / "specs/lenet5.cnn", classes=3).build()
    with pytest.raises(CnnError) as info:
        cnndsl.load_weights(ours, theirs)
    message = info.value.message
    assert "ours   dense2.weight (3, 84)" in message and "theirs out.weight (10, 84)" in message
    report = cnndsl.load_weights(ours, theirs, strict=False)
    assert report.missing == ["dense2.weight", "dense2.bias"]
    assert report.skipped == ["out.weight", "out.bias"]
    assert torch.equal(ours.conv1.weight, theirs["c1.weight"])


def test_nothing_fits():
    with pytest.raises(CnnError, match="no tensor of the weights fits"):
        cnndsl.load_weights(lenet(), {"x.weight": torch.zeros(7, 7)})


def test_corrupt_and_missing_files(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CnnError, match="cannot read weights"):
        cnndsl.load_weights(lenet(), bad)
    with pytest.raises(CnnError, match="no such weights file"):
        cnndsl.load_weights(lenet(), tmp_path / "none.pt")


class ChannelsLastBlock(nn.Module):
    """ConvNeXt's way: nn.Linear over the channels at every position, a layer scale named `layer_scale`,
    and a true 1x1 conv after it (which must keep its own weights, not take a Linear's)."""

    def __init__(self):
        super().__init__()
        self.layer_scale = nn.Parameter(torch.rand(4, 1, 1) + 0.5)
        self.expand, self.project = nn.Linear(4, 16), nn.Linear(16, 4)
        self.head = nn.Conv2d(4, 16, 1)

    def forward(self, x):
        y = self.project(torch.relu(self.expand(x.permute(0, 2, 3, 1)))).permute(0, 3, 1, 2)
        return self.head(self.layer_scale * y)


POINTWISE = """
network pointwise {
    input 4x5x5
    conv 16 kernel=1
    relu
    conv 4 kernel=1
    layerscale
    conv 16 kernel=1
}
"""


def test_a_linear_goes_into_a_1x1_conv_and_is_reported_as_reshaped():
    theirs = ChannelsLastBlock().eval()
    ours = cnndsl.loads(POINTWISE).build().eval()
    report = cnndsl.load_weights(ours, theirs.state_dict())
    assert report.complete
    # the real 1x1 conv (exact shape) is paired first; the Linears, in order, then the layer scale by value
    assert dict(report.loaded) == {"conv3.weight": "head.weight", "conv3.bias": "head.bias",
                                   "conv1.weight": "expand.weight", "conv1.bias": "expand.bias",
                                   "conv2.weight": "project.weight", "conv2.bias": "project.bias",
                                   "layerscale1.gamma": "layer_scale"}
    assert report.reshaped == ["conv1.weight", "conv2.weight"]
    assert "2 reshaped" in report.summary()
    x = torch.randn(2, 4, 5, 5)
    with torch.no_grad():
        assert torch.allclose(ours(x), theirs(x), atol=1e-6)


def test_other_values_are_not_reshaped_into_a_conv():
    # (4, 16) holds the values of a 1x1 conv 16 → 4 only: a 3x3 conv's (4, 16, 3, 3) cannot take it
    ours = cnndsl.loads("network n {\n input 16x5x5\n conv 4 kernel=3\n}").build()
    with pytest.raises(CnnError, match="no tensor of the weights fits"):
        cnndsl.load_weights(ours, {"fc.weight": torch.zeros(4, 16), "fc.bias": torch.zeros(4)})
    ours = cnndsl.loads("network n {\n input 16x5x5\n conv 4 kernel=1\n}").build()
    report = cnndsl.load_weights(ours, {"fc.weight": torch.ones(4, 16), "fc.bias": torch.zeros(4)})
    assert report.reshaped == ["conv1.weight"] and torch.equal(ours.conv1.weight, torch.ones(4, 16, 1, 1))
