"""Augmentation of training batches on their device: whole-batch tensor operations, no per-image Python.

Random choices come from a generator of the run's own (saved in checkpoints), so a resumed run draws
the same ones.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Augment:
    hflip: bool = False  # mirror half of the images left-right
    crop: int = 0  # pad by this many pixels, then crop back at a random place (the CIFAR recipe)

    def __bool__(self) -> bool:
        return self.hflip or self.crop > 0

    def __call__(self, x, generator):
        """Augmented copy of a batch (N, C, H, W)."""
        import torch

        if x.dim() != 4:
            return x
        n = x.shape[0]
        if self.hflip:
            flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        if self.crop:
            x = _random_crop(x, self.crop, generator)
        return x


def _random_crop(x, pad: int, generator):
    import torch
    import torch.nn.functional as F

    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    rows = (torch.arange(h, device=x.device)[None, :] + dy[:, None])[:, None, :, None]
    cols = (torch.arange(w, device=x.device)[None, :] + dx[:, None])[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    channel = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]
