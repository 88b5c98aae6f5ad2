"""The FDP model: every preset builds, shapes, the per-frame graph, losses, and that time carries motion."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fdp.config import PRESETS, ModelConfig, preset
from fdp.errors import ConfigError
from fdp.losses import LossWeights, chronological_rank_loss, dynamic_image_target, fdp_loss
from fdp.model import FDP, count_parameters


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_builds_forward_shapes(name):
    config = preset(name)
    model = FDP(config).eval()
    clip = torch.rand(2, config.frames, config.in_chans, config.image_size, config.image_size)
    with torch.no_grad():
        out = model(clip)
    assert out.logits.shape == (2, config.num_classes)
    assert out.scores.shape == (2, config.frames)
    assert out.rank_features.shape == (2, config.frames, config.rank_dim)
    assert out.pooled.shape == (2, config.rank_dim)
    assert out.dynamic_image.shape == (2, config.in_chans, config.image_size, config.image_size)
    assert 0.0 <= float(out.dynamic_image.min()) and float(out.dynamic_image.max()) <= 1.0
    print(f"{name}: {count_parameters(model):,} parameters")


def test_encode_frames_single_frames_match_clip_path():
    model = FDP(preset("tiny")).eval()
    clip = torch.rand(3, 4, 1, 32, 32)
    with torch.no_grad():
        features, scores = model.forward_features(clip)
        one_by_one = [model.encode_frames(clip[:, t]) for t in range(4)]
    torch.testing.assert_close(features, torch.stack([f for f, _ in one_by_one], dim=1))
    torch.testing.assert_close(scores, torch.stack([s for _, s in one_by_one], dim=1))


def test_model_still_clip_pools_to_zero_representation():
    model = FDP(preset("tiny")).eval()
    still = torch.rand(1, 1, 1, 32, 32).repeat(1, 4, 1, 1, 1)
    with torch.no_grad():
        assert float(model(still).pooled.abs().max()) < 1e-6


def test_config_json_round_trip_and_bad_config_rejected():
    config = preset("paper", class_names=("a", "b", "c"))
    assert ModelConfig.from_json(config.to_json()) == config
    with pytest.raises(ConfigError, match="local_blocks has 1 entries for 2 stages"):
        preset("tiny", local_blocks=(1,))
    with pytest.raises(ConfigError, match="unknown model preset 'huge'"):
        preset("huge")


def test_rank_loss_rising_scores_lower_than_falling():
    rising = 10.0 * torch.arange(8.0).unsqueeze(0)  # well separated: every pair beyond the margin
    assert chronological_rank_loss(rising, 0.1) < 0.01 < chronological_rank_loss(rising.flip(1), 0.1)


def test_dynamic_image_target_range_and_still_clip():
    clip = torch.rand(2, 8, 1, 16, 16)
    target = dynamic_image_target(clip)
    assert target.shape == (2, 1, 16, 16)
    assert float(target.min()) == 0.0 and float(target.max()) == 1.0
    assert torch.all(dynamic_image_target(clip[:, :1].repeat(1, 8, 1, 1, 1)) == 0.5)


def drifting_blob_clips(count: int, frames: int, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Clips of a Gaussian blob drifting up (label 0) or down (label 1). Every single frame looks alike: the
    class is only in the direction of motion, so only the temporal path can tell them apart. The blob grows over
    time in both classes, so a per-frame scorer can rank frames chronologically (as an expression's intensity
    lets it rank onset-to-apex frames)."""
    clips = np.zeros((count, frames, 1, size, size), np.float32)
    labels = rng.integers(0, 2, count)
    yy, xx = np.mgrid[0:size, 0:size]
    for i in range(count):
        x0, y0 = rng.uniform(size * 0.3, size * 0.7, 2)
        direction = -1.0 if labels[i] == 0 else 1.0
        for t in range(frames):
            y = y0 + direction * (t - (frames - 1) / 2) * 1.5
            clips[i, t, 0] = np.exp(-((xx - x0) ** 2 + (yy - y) ** 2) / (2 * (2.0 + 0.4 * t) ** 2))
    return clips, labels


@pytest.mark.slow
def test_training_direction_of_motion_reaches_near_perfect_accuracy():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    config = preset("tiny", class_names=("up", "down"))
    model = FDP(config)
    train_x, train_y = drifting_blob_clips(256, config.frames, config.image_size, rng)
    test_x, test_y = drifting_blob_clips(128, config.frames, config.image_size, rng)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    weights = LossWeights(dynamic_image=1.0, rank=0.5)
    for _ in range(16):
        order = rng.permutation(len(train_x))
        for start in range(0, len(order), 32):
            batch = order[start:start + 32]
            clip = torch.from_numpy(train_x[batch])
            loss, _ = fdp_loss(model(clip), torch.from_numpy(train_y[batch]), clip, weights)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        out = model(torch.from_numpy(test_x))
    accuracy = float((out.logits.argmax(1).numpy() == test_y).mean())
    assert accuracy >= 0.95, accuracy
    # The rank loss orders the scores: most held-out clips have scores rising from first to last frame.
    rising = (out.scores[:, 1:] > out.scores[:, :-1]).float().mean()
    assert float(rising) >= 0.9, float(rising)
