"""Token sequences (cnndsl/ops/tokens.py) and std/vit: figures against a ViT written in plain torch as
torchvision's vision_transformer.py writes it, bit-identical outputs, errors with their locations."""

from __future__ import annotations

import subprocess
import sys

import pytest

import cnndsl
from cnndsl.errors import CnnError
from conftest import ROOT

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402


class EncoderBlock(nn.Module):
    """torchvision's EncoderBlock, its MLPBlock written out (Linear, GELU, Dropout, Linear, Dropout)."""

    def __init__(self, heads: int, dim: int, mlp: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim, eps=1e-6)
        self.self_attention = nn.MultiheadAttention(dim, heads, dropout=0.0, batch_first=True)
        self.dropout = nn.Dropout(0.0)
        self.ln_2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp), nn.GELU(), nn.Dropout(0.0), nn.Linear(mlp, dim),
                                 nn.Dropout(0.0))

    def forward(self, input):
        x = self.ln_1(input)
        x, _ = self.self_attention(x, x, x, need_weights=False)
        x = self.dropout(x) + input
        return x + self.mlp(self.ln_2(x))


class Encoder(nn.Module):
    """torchvision's Encoder: the position embedding added, the blocks, the final layer norm."""

    def __init__(self, length: int, layers: int, heads: int, dim: int, mlp: int) -> None:
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.empty(1, length, dim).normal_(std=0.02))
        self.layers = nn.Sequential(*(EncoderBlock(heads, dim, mlp) for _ in range(layers)))
        self.ln = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x):
        return self.ln(self.layers(x + self.pos_embedding))


