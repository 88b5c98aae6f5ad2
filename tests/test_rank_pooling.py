"""Approximate rank pooling: the closed form, the MATLAB definition, and the three implementations agree."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fdp.rank_pooling import (
    rank_pool,
    rank_pool_gather,
    rank_pool_reference,
    rank_pool_torch,
    rank_pooling_weights,
)


def matlab_weights(frames: int) -> np.ndarray:
    """fw(i) = sum_{t=i..T} (2t - T - 1) / t, as Bilen et al.'s MATLAB code computes it."""
    return np.array([sum((2 * t - frames - 1) / t for t in range(i, frames + 1)) for i in range(1, frames + 1)])


@pytest.mark.parametrize("frames", range(1, 65))
def test_weights_any_length_match_matlab_and_sum_to_zero(frames):
    weights = rank_pooling_weights(frames)
    np.testing.assert_allclose(weights, matlab_weights(frames), rtol=0, atol=1e-11)
    assert abs(weights.sum()) < 1e-10


def test_weights_t8_known_values():
    expected = [-8.461, -1.461, 1.039, 2.039, 2.289, 2.089, 1.589, 0.875]
    np.testing.assert_allclose(rank_pooling_weights(8), expected, atol=1e-3)


@pytest.mark.parametrize("shape", [(8, 64, 64), (16, 3, 32, 32), (5, 64), (32, 7)])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_pooling_random_inputs_numpy_numba_torch_agree(shape, dtype):
    rng = np.random.default_rng(sum(shape))
    frames = (rng.integers(0, 256, shape) if dtype == np.uint8 else rng.standard_normal(shape)).astype(dtype)
    reference = rank_pool_reference(frames)
    scale = np.abs(reference).max()
    numba_out = rank_pool(frames)
    torch_out = rank_pool_torch(torch.from_numpy(frames.astype(np.float32)), dim=0).numpy()
    assert numba_out.shape == reference.shape == torch_out.shape
    np.testing.assert_allclose(numba_out, reference, rtol=0, atol=1e-5 * scale)
    np.testing.assert_allclose(torch_out, reference, rtol=0, atol=1e-5 * scale)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_pooling_still_clip_pools_to_zero(dtype):
    still = np.repeat(np.random.default_rng(0).integers(0, 256, (1, 48, 48)).astype(dtype), 8, axis=0)
    assert np.abs(rank_pool(still)).max() < 1e-3
    assert np.abs(rank_pool_reference(still)).max() < 1e-9


def test_gather_ring_buffer_equals_pooling_the_copied_window():
    rng = np.random.default_rng(3)
    ring = rng.integers(0, 256, (30, 16, 16)).astype(np.uint8)
    indices = np.array([27, 29, 1, 4, 6, 9, 12, 14])  # a resampled window that wraps around the ring
    np.testing.assert_allclose(rank_pool_gather(ring, indices), rank_pool_reference(ring[indices]), atol=2e-3)


def test_torch_pooling_time_axis_is_differentiable():
    features = torch.randn(2, 8, 5, requires_grad=True)
    pooled = rank_pool_torch(features, dim=1)
    assert pooled.shape == (2, 5)
    pooled.sum().backward()
    expected = torch.as_tensor(rank_pooling_weights(8), dtype=torch.float32)
    torch.testing.assert_close(features.grad[0, :, 0], expected)
