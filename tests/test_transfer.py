"""Transfer learning as Hands-On ML 14.6-14.7 does it: torchvision weights by name, a new head, a frozen base
whose batchnorm keeps its statistics, then everything unfrozen at a lower rate; preprocessing presets."""

from __future__ import annotations

import hashlib

import pytest

import cnndsl
from cnndsl import pretrained
from cnndsl.errors import CnnError
from cnndsl.training.recipe import load_recipe
from tests.conftest import ROOT

torch = pytest.importorskip("torch")
quiet = lambda line: None  # noqa: E731

# specs/resnet18.cnn at 32x32: the same tensors as torchvision's resnet18, and a run of seconds
RESNET18_32 = (ROOT / "specs/resnet18.cnn").read_text().replace("input 3x224x224", "input 3x32x32")
BN_SPEC = """network bnnet(classes = 10) {
    input 1x8x8
    conv 8 kernel=3 padding=same
    batchnorm
    relu
    conv 8 kernel=3 padding=same
    batchnorm
    relu
    globalavgpool
    dense classes
}"""
STATS = ("running_mean", "running_var", "num_batches_tracked")


def _bn_stats(state: dict) -> dict:
    return {k: v.clone() for k, v in state.items() if k.rsplit(".", 1)[-1] in STATS}


