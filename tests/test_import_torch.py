"""`cnndsl import` from PyTorch: torch modules written here come back as specs whose `check` figures are the
model's (params: sum of numel; MACs: FlopCounterMode's total / 2) and whose built module, given the model's
weights through the import's name mapping, computes bit-identical outputs in eval mode."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import cnndsl  # noqa: E402
from cnndsl.errors import CnnError  # noqa: E402
from conftest import ROOT  # noqa: E402


def _randomise(model: nn.Module) -> None:
    """Batchnorm statistics and scales away from their initial 0 and 1, so that a swapped pair would show."""
    torch.manual_seed(0)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-1, 1)


def roundtrip(model: nn.Module, shape: tuple[int, ...]):
    """Imports `model`, checks the figures and the outputs; returns the Imported and its report."""
    model.eval()
    _randomise(model)
    imported = cnndsl.from_module(model, shape)
    assert cnndsl.format_spec(imported.text) == imported.text  # as `cnndsl fmt` writes it
    spec = cnndsl.loads(imported.text)
    report = spec.check()
    assert not spec.warnings
    assert report.params == sum(p.numel() for p in model.parameters())
    x = torch.randn(1, *shape)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    assert report.macs == counter.get_total_flops() // 2
    built = spec.build().eval()
    loaded = cnndsl.load_weights(built, imported.state_dict(model.state_dict()))
    assert len(loaded.loaded) == len(model.state_dict()) and loaded.complete
    assert all(ours == theirs for ours, theirs in loaded.loaded)  # every tensor by name, through the mapping
    x = torch.randn(3, *shape)
    with torch.no_grad():
        assert torch.equal(built(x), model(x))
    return imported, report


class Basic(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


class ResNetLike(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(Basic(16, 16), Basic(16, 16))
        self.layer2 = nn.Sequential(Basic(16, 32, 2), Basic(32, 32), Basic(32, 32))
        self.layer3 = nn.Sequential(Basic(32, 64, 2), Basic(64, 64))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def test_resnet_like_uses_the_librarys_basic_block_and_repeats():
    imported, report = roundtrip(ResNetLike(), (3, 32, 32))
    text = imported.text
    assert text.startswith("# ResNetLike")
    assert 'use "std/resnet"' in text and "block" not in text  # BasicBlock is std/resnet's `basic`
    assert "    repeat 2 {\n        basic 16\n    }\n    basic 32 stride=2\n    repeat 2 {\n        basic 32\n" in text
    assert "    conv1: conv 16 kernel=3 padding=1 bias=false\n    bn1: batchnorm\n" in text  # the model's own names
    assert "globalavgpool\n    fc: dense 10" in text  # avgpool + flatten as one layer
    assert imported.names["conv1.weight"] == "conv1.weight"
    assert imported.names["basic1.conv1.weight"] == "layer1.0.conv1.weight"
    assert imported.names["basic3.shortcut.conv1.weight"] == "layer2.0.downsample.0.weight"
    assert report.output == (10,)


class Wide(Basic):
    """A basic block with a 5x5 first conv: no block of the library's, so written as a block of its own."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__(cin, cout, stride)
        self.conv1 = nn.Conv2d(cin, cout, 5, stride, 2, bias=False)


def test_resnet_like_of_its_own_blocks_becomes_one_block_with_if():
    model = ResNetLike()
    model.layer2 = nn.Sequential(Wide(16, 32, 2), Wide(32, 32), Wide(32, 32))
    model.layer3 = nn.Sequential(Wide(32, 64, 2), Wide(64, 64))
    imported, _ = roundtrip(model, (3, 32, 32))
    text = imported.text
    assert text.count("block wide(") == 1  # every instance one parameterised block
    assert "    residual {\n        conv1: conv filters kernel=5 stride=stride padding=2 bias=false\n" in text
    assert "shortcut if project {" in text  # the projection only in the first blocks of stages 2 and 3
    assert "    wide stride=2 project=true\n    repeat 2 {\n        wide\n    }\n" in text
    assert "wide filters=64 stride=2 project=true\n    wide filters=64\n" in text


