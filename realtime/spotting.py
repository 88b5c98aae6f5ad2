"""Is a micro-expression under way? Per face, from the model's reading of each window and the window's motion.

A window is *active* when the model gives the non-`none` classes at least `p_active` together AND the window moves
more than the neutral baseline allows: motion is the mean absolute dynamic image of the raw crops per unit of
rank-pooling weight (gray levels), and the threshold is the baseline's median + k * MAD of quiet windows (a
per-user baseline from calibration, or a running one learned from this stream's quiet windows).

A run of active windows becomes an event when it closes. Its timing comes from the frames the run's windows saw
(`motion_span`): the frame-to-frame change of the aligned crops above the face's jitter, accumulated; onset is
where a tenth of that change has happened, offset where nine tenths have. Where those frames are no longer held,
timing falls back to the windows themselves: onset ~ the end of the first active window, offset ~ the end of
the last one minus `window_s`. An event longer than `max_duration_s` (0.5 s) is not micro and is dropped; so is
a run of fewer than `min_windows` or one whose windows stay active for longer than a window plus that limit.
The event's label is the non-`none` class with the highest mean probability over the run.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
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


# (start_s, end_s) -> (times_s, frame_indices, crops) of one face's frames held in that span (FaceWindow.between)
FrameHistory = Callable[[float, float], tuple[np.ndarray, np.ndarray, np.ndarray]]
SPAN_SHARE = 0.1  # onset where this share of the motion has happened, offset where 1 - share has
SPAN_STEP_S = 1 / 30  # motion is measured between frames this far apart, whatever the frame rate


def motion_span(crops: np.ndarray, count_from: int = 0, step: int = 1,
                share: float = SPAN_SHARE) -> tuple[int, int] | None:
    """(onset, offset) frame positions of the motion in `crops` (n, H, W[, C]), oldest first: onset is the last
    frame before the motion, offset the first frame back at rest (the datasets' convention).

    The change between crops `step` frames apart (about 1/30 s: at 200 fps one frame's motion drowns in sensor
    noise), less its median (the jitter of a face at rest, which the span should hold plenty of), is accumulated
    from frame `count_from` on; onset and offset are where `share` and 1 - `share` of it are reached. None when
    nothing moved above the jitter."""
    if len(crops) - count_from < step + 2:
        return None
    flat = crops.reshape(len(crops), -1).astype(np.float32)
    change = np.abs(flat[step:] - flat[:-step]).mean(axis=1)  # change[k]: frame k -> k + step
    excess = np.clip(change - np.median(change), 0.0, None)[count_from:]
    total = float(excess.sum())
    if total <= 0.0:
        return None
    cumulative = np.cumsum(excess) / total
    first = int(np.searchsorted(cumulative, share, side="left"))
    last = int(np.searchsorted(cumulative, 1.0 - share, side="left"))
    # each change spans `step` frames: the motion starts after the first pair's start and ends by the last's end
    return count_from + first + step // 2, count_from + last + step - step // 2


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
                 baseline: NeutralBaseline | None = None, history: FrameHistory | None = None):
        if NONE_LABEL not in labels:
            raise ConfigError(f"spotting needs a '{NONE_LABEL}' class; the model's classes are {', '.join(labels)}")
        self.face_id = face_id
        self.labels = labels
        self.none_index = labels.index(NONE_LABEL)
        self.window_s = window_s
        self.settings = settings
        self.fixed_baseline = baseline
        self.history = history
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
        if run.last_s - run.first_s > self.window_s + self.settings.max_duration_s:
            return None
        onset_s, onset_frame, offset_s, offset_frame = self._frame_timing(run) or self._window_timing(run)
        duration_s = offset_s - onset_s
        if duration_s > self.settings.max_duration_s:
            return None
        mean_probs = run.prob_sum / run.windows
        expressive = [i for i in range(len(self.labels)) if i != self.none_index]
        label_index = max(expressive, key=lambda i: mean_probs[i])
        return MEEvent(
            face_id=self.face_id, onset_frame=onset_frame, offset_frame=offset_frame, onset_media_s=onset_s,
            offset_media_s=offset_s, onset_time_unix=run.first_unix + (onset_s - run.first_s),
            offset_time_unix=run.first_unix + (offset_s - run.first_s), duration_s=duration_s,
            label=self.labels[label_index], probs={label: float(p) for label, p in zip(self.labels, mean_probs)},
            peak_motion=run.peak_motion)

    def _frame_timing(self, run: _Run) -> tuple[float, int, float, int] | None:
        """Onset and offset (s, frame) from the frames the run's windows saw, with one more window before them
        for the jitter level; None when the history no longer holds those frames."""
        if self.history is None:
            return None
        times, frames, crops = self.history(run.first_s - 2 * self.window_s, run.last_s)
        seen = int(np.searchsorted(times, run.first_s - self.window_s))
        # the first window of a new face starts up to a step after first_s - window_s: a quarter window of slack
        if not len(times) or times[0] > run.first_s - 0.75 * self.window_s:
            return None
        frame_s = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
        step = max(1, round(SPAN_STEP_S / frame_s)) if frame_s > 0 else 1
        span = motion_span(crops, count_from=seen, step=step)
        if span is None:
            return None
        onset, offset = span
        return float(times[onset]), int(frames[onset]), float(times[offset]), int(frames[offset])

    def _window_timing(self, run: _Run) -> tuple[float, int, float, int]:
        """Onset ~ the first active window's end, offset ~ the last one's end minus the window."""
        offset_s = max(run.first_s, run.last_s - self.window_s)
        seconds_per_frame = (run.last_s - run.first_s) / max(1, run.last_frame - run.first_frame)
        offset_frame = run.last_frame - round(self.window_s / seconds_per_frame) if seconds_per_frame > 0 else \
            run.first_frame
        return run.first_s, run.first_frame, offset_s, max(run.first_frame, offset_frame)
