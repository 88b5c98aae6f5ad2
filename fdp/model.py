"""The FDP model (Shao et al., ACM TOMM 2025; ARCHITECTURE.md §2).

A local-global feature-aware transformer encodes each frame on its own; a rank scorer maps each frame feature to a
rank feature r_t and a score s_t; approximate rank pooling over time gives the dynamic representation d; a MER head
classifies d and a decoder constructs the clip's dynamic image from it. Because frames are encoded independently,
the live system calls `encode_frames` once per new frame and caches the result (the encoder and head export as
two ONNX graphs).

Input crops are float in [0, 1], shaped (B, T, C, H, W) for clips or (N, C, H, W) for single frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from fdp.config import ModelConfig
from fdp.layers import ConvBNAct, GlobalRelationalAggregator, LocalRelationalAggregator, PatchEmbed
from fdp.rank_pooling import rank_pool_torch


@dataclass
class FDPOutput:
    logits: torch.Tensor  # (B, K)
    scores: torch.Tensor  # (B, T): rank scores s_t
    rank_features: torch.Tensor  # (B, T, D)
    pooled: torch.Tensor  # (B, D): the dynamic representation d
    dynamic_image: torch.Tensor | None  # (B, C, H, W) in [0, 1], when asked for


class FrameEncoder(nn.Module):
    """Conv stem (downsamples by 4), then stages of patch embedding, N_L LRAs and N_G GRAs; global average pool."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        c0, c1, c2 = config.stem_channels
        self.stem = nn.Sequential(
            ConvBNAct(config.in_chans, c0, stride=2), ConvBNAct(c0, c1), ConvBNAct(c1, c2), ConvBNAct(c2, c2, stride=2)
        )
        stages: list[nn.Module] = []
        width = c2
        for index, dim in enumerate(config.stage_dims):
            blocks: list[nn.Module] = [PatchEmbed(width, dim, stride=1 if index == 0 else 2)]
            blocks += [LocalRelationalAggregator(dim, config.head_dim, config.mlp_ratio, config.dropout)
                       for _ in range(config.local_blocks[index])]
            blocks += [GlobalRelationalAggregator(dim, config.head_dim, config.sr_ratios[index], config.mlp_ratio,
                                                  config.dropout)
                       for _ in range(config.global_blocks[index])]
            stages.append(nn.Sequential(*blocks))
            width = dim
        self.stages = nn.Sequential(*stages)
        self.norm = nn.BatchNorm2d(width)
        self.num_features = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, H, W) -> (N, F)
        return self.norm(self.stages(self.stem(x))).mean(dim=(2, 3))


class RankScorer(nn.Module):
    """A small MLP (Linear, GELU, Linear) maps a frame feature f_t to its rank feature r_t; s_t = w . r_t.

    There is no normalisation after the MLP: the scale of f_t is set by the encoder's closing BatchNorm, and the
    rank loss (a softplus of the score gap plus a margin) flattens once later frames lead by the margin, so it
    stops pulling r_t apart; weight decay does the rest. Identical frames give identical r_t, so a still window
    pools to exactly zero."""

    def __init__(self, in_features: int, rank_dim: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_features, rank_dim), nn.GELU(), nn.Linear(rank_dim, rank_dim))
        self.score = nn.Linear(rank_dim, 1, bias=False)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rank_features = self.mlp(features)
        return rank_features, self.score(rank_features).squeeze(-1)


class DynamicImageDecoder(nn.Module):
    """Maps the dynamic representation d to an image the size of a crop (upsampling convs, sigmoid output)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        channels = config.decoder_channels
        self.start_size = config.image_size // 2 ** len(channels)
        self.start_chans = channels[0]
        self.fc = nn.Linear(config.rank_dim, channels[0] * self.start_size ** 2)
        blocks: list[nn.Module] = []
        for index, chans in enumerate(channels):
            out_chans = channels[min(index + 1, len(channels) - 1)]
            blocks += [nn.Upsample(scale_factor=2, mode="nearest"), ConvBNAct(chans, out_chans)]
        self.blocks = nn.Sequential(*blocks)
        self.out = nn.Conv2d(channels[-1], config.in_chans, 3, padding=1)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:  # (B, D) -> (B, C, H, W)
        x = self.fc(pooled).reshape(-1, self.start_chans, self.start_size, self.start_size)
        return torch.sigmoid(self.out(self.blocks(x)))


class FDP(nn.Module):
    """Fine-grained dynamic perception: frame encoder, rank scorer, rank pooling, MER head, dynamic-image decoder."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.encoder = FrameEncoder(config)
        self.rank_scorer = RankScorer(self.encoder.num_features, config.rank_dim)
        # Micro-motion makes d tiny (and exactly 0 for a still window): normalizing it across clips lets both
        # heads see the differences that matter from the first step. It folds into the head graph at export.
        self.pooled_norm = nn.BatchNorm1d(config.rank_dim)
        self.head = nn.Sequential(
            nn.Linear(config.rank_dim, config.head_hidden), nn.GELU(), nn.Dropout(config.dropout),
            nn.Linear(config.head_hidden, config.num_classes),
        )
        self.decoder = DynamicImageDecoder(config)
        self.apply(_init_weights)

    def encode_frames(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, C, H, W) crops in [0, 1] -> rank features (N, D) and rank scores (N,). The per-frame graph."""
        return self.rank_scorer(self.encoder((frames - 0.5) / 0.5))

    def forward_features(self, clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, C, H, W) -> rank features (B, T, D) and scores (B, T)."""
        batch, steps = clip.shape[:2]
        rank_features, scores = self.encode_frames(clip.flatten(0, 1))
        return rank_features.reshape(batch, steps, -1), scores.reshape(batch, steps)

    @staticmethod
    def pool(rank_features: torch.Tensor) -> torch.Tensor:
        """Approximate rank pooling over time: (B, T, D) -> d (B, D)."""
        return rank_pool_torch(rank_features, dim=1)

    def forward_head(self, pooled: torch.Tensor) -> torch.Tensor:
        """d (B, D) -> class logits (B, K)."""
        return self.head(self.pooled_norm(pooled))

    def construct_dynamic_image(self, pooled: torch.Tensor) -> torch.Tensor:
        """d (B, D) -> the clip's dynamic image (B, C, H, W) in [0, 1]."""
        return self.decoder(self.pooled_norm(pooled))

    def forward(self, clip: torch.Tensor, with_dynamic_image: bool = True) -> FDPOutput:
        rank_features, scores = self.forward_features(clip)
        pooled = self.pool(rank_features)
        dynamic_image = self.construct_dynamic_image(pooled) if with_dynamic_image else None
        return FDPOutput(self.forward_head(pooled), scores, rank_features, pooled, dynamic_image)


def _init_weights(module: nn.Module) -> None:
    """Truncated-normal linear layers (as ViTs do); convolutions keep PyTorch's Kaiming default."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