def test_vgg_like_sequential():
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2),
        nn.Flatten(), nn.Dropout(0.3), nn.Linear(16 * 4 * 4, 32), nn.ReLU(), nn.Linear(32, 5))
    imported, report = roundtrip(model, (3, 16, 16))
    body = imported.text.split("network sequential {\n")[1]
    assert body.split("\n")[:6] == ["    input 3x16x16", "    conv 8 kernel=3 padding=1", "    batchnorm", "    relu",
                                    "    maxpool", "    conv 16 kernel=3 padding=1"]
    assert "dropout 0.3" in body and "block" not in imported.text
    assert report.params == 8 * 27 + 8 + 16 + 16 * 72 + 16 + 32 + 256 * 32 + 32 + 33 * 5


def test_flat_input():
    model = nn.Sequential(nn.Linear(20, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3), nn.Softmax(dim=1))
    imported, _ = roundtrip(model, (20,))
    assert "    input 20\n    dense 8\n    batchnorm\n    relu\n    dense 3\n    softmax\n" in imported.text


class Inception(nn.Module):
    def __init__(self, cin: int, c1: int, c3: int, cp: int):
        super().__init__()
        self.branch1 = nn.Conv2d(cin, c1, 1)
        self.branch2 = nn.Sequential(nn.Conv2d(cin, c3, 1), nn.ReLU(), nn.Conv2d(c3, c3, 3, padding=1))
        self.branch3 = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(cin, cp, 1))

    def forward(self, x):
        return F.relu(torch.cat([self.branch1(x), self.branch2(x), self.branch3(x)], 1))


class InceptionLike(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, 2, 1)
        self.a = Inception(16, 8, 16, 4)
        self.b = Inception(28, 16, 8, 8)
        self.head = nn.Linear(32, 4)

    def forward(self, x):
        x = self.b(self.a(self.stem(x)))
        return self.head(x.mean([2, 3]))


def test_inception_like_concat():
    imported, report = roundtrip(InceptionLike(), (3, 16, 16))
    text = imported.text
    assert "concat {" in text and text.count("branch {") == 3
    assert "block inception(" in text  # both instances: one block, its widths parameters
    assert report.output == (4,)


class DenseLayer(nn.Module):
    """torchvision's _DenseLayer: called with the list of all features so far."""

    def __init__(self, cin: int, growth: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(cin)
        self.conv = nn.Conv2d(cin, growth, 3, padding=1, bias=False)

    def forward(self, features):
        return self.conv(F.relu(self.norm(torch.cat(features, 1))))


class DenseBlock(nn.ModuleDict):
    def __init__(self, layers: int, cin: int, growth: int):
        super().__init__()
        for i in range(layers):
            self[f"layer{i + 1}"] = DenseLayer(cin + i * growth, growth)

    def forward(self, x):
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


def test_dense_block_of_growing_concats():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), DenseBlock(3, 8, 4), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(20, 3))
    imported, _ = roundtrip(model, (3, 8, 8))
    assert "repeat 3 {" in imported.text and "concat {" in imported.text


