"""One face's spotter: measure each frame, compare it with a reference frame, and feed the interval detector.

While nothing is happening the reference is the frame `lag_s` back (so slow drift of pose and light never
accumulates); the moment an interval opens, the reference freezes at the one the opening frame was compared
with, the face as it was before the motion, and stays frozen until the interval closes, so that "back to rest"
means back to that face. After a closed interval the reference stays frozen for another `lag_s`, so the
lagged reference never lands inside the expression just seen (which would read its return to rest as a new
motion); after a refused macro-expression it is released at once (the face now rests in a new state). A frame
caught mid-blink is never taken as the reference: against closed lids the open eyes that follow would read as a
long motion of the eye regions that never returns to rest. Spotting never reads the classifier: every model runs
live with it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from calibration.neutral import NeutralProfile
from fdp.align import FaceLandmarks
from realtime.spotting.detector import DetectorStep, IntervalDetector, SpottedInterval, SpotterSettings
from realtime.spotting.measures import FaceMeasure, FlowMeter, compare, measure_face, spotting_settings

SPOTTER_VERSION = "fdp-spot/2"
"""Bumped whenever the features or their units change: a neutral profile is only valid for its version."""
REFERENCE_CHOICE_S = 0.5  # how much older than lag_s a reference may be, to find one with open eyes (a blink
# lasts 0.1-0.4 s)
OPEN_EYES_SHARE = 0.93  # lids at least this share of their recent open gap: eyes open (rest jitters 1-3 %)
SPOTTER_NAME = f"{SPOTTER_VERSION} (regional optical flow, nuisance-aware rules)"


@dataclass(frozen=True)
class SpotStep:
    """What one frame did to one face's spotter."""

    step: DetectorStep
    features: np.ndarray | None  # (len(FEATURE_NAMES),) against the reference; None until one is held


def choose_reference(recent: Sequence[FaceMeasure], t_s: float, lag_s: float) -> FaceMeasure | None:
    """The newest of `recent` at least lag_s old with both eyes open (lids at OPEN_EYES_SHARE of their recent open
    gap or more); the newest at least lag_s old if each of those is mid-blink; None if none is that old."""
    old = [m for m in recent if m.t_s <= t_s - lag_s + 1e-6]
    if not old:
        return None
    open_level = np.quantile(np.stack([m.apertures for m in recent]), 0.9, axis=0)
    for measure in reversed(old):
        if (measure.apertures >= OPEN_EYES_SHARE * open_level).all():
            return measure
    return old[-1]


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
        return choose_reference(self._recent, t_s, self.settings.lag_s)

    def features(self, frame_bgr: np.ndarray, face: FaceLandmarks, t_s: float,
                 frame_index: int) -> tuple[np.ndarray | None, FaceMeasure | None]:
        """(features against the current reference, that reference); (None, None) until one is held. A neutral
        calibration reads these alone, with the reference always lagged, as at rest."""
        return self.measured_features(measure_face(frame_bgr, face, t_s, frame_index, self.crop_settings))

    def measured_features(self, current: FaceMeasure) -> tuple[np.ndarray | None, FaceMeasure | None]:
        """`features` of a frame already measured (a benchmark replays stored measures through this)."""
        t_s = current.t_s
        self._recent.append(current)
        while len(self._recent) > 2 and self._recent[1].t_s <= t_s - self.settings.lag_s - REFERENCE_CHOICE_S:
            self._recent.popleft()
        if self._frozen is not None and not self.detector.is_open and t_s >= self._release_s:
            self._frozen = None
        reference = self._frozen or self.reference(t_s)
        if reference is None:
            return None, None
        return compare(reference, current, self.meter), reference

    def update(self, frame_bgr: np.ndarray, face: FaceLandmarks, t_s: float, frame_index: int) -> SpotStep:
        return self.update_measured(measure_face(frame_bgr, face, t_s, frame_index, self.crop_settings))

    def update_measured(self, current: FaceMeasure) -> SpotStep:
        """`update` with a frame already measured."""
        t_s, frame_index = current.t_s, current.frame_index
        features, reference = self.measured_features(current)
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
