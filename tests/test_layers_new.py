"""layernorm, groupnorm, instancenorm, scale, layerscale, droppath: figures, errors and the modules built."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

import cnndsl
from cnndsl.errors import CnnError

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from conftest import module_of  # noqa: E402


def net(*lines: str, shape: str = "3x8x8") -> str:
    return "network n {\n  input " + shape + "\n" + "".join(f"  {line}\n" for line in lines) + "}\n"


def error_of(text: str) -> CnnError:
    with pytest.raises(CnnError) as info:
        cnndsl.loads(text).check()
    return info.value


def one(layer: str, shape: str = "16x5x7"):
    """(report figures of the one layer, the built module in eval, the whole model)."""
    spec = cnndsl.loads(net(layer, shape=shape))
    report = spec.check()
    model = spec.build().eval()
    f = report.layers[1]
    return f, dict(model.named_modules())[module_of(f.layer, dict(model.named_modules()))], model


# ---- counts against the PyTorch modules ----------------------------------------------------------


def _buffers(m: nn.Module) -> int:
    return sum(b.numel() for n, b in m.named_buffers() if not n.endswith("num_batches_tracked"))


@pytest.mark.parametrize("layer,shape,reference", [
    ("layernorm", "16x5x7", nn.LayerNorm(16)),
    ("layernorm affine=false", "16x5x7", nn.LayerNorm(16, elementwise_affine=False)),
    ("layernorm", "300", nn.LayerNorm(300)),
    ("groupnorm 4", "16x5x7", nn.GroupNorm(4, 16)),
    ("groupnorm groups=2 affine=false", "6", nn.GroupNorm(2, 6, affine=False)),
    ("instancenorm", "16x5x7", nn.InstanceNorm2d(16)),
    ("instancenorm affine=true track_running_stats=true", "16x5x7",
     nn.InstanceNorm2d(16, affine=True, track_running_stats=True)),
    ("layerscale", "16x5x7", None),
    ("scale 0.17", "16x5x7", None),
    ("droppath 0.2", "16x5x7", None),
])
def test_params_buffers_and_macs_equal_pytorch(layer, shape, reference):
    f, module, model = one(layer, shape)
    expected_params = 16 if layer == "layerscale" else sum(p.numel() for p in (reference or nn.Identity()).parameters())
    assert f.params == expected_params == sum(p.numel() for p in model.parameters())
    assert f.buffers == _buffers(reference or nn.Identity()) == _buffers(model)
    dims = tuple(int(d) for d in shape.split("x"))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = model(torch.randn(2, *dims))
    assert f.macs == 0 == counter.get_total_flops()
    assert tuple(out.shape[1:]) == dims == f.layer.shape


def test_a_spec_of_every_new_kind_keeps_the_report_true():
    spec = cnndsl.loads(net("conv 32 kernel=3 padding=same", "layernorm eps=1e-6", "groupnorm 8",
                            "instancenorm affine=true", "residual {", "conv 32 kernel=3 padding=same",
                            "layerscale 1e-6", "scale 0.17", "droppath 0.2", "}", "globalavgpool", "layernorm",
                            "dense 10", shape="3x16x16"))
    report = spec.check()
    assert report.params == 896 + 64 + 64 + 64 + 9248 + 32 + 0 + 64 + 330 == 10762
    model = spec.build().eval()
    assert sum(p.numel() for p in model.parameters()) == report.params
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        assert tuple(model(torch.randn(1, 3, 16, 16)).shape) == (1, 10)
    assert counter.get_total_flops() // 2 == report.macs
    rf = {f.layer.id: f.rf for f in report.layers}
    assert rf["layernorm1"] == rf["groupnorm1"] == rf["instancenorm1"] == rf["conv1"] == (3, 3)
    assert rf["layerscale1"] == rf["scale1"] == rf["droppath1"] == rf["conv2"] == (5, 5)
    model.train()
    model(torch.randn(4, 3, 16, 16)).sum().backward()  # trains: instancenorm, droppath in training mode


def test_generated_source_carries_the_helpers_and_passes_ruff():
    source = cnndsl.loads(net("layernorm eps=1e-6", "layerscale 0.5", "scale 0.17", "droppath 0.2",
                              "flatten", "layernorm")).source()
    for line in ("self.layernorm1 = LayerNorm2d(3, eps=1e-06)", "self.layerscale1 = LayerScale(3, 0.5, image=True)",
                 "self.scale1 = Scale(0.17)", "self.droppath1 = DropPath(0.2)", "self.layernorm2 = nn.LayerNorm(192)",
                 "class LayerNorm2d(nn.LayerNorm):", "class DropPath(nn.Module):"):
        assert line in source
    assert {n.names[0].name.split(".")[0] for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Import)} <= {
        "torch", "math"}
    ruff = subprocess.run([sys.executable, "-m", "ruff", "check", "--isolated", "--stdin-filename", "net.py", "-"],
                          input=source, capture_output=True, text=True)
    assert ruff.returncode == 0, ruff.stdout


# ---- what the modules compute --------------------------------------------------------------------


def test_layernorm_on_an_image_normalises_the_channels_at_each_position():
    f, module, _ = one("layernorm eps=1e-6")
    with torch.no_grad():
        module.weight.copy_(torch.linspace(0.5, 2, 16))
        module.bias.copy_(torch.linspace(-1, 1, 16))
        x = torch.randn(3, 16, 5, 7) * 4 + 2
        mean = x.mean(1, keepdim=True)
        var = x.var(1, unbiased=False, keepdim=True)
        expected = (x - mean) / torch.sqrt(var + 1e-6) * module.weight[:, None, None] + module.bias[:, None, None]
        torch.testing.assert_close(module(x), expected, rtol=1e-5, atol=1e-5)
    assert module.eps == 1e-6 and f.params == 32


def test_groupnorm_and_instancenorm_match_the_functional_ops():
    _, gn, _ = one("groupnorm 4 epsilon=1e-3")
    _, inorm, _ = one("instancenorm")
    x = torch.randn(2, 16, 5, 7)
    with torch.no_grad():
        torch.testing.assert_close(gn(x), torch.nn.functional.group_norm(x, 4, gn.weight, gn.bias, 1e-3))
        per_channel = (x - x.mean((2, 3), keepdim=True)) / torch.sqrt(x.var((2, 3), False, keepdim=True) + 1e-5)
        torch.testing.assert_close(inorm(x), per_channel, rtol=1e-5, atol=1e-5)
    assert gn.num_groups == 4 and gn.eps == 1e-3 and inorm.weight is None and inorm.running_mean is None


def test_scale_and_layerscale():
    _, scale, _ = one("scale 0.17")
    _, ls, _ = one("layerscale init=0.25")
    _, flat, _ = one("layerscale", shape="10")
    x = torch.randn(2, 16, 5, 7)
    torch.testing.assert_close(scale(x), 0.17 * x)
    assert tuple(ls.gamma.shape) == (16, 1, 1) and bool((ls.gamma == 0.25).all())
    assert tuple(flat.gamma.shape) == (10,) and bool((flat.gamma == 1e-6).all())
    with torch.no_grad():
        ls.gamma[3] = 2.0
        out = ls(x)
    torch.testing.assert_close(out[:, 3], 2.0 * x[:, 3])
    torch.testing.assert_close(out[:, 0], 0.25 * x[:, 0])
    assert ls.gamma.requires_grad


def test_droppath_is_the_identity_in_eval():
    _, dp, _ = one("droppath 0.5")
    x = torch.randn(64, 16, 5, 7)
    assert torch.equal(dp.eval()(x), x)


def test_droppath_in_training_drops_whole_samples_and_scales_survivors():
    _, dp, _ = one("droppath rate=0.2")
    dp.train()
    x = torch.randn(4000, 16, 5, 7, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(7)
    out = dp(x)
    torch.manual_seed(7)  # the same draw: one Bernoulli(0.8) per sample, as torchvision's row mode
    keep = torch.empty(4000, 1, 1, 1).bernoulli_(0.8)
    assert torch.equal(out, x * (keep / 0.8))
    kept = out.flatten(1).ne(0).all(1)
    dropped = out.flatten(1).eq(0).all(1)
    assert bool((kept | dropped).all())  # each sample is kept whole or dropped whole
    assert int(kept.sum()) == int(keep.sum())
    assert abs(int(kept.sum()) - 3200) < 4 * (4000 * 0.8 * 0.2) ** 0.5  # binomial(4000, 0.8), 4 sigma
    torch.testing.assert_close(out[kept], x[kept] / 0.8)


def test_droppath_matches_torchvision_stochastic_depth():
    ops = pytest.importorskip("torchvision.ops")
    _, dp, _ = one("droppath 0.3")
    dp.train()
    x = torch.randn(500, 16, 5, 7)
    torch.manual_seed(3)
    ours = dp(x)
    torch.manual_seed(3)
    torch.testing.assert_close(ours, ops.stochastic_depth(x, 0.3, "row", training=True))


def test_layernorm2d_matches_torchvision_convnext():
    convnext = pytest.importorskip("torchvision.models.convnext")
    _, ours, _ = one("layernorm eps=1e-6")
    ref = convnext.LayerNorm2d(16, eps=1e-6)
    with torch.no_grad():
        ref.weight.normal_()
        ref.bias.normal_()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 16, 5, 7)
    torch.testing.assert_close(ours(x), ref(x))


# ---- the report's lines, and errors ----------------------------------------------------------------


def test_explain_lines():
    assert one("layernorm")[0].explain() == ["normalises the 16 channels at each of the 5x7 positions",
                                             "params = 2 * 16 channels = 32 (scale and shift)"]
    assert one("layernorm", shape="300")[0].explain() == ["normalises the 300 features",
                                                          "params = 2 * 300 features = 600 (scale and shift)"]
    assert one("groupnorm 4")[0].explain() == ["normalises 4 groups of 4 channels x 5x7 positions",
                                               "params = 2 * 16 channels = 32 (scale and shift)"]
    assert one("instancenorm track_running_stats=true")[0].explain() == [
        "normalises each of the 16 channels over its 5x7 positions",
        "params = 0 (affine=false: no scale and shift)",
        "buffers = 2 * 16 = 32 (running mean and variance)"]
    assert one("scale 0.17")[0].explain() == ["out = 0.17 * x; params = 0"]
    assert one("layerscale")[0].explain() == ["params = 16 channels = 16 (gamma, starting at 1e-06)"]
    assert one("droppath 0.2")[0].explain() == [
        "training: each sample kept with probability 1 - 0.2 = 0.8, kept ones scaled by 1.25; eval: identity; "
        "params = 0"]


def test_keras_and_pytorch_spellings():
    assert one("layernorm epsilon=1e-3")[1].eps == 1e-3
    assert one("layernorm2d elementwise_affine=false")[1].weight is None
    assert one("groupnorm num_groups=2")[1].num_groups == 2
    assert one("layerscale layer_scale_init_value=0.5")[1].gamma[0].item() == 0.5
    assert one("stochasticdepth p=0.3")[1].p == 0.3
    assert one("instancenorm2d")[0].layer.op == "instancenorm"


def test_groupnorm_refuses_channels_its_groups_do_not_divide():
    e = error_of(net("conv 30 kernel=3", "groupnorm 8"))
    assert (e.span.line, e.span.col) == (4, 3)
    assert e.message == "groupnorm splits 30 channels into 8 groups: 30 is not divisible by 8"
    assert e.hint == "use groups=6 (a divisor of 30), or change the channels before it"
    assert error_of(net("groupnorm")).hint == "use groups=3 (a divisor of 3), or change the channels before it"


def test_instancenorm_refuses_a_1x1_map_and_a_flat_vector():
    e = error_of(net("globalavgpool keepdims=true", "instancenorm"))
    assert (e.span.line, e.span.col) == (4, 3) and "its input is 3x1x1" in e.message
    assert "needs a CxHxW input" in error_of(net("instancenorm", shape="10")).message


def test_scale_needs_its_factor_and_droppath_a_rate_below_1():
    assert "`scale` is missing its `factor` argument" in error_of(net("scale")).message
    assert "did you mean" not in (error_of(net("scale")).hint or "")
    assert error_of(net("droppath 1.0")).span.line == 3
    assert error_of(net("layernorm eps=0")).span.line == 3
