"""Per-face sliding window: a ring buffer of (time, crop, rank feature, score), resampled to T steps over the last
`window_s` seconds.

The encoder runs once per new frame and its output is cached here, so a new window costs one encoder call plus a
pooling of cached features and one small head call. The T steps are chosen exactly as training samples clips
(`fdp.datasets.sampling`): T evenly spaced times spanning `window_s`, each mapped to the nearest frame held, so a
30 fps webcam and a 200 fps dataset feed the model the same way.
"""

from __future__ import annotations

import math

import numpy as np

from fdp.datasets.sampling import nearest_indices, window_frame_indices
from fdp.rank_pooling import rank_pool_gather


class FaceWindow:
    """The recent frames of one tracked face. Pooling reads the ring in place (no copy of the window).

    The ring remembers `HISTORY_WINDOWS` window lengths, more than one window needs, so that when the spotter
    closes an interval its frames are still held for the event's own classification (see `interval_slots`)."""

    HISTORY_WINDOWS = 4

    def __init__(self, steps: int, window_s: float, rank_dim: int, crop_shape: tuple[int, ...],
                 max_fps: float = 240.0):
        self.steps = steps
        self.window_s = window_s
        self.capacity = max(2 * steps, math.ceil(self.HISTORY_WINDOWS * window_s * max_fps) + steps)
        self.times_s = np.full(self.capacity, -np.inf)
        self.crops = np.zeros((self.capacity, *crop_shape), np.uint8)
        self.rank_features = np.zeros((self.capacity, rank_dim), np.float32)
        self.scores = np.zeros(self.capacity, np.float32)
        self.frame_indices = np.zeros(self.capacity, np.int64)
        self.count = 0
        self.head = 0  # slot the next frame goes to

    def push(self, t_s: float, frame_index: int, crop: np.ndarray, rank_feature: np.ndarray, score: float) -> None:
        """Add the newest frame; times must not go backwards (older frames are ignored)."""
        if self.count and t_s <= self.times_s[(self.head - 1) % self.capacity]:
            return
        slot = self.head
        self.times_s[slot] = t_s
        self.crops[slot] = crop
        self.rank_features[slot] = rank_feature
        self.scores[slot] = score
        self.frame_indices[slot] = frame_index
        self.head = (slot + 1) % self.capacity
        self.count = min(self.count + 1, self.capacity)

    def _ordered_slots(self) -> np.ndarray:
        """Ring slots from oldest to newest."""
        return (self.head - self.count + np.arange(self.count)) % self.capacity

    @property
    def newest_s(self) -> float:
        return float(self.times_s[(self.head - 1) % self.capacity]) if self.count else -math.inf

    @property
    def span_s(self) -> float:
        if self.count < 2:
            return 0.0
        return self.newest_s - float(self.times_s[(self.head - self.count) % self.capacity])

    @property
    def ready(self) -> bool:
        """Enough history for a full window: at least T frames, covering the window up to one frame interval."""
        return self.count >= self.steps and self.span_s >= self.window_s * (self.steps - 1) / self.steps

    def resample(self) -> np.ndarray:
        """Ring slots of the T steps (oldest first): evenly spaced times over the last window_s, nearest frame."""
        slots = self._ordered_slots()
        times = self.times_s[slots]
        targets = self.newest_s - self.window_s + np.linspace(0.0, self.window_s, self.steps)
        return slots[nearest_indices(times, targets)]

    def pooled(self, slots: np.ndarray) -> np.ndarray:
        """The dynamic representation d = sum_t alpha_t r_t over the resampled steps, (D,)."""
        return rank_pool_gather(self.rank_features, slots)

    def dynamic_image(self, slots: np.ndarray) -> np.ndarray:
        """Approximate rank pooling of the raw crops over the resampled steps, float32, the crop's shape."""
        return rank_pool_gather(self.crops, slots)

    def interval_ready(self, onset_s: float, offset_s: float) -> bool:
        """Whether the frames after an interval that its training-style window reaches have arrived."""
        length = max(self.window_s, offset_s - onset_s)
        return self.newest_s >= (onset_s + offset_s + length) / 2 - 1e-6

    def interval_slots(self, onset_s: float, offset_s: float) -> np.ndarray:
        """Ring slots of the T steps over a spotted interval, exactly as evaluation samples a dataset clip: a
        window of window_s centred on onset..offset (stretched to cover a longer one), T evenly spaced times,
        each the nearest frame held. Times are seconds here, so the sampler's "frame numbers" are seconds at 1 fps."""
        slots = self._ordered_slots()
        chosen = window_frame_indices(self.times_s[slots], onset_s, offset_s, fps=1.0, frames=self.steps,
                                      window_s=self.window_s, length_jitter=0.0)
        return slots[chosen]
