"""Every figure of shared/reference/models.md, reproduced exactly by the specs in specs/ and examples/."""

from __future__ import annotations

import pytest

import cnndsl
from conftest import ROOT

CLASSIC = {
    # spec: (params, MACs)
    "lenet5": (61_706, 416_520),
    "alexnet": (61_100_840, 714_188_480),
    "vgg16": (138_357_544, 15_470_264_320),
    "vgg19": (143_667_240, 19_632_062_464),
    "resnet18": (11_689_512, 1_814_073_344),
    "resnet34": (21_797_672, 3_663_761_408),
    "resnet50": (25_557_032, 4_089_184_256),
    "resnet152": (60_192_808, 11_513_626_624),
    "googlenet": (6_624_904, 1_498_376_192),
    "xception": (22_855_952, 8_357_403_496),
    "seresnet50": (28_088_024, 4_091_699_200),
    # torchvision 0.29.1 (parameters as PyTorch counts them, MACs as FlopCounterMode / 2)
    "resnext50_32x4d": (25_028_904, 4_230_479_872),
    "mobilenet_v2": (3_504_872, 300_774_272),
    "densenet121": (7_978_856, 2_834_161_664),
    "convnext_tiny": (28_589_128, 4_455_531_264),
    "shufflenet_v2_x1_0": (2_278_604, 144_907_992),
    "mobilenet_v3_large": (5_483_032, 216_589_760),
    "efficientnet_b0": (5_288_548, 385_814_752),
    # attention's MACs as FlopCounterMode counts them on SDPA's math path (torchvision's meta: 17.564 GFLOPS)
    "vit_b_16": (86_567_656, 17_563_828_224),
}


@pytest.mark.parametrize("name", CLASSIC)
def test_classic_architectures(name):
    report = cnndsl.check(ROOT / "specs" / f"{name}.cnn")
    assert (report.params, report.macs) == CLASSIC[name]
    assert report.frozen_params == 0
    assert report.output == ((10,) if name == "lenet5" else (1000,))


@pytest.mark.parametrize("width, params", [(0.35, 1_677_128), (0.5, 1_968_680), (1.4, 6_108_776)])
def test_mobilenet_v2_width_rounds_channels_as_torchvision(width, params):
    # torchvision's mobilenet_v2(width_mult=...): channels to a multiple of 8, never 10% below; at 0.35
    # the stem's 32 * 0.35 = 11.2 rounds to 8, under 90%, so it gets 16
    report = cnndsl.check(ROOT / "specs/mobilenet_v2.cnn", width=width)
    assert report.params == params
    assert report.layers[1].layer.shape[0] == {0.35: 16, 0.5: 16, 1.4: 48}[width]


@pytest.mark.parametrize("params, figures", [
    ({"stage3": 27, "drop": 0.4}, (50_223_688, 8_683_712_256)),  # torchvision's convnext_small
    ({"width": 128, "stage3": 27, "drop": 0.5}, (88_591_464, 15_354_729_472)),  # convnext_base
])
def test_convnext_family(params, figures):
    report = cnndsl.check(ROOT / "specs/convnext_tiny.cnn", **params)
    assert (report.params, report.macs) == figures


def test_resnet34_buffers_are_batchnorm_statistics():
    # 2 * (sum of batchnorm channels); Keras lists them as non-trainable params
    assert cnndsl.check(ROOT / "specs/resnet34.cnn").buffers == 17_024


def test_xception_keras_total_adds_batchnorm_statistics():
    report = cnndsl.check(ROOT / "specs/xception.cnn")
    assert report.params + report.buffers == 22_910_480
    assert report.input == (3, 299, 299)


TUTORIAL = {
    "fashion_cnn_handson": (1_413_834, None),
    "fashion_cnn_honkong": (333_526, None),
    "cifar_mlp": (646_260, [614_600, 30_150, 1_510]),
    "cifar_small_cnn": (15_120, [490, 1_820, 12_810]),
    "cifar_cnn_bn": (591_914, None),
    "cifar_resnet_small": (77_866, None),
    "two_filters": (56, [56]),
}


