"""Per-stage latency and frame rate of the live loop, kept by one swappable object.

The pipeline's stages (alignment on its thread, the model stage on its own) time themselves through a
`LatencyMonitor` instead of print calls, and the status message is built from its `snapshot()`.
`NullLatencyMonitor` has the same interface and records nothing, for a run that wants no bookkeeping.
Drops are not kept here: each hand-over that drops counts its own (the capture buffer, the align -> model queue).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from realtime.frames import MONITORED_STAGES


@dataclass(frozen=True)
class LatencySnapshot:
    """The monitor's figures at one moment: what the status message and the preview show."""

    fps: float  # frames per second over the last fps_window_s
    p50_ms: Mapping[str, float | None]  # per MONITORED_STAGES stage; None while a stage has no sample
    p99_ms: Mapping[str, float | None]
    samples: Mapping[str, int]  # samples behind each stage's figures (at most `window`)


class LatencyMonitor:
    """Rolling p50/p99 per stage over the last `window` samples, and fps over the last `fps_window_s`.

    Thread-safe: the alignment and model stages record while another thread (status, preview) may read.
    """

    def __init__(self, window: int = 300, fps_window_s: float = 2.0) -> None:
        if window < 1 or fps_window_s <= 0:
            raise ValueError(f"window must be >= 1 and fps_window_s > 0, got {window} and {fps_window_s}")
        self._fps_window_ns = int(fps_window_s * 1e9)
        self._lock = threading.Lock()
        self._samples_ms: dict[str, deque[float]] = {stage: deque(maxlen=window) for stage in MONITORED_STAGES}
        self._frame_ns: deque[int] = deque(maxlen=max(window, 2))

    def record_ms(self, stage: str, latency_ms: float) -> None:
        """Add one timing of `stage`, in milliseconds."""
        samples = self._stage_samples(stage)
        with self._lock:
            samples.append(float(latency_ms))

    def record_frame(self, t_ns: int | None = None) -> None:
        """Count one processed frame at monotonic time `t_ns` (now by default), for the fps figure."""
        with self._lock:
            self._frame_ns.append(time.monotonic_ns() if t_ns is None else int(t_ns))

    def fps(self, now_ns: int | None = None) -> float:
        """Frames per second over the frames recorded in the last fps_window_s before `now_ns`."""
        now_ns = time.monotonic_ns() if now_ns is None else now_ns
        with self._lock:
            recent = [t for t in self._frame_ns if now_ns - t <= self._fps_window_ns]
        if len(recent) < 2 or recent[-1] <= recent[0]:
            return 0.0
        return (len(recent) - 1) / ((recent[-1] - recent[0]) / 1e9)

    def snapshot(self) -> LatencySnapshot:
        """All figures at once, computed from one consistent copy of the samples."""
        with self._lock:
            copies = {stage: np.asarray(samples, dtype=np.float64) for stage, samples in self._samples_ms.items()}
        p50 = {stage: float(np.percentile(v, 50)) if v.size else None for stage, v in copies.items()}
        p99 = {stage: float(np.percentile(v, 99)) if v.size else None for stage, v in copies.items()}
        counts = {stage: int(v.size) for stage, v in copies.items()}
        return LatencySnapshot(self.fps(), MappingProxyType(p50), MappingProxyType(p99), MappingProxyType(counts))

    def _stage_samples(self, stage: str) -> deque[float]:
        try:
            return self._samples_ms[stage]
        except KeyError:
            raise ValueError(f"unknown latency stage {stage!r}; expected one of {', '.join(MONITORED_STAGES)}") \
                from None


class NullLatencyMonitor(LatencyMonitor):
    """A monitor that records nothing and reports empty figures; swap it in to run the loop without one."""

    def __init__(self) -> None:
        super().__init__(window=1)

    def record_ms(self, stage: str, latency_ms: float) -> None:
        return None

    def record_frame(self, t_ns: int | None = None) -> None:
        return None
