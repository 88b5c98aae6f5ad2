"""Building blocks of the local-global feature-aware transformer (FDP §3.2), as the paper describes them.

Feature maps stay (B, C, H, W) throughout so the blocks export to plain ONNX convolutions and matrix products.
Norms are BatchNorm, as in the paper's NextViT lineage: they fold into the convolutions at export time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvBNAct(nn.Sequential):
    """3x3 (or k x k) convolution, BatchNorm, ReLU."""

    def __init__(self, in_chans: int, out_chans: int, kernel_size: int = 3, stride: int = 1, groups: int = 1):
        super().__init__(
            nn.Conv2d(in_chans, out_chans, kernel_size, stride, kernel_size // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_chans),
            nn.ReLU(inplace=True),
        )


class PatchEmbed(nn.Module):
    """Patch embedding between stages: a strided 3x3 conv when it downsamples, a pointwise conv when only the
    width changes, nothing otherwise."""

    def __init__(self, in_chans: int, out_chans: int, stride: int):
        super().__init__()
        if stride == 1 and in_chans == out_chans:
            self.proj: nn.Module = nn.Identity()
        else:
            kernel_size = 3 if stride > 1 else 1
            self.proj = nn.Sequential(
                nn.Conv2d(in_chans, out_chans, kernel_size, stride, kernel_size // 2, bias=False),
                nn.BatchNorm2d(out_chans),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class ConvMlp(nn.Module):
    """The transformer MLP on a feature map: norm, pointwise expand, ReLU, pointwise project."""

    def __init__(self, dim: int, mlp_ratio: float, drop: float = 0.0):
        super().__init__()
        hidden = max(8, int(round(dim * mlp_ratio)))
        self.norm = nn.BatchNorm2d(dim)
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, dim, 1)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(self.norm(x))))))


class LocalRelationalAggregator(nn.Module):
    """LRA: the channels split into h heads, each head conv3x3-BN-ReLU (one grouped conv), concatenated, a
    pointwise conv and a residual; then an MLP with a residual. Aggregates local context for subtle motion."""

    def __init__(self, dim: int, head_dim: int, mlp_ratio: float, drop: float = 0.0):
        super().__init__()
        self.heads = ConvBNAct(dim, dim, 3, groups=dim // head_dim)
        self.proj = nn.Conv2d(dim, dim, 1)
        self.mlp = ConvMlp(dim, mlp_ratio, drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.proj(self.heads(x))
        return x + self.mlp(x)


class SpatialReductionAttention(nn.Module):
    """Multi-head self-attention whose keys and values come from an sr x sr average-pooled map, so the cost
    stays linear in the number of query tokens on early, large stages."""

    def __init__(self, dim: int, head_dim: int, sr_ratio: int, attn_drop: float = 0.0):
        super().__init__()
        self.num_heads = dim // head_dim
        self.head_dim = head_dim
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.reduce: nn.Module = (
            nn.Sequential(nn.AvgPool2d(sr_ratio, sr_ratio), nn.BatchNorm2d(dim)) if sr_ratio > 1 else nn.Identity()
        )
        self.attn_drop = attn_drop

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C, H, W)
        batch, chans, height, width = x.shape
        queries = x.flatten(2).transpose(1, 2)  # (B, N, C)
        context = self.reduce(x).flatten(2).transpose(1, 2)  # (B, M, C)
        q = self.q(queries).reshape(batch, -1, self.num_heads, self.head_dim).transpose(1, 2)  # (B, h, N, d)
        k, v = self.kv(context).reshape(batch, -1, 2, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop if self.training else 0.0)
        out = self.proj(out.transpose(1, 2).reshape(batch, height * width, chans))
        return out.transpose(1, 2).reshape(batch, chans, height, width)


class GlobalRelationalAggregator(nn.Module):
    """GRA: a pointwise conv, multi-head self-attention with spatial reduction and a residual; then an MLP with
    a residual. Relates distant face regions (brow and mouth move together in many action units)."""

    def __init__(self, dim: int, head_dim: int, sr_ratio: int, mlp_ratio: float, drop: float = 0.0):
        super().__init__()
        self.norm = nn.BatchNorm2d(dim)
        self.pointwise = nn.Conv2d(dim, dim, 1)
        self.attention = SpatialReductionAttention(dim, head_dim, sr_ratio, attn_drop=drop)
        self.mlp = ConvMlp(dim, mlp_ratio, drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.pointwise(self.norm(x)))
        return x + self.mlp(x)
