"""Per-stage latency, frame rate and drop counts of the live loop, kept by one swappable object.

The pipeline times its stages through a `LatencyMonitor` instead of print calls, and builds the status message
from its `snapshot()`. `NullLatencyMonitor` has the same interface and records nothing, for runs that want no
bookkeeping at all (benchmarks of the bare loop).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from realtime.frames import LATENCY_STAGES


@dataclass(frozen=True)
class LatencySnapshot:
    """The monitor's figures at one moment: what the status message and the preview show."""

    fps: float  # frames per second over the last fps_window_s
    dropped_frames: int  # total since start (or the last reset)
    p50_ms: Mapping[str, float | None]  # per stage; None while a stage has no sample
    p99_ms: Mapping[str, float | None]
    samples: Mapping[str, int]  # samples behind each stage's figures (at most `window`)


class LatencyMonitor:
    """Rolling p50/p99 per stage over the last `window` samples, fps over the last `fps_window_s`, and drops.

    Thread-safe: the pipeline records while another thread (status, preview) may read.
    """

    def __init__(self, window: int = 300, fps_window_s: float = 2.0) -> None:
        if window < 1 or fps_window_s <= 0:
            raise ValueError(f"window must be >= 1 and fps_window_s > 0, got {window} and {fps_window_s}")
        self._window = window
        self._fps_window_ns = int(fps_window_s * 1e9)
        self._lock = threading.Lock()
        self._samples_ms: dict[str, deque[float]] = {stage: deque(maxlen=window) for stage in LATENCY_STAGES}
        self._frame_ns: deque[int] = deque(maxlen=max(window, 2))
        self._dropped_frames = 0

    @property
    def stages(self) -> tuple[str, ...]:
        return LATENCY_STAGES

    def record_ms(self, stage: str, latency_ms: float) -> None:
        """Add one timing of `stage`, in milliseconds."""
        samples = self._stage_samples(stage)
        with self._lock:
            samples.append(float(latency_ms))

    @contextmanager
    def measure(self, stage: str) -> Iterator[None]:
        """Time the body of a `with` block as one sample of `stage`."""
        samples = self._stage_samples(stage)
        t0_ns = time.perf_counter_ns()
        try:
            yield
        finally:
            latency_ms = (time.perf_counter_ns() - t0_ns) / 1e6
            with self._lock:
                samples.append(latency_ms)

    def record_frame(self, t_ns: int | None = None) -> None:
        """Count one processed frame at monotonic time `t_ns` (now by default), for the fps figure."""
        with self._lock:
            self._frame_ns.append(time.monotonic_ns() if t_ns is None else int(t_ns))

    def record_drops(self, n: int) -> None:
        """Add `n` dropped frames (the capture's drops since the last call, or frames skipped downstream)."""
        if n < 0:
            raise ValueError(f"dropped frame count must be >= 0, got {n}")
        with self._lock:
            self._dropped_frames += int(n)

    @property
    def dropped_frames(self) -> int:
        with self._lock:
            return self._dropped_frames

    def percentile_ms(self, stage: str, q: float) -> float | None:
        """The q-th percentile (0..100) of `stage`'s recent samples, or None while it has none."""
        samples = self._stage_samples(stage)
        with self._lock:
            values = list(samples)
        return float(np.percentile(values, q)) if values else None

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
            dropped = self._dropped_frames
        p50 = {stage: float(np.percentile(v, 50)) if v.size else None for stage, v in copies.items()}
        p99 = {stage: float(np.percentile(v, 99)) if v.size else None for stage, v in copies.items()}
        counts = {stage: int(v.size) for stage, v in copies.items()}
        return LatencySnapshot(self.fps(), dropped, MappingProxyType(p50), MappingProxyType(p99),
                               MappingProxyType(counts))

    def reset(self) -> None:
        """Forget every sample and count (after warm-up, say, so start-up costs do not linger in p99)."""
        with self._lock:
            for samples in self._samples_ms.values():
                samples.clear()
            self._frame_ns.clear()
            self._dropped_frames = 0

    def _stage_samples(self, stage: str) -> deque[float]:
        try:
            return self._samples_ms[stage]
        except KeyError:
            raise ValueError(f"unknown latency stage {stage!r}; expected one of {', '.join(LATENCY_STAGES)}") from None


class NullLatencyMonitor(LatencyMonitor):
    """A monitor that records nothing and reports empty figures; swap it in to measure the loop without one."""

    def __init__(self) -> None:
        super().__init__(window=1)

    def record_ms(self, stage: str, latency_ms: float) -> None:
        return None

    @contextmanager
    def measure(self, stage: str) -> Iterator[None]:
        yield

    def record_frame(self, t_ns: int | None = None) -> None:
        return None

    def record_drops(self, n: int) -> None:
        return None
