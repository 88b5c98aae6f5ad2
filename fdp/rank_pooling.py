"""Approximate rank pooling (Bilen et al., "Dynamic Image Networks"): one definition, three implementations.

The weights are alpha_t = 2(T - t + 1) - (T + 1)(H_T - H_{t-1}), t = 1..T (oldest first), H_k the k-th harmonic
number. They equal the MATLAB definition fw(i) = sum_{t=i..T} (2t - T - 1) / t and sum to zero, so a still
window pools to exactly zero. A NumPy reference, a Numba kernel (the live path) and a torch op (training) compute
sum_t alpha_t x_t; the tests hold them equal.

No O(1)-per-frame sliding update exists. Writing alpha_t = A - 2t + (T + 1) H_{t-1} splits the pool into
S0 = sum x_t, S1 = sum t x_t and SH = sum H_{t-1} x_t. S0 and S1 slide in O(N) per frame, but shifting SH by one
frame needs sum x_t / (t - 1), which needs a 1/(t(t-1))-weighted sum, and so on without end: the 1/t kernel
satisfies no finite recurrence (its generating function -ln(1 - z) is not rational). Besides, the live window
resamples T steps over a duration, so the frames it pools do not simply shift by one. The live form is therefore
the full O(T*N) sum, done without copying: `rank_pool_gather` pools T rows picked out of a ring buffer in place.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numba import njit


@lru_cache(maxsize=64)
def _weights_f64(frames: int) -> np.ndarray:
    harmonic = np.concatenate(([0.0], np.cumsum(1.0 / np.arange(1, frames + 1))))  # H_0..H_T
    t = np.arange(1, frames + 1)
    weights = 2.0 * (frames - t + 1) - (frames + 1) * (harmonic[frames] - harmonic[t - 1])
    weights.setflags(write=False)
    return weights


def rank_pooling_weights(frames: int, dtype: np.dtype | type = np.float64) -> np.ndarray:
    """alpha_1..alpha_T for a window of `frames` steps, oldest first."""
    if frames < 1:
        raise ValueError(f"rank pooling needs at least one frame, got {frames}")
    return _weights_f64(frames).astype(dtype)


def rank_pool_reference(frames: np.ndarray) -> np.ndarray:
    """NumPy reference: pool a (T, ...) array over its first axis, in float64."""
    weights = rank_pooling_weights(frames.shape[0])
    return np.tensordot(weights, frames.astype(np.float64), axes=(0, 0))


@njit(cache=True, nogil=True, fastmath=True)
def _pool_rows(rows: np.ndarray, weights: np.ndarray) -> np.ndarray:  # (T, N) -> (N,)
    out = np.zeros(rows.shape[1], dtype=np.float32)
    for t in range(rows.shape[0]):
        w = weights[t]
        row = rows[t]
        for n in range(rows.shape[1]):
            out[n] += w * row[n]
    return out


@njit(cache=True, nogil=True, fastmath=True)
def _pool_gathered_rows(buffer: np.ndarray, indices: np.ndarray, weights: np.ndarray) -> np.ndarray:
    out = np.zeros(buffer.shape[1], dtype=np.float32)
    for t in range(indices.shape[0]):
        w = weights[t]
        row = buffer[indices[t]]
        for n in range(buffer.shape[1]):
            out[n] += w * row[n]
    return out


def _as_rows(array: np.ndarray) -> np.ndarray:
    if array.dtype not in (np.uint8, np.float32):
        array = array.astype(np.float32)
    return np.ascontiguousarray(array.reshape(array.shape[0], -1))


def rank_pool(frames: np.ndarray) -> np.ndarray:
    """Numba kernel: pool a (T, ...) uint8 or float32 array over its first axis; returns float32 of shape (...)."""
    weights = rank_pooling_weights(frames.shape[0], np.float32)
    return _pool_rows(_as_rows(frames), weights).reshape(frames.shape[1:])


def rank_pool_gather(buffer: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Pool buffer[indices[0]], ..., buffer[indices[T-1]] (oldest first) without copying the window out.

    `buffer` is a (capacity, ...) ring of uint8 or float32 rows, as the live window keeps its cached rank
    features and crops; `indices` picks the T resampled steps.
    """
    rows = buffer.reshape(buffer.shape[0], -1)
    if rows.dtype not in (np.uint8, np.float32) or not rows.flags.c_contiguous:
        rows = _as_rows(buffer)
    weights = rank_pooling_weights(len(indices), np.float32)
    return _pool_gathered_rows(rows, np.asarray(indices, dtype=np.int64), weights).reshape(buffer.shape[1:])


def warm_up() -> None:
    """Compile (or load from Numba's cache) every specialisation the live loop uses, before the first frame."""
    for dtype in (np.uint8, np.float32):
        window = np.zeros((2, 4), dtype=dtype)
        rank_pool(window)
        rank_pool_gather(window, np.array([0, 1]))


def rank_pool_torch(frames: torch.Tensor, dim: int = 1) -> torch.Tensor:  # noqa: F821 (torch is optional)
    """Torch op used in training: pool along `dim` (the time axis), differentiable."""
    import torch

    weights = torch.as_tensor(rank_pooling_weights(frames.shape[dim]), dtype=frames.dtype, device=frames.device)
    return torch.tensordot(frames.movedim(dim, 0), weights, dims=([0], [0]))
