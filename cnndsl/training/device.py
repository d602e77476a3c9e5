"""Where to run: `--device auto` takes CUDA, then Apple's Metal, then the CPU."""

from __future__ import annotations

from cnndsl.errors import CnnError


def pick_device(name: str):
    """The torch device `name` (auto, cpu, cuda, mps) names, or an error when it is not here."""
    import torch

    mps = getattr(torch.backends, "mps", None)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise CnnError("--device cuda: no CUDA device is available", hint="use --device cpu or auto")
    if name == "mps" and not (mps is not None and mps.is_available()):
        raise CnnError("--device mps: Apple's Metal backend is not available here", hint="use --device cpu or auto")
    return torch.device(name)
