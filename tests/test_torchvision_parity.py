"""Weights copied from torchvision's models give the same outputs in the generated ones.

Runs only where torchvision is installed (the optional benchmark environment, bench/README.md);
elsewhere it is skipped.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

import cnndsl  # noqa: E402
from conftest import ROOT  # noqa: E402

MODELS = {
    "alexnet": lambda: torchvision.models.alexnet(),
    "vgg16": lambda: torchvision.models.vgg16(),
    "vgg19": lambda: torchvision.models.vgg19(),
    "resnet18": lambda: torchvision.models.resnet18(),
    "resnet34": lambda: torchvision.models.resnet34(),
    "resnet50": lambda: torchvision.models.resnet50(),
    "resnet152": lambda: torchvision.models.resnet152(),
    "googlenet": lambda: torchvision.models.googlenet(aux_logits=False, init_weights=True, transform_input=False),
    "resnext50_32x4d": lambda: torchvision.models.resnext50_32x4d(),
    "mobilenet_v2": lambda: torchvision.models.mobilenet_v2(),
    "densenet121": lambda: torchvision.models.densenet121(),
    "convnext_tiny": lambda: torchvision.models.convnext_tiny(),
    "shufflenet_v2_x1_0": lambda: torchvision.models.shufflenet_v2_x1_0(),
    "mobilenet_v3_large": lambda: torchvision.models.mobilenet_v3_large(),
    "efficientnet_b0": lambda: torchvision.models.efficientnet_b0(),
}


def randomise_norms(model) -> None:
    """Running statistics, affine terms and layer scales away from 0 and 1, so that a norm paired with the
    wrong one (or a channel order that differs, as in a concat) changes the output. ConvNeXt's layer scale
    starts at 1e-6, which would hide every block's branch: it gets values near 1 too."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
        if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.LayerNorm)):  # torchvision's LayerNorm2d is one
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
        if isinstance(getattr(m, "layer_scale", None), torch.nn.Parameter):  # ConvNeXt's CNBlock
            m.layer_scale.data.uniform_(0.5, 1.5)


@pytest.mark.parametrize("name", MODELS)
def test_same_outputs_with_torchvision_weights(name):
    torch.manual_seed(0)
    theirs = MODELS[name]().eval()
    randomise_norms(theirs)
    ours = cnndsl.load(ROOT / f"specs/{name}.cnn").build().eval()
    report = cnndsl.load_weights(ours, theirs.state_dict())
    assert report.complete, report.summary()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected, got = theirs(x), ours(x)
    if name == "convnext_tiny":  # torchvision's CNBlock runs its 1x1 layers as nn.Linear on permuted
        # channels-last tensors, the spec as 1x1 convolutions: the same sums in another order (1.3e-6 apart)
        assert torch.allclose(got, expected, rtol=1e-5, atol=1e-5), (got - expected).abs().max()
    else:  # the same operations in the same order: bit for bit
        assert torch.equal(got, expected), (got - expected).abs().max()


def test_convnext_stochastic_depth_rises_as_torchvision():
    # identity in eval, so the outputs above cannot see it: the 18 rates 0.1 * i / 17, as CNBlock's
    theirs = [m.p for m in MODELS["convnext_tiny"]().modules() if isinstance(m, torchvision.ops.StochasticDepth)]
    ours = [m.p for m in cnndsl.load(ROOT / "specs/convnext_tiny.cnn").build().modules()
            if type(m).__name__ == "DropPath"]
    assert len(ours) == 18 and ours == theirs and ours[-1] == 0.1


# timm's models with pinned weights (cnndsl/pretrained.py: `--init timm:NAME`) → the spec each fills
TIMM_SPECS = {"legacy_xception": "xception", "seresnet50": "seresnet50", "resnet18": "resnet18",
              "resnet34": "resnet34", "resnet50": "resnet50", "resnet152": "resnet152",
              "resnext50_32x4d": "resnext50_32x4d", "mobilenetv2_100": "mobilenet_v2",
              "efficientnet_b0": "efficientnet_b0"}


@pytest.mark.parametrize("name", TIMM_SPECS)
def test_same_outputs_with_timm_weights(name):
    """Where timm is installed too. Checked with timm 1.0.31: equal for the ResNets, MobileNetV2 and EfficientNet-B0;
    SE-ResNet-50 within 2e-6 of its outputs' size (its squeeze is a mean, ours a pool); legacy_xception within 1%,
    as its port pads the max pool of 74x74 maps by 1 on each side where Keras' Xception (specs/xception.cnn) pads
    1 after: the weights are Keras', so the spec runs them as Keras did."""
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    theirs = timm.create_model(name, pretrained=False).eval()
    randomise_norms(theirs)
    ours = cnndsl.load(ROOT / f"specs/{TIMM_SPECS[name]}.cnn").build().eval()
    assert cnndsl.load_weights(ours, theirs.state_dict()).complete
    x = torch.randn(2, *ours.input_shape)
    with torch.no_grad():  # timm's logits; the Keras Xception spec ends in a softmax
        expected, got = theirs(x), ours.logits(x) if getattr(ours, "ends_in_softmax", False) else ours(x)
    scale = float(expected.abs().max())
    assert float((got - expected).abs().max()) <= (2e-2 if name == "legacy_xception" else 1e-5) * scale