class SE(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.fc1 = nn.Conv2d(c, c // 4, 1)
        self.fc2 = nn.Conv2d(c // 4, c, 1)

    def forward(self, x):
        scale = F.adaptive_avg_pool2d(x, 1)
        return torch.sigmoid(self.fc2(F.relu(self.fc1(scale)))) * x


def test_gate_and_shuffle_and_split():
    class Shuffle(nn.Module):
        def __init__(self):
            super().__init__()
            self.branch = nn.Sequential(nn.Conv2d(8, 8, 1), nn.ReLU())
            self.se = SE(16)

        def forward(self, x):
            a, b = x.chunk(2, dim=1)
            out = torch.cat((a, self.branch(b)), dim=1)
            n, c, h, w = out.size()
            out = out.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, c, h, w)
            return self.se(out)

    imported, _ = roundtrip(nn.Sequential(Shuffle(), nn.Flatten()), (16, 4, 4))
    assert "split part=1" in imported.text and "channelshuffle" in imported.text and "multiply {" in imported.text


class Sliced(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.inner = nn.Sequential(nn.Conv2d(8, 8, 1), nn.Softmax(dim=2))

    def forward(self, x):
        x = self.conv(x)
        return self.inner(x[:, :, :4].repeat(1, 1, 2, 1))


def test_unsupported_is_refused_with_the_marked_tree():
    with pytest.raises(CnnError) as info:
        cnndsl.from_module(Sliced(), (3, 8, 8))
    message = info.value.message
    assert message.startswith("Sliced cannot be written as a spec yet")
    tree = message.split("\n", 1)[1]
    assert tree.split("\n")[0] == "Sliced"
    assert "✗ x[:, :, :4]: cnndsl slices channels only, `x[:, start:end]`" in tree
    assert "✗ .repeat(): no cnndsl layer does this" in tree
    assert "    inner: Sequential\n        1: Softmax\n            ✗ Softmax: softmax over dim 2" in tree
    doc = (ROOT / "docs/import.md").read_text()
    assert info.value.render() in doc  # the docs show what the tool prints


def test_shared_weights_are_refused():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x):
            return self.conv(F.relu(self.conv(x)))

    with pytest.raises(CnnError) as info:
        cnndsl.from_module(Twice(), (4, 6, 6))
    assert "    conv: Conv2d\n        ✗ called 2 times with the same weights" in info.value.message


def test_an_enabled_plugins_module_maps_to_its_kind():
    """cnndsl-cbam (plugins/) names its module in `Op.torch_class`: the importer maps it with no code of its own."""
    pytest.importorskip("cnndsl_cbam")
    from cnndsl.ops import ALIASES, REGISTRY, plugins

    saved = dict(REGISTRY), dict(ALIASES), dict(plugins._ENABLED)  # as tests/test_plugins.py restores them
    try:
        cnndsl.enable_plugins("cnndsl-cbam")
        from cnndsl_cbam.layers import CBAM

        model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), CBAM(16, reduction=4),
                              nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 5))
        imported, _ = roundtrip(model, (3, 8, 8))
        assert "    relu\n    cbam 4\n    globalavgpool\n" in imported.text
    finally:
        for live, before in zip((REGISTRY, ALIASES, plugins._ENABLED), saved):
            live.clear()
            live.update(before)


MODEL_FILE = """
from torch import nn

def tiny():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))

def sliced():
    class S(nn.Module):
        def forward(self, x):
            return x[:, :, :1]
    return S()
"""


def _cli(capsys, *args) -> tuple[int, str]:
    from cnndsl.cli import main

    code = main(list(args))
    return code, capsys.readouterr().err


