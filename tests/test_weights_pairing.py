"""load_weights never pairs silently wrong: order and shape refuse what they cannot settle, and a source given
as a module pairs by the structure of its dataflow (torch.fx + networkx), checked by running both."""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import cnndsl  # noqa: E402
from cnndsl.errors import CnnError  # noqa: E402

# torchvision's RegNet block, written naturally: the body, then a projection shortcut
REGNET = """
network regnetlike {
    input 8x6x6
    residual {
        conv 16 kernel=1 bias=false
        batchnorm
        relu
        conv 16 kernel=3 padding=1 groups=2 bias=false
        batchnorm
        relu
        conv 16 kernel=1 bias=false
        batchnorm
    } shortcut {
        conv 16 kernel=1 bias=false
        batchnorm
    }
    relu
    globalavgpool
    dense 3
}
"""


def randomized(module: nn.Module) -> nn.Module:
    """Every tensor random, batchnorm statistics too: a wrong pairing cannot hide behind equal values."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if tensor.is_floating_point():
                values = torch.rand(tensor.shape, generator=generator)
                tensor.copy_(values + 0.5 if name.endswith("running_var") else values - 0.5)
    return module.eval()


def conv_bn(cin: int, cout: int, kernel: int, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, padding=kernel // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout))


class RegNetLike(nn.Module):
    """torchvision's ResBottleneckBlock: `proj` registered before the body `f`, whose first 1x1 conv has the
    projection's shape (8 → 16)."""

    def __init__(self):
        super().__init__()
        self.proj = conv_bn(8, 16, 1)
        self.f = nn.Sequential(conv_bn(8, 16, 1), nn.ReLU(), conv_bn(16, 16, 3, groups=2), nn.ReLU(),
                               conv_bn(16, 16, 1))
        self.head = nn.Sequential(nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 3))

    def forward(self, x):
        return self.head(self.proj(x) + self.f(x))


REPVGG = """
network repvgglike {
    input 8x6x6
    add {
        branch { conv 8 kernel=3 padding=1 bias=false; batchnorm }
        branch { conv 8 kernel=1 bias=false; batchnorm }
        branch { batchnorm }
    }
    relu
    globalavgpool
    dense 3
}
"""


class RepVGGLike(nn.Module):
    """timm's RepVggBlock: the identity's batchnorm registered first, then the 3x3 and the 1x1 branch."""

    def __init__(self):
        super().__init__()
        self.identity = nn.BatchNorm2d(8)
        self.conv_kxk, self.conv_1x1 = conv_bn(8, 8, 3), conv_bn(8, 8, 1)
        self.head = nn.Sequential(nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))

    def forward(self, x):
        return self.head(self.conv_kxk(x) + self.conv_1x1(x) + self.identity(x))


