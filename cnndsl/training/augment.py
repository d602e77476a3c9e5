"""Augmentation of training batches on their device: whole-batch tensor operations, no per-image Python.

Rotation, shear and random resized crops are one affine warp per image (a single `grid_sample` for
the batch). Random choices come from a generator of the run's own (saved in checkpoints), so a
resumed run draws the same ones. That generator is a CPU one wherever the images are, so a batch held on a GPU
gets the same draws as on the CPU; the draws (a few numbers an image) go to the device without waiting for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cnndsl.training.accel import to_device


@dataclass
class Augment:
    hflip: bool = False  # mirror half of the images left-right
    crop: int = 0  # pad by this many pixels, then crop back at a random place (the CIFAR recipe)
    rotate: float = 0.0  # rotate by up to this many degrees either way
    shear: float = 0.0  # shear by up to this many degrees either way
    resized_crop: float = 0.0  # crop a random box of at least this share of the area, then resize back
    color: float = 0.0  # scale each channel by a random factor in [1 - color, 1 + color]

    def __bool__(self) -> bool:
        return bool(self.hflip or self.crop or self.rotate or self.shear or self.resized_crop or self.color)

    def __call__(self, x, generator):
        """Augmented copy of a batch (N, C, H, W)."""
        import torch

        if x.dim() != 4:
            return x
        n = x.shape[0]
        if self.hflip:
            flip = to_device(torch.rand(n, generator=generator) < 0.5, x.device)
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        if self.crop:
            x = _random_crop(x, self.crop, generator)
        if self.rotate or self.shear or self.resized_crop:
            x = self._warp(x, generator)
        if self.color:
            factor = 1 + (torch.rand(n, x.shape[1], 1, 1, generator=generator) * 2 - 1) * self.color
            x = x * to_device(factor, x.device)
        return x

    def _warp(self, x, generator):
        import torch
        import torch.nn.functional as F

        n = x.shape[0]

        def uniform(low, high):
            return low + (high - low) * torch.rand(n, generator=generator)

        angle = uniform(-self.rotate, self.rotate) * math.pi / 180
        shear = torch.tan(uniform(-self.shear, self.shear) * math.pi / 180)
        area = uniform(self.resized_crop, 1.0) if self.resized_crop else torch.ones(n)
        aspect = torch.exp(uniform(math.log(3 / 4), math.log(4 / 3))) if self.resized_crop else torch.ones(n)
        sx, sy = (area * aspect).sqrt().clamp(max=1), (area / aspect).sqrt().clamp(max=1)
        tx, ty = uniform(-1, 1) * (1 - sx), uniform(-1, 1) * (1 - sy)
        cos, sin = torch.cos(angle), torch.sin(angle)
        # output grid -> input: scale and shift (the crop box), then shear, then rotate
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0] = cos * sx
        theta[:, 0, 1] = (cos * shear - sin) * sy
        theta[:, 1, 0] = sin * sx
        theta[:, 1, 1] = (sin * shear + cos) * sy
        theta[:, 0, 2], theta[:, 1, 2] = tx, ty
        grid = F.affine_grid(to_device(theta, x.device).to(x.dtype), list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _random_crop(x, pad: int, generator):
    import torch
    import torch.nn.functional as F

    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = to_device(torch.randint(0, 2 * pad + 1, (n,), generator=generator), x.device)
    dx = to_device(torch.randint(0, 2 * pad + 1, (n,), generator=generator), x.device)
    rows = (torch.arange(h, device=x.device)[None, :] + dy[:, None])[:, None, :, None]
    cols = (torch.arange(w, device=x.device)[None, :] + dx[:, None])[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    channel = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]
