"""Pretrained weights by name: the hub cache, checked downloads from a server on 127.0.0.1, offline hints."""

from __future__ import annotations

import hashlib

import pytest

from cnndsl import pretrained
from cnndsl.errors import CnnError

torch = pytest.importorskip("torch")


@pytest.fixture
def hub(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv("CNNDSL_WEIGHTS_MIRROR", raising=False)
    return tmp_path / "torch-home" / "hub" / "checkpoints"


def served_state_dict(root) -> tuple[bytes, str]:
    """A generated state_dict saved as torch.save does, and its torch.hub-style file name."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 2))
    path = root / "tmp.pth"
    torch.save(model.state_dict(), path)
    data = path.read_bytes()
    path.unlink()
    name = f"tiny-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    (root / name).write_bytes(data)
    return data, name


def test_every_entry_is_a_torchvision_address_with_a_checksum():
    for name, entry in pretrained.TORCHVISION.items():
        assert entry.url.startswith("https://download.pytorch.org/models/"), name
        assert len(entry.hash_prefix) >= 8 and entry.file_name.endswith(".pth")
    assert pretrained.TORCHVISION["resnet18"].hash_prefix == "f37072fd"
    assert pretrained.TORCHVISION["alexnet"].hash_prefix == "7be5be79"  # alexnet-owt-7be5be79.pth


# timm's names → the spec each fills (specs/NAME.cnn): timm's tensors come in the spec's order with its shapes
TIMM_SPECS = {"legacy_xception": "xception", "seresnet50": "seresnet50", "resnet18": "resnet18",
              "resnet34": "resnet34", "resnet50": "resnet50", "resnet152": "resnet152",
              "resnext50_32x4d": "resnext50_32x4d", "mobilenetv2_100": "mobilenet_v2",
              "efficientnet_b0": "efficientnet_b0"}


def test_every_timm_entry_is_timms_github_file_with_a_checksum_and_a_spec():
    from conftest import ROOT

    assert set(pretrained.TIMM) == set(TIMM_SPECS)
    for name, entry in pretrained.TIMM.items():
        assert entry.hub == "timm" and entry.label == f"timm:{name}"
        assert entry.url.startswith("https://github.com/") and "/pytorch-image-models/releases/download/" in entry.url
        assert len(entry.hash_prefix) >= 8 and entry.file_name.endswith(".pth")
        assert (ROOT / "specs" / f"{TIMM_SPECS[name]}.cnn").is_file()
    assert pretrained.lookup("timm:xception") is pretrained.TIMM["legacy_xception"]  # timm's own alias
    assert pretrained.TIMM["legacy_xception"].normalize == "inception"  # (x - 0.5) / 0.5, as timm's config says
    files = {e.file_name for e in pretrained.TORCHVISION.values()}
    assert files.isdisjoint(e.file_name for e in pretrained.TIMM.values())  # one hub cache holds both


def test_hub_dir_follows_torch(monkeypatch, tmp_path):
    monkeypatch.delenv("TORCH_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert pretrained.hub_dir() == tmp_path / "xdg" / "torch" / "hub" / "checkpoints"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    assert pretrained.hub_dir() == tmp_path / "th" / "hub" / "checkpoints"


def test_download_from_a_local_server_is_verified_and_loads(server, hub):
    root, url = server
    data, name = served_state_dict(root)
    entry = pretrained.Pretrained("tiny", url + name)
    path = pretrained.fetch(entry)
    assert path == hub / name and path.read_bytes() == data
    assert sorted(p.name for p in hub.iterdir()) == [name]  # no .part left behind
    from cnndsl.weights import read_state_dict

    state = read_state_dict(path)
    assert list(state) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    (root / name).unlink()  # the cached file is used as it is: no second download
    assert pretrained.fetch(entry) == path


def test_a_file_whose_checksum_differs_is_never_kept(server, hub):
    root, url = server
    data, name = served_state_dict(root)
    (root / name).write_bytes(data + b"tampered")
    with pytest.raises(CnnError) as e:
        pretrained.fetch(pretrained.Pretrained("tiny", url + name))
    assert "SHA-256" in e.value.message and f"does not start with {name[5:13]}" in e.value.message
    assert not hub.exists() or list(hub.iterdir()) == []


def test_a_mirror_serves_the_canonical_file_name(server, hub, monkeypatch):
    root, url = server
    _, name = served_state_dict(root)
    monkeypatch.setenv("CNNDSL_WEIGHTS_MIRROR", url)
    entry = pretrained.Pretrained("tiny", "https://download.pytorch.org/models/" + name)
    assert pretrained.fetch(entry).read_bytes() == (root / name).read_bytes()


def test_offline_the_message_says_which_file_to_put_where(hub, monkeypatch):
    monkeypatch.setenv("CNNDSL_WEIGHTS_MIRROR", "http://127.0.0.1:9/")  # the discard port: nothing listens
    with pytest.raises(CnnError) as e:
        pretrained.resolve("torchvision:resnet18", timeout=2)
    assert "cannot download torchvision:resnet18" in e.value.message
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in e.value.hint
    assert str(hub / "resnet18-f37072fd.pth") in e.value.hint


def test_a_file_already_in_the_hub_cache_is_used(hub):
    hub.mkdir(parents=True)
    (hub / "resnet50-11ad3fa6.pth").write_bytes(b"as torchvision left it")
    assert pretrained.resolve("torchvision:resnet50") == hub / "resnet50-11ad3fa6.pth"
    assert pretrained.resolve("runs/x/best.pt") == "runs/x/best.pt"


def test_unknown_names_get_a_suggestion():
    with pytest.raises(CnnError) as e:
        pretrained.resolve("torchvision:resnet05")
    assert "no pretrained weights named 'torchvision:resnet05'" in e.value.message
    assert e.value.hint.startswith("did you mean `torchvision:resnet50`?")
    hints = {}
    for asked in ("torchvision:xception", "torchvision:seresnet50", "timm:legacy_xeption", "timm:vgg16"):
        with pytest.raises(CnnError) as e:
            pretrained.lookup(asked)
        hints[asked] = e.value.hint.split(" known: ")[0]
    assert hints == {  # by the model's name alone: `torchvision:xception` once suggested torchvision:alexnet
        "torchvision:xception": "cnndsl knows no torchvision weights named `xception`; timm's are "
                                "`timm:legacy_xception`.",
        "torchvision:seresnet50": "cnndsl knows no torchvision weights named `seresnet50`; timm's are "
                                  "`timm:seresnet50`.",
        "timm:legacy_xeption": "did you mean `timm:legacy_xception`?",
        "timm:vgg16": "cnndsl knows no timm weights named `vgg16`; torchvision's are `torchvision:vgg16`."}


def test_timm_weights_from_a_local_server_are_verified_and_fill_the_spec(server, hub, monkeypatch):
    """`--init timm:resnet18`: the same checked download as torchvision's, into the same hub cache."""
    import cnndsl
    from conftest import ROOT

    root, url = server
    torch.manual_seed(0)
    spec = (ROOT / "specs/resnet18.cnn").read_text().replace("input 3x224x224", "input 3x32x32")
    served = cnndsl.loads(spec).build().state_dict()
    torch.save(served, root / "tmp.pth")
    data = (root / "tmp.pth").read_bytes()
    name = f"resnet18_a1_0-{hashlib.sha256(data).hexdigest()[:8]}.pth"  # timm's file name, this file's checksum
    (root / name).write_bytes(data)
    monkeypatch.setitem(pretrained.TIMM, "resnet18", pretrained.Pretrained("resnet18", url + name, hub="timm"))
    path = pretrained.resolve("timm:resnet18")
    assert path == hub / name and path.read_bytes() == data
    model = cnndsl.loads(spec, classes=10).build()
    report = cnndsl.load_weights(model, path, strict=False)
    assert (len(report.loaded), report.missing) == (len(served) - 2, ["dense1.weight", "dense1.bias"])
    (root / name).write_bytes(data + b"tampered")
    path.unlink()
    with pytest.raises(CnnError, match="cannot download timm:resnet18 from .* does not start with"):
        pretrained.resolve("timm:resnet18")
    assert not path.exists()


def test_oversized_downloads_are_refused(server, tmp_path):
    from cnndsl.download import download

    root, url = server
    (root / "big.bin").write_bytes(b"x" * 5000)
    target = tmp_path / "big.bin"
    with pytest.raises(ValueError, match="more than 4,096 bytes"):
        download(url + "big.bin", target, lambda p: None, limit=4096)
    assert not target.exists() and not (tmp_path / "big.bin.part").exists()
