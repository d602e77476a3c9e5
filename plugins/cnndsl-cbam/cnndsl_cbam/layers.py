"""CBAM, the Convolutional Block Attention Module (Woo et al., ECCV 2018), as a torch module.

Generated code imports it (`from cnndsl_cbam.layers import CBAM`); cnndsl itself never does.
"""

from __future__ import annotations

import torch
from torch import nn


class CBAM(nn.Module):
    """Channel attention, then spatial attention, each a sigmoid gate multiplied into the features.

    Channel: sigmoid(MLP(avgpool(x)) + MLP(maxpool(x))), one MLP C -> C/r -> C (ReLU between) shared by both
    pooled vectors. Spatial: sigmoid(conv kxk([mean over channels, max over channels])), 2 -> 1 channels,
    padding k // 2, no bias (the paper's f^{7x7}).
    """

    def __init__(self, channels: int, reduction: int = 16, kernel: int = 7) -> None:
        super().__init__()
        hidden = channels // reduction
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels))
        self.spatial = nn.Conv2d(2, 1, kernel, padding=kernel // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.mlp(x.mean(dim=(2, 3))) + self.mlp(x.amax(dim=(2, 3))))
        x = x * gate[:, :, None, None]
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(pooled))