class TinyViT(nn.Module):
    """torchvision's VisionTransformer at a small size: patchify, class token, encoder, x[:, 0], head."""

    def __init__(self, image=32, patch=8, dim=16, layers=2, heads=2, mlp=32, classes=10) -> None:
        super().__init__()
        self.dim = dim
        self.conv_proj = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)
        self.class_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.encoder = Encoder((image // patch) ** 2 + 1, layers, heads, dim, mlp)
        self.heads = nn.Sequential(nn.Linear(dim, classes))

    def forward(self, x):
        n = x.shape[0]
        x = self.conv_proj(x)
        x = x.reshape(n, self.dim, -1).permute(0, 2, 1)
        x = torch.cat([self.class_token.expand(n, -1, -1), x], dim=1)
        return self.heads(self.encoder(x)[:, 0])


SPEC = """use "std/vit"
network tiny(classes = 10) {
    input 3x32x32
    vit_stem 16 patch=8
    vit_encoder 2 heads=2 mlp=32
    vit_head classes
}
"""


def _randomised(model: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # the class token and biases away from 0, norms away from 1
    return model.eval()


def test_a_small_vit_has_torchs_figures_and_outputs():
    torch.manual_seed(1)
    model = _randomised(TinyViT())
    spec = cnndsl.loads(SPEC, name="tiny.cnn")
    report = spec.check()
    assert report.params == sum(p.numel() for p in model.parameters()) == 8_026
    x = torch.randn(1, 3, 32, 32)
    # FlopCounterMode sees attention's two products over the sequence only on SDPA's math path (bmm), and the
    # projections only off nn.MultiheadAttention's fused eval path (taken without grad)
    with torch.enable_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(x)
    assert report.macs == counter.get_total_flops() // 2
    built = spec.build().eval()
    loaded = cnndsl.load_weights(built, model.state_dict())
    assert loaded.complete and len(loaded.loaded) == len(model.state_dict())
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():  # eval and no grad: nn.MultiheadAttention's fast path, on both sides
        assert torch.equal(built(x), model(x))
    model.train(), built.train()
    with torch.no_grad():  # the slow path too
        assert torch.equal(built(x), model(x))


def test_generated_source_calls_attention_as_torchvision():
    source = cnndsl.loads(SPEC).source()
    for line in ("class SelfAttention(nn.MultiheadAttention):", "need_weights=False", "batch_first=True",
                 "x.flatten(2).transpose(1, 2)", "torch.cat([self.token.expand(x.shape[0], -1, -1), x], dim=1)",
                 "return x[:, self.index]"):
        assert line in source


def test_vit_b_16_is_torchvisions_and_checks_without_torch():
    code = ("import sys, cnndsl; r = cnndsl.check('specs/vit_b_16.cnn'); "
            "print(r.params, r.macs, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.stdout.split(" ", 2)[:2] == ["86567656", "17563828224"], out.stderr
    assert out.stdout.strip().endswith("False")  # never imports torch
    b32 = cnndsl.check(ROOT / "specs/vit_b_16.cnn", patch=32)
    assert b32.params == 88_224_232  # torchvision's vit_b_32
    l16 = cnndsl.check(ROOT / "specs/vit_b_16.cnn", dim=1024, layers=24, heads=16, mlp=4096)
    assert l16.params == 304_326_632  # torchvision's vit_l_16


def _error(*lines: str, shape: str = "3x32x32") -> CnnError:
    text = "network n {\n  input " + shape + "\n" + "".join(f"  {line}\n" for line in lines) + "}\n"
    with pytest.raises(CnnError) as info:
        cnndsl.loads(text).check()
    return info.value


def test_errors_name_the_layer_and_say_what_to_do():
    e = _error("conv 16 kernel=8 stride=8", "attention 2")
    assert (e.span.line, e.span.col) == (4, 3) and "needs a sequence of tokens (L x D), got 16x4x4" in e.message
    assert "`tokens`" in e.hint
    e = _error("conv 16 kernel=8 stride=8", "tokens", "attention 5")
    assert (e.span.line, e.span.col) == (5, 3) and "16 features into 5 heads" in e.message and "heads=4" in e.hint
    e = _error("conv 16 kernel=8 stride=8", "tokens", "token 16")
    assert (e.span.line, e.span.col) == (5, 3) and "outside the 16 tokens" in e.message
    e = _error("conv 16 kernel=8 stride=8", "tokens", "batchnorm")
    assert (e.span.line, e.span.col) == (5, 3) and "batchnorm on 16 tokens of 16 features" in e.message
    assert "`layernorm`" in e.hint
    e = _error("conv 16 kernel=8 stride=8", "tokens", "classtoken", "maxpool 2")
    assert (e.span.line, e.span.col) == (6, 3) and "maxpool needs a CxHxW input, got 17 tokens of 16" in e.message
    e = _error("tokens", shape="10")
    assert (e.span.line, e.span.col) == (3, 3) and "tokens needs a CxHxW input" in e.message


def test_layerscale_on_tokens_scales_each_feature():
    spec = cnndsl.loads("network n {\n  input 3x32x32\n  conv 16 kernel=8 stride=8\n  tokens\n  classtoken\n"
                        "  layerscale 0.5\n}\n")
    assert spec.check().layers[-1].params == 16
    model = spec.build().eval()
    seen = []
    model.layerscale1.register_forward_hook(lambda m, i, out: seen.append((i[0], out)))
    with torch.no_grad():
        model(torch.randn(2, 3, 32, 32))
    (x, out), = seen
    assert model.layerscale1.gamma.shape == (16,) and x.shape == (2, 17, 16) and torch.equal(out, 0.5 * x)


def test_tokens_figures_in_the_report():
    report = cnndsl.loads(SPEC).check()
    rows = {f.layer.id: f.layer for f in report.layers}
    figures = {f.layer.id: f for f in report.layers}
    assert rows["vit_stem1.tokens1"].shape == (16, 16) and rows["vit_stem1.classtoken1"].shape == (17, 16)
    assert figures["vit_stem1.classtoken1"].params == 16 and figures["vit_stem1.posembed1"].params == 16 * 17
    assert rows["vit_head1.token1"].shape == (16,)


def test_import_of_a_small_vit_is_exact_and_bit_identical():
    torch.manual_seed(2)
    model = _randomised(TinyViT())
    imported = cnndsl.from_module(model, (3, 32, 32))
    for line in ("tokens\n", "classtoken\n", "posembed\n", "self_attention: attention 2\n", "token\n",
                 "ln_1: layernorm"):
        assert line in imported.text
    assert "Left out" not in imported.text  # the attention's out_proj is its own, not a module left out
    assert imported.names["classtoken1.token"] == "class_token"
    assert imported.names["encoder1.posembed1.weight"] == "encoder.pos_embedding"
    spec = cnndsl.loads(imported.text)
    report = spec.check()
    assert report.params == sum(p.numel() for p in model.parameters())
    assert report.macs == cnndsl.loads(SPEC).check().macs  # the same network as std/vit's, measured above
    built = spec.build().eval()
    loaded = cnndsl.load_weights(built, imported.state_dict(model.state_dict()))
    assert len(loaded.loaded) == len(model.state_dict()) and all(a == b for a, b in loaded.loaded)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(built(x), model(x))


class CrossAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(8, 8)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x):
        y = self.proj(x)
        return self.attn(x, y, y, need_weights=False)[0]


def test_import_refuses_attention_it_cannot_write():
    with pytest.raises(CnnError) as info:
        cnndsl.from_module(CrossAttention().eval(), (5, 8))
    assert "attn: MultiheadAttention\n" in info.value.message
    assert "✗ MultiheadAttention called with a query, key and value that differ" in info.value.message
