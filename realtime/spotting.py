"""Is a micro-expression under way? Per face, from the model's reading of each window and the window's motion.

A window is *active* when the model gives the non-`none` classes at least `p_active` together AND the window moves
more than the neutral baseline allows: motion is the mean absolute dynamic image of the raw crops per unit of
rank-pooling weight (gray levels), and the threshold is the baseline's median + k * MAD of quiet windows (a
per-user baseline from calibration, or a running one learned from this stream's quiet windows).

A run of active windows becomes an event when it closes. Timing comes from the windows themselves: an ME enters
the sliding window when it starts and leaves it `window_s` after it ends, so onset ~ the end time of the first
active window and offset ~ the end time of the last active window minus `window_s`. A run whose implied
duration exceeds `max_duration_s` (0.5 s) is not micro and is dropped; so is a run of fewer than `min_windows`.
The event's label is the non-`none` class with the highest mean probability over the run.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from fdp.errors import ConfigError
from fdp.rank_pooling import rank_pooling_weights
from realtime.frames import MEEvent

NONE_LABEL = "none"


@dataclass(frozen=True)
class SpotterSettings:
    p_active: float = 0.5  # minimum total probability of the non-none classes
    mad_k: float = 4.0  # threshold = median + mad_k * 1.4826 * MAD of quiet-window motion
    motion_floor: float = 0.05  # gray levels: never spot below this, whatever the baseline says
    min_windows: int = 2  # a shorter run of active windows is a flicker, not an event
    gap_windows: int = 2  # inactive windows tolerated inside one run
    max_duration_s: float = 0.5  # longer is not a micro-expression
    baseline_windows: int = 300  # quiet windows the running baseline remembers

    def __post_init__(self) -> None:
        if not 0.0 < self.p_active <= 1.0 or self.mad_k < 0 or self.motion_floor < 0 or self.min_windows < 1:
            raise ConfigError(f"spotter settings out of range: {self}")


def window_motion(dynamic_image: np.ndarray, steps: int) -> float:
    """Mean |dynamic image| per unit of total |alpha|: about half the mean gray-level change across the window."""
    return float(np.abs(dynamic_image).mean() / np.abs(rank_pooling_weights(steps)).sum())


@dataclass(frozen=True)
class NeutralBaseline:
    """The motion of windows where nothing happens, summarised robustly (calibration stores one per user)."""

    median: float
    mad: float  # median absolute deviation
    windows: int  # how many windows it was measured on

    def threshold(self, settings: SpotterSettings) -> float:
        return max(settings.motion_floor, self.median + settings.mad_k * 1.4826 * self.mad)

    @classmethod
    def from_motions(cls, motions: np.ndarray) -> NeutralBaseline:
        median = float(np.median(motions))
        return cls(median, float(np.median(np.abs(motions - median))), int(len(motions)))


@dataclass
class _Run:
    first_s: float
    first_frame: int
    first_unix: float
    last_s: float = 0.0
    last_frame: int = 0
    last_unix: float = 0.0
    windows: int = 0
    gap: int = 0
    peak_motion: float = 0.0
    prob_sum: np.ndarray = field(default_factory=lambda: np.zeros(0))


class Spotter:
    """One face's spotting state. `update` is called once per window and returns (active, closed event)."""

    def __init__(self, face_id: int, labels: tuple[str, ...], window_s: float, settings: SpotterSettings,
                 baseline: NeutralBaseline | None = None):
        if NONE_LABEL not in labels:
            raise ConfigError(f"spotting needs a '{NONE_LABEL}' class; the model's classes are {', '.join(labels)}")
        self.face_id = face_id
        self.labels = labels
        self.none_index = labels.index(NONE_LABEL)
        self.window_s = window_s
        self.settings = settings
        self.fixed_baseline = baseline
        self._quiet: deque[float] = deque(maxlen=settings.baseline_windows)
        self._run: _Run | None = None

    @property
    def threshold(self) -> float:
        """Current motion threshold: the calibrated baseline's, or one learned from this stream's quiet windows."""
        if self.fixed_baseline is not None:
            return self.fixed_baseline.threshold(self.settings)
        if len(self._quiet) < 10:
            return self.settings.motion_floor
        return NeutralBaseline.from_motions(np.fromiter(self._quiet, float)).threshold(self.settings)

    def update(self, media_s: float, frame_index: int, time_unix: float, probs: np.ndarray,
               motion: float) -> tuple[bool, MEEvent | None]:
        expressive = 1.0 - float(probs[self.none_index])
        active = expressive >= self.settings.p_active and motion >= self.threshold
        if not active and expressive < self.settings.p_active:
            self._quiet.append(motion)
        if active:
            run = self._run or _Run(media_s, frame_index, time_unix, prob_sum=np.zeros(len(self.labels)))
            run.last_s, run.last_frame, run.last_unix = media_s, frame_index, time_unix
            run.windows += 1
            run.gap = 0
            run.peak_motion = max(run.peak_motion, motion)
            run.prob_sum = run.prob_sum + probs
            self._run = run
            return True, None
        if self._run is None:
            return False, None
        self._run.gap += 1
        if self._run.gap <= self.settings.gap_windows:
            return False, None
        return False, self.close()

    def close(self) -> MEEvent | None:
        """End the open run (at a gap, or at the end of the stream) and return its event if it is a micro one."""
        run, self._run = self._run, None
        if run is None or run.windows < self.settings.min_windows:
            return None
        offset_s = max(run.first_s, run.last_s - self.window_s)
        duration_s = offset_s - run.first_s
        if run.last_s - run.first_s > self.window_s + self.settings.max_duration_s:
            return None
        mean_probs = run.prob_sum / run.windows
        expressive = [i for i in range(len(self.labels)) if i != self.none_index]
        label_index = max(expressive, key=lambda i: mean_probs[i])
        seconds_per_frame = (run.last_s - run.first_s) / max(1, run.last_frame - run.first_frame)
        offset_frame = run.last_frame - round(self.window_s / seconds_per_frame) if seconds_per_frame > 0 else \
            run.first_frame
        return MEEvent(
            face_id=self.face_id, onset_frame=run.first_frame, offset_frame=max(run.first_frame, offset_frame),
            onset_media_s=run.first_s, offset_media_s=offset_s, onset_time_unix=run.first_unix,
            offset_time_unix=run.first_unix + duration_s, duration_s=duration_s, label=self.labels[label_index],
            probs={label: float(p) for label, p in zip(self.labels, mean_probs)}, peak_motion=run.peak_motion)
