"""What imports of torchvision's and timm's CNNs need of the language: a channel slice (`slice`), a residual added
to the first channels (`residual partial=true`), a block's own input as a tensor (`from in`, `concat in`), a gate
multiplied on either side. Each against the same network written by hand in torch, weights copied."""

from __future__ import annotations

import math

import pytest

import cnndsl
from cnndsl.api import format_spec
from cnndsl.errors import CnnError
from cnndsl.syntax.parser import parse

torch = pytest.importorskip("torch")
nn = torch.nn


def figures(text: str) -> tuple[list, int, int]:
    """(layer id, shape, params, MACs) of each layer, total params and total MACs."""
    report = cnndsl.check(text)
    d = report.to_dict()
    rows = [(f.layer.id, f.layer.shape, f.params, f.macs) for f in report.layers]
    return rows, d["params"], d["macs"]


def error_of(text: str) -> CnnError:
    with pytest.raises(CnnError) as info:
        cnndsl.check(text)
    e = info.value
    return e.errors[0] if hasattr(e, "errors") else e


def same_outputs(text: str, hand: nn.Module, shape: tuple, **kwargs) -> None:
    """The built spec with the hand-written module's weights (in the order both register them) gives the same
    output, bit for bit, in eval mode."""
    torch.manual_seed(0)
    model = cnndsl.loads(text, **kwargs).build()
    ours, theirs = model.state_dict(), hand.state_dict()
    assert [tuple(v.shape) for v in ours.values()] == [tuple(v.shape) for v in theirs.values()]
    for v in theirs.values():  # batchnorm statistics too, not their initial 0 and 1
        if v.is_floating_point():
            v.copy_(torch.rand_like(v) + 0.5)
    model.load_state_dict(dict(zip(ours, theirs.values())))
    model.eval(), hand.eval()
    x = torch.randn(2, *shape)
    with torch.no_grad():
        assert torch.equal(model(x), hand(x))


def round_trips(text: str) -> None:
    assert format_spec(text) == text
    assert parse(format_spec(text)) == parse(text)


# ---- slice: GhostNet's ghost module -------------------------------------------------------------------------

GHOST = """block ghost(oup, ratio = 2, dw = 3) {
    let init = ceil(oup / ratio)
    conv init kernel=1 bias=false
    batchnorm
    relu
    concat {
        branch { }
        branch { conv (init * (ratio - 1)) kernel=dw padding=(dw // 2) groups=init bias=false; batchnorm; relu }
    }
    slice oup
}

network n {
    input 4x8x8
    ghost 9
}
"""


