"""One face's spotter: measure each frame, compare it with a reference frame, and feed the interval detector.

While nothing is happening the reference is the frame `lag_s` back (so slow drift of pose and light never
accumulates); the moment an interval opens, the reference freezes at the one the opening frame was compared
with, the face as it was before the motion, and stays frozen until the interval closes, so that "back to rest"
means back to that face. After a closed interval the reference stays frozen for another `lag_s`, so the
lagged reference never lands inside the expression just seen (which would read its return to rest as a new
motion); after a refused macro-expression it is released at once (the face now rests in a new state). Spotting
never reads the classifier: every model runs live with it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from calibration.neutral import NeutralProfile
from fdp.align import FaceLandmarks
from realtime.spotting.detector import DetectorStep, IntervalDetector, SpottedInterval, SpotterSettings
from realtime.spotting.measures import FaceMeasure, FlowMeter, compare, measure_face, spotting_settings

SPOTTER_VERSION = "fdp-spot/1"
"""Bumped whenever the features or their units change: a neutral profile is only valid for its version."""
SPOTTER_NAME = f"{SPOTTER_VERSION} (regional optical flow, nuisance-aware rules)"


@dataclass(frozen=True)
class SpotStep:
    """What one frame did to one face's spotter."""

    step: DetectorStep
    features: np.ndarray | None  # (len(FEATURE_NAMES),) against the reference; None until one is held


class FaceSpotter:
    """Per-face spotting state; single writer (the pipeline thread that owns the face)."""

    def __init__(self, settings: SpotterSettings, profile: NeutralProfile | None = None) -> None:
        self.settings = settings
        self.crop_settings = spotting_settings(settings.crop_size)
        self.meter = FlowMeter(settings.crop_size)
        self.detector = IntervalDetector(settings, profile.noise if profile is not None else None)
        self._recent: deque[FaceMeasure] = deque()
        self._frozen: FaceMeasure | None = None
        self._release_s = -np.inf  # a closed interval's frozen reference is held until then

    @property
    def learning(self) -> bool:
        """True while a running baseline has not yet seen enough idle time to spot anything."""
        return self.detector.noise is None

    def reference(self, t_s: float) -> FaceMeasure | None:
        """The newest held frame at least lag_s old; None until the face has been seen that long."""
        chosen = None
        for measure in self._recent:
            if measure.t_s > t_s - self.settings.lag_s + 1e-6:
                break
            chosen = measure
        return chosen

    def features(self, frame_bgr: np.ndarray, face: FaceLandmarks, t_s: float,
                 frame_index: int) -> tuple[np.ndarray | None, FaceMeasure | None]:
        """(features against the current reference, that reference); (None, None) until one is held. A neutral
        calibration reads these alone, with the reference always lagged, as at rest."""
        current = measure_face(frame_bgr, face, t_s, frame_index, self.crop_settings)
        self._recent.append(current)
        while len(self._recent) > 2 and self._recent[1].t_s <= t_s - self.settings.lag_s:
            self._recent.popleft()
        if self._frozen is not None and not self.detector.is_open and t_s >= self._release_s:
            self._frozen = None
        reference = self._frozen or self.reference(t_s)
        if reference is None:
            return None, None
        return compare(reference, current, self.meter), reference

    def update(self, frame_bgr: np.ndarray, face: FaceLandmarks, t_s: float, frame_index: int) -> SpotStep:
        features, reference = self.features(frame_bgr, face, t_s, frame_index)
        if features is None:
            return SpotStep(DetectorStep(0.0, False), None)
        was_open = self.detector.is_open
        step = self.detector.push(t_s, frame_index, features)
        if self.detector.is_open:
            self._frozen, self._release_s = reference, np.inf
        elif was_open:
            timed_out = step.refusal is not None and step.refusal.offset_s == t_s
            self._release_s = t_s if timed_out else t_s + self.settings.lag_s
        return SpotStep(step, features)

    def finish(self) -> SpottedInterval | None:
        """At the end of the stream: an interval that closed too recently to be confirmed, as an event."""
        return self.detector.flush()
