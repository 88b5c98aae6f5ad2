"""FDP's training objective: cross-entropy + lambda_di * dynamic-image MSE + lambda_rank * chronological rank loss."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from fdp.model import FDPOutput
from fdp.rank_pooling import rank_pool_torch


@dataclass(frozen=True)
class LossWeights:
    dynamic_image: float = 100.0  # lambda_di; the released FDP code uses 100
    rank: float = 1.0  # lambda_rank
    rank_margin: float = 0.1  # scores of later frames should exceed earlier ones by this much
    label_smoothing: float = 0.0


def chronological_rank_loss(scores: torch.Tensor, margin: float) -> torch.Tensor:
    """Mean over frame pairs t < t' of softplus(s_t - s_t' + margin): scores should rise with time, which is
    what rank pooling assumes. scores: (B, T)."""
    steps = scores.shape[1]
    earlier, later = torch.triu_indices(steps, steps, offset=1, device=scores.device)
    return F.softplus(scores[:, earlier] - scores[:, later] + margin).mean()


def dynamic_image_target(clip: torch.Tensor) -> torch.Tensor:
    """The rank pooling of the raw crops (B, T, C, H, W), min-max scaled per clip to [0, 1]; a still clip
    (no range to scale) maps to 0.5 everywhere.

    Pooled in float64 so that a still clip gives exactly 0, not float32 rounding noise that min-max scaling would
    blow up; a span under 1e-4 is far below one gray level (1/255) of real change and counts as still."""
    image = rank_pool_torch(clip.double(), dim=1)  # (B, C, H, W)
    flat = image.flatten(1)
    low = flat.min(dim=1, keepdim=True).values
    span = flat.max(dim=1, keepdim=True).values - low
    scaled = torch.where(span > 1e-4, (flat - low) / span.clamp_min(1e-4), torch.full_like(flat, 0.5))
    return scaled.reshape(image.shape).to(clip.dtype if clip.is_floating_point() else torch.float32)


def fdp_loss(output: FDPOutput, labels: torch.Tensor, clip: torch.Tensor, weights: LossWeights,
             class_weights: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Total loss and its parts (for logging). `clip` is the model's input, (B, T, C, H, W) in [0, 1]."""
    classification = F.cross_entropy(output.logits, labels, weight=class_weights,
                                     label_smoothing=weights.label_smoothing)
    total = classification
    parts = {"ce": float(classification.detach())}
    if weights.dynamic_image and output.dynamic_image is not None:
        reconstruction = F.mse_loss(output.dynamic_image, dynamic_image_target(clip))
        total = total + weights.dynamic_image * reconstruction
        parts["di"] = float(reconstruction.detach())
    if weights.rank:
        ranking = chronological_rank_loss(output.scores, weights.rank_margin)
        total = total + weights.rank * ranking
        parts["rank"] = float(ranking.detach())
    parts["total"] = float(total.detach())
    return total, parts
