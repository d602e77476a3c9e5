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


def test_oversized_downloads_are_refused(server, tmp_path):
    from cnndsl.download import download

    root, url = server
    (root / "big.bin").write_bytes(b"x" * 5000)
    target = tmp_path / "big.bin"
    with pytest.raises(ValueError, match="more than 4,096 bytes"):
        download(url + "big.bin", target, lambda p: None, limit=4096)
    assert not target.exists() and not (tmp_path / "big.bin.part").exists()