class GhostModule(nn.Module):
    """timm's GhostModule (ghostnet.py), as written there."""

    def __init__(self, in_chs, out_chs, kernel_size=1, ratio=2, dw_size=3):
        super().__init__()
        self.out_chs = out_chs
        init_chs = math.ceil(out_chs / ratio)
        new_chs = init_chs * (ratio - 1)
        self.primary_conv = nn.Sequential(
            nn.Conv2d(in_chs, init_chs, kernel_size, 1, kernel_size // 2, bias=False),
            nn.BatchNorm2d(init_chs), nn.ReLU(inplace=True))
        self.cheap_operation = nn.Sequential(
            nn.Conv2d(init_chs, new_chs, dw_size, 1, dw_size // 2, groups=init_chs, bias=False),
            nn.BatchNorm2d(new_chs), nn.ReLU(inplace=True))

    def forward(self, x):
        x1 = self.primary_conv(x)
        x2 = self.cheap_operation(x1)
        out = torch.cat([x1, x2], dim=1)
        return out[:, :self.out_chs, :, :]


def test_ghost_module_figures():
    rows, params, macs = figures(GHOST)
    assert [(i, s) for i, s, _, _ in rows] == [
        ("input1", (4, 8, 8)), ("ghost1.conv1", (5, 8, 8)), ("ghost1.batchnorm1", (5, 8, 8)),
        ("ghost1.relu1", (5, 8, 8)), ("ghost1.branch2.conv1", (5, 8, 8)), ("ghost1.branch2.batchnorm1", (5, 8, 8)),
        ("ghost1.branch2.relu1", (5, 8, 8)), ("ghost1.concat1", (10, 8, 8)), ("ghost1.slice1", (9, 8, 8))]
    assert (params, macs) == (4 * 5 + 10 + 5 * 9 + 10, 64 * 5 * 4 + 64 * 5 * 9)


def test_ghost_module_equals_timm_s():
    same_outputs(GHOST, GhostModule(4, 9), (4, 8, 8))
    source = cnndsl.loads(GHOST).source()
    assert "self.slice1 = ChannelSlice(0, oup)" in source
    assert "return x[:, self.start:self.end]" in source


def test_slice_with_a_start_and_its_explanation():
    text = "network n {\n    input 8x4x4\n    slice 6 start=2\n}\n"
    rows, params, macs = figures(text)
    assert rows[-1] == ("slice1", (4, 4, 4), 0, 0)
    explained = cnndsl.check(text).layers[-1].explain()
    assert explained == ["channels 2..5 of 8: 6 - 2 = 4 kept; params = 0"]
    round_trips(text)


@pytest.mark.parametrize("line, message, hint", [
    ("slice 9", "slice 9 reaches past the 8 channels of its input", "at most 8"),
    ("slice 4 start=4", "slice start=4 end=4 keeps no channels", "`start` must be below `end`"),
])
def test_slice_errors_are_located_with_a_hint(line, message, hint):
    e = error_of(f"network n {{\n    input 8x4x4\n    {line}\n}}\n")
    assert (e.span.line, e.span.col) == (3, 5)
    assert e.message == message
    assert hint in e.hint


def test_ghost_round_trips():
    round_trips(GHOST)


# ---- a residual added to the first channels: ReXNet -----------------------------------------------------------

REXNET = """block linear_bottleneck(out, exp = 2) {
    residual partial=true {
        conv (in.channels * exp) kernel=1 bias=false
        batchnorm
        silu
        dwconv 3 padding=1 bias=false
        batchnorm
        relu6
        conv out kernel=1 bias=false
        batchnorm
    }
}

network n {
    input 8x8x8
    linear_bottleneck 12
}
"""


class LinearBottleneck(nn.Module):
    """timm's ReXNet LinearBottleneck (rexnet.py) without SE: the shortcut added to the first in_chs channels."""

    def __init__(self, in_chs, out_chs, exp=2):
        super().__init__()
        self.in_channels = in_chs
        mid = in_chs * exp
        self.conv_exp = nn.Sequential(nn.Conv2d(in_chs, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.SiLU())
        self.conv_dw = nn.Sequential(nn.Conv2d(mid, mid, 3, padding=1, groups=mid, bias=False), nn.BatchNorm2d(mid))
        self.act_dw = nn.ReLU6()
        self.conv_pwl = nn.Sequential(nn.Conv2d(mid, out_chs, 1, bias=False), nn.BatchNorm2d(out_chs))

    def forward(self, x):
        shortcut = x
        x = self.conv_pwl(self.act_dw(self.conv_dw(self.conv_exp(x))))
        return torch.cat([x[:, 0:self.in_channels] + shortcut, x[:, self.in_channels:]], dim=1)


def test_partial_residual_figures():
    rows, params, macs = figures(REXNET)
    assert rows[-1] == ("linear_bottleneck1.add1", (12, 8, 8), 0, 0)
    assert params == 8 * 16 + 32 + 16 * 9 + 32 + 16 * 12 + 24
    assert macs == 64 * 16 * 8 + 64 * 16 * 9 + 64 * 12 * 16
    add = cnndsl.check(REXNET).layers[-1]
    assert add.op_text == "add of 2 (partial)"
    assert add.explain() == ["channels 0..7 of the first input (12 channels) plus the second (8); channels 8..11 as "
                             "they are: torch.cat([x[:, :8] + y, x[:, 8:]], dim=1); params = 0"]


def test_partial_residual_equals_timm_s():
    same_outputs(REXNET, LinearBottleneck(8, 12), (8, 8, 8))
    assert ("return torch.cat([out[:, :identity.shape[1]] + identity, out[:, identity.shape[1]:]], dim=1)"
            in cnndsl.loads(REXNET).source())


def test_partial_add_of_named_outputs_and_its_round_trip():
    text = "network n {\n    x: input 4x8x8\n    conv 6 kernel=1\n    add partial=true x\n}\n"
    rows, _, _ = figures(text)
    assert rows[-1] == ("add1", (6, 8, 8), 0, 0)
    round_trips(text)
    round_trips(REXNET)
    model = cnndsl.loads(text).build().eval()
    x = torch.randn(1, 4, 8, 8)
    y = model.conv1(x)
    with torch.no_grad():
        assert torch.equal(model(x), torch.cat([y[:, :4] + x, y[:, 4:]], dim=1))


def test_partial_residual_errors():
    e = error_of("network n {\n    input 8x8x8\n    residual partial=true { conv 4 kernel=1 }\n}\n")
    assert (e.span.line, e.span.col) == (3, 5)
    assert e.message == ("add partial=true needs the same HxW and no more channels in the identity shortcut than in "
                         "body: body gives 4x8x8, the identity shortcut gives 8x8x8")
    assert "the wider input comes first" in e.hint
    e = error_of("block b(p) {\n    residual partial=p { conv 16 kernel=1 }\n}\n"
                 "network n {\n    input 8x8x8\n    b true\n}\n")
    assert (e.span.line, e.span.col, e.message) == (2, 22, "`partial` of add must be written out (`partial=true`), "
                                                            "not taken from a variable")
    e = error_of("network n {\n    x: input 8x8x8\n    concat partial=true x\n}\n")
    assert (e.span.line, e.span.col, e.message) == (3, 12, "`concat` has no argument `partial`")


# ---- `in`: a block's own input, and a gate on the left -----------------------------------------------------------

SE_LEFT = """block se(r = 4) {
    globalavgpool keepdims=true
    conv (in.channels // r) kernel=1
    relu
    conv in.channels kernel=1
    sigmoid
    multiply in
}

network n {
    input 8x8x8
    se
}
"""


class SqueezeExcitation(nn.Module):
    def __init__(self, c, squeeze):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1, self.fc2 = nn.Conv2d(c, squeeze, 1), nn.Conv2d(squeeze, c, 1)

    def forward(self, x):
        scale = torch.sigmoid(self.fc2(torch.relu(self.fc1(self.avgpool(x)))))
        return scale * x


def test_a_gate_multiplied_on_the_left():
    rows, params, macs = figures(SE_LEFT)
    assert rows[-1] == ("se1.multiply1", (8, 8, 8), 0, 0)
    assert (params, macs) == (8 * 2 + 2 + 2 * 8 + 8, 16 + 16)
    same_outputs(SE_LEFT, SqueezeExcitation(8, 2), (8, 8, 8))
    forward = cnndsl.loads(SE_LEFT).source().split("class N(")[0].split("def forward(self, x):")[-1]
    assert [line.strip() for line in forward.strip().splitlines()][:2] == ["x_in = x", "x = self.globalavgpool1(x_in)"]
    assert "return x * x_in" in forward
    round_trips(SE_LEFT)


def test_a_flat_gate_on_the_left_and_the_hint_of_a_wrong_gate():
    rows, _, _ = figures("network n {\n    x: input 8x4x4\n    globalavgpool\n    multiply x\n}\n")
    assert rows[-1][1] == (8, 4, 4)
    e = error_of("network n {\n    x: input 8x4x4\n    globalavgpool\n    dense 3\n    multiply x\n}\n")
    assert (e.span.line, e.span.col) == (5, 5)
    assert e.message == ("multiply needs equal shapes or a per-channel gate: `x` gives 8x4x4, the current tensor "
                         "gives 3")
    assert e.hint == ("a gate for the 8x4x4 map of `x` has 8 values (8 or 8x1x1), on either side: the current "
                      "tensor has 3")


def test_from_in_and_concat_in():
    text = """block twice {
    conv 4 kernel=1
    concat in
    from in
    concat in
}

network n {
    input 3x4x4
    twice
    from in
    relu
}
"""
    rows, _, _ = figures(text)
    assert [(i, s) for i, s, _, _ in rows] == [
        ("input1", (3, 4, 4)), ("twice1.conv1", (4, 4, 4)), ("twice1.concat1", (7, 4, 4)),
        ("twice1.concat2", (6, 4, 4)), ("relu1", (3, 4, 4))]
    round_trips(text)


def test_in_is_not_seen_inside_a_branch():
    e = error_of("network n {\n    input 3x4x4\n    add {\n        branch { from in }\n        branch { }\n    }\n}\n")
    assert (e.span.line, e.span.col) == (4, 23)
    assert e.message.startswith("`in` names the input of the block, which a branch or a residual's body does not see")


# ---- blocks with several inputs and outputs: an HRNet fusion of two resolutions --------------------------------

HRNET = """block fuse2(c0, c1) with lo {
    from lo
    conv c0 kernel=1 bias=false
    batchnorm
    up: upsample 2
    from in
    add up
    hi: relu
    from in
    conv c1 kernel=3 stride=2 padding=1 bias=false
    batchnorm
    add lo
    lo_out: relu
    return hi, lo_out
}

network hr {
    input 3x16x16
    x0: conv 8 kernel=3 padding=1
    from in
    x1: conv 16 kernel=3 stride=2 padding=1
    from x0
    a, b: fuse2 8 16 with x1
    from b
    upsample 2
    concat a
}
"""


class Fuse2(nn.Module):
    """timm's HighResolutionModule fuse layers for two branches: y0 = relu(x0 + up(x1)), y1 = relu(down(x0) + x1)."""

    def __init__(self, c0, c1):
        super().__init__()
        self.up = nn.Sequential(nn.Conv2d(c1, c0, 1, bias=False), nn.BatchNorm2d(c0), nn.Upsample(scale_factor=2))
        self.down = nn.Sequential(nn.Conv2d(c0, c1, 3, 2, 1, bias=False), nn.BatchNorm2d(c1))

    def forward(self, x0, x1):
        return torch.relu(x0 + self.up(x1)), torch.relu(self.down(x0) + x1)


class TwoResolutions(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem0, self.stem1 = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(3, 16, 3, stride=2, padding=1)
        self.fuse = Fuse2(8, 16)

    def forward(self, x):
        a, b = self.fuse(self.stem0(x), self.stem1(x))
        return torch.cat([nn.functional.interpolate(b, scale_factor=2.0), a], dim=1)


def test_two_input_two_output_block_figures():
    rows, params, macs = figures(HRNET)
    shapes = dict((i, s) for i, s, _, _ in rows)
    assert shapes["a.up"] == (8, 16, 16) and shapes["a.hi"] == (8, 16, 16) and shapes["a.lo_out"] == (16, 8, 8)
    assert rows[-1][:2] == ("concat1", (24, 16, 16))
    assert params == 224 + 448 + 128 + 16 + 1152 + 32
    assert macs == 256 * 8 * 27 + 64 * 16 * 27 + 64 * 8 * 16 + 64 * 16 * 72
    round_trips(HRNET)


def test_two_input_two_output_block_equals_torch_by_hand():
    same_outputs(HRNET, TwoResolutions(), (3, 16, 16))
    source = cnndsl.loads(HRNET).source()
    assert "def __init__(self, in_channels: int, lo_channels: int, c0: int, c1: int) -> None:" in source
    assert "def forward(self, x, lo):" in source
    assert "return hi, lo_out" in source
    assert "a, b = self.a(x_in, x1)" in source or "a, b = self.a(x0, x1)" in source


@pytest.mark.parametrize("call, line, col, message", [
    ("fuse2 8 16", 23, 5, "block `fuse2` takes 1 tensor besides the current one, given 0"),
    ("a, b, c: fuse2 8 16 with x1", 23, 5, "3 names for a statement that returns 2 tensors"),
    ("fuse2 8 16 with x9", 23, 21, "no output is named `x9` here"),
    ("conv 8 kernel=1 with x1", 23, 26, "`conv` is a layer: only a block takes tensors with `with`"),
])
def test_errors_of_several_inputs_and_outputs(call, line, col, message):
    e = error_of(HRNET.replace("a, b: fuse2 8 16 with x1", call))
    assert (e.span.line, e.span.col, e.message) == (line, col, message)
    assert e.hint


def test_return_only_ends_a_block():
    e = error_of(HRNET.replace("    return hi, lo_out\n", "    return hi, lo_out\n    relu\n"))
    assert (e.span.line, e.span.col) == (14, 5)
    assert e.message == ("`return` here: it may only be its block's last statement, outside `if`, `repeat`, merges "
                         "and residuals")


# ---- recursion: a DLA-like tree ------------------------------------------------------------------------------

DLA = """block unit(c, stride = 1) {
    conv c kernel=3 stride=stride padding=1 bias=false
    batchnorm
    relu
}

block tree(levels, c, stride = 1) {
    if levels == 1 {
        x1: unit c stride=stride
        unit c
    } else {
        x1: tree (levels - 1) c stride=stride
        tree (levels - 1) c
    }
    concat x1
    conv c kernel=1 bias=false
    batchnorm
    relu
}

network dla {
    input 3x16x16
    unit 8
    tree 2 16 stride=2
}
"""


class Unit(nn.Sequential):
    def __init__(self, cin, c, stride=1):
        super().__init__(nn.Conv2d(cin, c, 3, stride, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU())


class Tree(nn.Module):
    """timm's DLA Tree, reduced: two subtrees (units at the leaves) and a root over torch.cat([x2, x1], 1)."""

    def __init__(self, levels, cin, c, stride=1):
        super().__init__()
        if levels == 1:
            self.tree1, self.tree2 = Unit(cin, c, stride), Unit(c, c)
        else:
            self.tree1, self.tree2 = Tree(levels - 1, cin, c, stride), Tree(levels - 1, c, c)
        self.root = nn.Sequential(nn.Conv2d(2 * c, c, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU())

    def forward(self, x):
        x1 = self.tree1(x)
        x2 = self.tree2(x1)
        return self.root(torch.cat([x2, x1], 1))


def test_recursive_tree_figures():
    rows, params, macs = figures(DLA)
    ids = [i for i, _, _, _ in rows]
    assert "tree1.x1.x1.conv1" in ids and "tree1.tree1.unit1.conv1" in ids  # the leaves, two levels down
    assert rows[-1][:2] == ("tree1.relu1", (16, 8, 8))
    leaf = [1152 + 32 + 2304 + 32 + 512 + 32, 2304 + 32 + 2304 + 32 + 512 + 32]
    assert params == 216 + 16 + sum(leaf) + 512 + 32
    assert macs == 55296 + (73728 + 147456 + 32768) + (147456 * 2 + 32768) + 32768
    round_trips(DLA)


def test_recursive_tree_equals_torch_by_hand():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem, self.tree = Unit(3, 8), Tree(2, 8, 16, 2)

        def forward(self, x):
            return self.tree(self.stem(x))

    same_outputs(DLA, Net(), (3, 16, 16))
    source = cnndsl.loads(DLA).source()
    assert "self.x1 = Tree(in_channels, (in_height, in_width), levels - 1, c, stride=stride)" in source


def test_endless_recursion_is_a_located_error_naming_the_chain():
    text = DLA.replace("(levels - 1)", "(levels + 1)")
    e = error_of(text)
    assert (e.span.line, e.span.col) == (12, 13)
    assert e.message == ("block `tree` calls itself more than 24 levels deep "
                         "(tree → tree → tree → tree → tree → tree → tree → tree → … → tree)")
    assert e.hint == "a block that calls itself needs a parameter that ends it: `if levels > 1 { tree (levels - 1) }`"


def test_a_block_reading_the_size_of_its_other_input_takes_it():
    text = """block f with lo {
    from lo
    conv 8 kernel=3 stride=2 padding=same
    return in, lo
}

network n {
    input 8x9x9
    lo: conv 4 kernel=1
    from in
    a, b: f with lo
    from b
    conv 8 kernel=1
}
"""
    spec = cnndsl.loads(text)
    assert "def __init__(self, in_channels: int, lo_channels: int, lo_size: tuple[int, int]) -> None:" in spec.source()
    assert "self.a = F2(8, 4, (9, 9))" in spec.source()  # (F is torch.nn.functional)
    model = spec.build().eval()
    x = torch.randn(1, 8, 9, 9)
    with torch.no_grad():
        assert torch.equal(model(x), model.conv1(model.lo(x)))
    assert [s for _, s, _, _ in figures(text)[0]][-1] == (8, 9, 9)
