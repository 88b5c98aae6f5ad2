"""One face's spotter: measure each frame, compare it with a reference frame, and feed the interval detectors.

The upper and the lower face are followed on timelines of their own (`groups`), each with its interval detector and
its reference. While nothing is happening a group's reference is the frame `lag_s` back (so slow drift of pose and
light never accumulates); the moment the group opens an interval, its reference freezes at the one the opening
frame was compared with, the face as it was before the motion, and stays frozen until the interval closes, so that
"back to rest" means back to that face. After a closed interval the reference stays frozen for another `lag_s`, so
the lagged reference never lands inside the expression just seen (which would read its return to rest as a new
motion); after a refused macro-expression it is released at once (the face now rests in a new state). The optical
flow is computed once per distinct reference: once per frame while neither group is busy, twice while one is. A
frame caught mid-blink is never taken as the reference: against closed lids the open eyes that follow would read as
a long motion of the eye regions that never returns to rest. Spotting never reads the classifier: every model runs
live with it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from calibration.neutral import NeutralProfile
from fdp.align import FaceLandmarks
from realtime.spotting.detector import REDRAW, DetectorStep, IntervalDetector, Refusal, SpottedInterval, SpotterSettings
from realtime.spotting.groups import EventMerger
from realtime.spotting.measures import FaceMeasure, FlowMeter, compare, measure_face, spotting_settings
from realtime.spotting.regions import REGION_GROUPS

SPOTTER_VERSION = "fdp-spot/3"
"""Bumped whenever the features or their units change: a neutral profile is only valid for its version."""
REFERENCE_CHOICE_S = 0.5  # how much older than lag_s a reference may be, to find one with open eyes (a blink
# lasts 0.1-0.4 s)
OPEN_EYES_SHARE = 0.93  # lids at least this share of their recent open gap: eyes open (rest jitters 1-3 %)
SPOTTER_NAME = f"{SPOTTER_VERSION} (regional optical flow, upper and lower face on their own timelines, " \
               "nuisance-aware rules)"


@dataclass(frozen=True)
class SpotStep:
    """What one frame did to one face's spotter."""

    score: float  # largest region motion this frame, resting deviations (0 while warming up)
    active: bool  # some group has an interval open
    intervals: tuple[SpottedInterval, ...] = ()  # events decided this frame
    refusals: tuple[Refusal, ...] = ()


@dataclass
class _Timeline:
    """One region group's interval detector and the reference frame it is compared with."""

    detector: IntervalDetector
    frozen: FaceMeasure | None = None
    release_s: float = -np.inf  # a closed interval's frozen reference is held until then


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
        self.crop_settings = spotting_settings(settings.crop_size, settings.margin_px)
        self.meter = FlowMeter(settings.crop_size)
        noise = profile.noise if profile is not None else None
        self.timelines = [_Timeline(IntervalDetector(settings, noise, regions)) for regions in REGION_GROUPS.values()]
        self.merger = EventMerger(settings.max_duration_s)
        self._recent: deque[FaceMeasure] = deque()

    @property
    def learning(self) -> bool:
        """True while a running baseline has not yet seen enough idle time to spot anything."""
        return any(timeline.detector.noise is None for timeline in self.timelines)

    def reference(self, t_s: float) -> FaceMeasure | None:
        return choose_reference(self._recent, t_s, self.settings.lag_s)

    def features(self, frame_bgr: np.ndarray, face: FaceLandmarks, t_s: float,
                 frame_index: int) -> tuple[np.ndarray | None, FaceMeasure | None]:
        """(features against the lagged reference, that reference); (None, None) until one is held. A neutral
        calibration reads these alone, as at rest."""
        current = measure_face(frame_bgr, face, t_s, frame_index, self.crop_settings)
        self._remember(current)
        reference = self.reference(t_s)
        if reference is None:
            return None, None
        return compare(reference, current, self.meter), reference

    def _remember(self, current: FaceMeasure) -> None:
        self._recent.append(current)
        while len(self._recent) > 2 and self._recent[1].t_s <= current.t_s - self.settings.lag_s - REFERENCE_CHOICE_S:
            self._recent.popleft()

    def update(self, frame_bgr: np.ndarray, face: FaceLandmarks, t_s: float, frame_index: int) -> SpotStep:
        return self.update_measured(measure_face(frame_bgr, face, t_s, frame_index, self.crop_settings))

    def update_measured(self, current: FaceMeasure) -> SpotStep:
        """`update` with a frame already measured (a benchmark replays stored measures through this)."""
        t_s = current.t_s
        self._remember(current)
        lagged = self.reference(t_s)
        compared: list[tuple[FaceMeasure, np.ndarray]] = []
        steps: list[DetectorStep] = []
        for timeline in self.timelines:
            detector = timeline.detector
            if timeline.frozen is not None and not detector.is_open and t_s >= timeline.release_s:
                timeline.frozen = None
            reference = timeline.frozen or lagged
            if reference is None:
                continue
            features = next((f for r, f in compared if r is reference), None)
            if features is None:
                features = compare(reference, current, self.meter)
                compared.append((reference, features))
            was_open = detector.is_open
            step = detector.push(t_s, current.frame_index, features)
            if detector.is_open:
                timeline.frozen, timeline.release_s = reference, np.inf
            elif step.refusal is not None and step.refusal.cause == REDRAW:  # compare with the texture after it
                timeline.frozen, timeline.release_s = current, t_s + self.settings.lag_s
            elif was_open:
                timed_out = step.refusal is not None and step.refusal.offset_s == t_s
                timeline.release_s = t_s if timed_out else t_s + self.settings.lag_s
            steps.append(step)
        if not steps:
            return SpotStep(0.0, False)
        events, refusals = self.merger.push(t_s, steps, [t.detector.busy_since_s for t in self.timelines])
        return SpotStep(max(step.score for step in steps), any(step.active for step in steps), tuple(events),
                        tuple(refusals))

    def finish(self) -> list[SpottedInterval]:
        """At the end of the stream: the intervals that closed too recently to be confirmed, as events."""
        last = [interval for t in self.timelines if (interval := t.detector.flush()) is not None]
        return self.merger.flush(last)
