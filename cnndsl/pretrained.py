"""Pretrained weights by name: `torchvision:resnet50` is torchvision's published ImageNet file.

The table gives each name its canonical address, as torchvision publishes it (its `Weights.DEFAULT`). The
file name carries the first hex digits of the file's SHA-256, as torch.hub checks it. Files go to
PyTorch's hub cache (`$TORCH_HOME/hub/checkpoints`), so a file torchvision already downloaded is used as it
is, and a file put there by hand makes a machine without network work. Loading goes through
`load_weights`, which maps torchvision's names onto the spec's (the reference specs in `specs/` are laid out
as torchvision's models).

timm's Xception and SE-ResNet-50 are not in the table: timm publishes them on the Hugging Face Hub as
`model.safetensors`, with no checksum to pin. Download such a file yourself and pass its path to `--init`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from cnndsl.download import digest, download
from cnndsl.errors import CnnError, did_you_mean

PREFIX = "torchvision:"
_BASE = "https://download.pytorch.org/models/"


@dataclass(frozen=True)
class Pretrained:
    name: str
    url: str
    normalize: str = "imagenet"  # the preprocessing the weights were trained with (data/datasets.py presets)

    @property
    def file_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def hash_prefix(self) -> str:
        # torch.hub's rule: the hex digits after the last '-' of the file name (resnet18-f37072fd.pth)
        found = re.search(r"-([a-f0-9]+)\.", self.file_name)
        if not found:
            raise ValueError(f"{self.file_name} carries no checksum")
        return found.group(1)


def _entry(name: str, file: str) -> Pretrained:
    return Pretrained(name, _BASE + file)


# torchvision 0.29's Weights.DEFAULT of each classification model with a spec in specs/
TORCHVISION = {e.name: e for e in (
    _entry("alexnet", "alexnet-owt-7be5be79.pth"),
    _entry("vgg16", "vgg16-397923af.pth"),
    _entry("vgg19", "vgg19-dcbb9e9d.pth"),
    _entry("resnet18", "resnet18-f37072fd.pth"),
    _entry("resnet34", "resnet34-b627a593.pth"),
    _entry("resnet50", "resnet50-11ad3fa6.pth"),
    _entry("resnet152", "resnet152-f82ba261.pth"),
    _entry("googlenet", "googlenet-1378be20.pth"),
    _entry("mobilenet_v2", "mobilenet_v2-7ebf99e0.pth"),
    _entry("mobilenet_v3_large", "mobilenet_v3_large-5c1a4163.pth"),
    _entry("efficientnet_b0", "efficientnet_b0_rwightman-7f5810bc.pth"),
    _entry("densenet121", "densenet121-a639ec97.pth"),
    _entry("resnext50_32x4d", "resnext50_32x4d-1a0047aa.pth"),
    _entry("shufflenet_v2_x1_0", "shufflenetv2_x1-5666bf0f80.pth"),
    _entry("convnext_tiny", "convnext_tiny-983f1562.pth"),
)}


def hub_dir() -> Path:
    """Where torch.hub keeps downloaded weights (torch.hub.get_dir() / "checkpoints"), without importing torch."""
    home = os.environ.get("TORCH_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "torch")
    return Path(home).expanduser() / "hub" / "checkpoints"


def is_named(source) -> bool:
    return isinstance(source, str) and source.startswith(PREFIX)


def lookup(source: str) -> Pretrained:
    name = source[len(PREFIX):]
    if name not in TORCHVISION:
        guess = did_you_mean(PREFIX + name, [PREFIX + n for n in TORCHVISION])
        raise CnnError(f"no pretrained weights named {source!r}",
                       hint=(guess + " " if guess else "") + "known: " + ", ".join(PREFIX + n for n in TORCHVISION))
    return TORCHVISION[name]


def resolve(source, timeout: float = 60.0):
    """`source` itself, or for `torchvision:NAME` the path of that file in the hub cache (downloaded if missing)."""
    return fetch(lookup(source), timeout=timeout) if is_named(source) else source


def fetch(entry: Pretrained, folder: Path | None = None, timeout: float = 60.0) -> Path:
    folder = folder or hub_dir()
    target = folder / entry.file_name
    if target.is_file():
        return target  # torchvision's own download, or one put there by hand
    mirror = os.environ.get("CNNDSL_WEIGHTS_MIRROR")
    url = mirror.rstrip("/") + "/" + entry.file_name if mirror else entry.url
    try:
        folder.mkdir(parents=True, exist_ok=True)
        download(url, target, lambda part: _check(part, entry), timeout)
    except (OSError, ValueError) as e:
        raise CnnError(f"cannot download {PREFIX}{entry.name} from {url}: {e}",
                       hint=f"offline? download {entry.url} on another machine and put it at {target} "
                       "(or set TORCH_HOME to a folder whose hub/checkpoints holds it)") from None
    return target


def _check(part: Path, entry: Pretrained) -> str | None:
    got = digest(part, "sha256")
    if got.startswith(entry.hash_prefix):
        return None
    return f"its SHA-256 {got[:16]}... does not start with {entry.hash_prefix}, as its name says"
