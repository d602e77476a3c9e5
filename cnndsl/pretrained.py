"""Pretrained weights by name: `torchvision:resnet50` is torchvision's published ImageNet file, `timm:xception`
timm's (Hands-On ML's Xception).

The tables give each name its canonical address: torchvision's `Weights.DEFAULT`, and for timm the file of
the model's default pretrained tag where timm's config names one on GitHub (`legacy_xception.tf_in1k`,
`resnet50.a1_in1k`...). Each file name carries the first hex digits of the file's SHA-256, as torch.hub
checks it. Files go to PyTorch's hub cache (`$TORCH_HOME/hub/checkpoints`), so a file torchvision (or timm,
through torch.hub) already downloaded is used as it is, and a file put there by hand makes a machine without
network work. Loading goes through `load_weights`, which maps their names onto the spec's (the reference
specs in `specs/` are laid out as torchvision's models, whose tensors timm's come in the same order as).

timm's models whose weights are only on the Hugging Face Hub (its VGG, DenseNet and ConvNeXt weights, as
`model.safetensors`) are not in the table: there is no checksum to pin. Download such a file yourself and
pass its path to `--init`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from cnndsl.download import digest, download
from cnndsl.errors import CnnError

PREFIX = "torchvision:"
_BASE = "https://download.pytorch.org/models/"


@dataclass(frozen=True)
class Pretrained:
    name: str
    url: str
    normalize: str = "imagenet"  # the preprocessing the weights were trained with (data/datasets.py presets)
    hub: str = "torchvision"  # whose name it is: torchvision or timm

    @property
    def label(self) -> str:
        return f"{self.hub}:{self.name}"

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


def _timm(name: str, path: str, normalize: str = "imagenet") -> Pretrained:
    return Pretrained(name, "https://github.com/" + path, normalize, "timm")


# timm 1.0's default pretrained tag of each model with a spec in specs/ whose file timm's config places on GitHub
# (tests/test_torchvision_parity.py: each spec takes timm's tensors and gives timm's outputs. legacy_xception's
# file pairs ambiguously by order: timm registers blocks 1-3's projection `skip` before their body `rep`, so
# load_weights leaves those 15 modules unloaded and says so; from timm's module it pairs by structure, exactly)
TIMM = {e.name: e for e in (
    _timm("legacy_xception", "rwightman/pytorch-image-models/releases/download/v0.1-cadene/xception-43020ad28.pth",
          "inception"),  # tf_in1k: Keras' ImageNet weights, on images scaled to [-1, 1]
    _timm("seresnet50", "huggingface/pytorch-image-models/releases/download/v0.1-rsb-weights/"
          "seresnet50_a1_0-ffa00869.pth"),
    _timm("resnet18", "huggingface/pytorch-image-models/releases/download/v0.1-rsb-weights/resnet18_a1_0-d63eafa0.pth"),
    _timm("resnet34", "huggingface/pytorch-image-models/releases/download/v0.1-rsb-weights/resnet34_a1_0-46f8f793.pth"),
    _timm("resnet50", "rwightman/pytorch-image-models/releases/download/v0.1-rsb-weights/resnet50_a1_0-14fe96d1.pth"),
    _timm("resnet152", "rwightman/pytorch-image-models/releases/download/v0.1-rsb-weights/resnet152_a1h-dc400468.pth"),
    _timm("resnext50_32x4d", "rwightman/pytorch-image-models/releases/download/v0.1-rsb-weights/"
          "resnext50_32x4d_a1h-0146ab0a.pth"),
    _timm("mobilenetv2_100", "rwightman/pytorch-image-models/releases/download/v0.1-weights/"
          "mobilenetv2_100_ra-b33bc2c4.pth"),
    _timm("efficientnet_b0", "rwightman/pytorch-image-models/releases/download/v0.1-weights/"
          "efficientnet_b0_ra-3dd342df.pth"),
)}
HUBS = {"torchvision": TORCHVISION, "timm": TIMM}
ALIASES = {"timm:xception": "timm:legacy_xception"}  # timm's own: it renamed xception, and still takes the name


def hub_dir() -> Path:
    """Where torch.hub keeps downloaded weights (torch.hub.get_dir() / "checkpoints"), without importing torch."""
    home = os.environ.get("TORCH_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "torch")
    return Path(home).expanduser() / "hub" / "checkpoints"


def is_named(source) -> bool:
    return isinstance(source, str) and source.partition(":")[0] in HUBS


def lookup(source: str) -> Pretrained:
    hub, _, name = ALIASES.get(source, source).partition(":")
    if name in HUBS.get(hub, {}):
        return HUBS[hub][name]
    known = ", ".join(e.label for table in HUBS.values() for e in table.values())
    raise CnnError(f"no pretrained weights named {source!r}", hint=_suggestion(hub, name) + "known: " + known)


def _suggestion(hub: str, name: str) -> str:
    """The nearest name, compared by the model's name alone (a shared `torchvision:` made every name look near):
    the same name in the other hub (torchvision has no Xception; timm has `timm:legacy_xception`), else a near
    name in the hub asked (`torchvision:resnet05` → resnet50), else a near one in the other."""
    ours = {label: n for label, n in _labels().items() if label.startswith(hub + ":")}
    others = {label: n for label, n in _labels().items() if not label.startswith(hub + ":")}
    bare = name.lower()
    same = next((label for label, n in others.items() if n == bare), None)
    near = same or _nearest(bare, ours) or _nearest(bare, others)
    if near is None:
        return ""
    near = ALIASES.get(near, near)
    if near.startswith(hub + ":"):
        return f"did you mean `{near}`? "
    return f"cnndsl knows no {hub} weights named `{name}`; {near.partition(':')[0]}'s are `{near}`. "


def _labels() -> dict[str, str]:
    """Every name we know, with its model's name: {"timm:legacy_xception": "legacy_xception", "timm:xception": ...}."""
    labels = {e.label: e.name for table in HUBS.values() for e in table.values()}
    return {**labels, **{alias: alias.partition(":")[2] for alias in ALIASES}}


def _nearest(bare: str, labels: dict[str, str]) -> str | None:
    """The label whose name is nearest `bare`: a typo away (difflib's ratio, as did_you_mean), else one that holds
    it or that it holds (xception in legacy_xception)."""
    import difflib

    close = difflib.get_close_matches(bare, list(labels.values()), n=1, cutoff=0.6)
    if close:
        return next(label for label, n in labels.items() if n == close[0])
    held = [label for label, n in labels.items() if len(bare) >= 4 and (bare in n or n in bare)]
    return held[0] if held else None


def resolve(source, timeout: float = 60.0):
    """`source` itself, or for `torchvision:NAME` or `timm:NAME` the path of that file in the hub cache
    (downloaded if missing)."""
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
        raise CnnError(f"cannot download {entry.label} from {url}: {e}",
                       hint=f"offline? download {entry.url} on another machine and put it at {target} "
                       "(or set TORCH_HOME to a folder whose hub/checkpoints holds it)") from None
    return target


def _check(part: Path, entry: Pretrained) -> str | None:
    got = digest(part, "sha256")
    if got.startswith(entry.hash_prefix):
        return None
    return f"its SHA-256 {got[:16]}... does not start with {entry.hash_prefix}, as its name says"