@pytest.mark.parametrize("name", TUTORIAL)
def test_tutorial_models(name):
    total, per_layer = TUTORIAL[name]
    report = cnndsl.check(ROOT / "examples" / f"{name}.cnn")
    assert report.params == total
    if per_layer is not None:
        assert [f.params for f in report.layers if f.params] == per_layer


def test_cifar_cnn_bn_keras_total():
    report = cnndsl.check(ROOT / "examples/cifar_cnn_bn.cnn")
    assert report.buffers == 640
    assert report.params + report.buffers == 592_554


def test_two_filters_do_not_depend_on_image_size():
    for size in (5, 32, 224):
        assert cnndsl.check(ROOT / "examples/two_filters.cnn", size=size).params == 56


def test_one_5x5_filter_on_32x32x3():
    report = cnndsl.check(ROOT / "examples/one_filter.cnn")
    conv = report.layers[1]
    assert conv.layer.shape == (1, 28, 28)
    assert conv.macs == 784 * 75
    lines = "\n".join(conv.explain())
    assert "floor((32 + 2*0 - 5) / 1) + 1 = 28" in lines
    assert "784 positions" in lines and "75 multiplications" in lines


def test_output_size_formula_and_same_padding():
    for n, k, s, p, expected in [(28, 3, 1, 1, 28), (32, 5, 1, 0, 28), (227, 11, 4, 0, 55), (7, 3, 2, 0, 3)]:
        spec = f"network n {{ input 3x{n}x{n}\n conv 8 kernel={k} stride={s} padding={p} }}"
        assert cnndsl.check(spec).output == (8, expected, expected)  # floor((n + 2p - f) / s) + 1
    for n, s in [(28, 1), (28, 2), (29, 2), (7, 3), (299, 2)]:
        spec = f"network n {{ input 3x{n}x{n}\n conv 8 kernel=3 stride={s} padding=same }}"
        assert cnndsl.check(spec).output == (8, -(-n // s), -(-n // s))  # ceil(n / s)


def test_inception_bottleneck_saving():
    direct = cnndsl.check(ROOT / "examples/bottleneck.cnn", reduce=False)
    reduced = cnndsl.check(ROOT / "examples/bottleneck.cnn")
    assert direct.macs == 120_422_400
    assert [f.macs for f in reduced.layers if f.macs] == [2_408_448, 10_035_200]
    assert reduced.macs == 12_443_648


def test_three_stacked_3x3_see_as_far_as_one_7x7():
    stacked = cnndsl.check(ROOT / "examples/stacked3x3.cnn", channels=10)
    single = cnndsl.check(ROOT / "examples/stacked3x3.cnn", channels=10, stacked=False)
    assert stacked.receptive_field == single.receptive_field == 7
    assert stacked.params == 27 * 10**2 and single.params == 49 * 10**2


def test_vgg16_receptive_field_after_last_pool_is_212():
    report = cnndsl.check(ROOT / "specs/vgg16.cnn")
    pools = [f for f in report.layers if f.layer.op == "maxpool"]
    assert len(pools) == 5
    assert pools[-1].receptive_field == 212
    assert [p.receptive_field for p in pools] == [6, 16, 44, 100, 212]


def test_lenet_per_layer_shapes():
    report = cnndsl.check(ROOT / "specs/lenet5.cnn")
    shapes = [f.layer.shape for f in report.layers]
    assert shapes == [(1, 32, 32), (6, 28, 28), (6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 10, 10),
                      (16, 5, 5), (120, 1, 1), (120, 1, 1), (120,), (84,), (84,), (10,)]


def test_efficientnet_b0_stochastic_depth_grows_linearly_as_torchvision():
    # torchvision: block n of 16 drops with 0.2 * n / 16; only the blocks with a residual (stride 1, channels
    # kept) apply it: numbers 2, 4, 6, 7, 9, 10, 12, 13 and 14
    report = cnndsl.check(ROOT / "specs/efficientnet_b0.cnn")
    drops = [(f.layer.id, f.layer.args["rate"]) for f in report.layers if f.layer.op == "droppath"]
    assert [name for name, _ in drops][:2] == ["mbconv_stage2.mbconv2.droppath1", "mbconv_stage3.mbconv2.droppath1"]
    assert [rate for _, rate in drops] == pytest.approx([0.2 * n / 16 for n in (2, 4, 6, 7, 9, 10, 12, 13, 14)])