def _image_folder(root, per_class: int = 8):
    """Two classes of small PNGs that differ in colour."""
    from PIL import Image

    gen = torch.Generator().manual_seed(0)
    for c, name in enumerate(("cats", "dogs")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = (torch.rand(16, 16, 3, generator=gen) * 100 + 120 * c).to(torch.uint8).numpy()
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def test_torchvision_weights_from_a_local_server_train_two_phases(server, tmp_path, monkeypatch):
    from cnndsl import saved as checkpoint
    from cnndsl.training.loop import train

    root, url = server
    torch.manual_seed(1)
    served = cnndsl.loads(RESNET18_32, classes=1000).build().state_dict()
    torch.save(served, root / "tmp.pth")
    data = (root / "tmp.pth").read_bytes()
    name = f"resnet18-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    (root / name).write_bytes(data)
    # torchvision's file name carries f37072fd, a prefix no file made here can have: the entry is replaced by one
    # whose name carries the served file's real SHA-256 prefix, so the download is checked as torchvision's is
    monkeypatch.setitem(pretrained.TORCHVISION, "resnet18", pretrained.Pretrained("resnet18", url + name))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv("CNNDSL_WEIGHTS_MIRROR", raising=False)
    book = load_recipe(ROOT / "examples/recipes/transfer.yaml")
    phases = [dict(p, epochs=1) for p in book.phases]
    # the book freezes ResNet-50's base (stem1, bottleneck_stage1..4); resnet18.cnn names its stages stage1..4
    assert phases[0]["freeze"] == ["stem1"] + [f"bottleneck_stage{i}" for i in range(1, 5)]
    phases[0]["freeze"] = ["stem1"] + [f"stage{i}" for i in range(1, 5)]
    folder = _image_folder(tmp_path / "pets")

    def run(out, plan):
        lines = []
        recipe = load_recipe(ROOT / "examples/recipes/transfer.yaml", data=f"folder:{folder}", batch_size=4,
                             init="torchvision:resnet18", phases=plan, restore_best=False)
        train(cnndsl.loads(RESNET18_32, classes=2), recipe, out, log=lines.append, device="cpu")
        return lines, checkpoint.load(out / "last.pt")

    lines, first = run(tmp_path / "one", phases[:1])
    cached = tmp_path / "torch-home/hub/checkpoints" / name
    assert cached.read_bytes() == data  # downloaded and verified into the temporary hub cache
    init = next(line for line in lines if line.startswith("init from torchvision:resnet18"))
    assert f"({cached})" in init
    # 122 tensors of 124 (102 weights and biases, 20 batchnorm statistics... all but the head) fit by name
    assert f"loaded {len(served) - 2} tensors ({len(served) - 2} by name" in init
    assert "skipped 2, missing 2" in init and "  skipped dense1.weight" in init and "  missing dense1.bias" in init
    assert tuple(served["dense1.weight"].shape) == (1000, 512) and tuple(first.model["dense1.weight"].shape) == (2, 512)
    assert "data: channels normalised with the imagenet preset (torchvision's ImageNet mean and deviation)" in lines
    assert first.normalization == {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    head = 512 * 2 + 2
    assert f"phase 1/1: 1 epochs, lr 0.1, trainable {head:,}, frozen {11_176_512:,} " \
           "(stem1, stage1, stage2, stage3, stage4)" in lines
    # phase 1: the frozen base's batchnorm kept ImageNet's statistics bit for bit; the head learnt
    before, after = _bn_stats(served), _bn_stats(first.model)
    assert len(before) == 60 and all(torch.equal(before[k], after[k]) for k in before)
    assert not torch.equal(first.model["dense1.bias"], torch.zeros(2))

    lines, both = run(tmp_path / "two", phases)
    assert "phase 2/2: 1 epochs, lr 0.01, trainable 11,177,538, frozen 0" in lines
    after = _bn_stats(both.model)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(changed) == 60  # phase 2 trains the whole network: every statistic moved
    assert all(int(after[k]) == int(before[k]) + 4 for k in before if k.endswith("num_batches_tracked"))


def _train_bn(tmp_path, **values):
    from cnndsl.training.loop import train

    recipe = load_recipe(None, data="digits", splits={"train": "train[:64]"}, batch_size=16, epochs=1,
                         phases=[{"epochs": 1, "freeze": ["conv1", "batchnorm1"]}], restore_best=False, **values)
    torch.manual_seed(0)
    initial = _bn_stats(cnndsl.loads(BN_SPEC).build().state_dict())
    lines = []
    train(cnndsl.loads(BN_SPEC), recipe, tmp_path, log=lines.append, device="cpu")
    from cnndsl import saved as checkpoint

    return lines, initial, _bn_stats(checkpoint.load(tmp_path / "last.pt").model)


def test_frozen_batchnorm_keeps_its_statistics(tmp_path):
    lines, initial, after = _train_bn(tmp_path)
    assert "phase 1/1: 1 epochs, lr 0.001, trainable 690, frozen 96 (conv1, batchnorm1)" in lines
    for key in STATS:
        assert torch.equal(initial[f"batchnorm1.{key}"], after[f"batchnorm1.{key}"]), key  # frozen: untouched
        assert not torch.equal(initial[f"batchnorm2.{key}"], after[f"batchnorm2.{key}"]), key  # trained: moved
    assert int(after["batchnorm2.num_batches_tracked"]) == 4  # 64 images in batches of 16


def test_frozen_batchnorm_train_is_pytorchs_behaviour(tmp_path):
    _, initial, after = _train_bn(tmp_path, frozen_batchnorm="train")
    for key in STATS:
        assert not torch.equal(initial[f"batchnorm1.{key}"], after[f"batchnorm1.{key}"]), key
    assert int(after["batchnorm1.num_batches_tracked"]) == 4


def test_presets_give_exact_values():
    from cnndsl.data.datasets import Dataset, Split, normalize_with, preset

    pixels = torch.tensor([0.0, 0.25, 1.0]).reshape(1, 1, 1, 3).repeat(1, 3, 1, 1)  # each channel 0, 1/4, 1

    def scaled(name):
        data = Dataset("x", Split(pixels.clone(), torch.zeros(1)), Split(pixels.clone(), torch.zeros(1)),
                       Split(pixels.clone(), torch.zeros(1)), ["a"])
        stats = normalize_with(data, preset(name, 3))
        return stats, data.train.x[0, :, 0].tolist(), data.test.x[0, :, 0].tolist()

    stats, x, test = scaled("imagenet")
    assert stats == {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]} and test == x
    for c, (m, s) in enumerate(zip(stats["mean"], stats["std"])):
        assert x[c] == pytest.approx([(0 - m) / s, (0.25 - m) / s, (1 - m) / s], rel=1e-6)
    assert x[0][0] == pytest.approx(-2.117904, abs=1e-6) and x[2][2] == pytest.approx(2.64, abs=1e-6)
    for name in ("inception", "keras_xception"):
        stats, x, _ = scaled(name)
        assert stats == {"mean": [0.5] * 3, "std": [0.5] * 3} and x == [[-1.0, -0.5, 1.0]] * 3  # Keras' x/127.5 - 1
    with pytest.raises(CnnError, match="`normalize: imagenet` is for 3-channel"):
        preset("imagenet", 1)


def test_normalize_takes_true_false_or_a_preset():
    assert load_recipe(None, normalize="imagenet").normalize == "imagenet"
    assert load_recipe(None, normalize=True).normalize is True
    with pytest.raises(CnnError) as e:
        load_recipe(None, normalize="imagenett")
    assert "takes true, false or a preset (imagenet, inception, keras_xception), got 'imagenett'" in e.value.message
    with pytest.raises(CnnError, match="frozen_batchnorm` takes one of inference, train"):
        load_recipe(None, frozen_batchnorm="eval")


def test_named_weights_without_their_normalisation_are_warned_of():
    from cnndsl.training.setup import preprocessing_mismatch

    warned = preprocessing_mismatch(load_recipe(None, init="torchvision:resnet18"))
    assert warned == ("torchvision:resnet18's weights were trained on images normalised with the imagenet preset, "
                      "and this run has `normalize: false`: add `normalize: imagenet` to the recipe so that the "
                      "weights see inputs like those they learned from")
    assert "has `normalize: true`" in preprocessing_mismatch(load_recipe(None, init="torchvision:vgg16",
                                                                         normalize=True))
    assert preprocessing_mismatch(load_recipe(None, init="torchvision:resnet18", normalize="imagenet")) is None
    assert preprocessing_mismatch(load_recipe(None, init="runs/a/best.pt")) is None  # a file: its own business
    assert preprocessing_mismatch(load_recipe(None)) is None
    assert "the inception preset" in preprocessing_mismatch(load_recipe(None, init="timm:xception"))
    for scaled in ("inception", "keras_xception"):  # one scaling, to [-1, 1], under two names
        assert preprocessing_mismatch(load_recipe(None, init="timm:xception", normalize=scaled)) is None