def test_command_writes_refuses_to_overwrite_and_marks(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.py").write_text(MODEL_FILE)
    code, err = _cli(capsys, "import", "net.py:tiny", "-o", "tiny.cnn", "--input", "1x8x8")
    assert code == 0, err
    assert "wrote tiny.cnn (" in err and "4 of 4 tensor names differ" in err
    text = (tmp_path / "tiny.cnn").read_text()
    assert text.startswith("# Sequential from net.py:tiny, imported by cnndsl import.")
    assert json.loads((tmp_path / "tiny.names.json").read_text())["conv1.weight"] == "0.weight"
    assert cnndsl.check(tmp_path / "tiny.cnn").params == 4 * 9 + 4 + 144 * 2 + 2
    code, err = _cli(capsys, "import", "net.py:tiny", "-o", "tiny.cnn", "--input", "1x8x8")
    assert code == 2 and "tiny.cnn exists" in err and "--force" in err
    assert _cli(capsys, "import", "net.py:tiny", "-o", "tiny.cnn", "--input", "1x8x8", "--force")[0] == 0
    code, err = _cli(capsys, "import", "net.py:sliced", "-o", "s.cnn", "--input", "2x4x4")
    assert code == 1 and "✗ x[:, :, :1]: cnndsl slices channels only" in err and "Traceback" not in err
    assert not (tmp_path / "s.cnn").exists()
    code, err = _cli(capsys, "import", "net.py", "-o", "x.cnn")
    assert code == 2 and "names no factory" in err


def test_help_says_it_runs_code(capsys):
    from cnndsl.cli import main

    with pytest.raises(SystemExit):
        main(["import", "--help"])
    assert "RUNS THE CODE OF SOURCE" in " ".join(capsys.readouterr().out.split())


# ---- timm's forms, written here as plain torch modules of timm's module names (timm is not in the CI venv) ----


class BatchNormAct2d(nn.BatchNorm2d):
    """timm.layers.norm_act.BatchNormAct2d in eval mode: F.batch_norm on its own tensors, then drop, then act."""

    __module__ = "timm.layers.norm_act"

    def __init__(self, c: int, act: nn.Module):
        super().__init__(c)
        self.drop, self.act = nn.Identity(), act

    def forward(self, x):
        x = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return self.act(self.drop(x))


class SelectAdaptivePool2d(nn.Module):
    __module__ = "timm.layers.adaptive_avgmax_pool"

    def __init__(self, pool_type: str = "avg", flatten: bool = True):
        super().__init__()
        self.pool_type = pool_type
        self.pool = nn.AdaptiveAvgPool2d(1) if pool_type == "avg" else nn.AdaptiveMaxPool2d(1)
        self.flatten = nn.Flatten(1) if flatten else nn.Identity()

    def forward(self, x):
        return self.flatten(self.pool(x))


class ClassifierHead(nn.Module):
    """timm's head: Python control flow on an option, which torch.fx traces at the option's default."""

    def __init__(self, c: int, classes: int, pool_type: str = "avg"):
        super().__init__()
        self.global_pool = SelectAdaptivePool2d(pool_type)
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(c, classes)
        self.flatten = nn.Identity()

    def forward(self, x, pre_logits: bool = False):
        x = self.drop(self.global_pool(x))
        if pre_logits:
            return self.flatten(x)
        return self.flatten(self.fc(x))


class TimmNet(nn.Module):
    def __init__(self, pool_type: str = "avg", pre_logits: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = BatchNormAct2d(8, nn.SiLU(inplace=True))
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn2 = BatchNormAct2d(8, nn.Identity())
        self.head = ClassifierHead(8, 5, pool_type)
        self.pre_logits = pre_logits

    def forward(self, x):
        x = self.bn2(self.conv2(self.bn(self.conv(x))))
        return self.head(x, pre_logits=True) if self.pre_logits else self.head(x)


def test_timm_batchnormact_and_classifier_head():
    imported, report = roundtrip(TimmNet(), (3, 12, 12))
    body = imported.text.split("network", 1)[1]
    assert "batchnorm activation=silu\n" in body  # BatchNormAct2d: one batchnorm, its act as the activation
    assert "conv 8 kernel=3 padding=1 bias=false\n    bn2: batchnorm\n" in body  # act Identity: none
    # the head, called with one tensor, traced at pre_logits=False (its default); its pool one layer
    head = "block classifier_head {\n    globalavgpool\n    dropout 0.2\n    fc: dense 5\n    identity\n}"
    assert head in imported.text
    assert report.params == 8 * 27 + 16 + 8 * 72 + 16 + 8 * 5 + 5
    assert sorted(imported.names.values()) == sorted(TimmNet().state_dict())


def test_timm_forms_refused_where_they_differ():
    with pytest.raises(CnnError) as info:
        cnndsl.from_module(TimmNet(pool_type="max").eval(), (3, 12, 12))
    assert "✗ SelectAdaptivePool2d: pool_type='max': cnndsl's global pool is the average" in info.value.message
    # a head called with an option is traced through as called (the option's branch): pre_logits skips the fc
    imported = cnndsl.from_module(TimmNet(pre_logits=True).eval(), (3, 12, 12))
    assert imported.unused == ["head.fc"]
    assert imported.text.endswith("    bn2: batchnorm\n    globalavgpool\n    dropout 0.2\n    identity\n}\n")


class Ghost(nn.Module):
    """GhostNet's GhostModule: a primary conv, a cheap depthwise conv of it, both concatenated, then cut to
    `out` channels with `x[:, :out]`."""

    def __init__(self, cin: int, out: int):
        super().__init__()
        self.out = out
        init = (out + 1) // 2
        self.primary = nn.Sequential(nn.Conv2d(cin, init, 1, bias=False), nn.BatchNorm2d(init), nn.ReLU())
        self.cheap = nn.Sequential(nn.Conv2d(init, init, 3, 1, 1, groups=init, bias=False), nn.BatchNorm2d(init))

    def forward(self, x):
        x1 = self.primary(x)
        return torch.cat([x1, self.cheap(x1)], dim=1)[:, :self.out]


class Indexed(nn.Module):
    def __init__(self, index):
        super().__init__()
        self.conv, self.index = nn.Conv2d(3, 6, 1), index

    def forward(self, x):
        return self.conv(x)[self.index]


def test_channel_slices_of_ghostnet():
    imported, report = roundtrip(nn.Sequential(Ghost(3, 5), Ghost(5, 7)), (3, 8, 8))
    assert "    slice end\n}" in imported.text  # [:, :self.out], `out` a parameter of the block
    assert "    ghost\n    ghost filters=4 end=7\n}" in imported.text
    _, report = roundtrip(Indexed((slice(None), slice(2, None))), (3, 4, 4))  # x[:, 2:]: slice 6 start=2
    assert report.params == 24
    with pytest.raises(CnnError) as info:  # a spatial crop has no form
        cnndsl.from_module(Indexed((slice(None), slice(None), slice(1, 3))).eval(), (3, 4, 4))
    assert "✗ x[:, :, 1:3]: cnndsl slices channels only, `x[:, start:end]`" in info.value.message


class ShapeBranch(nn.Module):
    """Python control flow on a shape: torch.fx cannot trace it, torch.export can (at the shape it is called
    with); the importer reads the exported graph."""

    def __init__(self, tail=torch.relu):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.seq = nn.Sequential(nn.BatchNorm2d(4), nn.ReLU())
        self.fc = nn.Linear(4, 2)
        self.tail = tail

    def forward(self, x):
        if x.shape[1] > 2:
            x = self.conv(x)
        x = self.tail(self.seq(x) + x)
        return self.fc(torch.flatten(x.mean((2, 3), keepdim=True), 1))


def test_torch_export_where_fx_cannot_trace():
    with pytest.raises(torch.fx.proxy.TraceError):
        torch.fx.symbolic_trace(ShapeBranch())
    imported, report = roundtrip(ShapeBranch(), (3, 8, 8))
    body = imported.text.split("input 3x8x8\n", 1)[1]
    assert body == ("    conv 4 kernel=3 padding=1\n    residual {\n        batchnorm\n        relu\n    }\n"
                    "    relu\n    globalavgpool\n    fc: dense 2\n}\n")
    assert report.params == 4 * 27 + 4 + 8 + 4 * 2 + 2
    with pytest.raises(CnnError) as info:  # an aten function with no form: refused with the tree
        cnndsl.from_module(ShapeBranch(torch.exp).eval(), (3, 8, 8))
    assert "✗ torch.fx cannot trace ShapeBranch.forward: " in info.value.message
    assert "; torch.export: aten.exp.default outside a layer has no cnndsl form" in info.value.message


class InvertedResidual(nn.Module):
    """torchvision's MobileNetV2 block: 1x1 expansion (none when t is 1), 3x3 depthwise, 1x1 projection; the
    input added back when the stride is 1 and the channels stay."""

    def __init__(self, cin: int, cout: int, stride: int, t: int):
        super().__init__()
        hidden = cin * t
        layers = [nn.Sequential(nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6())] * (t != 1)
        layers += [nn.Sequential(nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
                                 nn.BatchNorm2d(hidden), nn.ReLU6()),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.use_res = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


def test_mobilenet_v2_blocks_are_the_librarys():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU6(),
                          InvertedResidual(8, 8, 1, 1), InvertedResidual(8, 12, 2, 6),
                          InvertedResidual(12, 12, 1, 6), InvertedResidual(12, 16, 1, 6))
    imported, _ = roundtrip(model, (3, 16, 16))
    # matched by what each call computes (output channels, stride, expansion), not by parameter names
    assert imported.text.split("# Written", 1)[1].split("\n", 1)[1] == (
        'use "std/mobilenet"\n\nnetwork sequential {\n    input 3x16x16\n'
        "    conv 8 kernel=3 stride=2 padding=1 bias=false\n    batchnorm\n    relu6\n"
        "    inverted_residual 8 expand=1\n    inverted_body 12 stride=2\n    inverted_residual 12\n"
        "    inverted_body 16\n}\n")
