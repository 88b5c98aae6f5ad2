"""Which T frames of a clip the model sees: spread evenly over a window of `window_s` seconds around onset..offset.

The live system feeds the model the last `window_s` seconds of a camera (0.5 s: the longest micro-expression),
resampled to T steps. Training clips are cut the same way, in seconds rather than frames, so a 200 fps CASME II
clip, a 30 fps CAS(ME)^2 clip and a 30 fps webcam all give the model T steps over the same duration.

Rules, in the dataset's own frame numbers (a window of d seconds spans d * fps frame intervals):
- The window always contains onset..offset. A micro-expression longer than the window stretches the window to
  cover onset..offset exactly (its T frames are then spread over more than `window_s`): cutting an expression
  would teach the model a class from a part of it.
- A clip folder shorter than the window (CASME II and SAMM folders often hold little more than onset..offset)
  gives a window of the whole folder.
- Evaluation (no generator): the window is centred on the middle of onset..offset, `window_s` long.
- Training (a seeded `numpy.random.Generator`): the window length is scaled by a factor drawn uniformly from
  [1 - length_jitter, 1 + length_jitter], and its start is drawn uniformly among the starts that keep
  onset..offset inside, so the expression appears early, late or centred as it does in a live window.
- The T evenly spaced times are mapped to the nearest frame that exists, so gaps in a folder's numbering and
  folders with fewer than T frames (then some frames repeat) both work.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fdp.datasets.clips import ClipSample
from fdp.errors import ConfigError


def window_frame_indices(frame_numbers: Sequence[int], onset: int, offset: int, fps: float, *, frames: int = 8,
                         window_s: float = 0.5, rng: np.random.Generator | None = None,
                         length_jitter: float = 0.2) -> np.ndarray:
    """Indices into `frame_numbers` (sorted ascending) of the T frames to use; see the module rules.

    Returns an int64 array of shape (frames,), non-decreasing. With rng=None (evaluation) it is deterministic; with
    a generator, the same seed gives the same indices.
    """
    if frames < 1:
        raise ConfigError(f"frames per window must be 1 or more, got {frames}")
    if window_s <= 0 or fps <= 0:
        raise ConfigError(f"window_s and fps must be positive, got window_s={window_s}, fps={fps}")
    if not 0.0 <= length_jitter < 1.0:
        raise ConfigError(f"length_jitter must be in 0..1 (exclusive of 1), got {length_jitter}")
    numbers = np.asarray(frame_numbers, dtype=np.float64)
    if numbers.size == 0:
        raise ConfigError("a clip with no frames cannot be sampled")
    first, last = float(numbers[0]), float(numbers[-1])
    onset_f, offset_f = float(max(onset, first)), float(min(offset, last))
    length = window_s * fps  # frame intervals the window spans
    if rng is not None and length_jitter > 0:
        length *= rng.uniform(1.0 - length_jitter, 1.0 + length_jitter)
    length = min(max(length, offset_f - onset_f), last - first)
    if rng is None:
        start = (onset_f + offset_f - length) / 2.0
    else:
        low, high = offset_f - length, onset_f  # every start in [low, high] keeps onset..offset inside
        start = rng.uniform(low, high) if high > low else low
    start = min(max(start, first), last - length)
    targets = start + np.linspace(0.0, length, frames)
    return nearest_indices(numbers, targets)


def nearest_indices(numbers: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """For each target frame position, the index of the nearest existing frame number (ties go to the earlier)."""
    right = np.clip(np.searchsorted(numbers, targets, side="left"), 0, len(numbers) - 1)
    left = np.clip(right - 1, 0, len(numbers) - 1)
    take_left = np.abs(targets - numbers[left]) <= np.abs(numbers[right] - targets)
    return np.where(take_left, left, right).astype(np.int64)


def sample_indices(clip: ClipSample, frames: int = 8, window_s: float = 0.5, *,
                   rng: np.random.Generator | None = None, length_jitter: float = 0.2) -> np.ndarray:
    """Indices into `clip.frame_paths` of the T frames to feed the model: evaluation without rng, training with.

    frames: T. window_s: the window's duration in seconds (the live window's). rng: a seeded generator for
    training-time random placement and length jitter; None for the centred evaluation window.
    """
    return window_frame_indices(clip.frame_numbers, clip.onset, clip.offset, clip.fps, frames=frames,
                                window_s=window_s, rng=rng, length_jitter=length_jitter)