def outputs(ours, theirs):
    x = torch.randn(4, 8, 6, 6, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        return ours(x), theirs(x)


def test_the_regnet_block_from_a_state_dict_is_refused_naming_the_pairs():
    ours = cnndsl.loads(REGNET).build().eval()
    before = {n: t.clone() for n, t in ours.state_dict().items()}
    with pytest.raises(CnnError) as info:
        cnndsl.load_weights(ours, randomized(RegNetLike()).state_dict())
    message = info.value.message
    # the body's first conv would take the projection's, the shortcut's conv the body's first
    assert "ours conv1 <-> theirs proj.0  (16, 8, 1, 1)" in message
    assert "ours shortcut.conv1 <-> theirs f.0.0  (16, 8, 1, 1)" in message
    # and the four batchnorms of 16, all of them shifted by the projection's one (five named, one counted)
    assert "ours batchnorm1 <-> theirs proj.1  (16,)" in message and "ours batchnorm3 <-> theirs f.2.1" in message
    assert message.endswith("\n  ... and 1 more")
    assert message.startswith("6 modules pair by order and shape only ambiguously")
    assert "pass the source module itself" in info.value.hint
    assert all(torch.equal(t, before[n]) for n, t in ours.state_dict().items())  # nothing loaded


def test_the_regnet_block_from_a_state_dict_loads_what_is_certain_when_not_strict():
    theirs = randomized(RegNetLike())
    ours = cnndsl.loads(REGNET).build().eval()
    with pytest.warns(UserWarning, match="left 18 tensors unloaded"):
        report = cnndsl.load_weights(ours, theirs.state_dict(), strict=False)
    assert ("conv1.weight", "proj.0.weight") in report.ambiguous
    assert ("shortcut.conv1.weight", "f.0.0.weight") in report.ambiguous
    assert len(report.ambiguous) == 2 + 4 * 4  # two convs' weights, four batchnorms' weight, bias, mean, var
    # the grouped 3x3, the 1x1 16 → 16 and the dense have shapes of their own: loaded
    assert dict(report.loaded) == {"conv2.weight": "f.2.0.weight", "conv3.weight": "f.4.0.weight",
                                   "dense1.weight": "head.3.weight", "dense1.bias": "head.3.bias"}
    assert not report.complete and not report.missing and not report.skipped
    assert "ambiguous 18 (not loaded)" in report.summary()
    assert torch.equal(ours.conv2.weight, theirs.f[2][0].weight)


def test_the_regnet_block_from_the_module_pairs_by_structure_exactly():
    theirs = randomized(RegNetLike())
    ours = cnndsl.loads(REGNET).build().eval()
    report = cnndsl.load_weights(ours, theirs)
    pairs = dict(report.loaded)
    assert pairs["conv1.weight"] == "f.0.0.weight" and pairs["shortcut.conv1.weight"] == "proj.0.weight"
    assert pairs["batchnorm1.running_mean"] == "f.0.1.running_mean"
    assert pairs["shortcut.batchnorm1.weight"] == "proj.1.weight"
    assert report.complete and report.structural == len(report.loaded) == 26  # 4 convs, 4 batchnorms of 5, dense 2
    assert report.max_difference == 0.0
    assert report.summary().startswith("loaded 26 tensors (26 by structure), skipped 0, missing 0\n")
    a, b = outputs(ours, theirs)
    assert torch.equal(a, b)


def test_the_repvgg_block_is_refused_by_order_and_exact_by_structure():
    theirs = randomized(RepVGGLike())
    ours = cnndsl.loads(REPVGG).build().eval()
    with pytest.raises(CnnError) as info:
        cnndsl.load_weights(ours, theirs.state_dict())
    message = info.value.message  # the convs have shapes of their own; the three batchnorms could swap
    assert message.startswith("3 modules pair by order and shape only ambiguously")
    assert "ours branch1.batchnorm1 <-> theirs identity" in message
    assert "ours branch2.batchnorm1 <-> theirs conv_kxk.1" in message
    assert "ours branch3.batchnorm1 <-> theirs conv_1x1.1" in message
    report = cnndsl.load_weights(ours, theirs)
    pairs = dict(report.loaded)
    assert pairs["branch1.batchnorm1.weight"] == "conv_kxk.1.weight"
    assert pairs["branch2.batchnorm1.weight"] == "conv_1x1.1.weight"
    assert pairs["branch3.batchnorm1.weight"] == "identity.weight"
    assert report.complete and report.max_difference == 0.0
    a, b = outputs(ours, theirs)
    assert torch.equal(a, b)


class Distinct(nn.Module):
    """Registered in another order than it runs, but no two modules of equal shapes: order cannot go wrong."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6 * 4 * 4, 3)
        self.second = nn.Conv2d(4, 6, 3)
        self.norm = nn.BatchNorm2d(4)
        self.first = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        return self.fc(torch.relu(self.second(self.norm(self.first(x)))).flatten(1))


DISTINCT = """
network distinct {
    input 8x6x6
    conv 4 kernel=1
    batchnorm
    conv 6 kernel=3
    relu
    flatten
    dense 3
}
"""


def test_distinct_shapes_load_by_order_without_a_word():
    theirs = randomized(Distinct())
    ours = cnndsl.loads(DISTINCT).build().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = cnndsl.load_weights(ours, theirs.state_dict())
    assert report.complete and not report.ambiguous and report.structural == 0
    assert report.loaded[0] == ("conv1.weight", "first.weight") and len(report.loaded) == 11
    assert report.max_difference is None  # a state_dict: nothing to run
    a, b = outputs(ours, theirs)
    assert torch.equal(a, b)


def test_repeated_blocks_in_the_same_order_are_not_ambiguous():
    # ResNet's case: many modules of one shape, registered in the order they run on both sides
    theirs = nn.Sequential(*[m for _ in range(3) for m in conv_bn(8, 8, 3)], nn.Flatten(), nn.Linear(8 * 36, 3))
    theirs = randomized(theirs)
    text = "network n {\n input 8x6x6\n" + " conv 8 kernel=3 padding=1 bias=false\n batchnorm\n" * 3
    ours = cnndsl.loads(text + " flatten\n dense 3\n}").build().eval()
    report = cnndsl.load_weights(ours, theirs.state_dict())
    assert report.complete and not report.ambiguous
    a, b = outputs(ours, theirs)
    assert torch.equal(a, b)


class Untraceable(RegNetLike):
    def forward(self, x):
        if x.sum() > 0:  # control flow on values: torch.fx cannot trace it
            x = x * 1
        return super().forward(x)


def test_an_untraceable_module_falls_back_to_order_and_still_refuses():
    ours = cnndsl.loads(REGNET).build().eval()
    with pytest.raises(CnnError, match="pair by order and shape only ambiguously"):
        cnndsl.load_weights(ours, randomized(Untraceable()))
    with pytest.warns(UserWarning) as caught:
        report = cnndsl.load_weights(ours, randomized(Untraceable()), strict=False)
    assert [str(w.message).split(":")[0].split(" by ")[0] for w in caught] == [
        "load_weights left 18 tensors unloaded", "after load_weights the outputs differ from the source's"]
    assert report.notes[0].startswith("paired by order and shape, not by structure: the networks could not "
                                      "be traced (TraceError: symbolically traced variables cannot be used")
    assert report.max_difference is not None and report.max_difference > 0.01  # the ambiguous kept their own


class OtherEnd(RegNetLike):
    """The same modules and dataflow, but another function: a sigmoid where the spec has a relu."""

    def __init__(self):
        super().__init__()
        self.head[0] = nn.Sigmoid()


def test_a_structure_that_matches_but_computes_otherwise_is_refused_and_undone():
    ours = cnndsl.loads(REGNET).build().eval()
    before = {n: t.clone() for n, t in ours.state_dict().items()}
    with pytest.raises(CnnError, match=r"outputs differ from the source's by [0-9.e-]+ on a random input"):
        cnndsl.load_weights(ours, randomized(OtherEnd()))
    assert all(torch.equal(t, before[n]) for n, t in ours.state_dict().items())
    with pytest.warns(UserWarning, match="outputs differ"):
        report = cnndsl.load_weights(ours, randomized(OtherEnd()), strict=False)
    assert report.complete and report.max_difference > report.tolerance >= 1e-4


class Concat(nn.Module):
    """Two branches of equal shapes, registered a then b, concatenated in either order: the dataflow graphs
    cannot tell the two apart (each has two matches: both orders are tried here, so one of them is found
    second) and order and shape cannot either; only the outputs can."""

    def __init__(self, crossed: bool):
        super().__init__()
        self.crossed = crossed
        self.a, self.b = nn.Conv2d(8, 4, 3, padding=1), nn.Conv2d(8, 4, 3, padding=1)
        self.head = nn.Sequential(nn.Conv2d(8, 3, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x):
        first, second = (self.b, self.a) if self.crossed else (self.a, self.b)
        return self.head(torch.cat([first(x), second(x)], dim=1))


CONCAT = """
network two_branches {
    input 8x6x6
    concat {
        branch { conv 4 kernel=3 padding=1 }
        branch { conv 4 kernel=3 padding=1 }
    }
    conv 3 kernel=1
    globalavgpool
}
"""


@pytest.mark.parametrize("crossed", [False, True])
def test_of_several_structural_matches_the_one_with_the_sources_outputs_is_kept(crossed):
    theirs = randomized(Concat(crossed))
    ours = cnndsl.loads(CONCAT).build().eval()
    by_order = cnndsl.load_weights(ours, theirs.state_dict())  # the same registration order: no complaint
    assert by_order.complete and dict(by_order.loaded)["branch1.conv1.weight"] == "a.weight"
    a, b = outputs(ours, theirs)
    assert torch.equal(a, b) != crossed  # and wrong where the forward crosses them
    report = cnndsl.load_weights(ours, theirs)
    assert dict(report.loaded)["branch1.conv1.weight"] == ("b.weight" if crossed else "a.weight")
    assert report.max_difference == 0
    a, b = outputs(ours, theirs)
    assert torch.equal(a, b)


def test_outputs_that_cannot_be_compared_are_noted_not_raised():
    theirs = randomized(RegNetLike())
    ours = cnndsl.loads(REGNET).build().eval()
    del ours.input_shape  # as a module of the user's own would be: nothing says what to feed it
    report = cnndsl.load_weights(ours, theirs)
    assert report.complete and report.structural == 26 and report.max_difference is None
    assert report.notes == ["outputs not compared: neither module has an `input_shape`"]
    theirs.input_shape = (8, 6)  # a wrong one: running the source fails
    report = cnndsl.load_weights(ours, theirs)
    assert report.max_difference is None and report.notes[0].startswith(
        "outputs not compared: running the networks failed (RuntimeError: ")
    a, b = outputs(ours, theirs)
    assert torch.equal(a, b)  # the structure alone paired them right


def test_each_submodules_mode_is_kept():
    theirs = randomized(RegNetLike()).train()
    theirs.f[0][1].eval()  # a frozen batchnorm inside a network that trains
    ours = cnndsl.loads(REGNET).build().train()
    ours.batchnorm1.eval()
    cnndsl.load_weights(ours, theirs)
    assert ours.training and not ours.batchnorm1.training and ours.batchnorm2.training
    assert theirs.training and not theirs.f[0][1].training and theirs.proj[1].training


def test_a_new_head_makes_the_graphs_differ_and_falls_back_to_order():
    theirs = randomized(RegNetLike())
    ours = cnndsl.loads(REGNET.replace("dense 3", "dense 5")).build().eval()
    with pytest.warns(UserWarning):
        report = cnndsl.load_weights(ours, theirs, strict=False)
    assert report.notes[0] == ("paired by order and shape, not by structure: the dataflow graphs differ (9 modules "
                               "with weights in ours and 9 in theirs, not of the same shapes and connections)")
    assert report.missing == ["dense1.weight", "dense1.bias"] and len(report.ambiguous) == 18
