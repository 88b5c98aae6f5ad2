"""From per-frame spotting features to micro-expression intervals: thresholds in units of resting noise,
hysteresis, onset/apex/offset, and the rules that refuse what is not a micro-expression.

Each frame's features (`measures.compare` against a reference frame from `lag_s` earlier, frozen at the reference
of the opening frame while an interval is open) become z-scores against the resting noise (a running baseline of
this stream's idle frames, or a calibrated profile with that baseline as its floor). An interval opens when some
region moves `open_z` resting deviations (and at least `min_motion_fw` face widths) beyond rest, and closes when
every region that has moved that much since is back under `close_z`: back at the face it started from, which is
what a micro-expression does and a macro-expression, a head turn or a new light does not do within half a second.
(A region that never passed `open_z`, crept off the frozen reference by slow drift, does not hold the interval
open.) The apex is the frame of largest motion; onset and offset are where the motion crosses `edge_share` of its
peak on either side.

An interval that has outlasted a micro-expression while every region it moved has stayed under `return_share` of its
peak for `lag_s` closes after all (a codec left part of the return to rest uncoded; a macro-expression stays near
its peak). An interval that opened in one frame across the whole face and then stays flat for `step_s` is a
keyframe's re-draw of the texture, not motion: refused as a re-draw, and the spotter compares with a frame after it
(held open against the old reference it would time out as a macro and veto the other half's intervals). An interval
is refused, with its cause, when it lasts longer than `max_duration_s` or less than
`min_duration_s` (brief: a frame-local artefact of compression or flicker), or when the face moves again
within `confirm_s` of coming back (both: macro, a micro-looking step of a longer movement; a too-long one that a
nuisance explains in every region it moved is named after that nuisance: a stretch of talking, a held glance;
and motion within `confirm_s` of the end of a movement whose interval was ended early (too long, a head turn, a
light change) and which kept the face moving longer than a micro-expression lasts: its tail, refused with its
cause, e.g. a smile that began with a turn settling; a movement already under way when the thresholds first
exist (the end of the warm-up, or the first frame beside a profile) is waited out the same way: its onset was
never seen, so the face must be seen at rest before anything opens),
when the head turned (`pose_deg`) or the light changed (`light`) during it (an open interval ends at that frame,
unfinished, so the spotter is ready again as soon as the reference has caught up), when the whole face moved at
once and evenly (global motion: an ME moves its own regions most, whatever it drags along), or when nothing
remains once the regions a nuisance explains are set aside: the lids and brows during a blink or a glance, the
mouth, lips, chin and cheeks while the jaw or lips move (talking). A blink or glance up to `lid_tail_s` before
the onset counts too: the lids and brows still settle after the closure has fallen under `blink_min`, and an
interval that opens then (after a warm-up or a refusal that ended mid-blink) is that blink's reopening. A nuisance
also shakes the rest of the face a little (the landmarks it moves steer the alignment), so beside one, a region
must also move `leak_share` of the nuisance's own motion to count, and `coincident_leak_share` when its interval
starts with the lids' first motion (the nudge moves the crop at those very frames).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from calibration.neutral import RestingNoise
from fdp.errors import ConfigError
from realtime.spotting.measures import FEATURE_NAMES
from realtime.spotting.regions import BLINK_REGIONS, REGION_NAMES, TALKING_REGIONS

N_REGIONS = len(REGION_NAMES)
_INDEX = {name: i for i, name in enumerate(FEATURE_NAMES)}
# Smallest resting deviation a feature is given, so a perfectly still synthetic face does not make every speck
# of noise a 50-sigma event: region motion and lip gap in face widths, lids and jaw in blendshape/aperture units,
# gaze in eye widths, pose in degrees, light as a share of the mean gray.
NOISE_FLOORS = np.array([0.0005] * N_REGIONS + [0.02, 0.01, 0.01, 0.001, 0.1, 0.002])
BASELINE_RATE_HZ = 60.0  # idle frames the running baseline keeps per second, whatever the camera's rate
NUISANCE_REGIONS = {"blink": BLINK_REGIONS, "glance": BLINK_REGIONS, "talking": TALKING_REGIONS}
"""The regions each nuisance moves, and so explains."""
REDRAW = "re-draw"  # the refusal of a step in the texture (a keyframe); the spotter then compares with a frame after it


def explained_regions(causes: list[str]) -> np.ndarray:
    """(N_REGIONS,) the regions the nuisances `causes` explain."""
    return np.isin(REGION_NAMES, [r for cause in causes for r in NUISANCE_REGIONS[cause]])


@dataclass(frozen=True)
class SpotterSettings:
    """Every threshold of the spotter; z values are in resting deviations of the feature."""

    crop_size: int = 96  # face scale of the spotting crop: that of a crop this wide in the aligner's template
    # geometry; 96 beat 64 and 128 on the benchmark's tune split (F1 0.97 vs 0.89 and 0.92 at open_z 4)
    margin_px: int = 12  # more crop on every side at that scale (`measures.spotting_settings`), so the rigid fit's
    # points are inside it; with that fit trusting each point only where its texture shows motion, on the tune
    # videos: 108 of 120 MEs found against 105, no false event on a control against 1, none on a macro video
    # against 5 (docs/STATUS.md)
    lag_s: float = 0.3  # the reference frame is this far back while nothing is happening
    open_z: float = 4.0
    close_z: float = 2.0
    close_s: float = 0.04  # every region must stay under close_z this long to close
    confirm_s: float = 0.2  # ... and the face must then stay at rest this long (no lag_s is shorter)
    min_motion_fw: float = 0.002  # a region must also move this many face widths (0.2 %)
    edge_share: float = 0.25  # onset / offset where the motion crosses this share of its peak
    max_duration_s: float = 0.5  # onset to offset; longer is a macro-expression
    min_duration_s: float = 0.09  # onset to offset; shorter is a frame-local artefact: a codec's re-drawn block,
    # flicker turned into texture by compression (no true ME on the tune videos, MJPG or H.264, spotted under
    # 0.1 s; 4 of 7 false spots on their H.264 copies were)
    return_share: float = 0.2  # an interval still open when it has outlasted a micro-expression closes after all
    # if every region it moved has stayed under this share of its peak for lag_s: a codec left the return to rest
    # part-coded (H.264 at CRF 23 holds 10 % of a clear ME's motion for up to a keyframe), which a macro-expression,
    # still near its peak, never is
    step_s: float = 0.1  # an interval that jumped open in one frame across the face and then stays flat this long
    # is a re-draw: a keyframe of a compressed video re-draws the whole texture at once and holds it, against a
    # reference from before it, until the reference passes it; a micro-expression moves a few regions, rises over
    # frames and comes back (0 disables)
    step_rise_share: float = 0.3  # "in one frame": the frame before stood under this share of the onset's score ...
    step_global_share: float = 0.9  # ... and this share of all regions rose by close_z or more in it, in resting
    # deviations without their floor (a re-draw moves every region a little, 0.02-0.08 % of the face width at CRF 23,
    # where P-frames have kept the face still; a fast smile drags the brows and lids along but leaves the chin)
    step_flat_share: float = 0.3  # "flat": every frame since within this share of the onset's score
    nuisance_z: float = 4.0
    blink_min: float = 0.15  # lid closure share (or blink blendshape rise) that counts as a blink
    lid_tail_s: float = 0.2  # a blink or glance this long before an onset still explains lids and brows: they
    # reopen and settle after the closure share has fallen under blink_min
    gaze_min: float = 0.04  # iris shift (eye widths) that counts as a glance
    jaw_min: float = 0.05  # jawOpen change that counts as talking
    lips_min_fw: float = 0.006  # lip gap change (face widths) that counts as talking
    head_min_deg: float = 1.5  # head rotation during an interval that makes it head motion
    light_min: float = 0.08  # relative brightness change that makes it a light change
    leak_share: float = 0.2  # beside a nuisance, another region counts only past this share of its motion
    coincident_leak_share: float = 0.35  # ... and past this share when it started with the lids (a blink's or a
    # glance's nudge to the alignment moves the lower face at the very frames the lids move)
    coincident_s: float = 0.07  # how close to the lids' first motion an onset counts as starting with them
    global_share: float = 0.9  # share of regions moving at the apex that makes it global motion, when ...
    global_evenness: float = 0.35  # ... the median region also moves this share of the strongest: an ME drags the
    # regions beside its action units along less than it moves them; a turn's rigid residual is spread evenly
    baseline_s: float = 20.0  # the running baseline remembers this much idle time
    warmup_s: float = 1.0  # idle time a running baseline needs before the first interval

    def __post_init__(self) -> None:
        if not 0 < self.close_z < self.open_z:
            raise ConfigError(f"spotter thresholds: need 0 < close_z ({self.close_z}) < open_z ({self.open_z})")
        if self.crop_size < 32 or not 0 <= self.margin_px <= self.crop_size:
            raise ConfigError(f"spotter crop_size {self.crop_size} / margin_px {self.margin_px}: use 32 px or more, "
                              "and a margin of 0 to crop_size px")
        if not 0.0 <= self.confirm_s <= self.lag_s:
            raise ConfigError(f"spotter confirm_s {self.confirm_s}: use 0 to lag_s ({self.lag_s}) seconds")
        if not 0.05 <= self.lag_s <= 1.0 or not 0.1 <= self.max_duration_s <= 1.0:
            raise ConfigError(f"spotter lag_s {self.lag_s} / max_duration_s {self.max_duration_s}: use 0.05-1 s "
                              "and 0.1-1 s")
        if not 0.0 <= self.min_duration_s < self.max_duration_s or not 0.0 <= self.return_share < 1.0:
            raise ConfigError(f"spotter min_duration_s {self.min_duration_s} / return_share {self.return_share}: use "
                              f"0 to under max_duration_s ({self.max_duration_s}) s, and a share of 0 to under 1")


@dataclass(frozen=True)
class SpottedInterval:
    """A micro-expression the spotter found: when, where on the face, and how strongly."""

    onset_frame: int
    apex_frame: int
    offset_frame: int
    onset_s: float
    apex_s: float
    offset_s: float
    peak_z: float  # largest region motion, resting deviations
    peak_fw: float  # largest region motion, face widths
    regions: tuple[str, ...]  # the regions that moved, strongest first

    @property
    def duration_s(self) -> float:
        return self.offset_s - self.onset_s


@dataclass(frozen=True)
class Refusal:
    """An interval that was not a micro-expression, and why (for the benchmark and the logs)."""

    cause: str  # macro, brief, re-draw, head motion, light change, global motion, blink, glance, talking, weak
    onset_s: float
    offset_s: float


@dataclass(frozen=True)
class DetectorStep:
    score: float  # largest region motion this frame, resting deviations (0 while warming up)
    active: bool  # an interval is open
    interval: SpottedInterval | None = None
    refusal: Refusal | None = None


def nuisance_minimums(settings: SpotterSettings) -> np.ndarray:
    """(len(FEATURE_NAMES),) the change of each nuisance feature that is an event by itself (a blink, a glance,
    the jaw or lips moving, a head rotation, a light change); infinite for the regions."""
    minimums = np.full(len(FEATURE_NAMES), np.inf)
    for name, minimum in (("blink", settings.blink_min), ("gaze", settings.gaze_min), ("jaw", settings.jaw_min),
                          ("lip_gap", settings.lips_min_fw), ("pose_deg", settings.head_min_deg),
                          ("light", settings.light_min)):
        minimums[_INDEX[name]] = minimum
    return minimums


class _RunningNoise:
    """Resting noise learned from this stream's idle frames, at most BASELINE_RATE_HZ a second. The first estimate
    (from `warmup_s` of frames, when nothing can yet be told from rest) takes no frame holding a nuisance event by
    its absolute minimum: a head turn or a blink in the first second fills half of those frames, shifts the
    median itself, and a later turn of that size no longer stands out (nor does the motion it drags along). Later,
    over `baseline_s` of idle frames, the median and MAD shrug such frames off."""

    def __init__(self, settings: SpotterSettings) -> None:
        self.settings = settings
        self.samples: deque[tuple[float, np.ndarray]] = deque(maxlen=int(settings.baseline_s * BASELINE_RATE_HZ))
        self.noise: RestingNoise | None = None
        self._since_update = 0
        self._minimums = nuisance_minimums(settings)

    def add(self, t_s: float, values: np.ndarray) -> None:
        if self.samples and t_s - self.samples[-1][0] < 1.0 / BASELINE_RATE_HZ:
            return
        if self.noise is None and (values >= self._minimums).any():
            return
        self.samples.append((t_s, values))
        self._since_update += 1
        if self.noise is None or self._since_update >= 15:
            self._since_update = 0
            if self.samples[-1][0] - self.samples[0][0] >= self.settings.warmup_s and len(self.samples) >= 10:
                self.noise = RestingNoise.from_samples(FEATURE_NAMES, np.stack([v for _, v in self.samples]))


class IntervalDetector:
    """The interval state of one face, or of one group of its regions (`regions`: the face's other regions still
    tell nuisances and global motion, but only these open, hold and make an interval). `push` is called once per
    frame with `measures.compare`'s features."""

    def __init__(self, settings: SpotterSettings, profile_noise: RestingNoise | None = None,
                 regions: tuple[str, ...] = REGION_NAMES) -> None:
        unknown = sorted(set(regions) - set(REGION_NAMES))
        if unknown or not regions:
            raise ConfigError(f"spotter regions {list(regions)}: choose from {', '.join(REGION_NAMES)}")
        self.settings = settings
        self._group = np.isin(REGION_NAMES, regions)
        self._minimums = nuisance_minimums(settings)
        self._lid_minimums = self._minimums[[_INDEX["blink"], _INDEX["gaze"]]]
        self.fixed = profile_noise
        self.running = _RunningNoise(settings)
        self._combined: tuple[RestingNoise | None, RestingNoise] | None = None  # (running noise it used, result)
        self._keep_s = settings.max_duration_s + 2 * settings.lag_s + 0.5  # history the timing rules reach back
        self._history: deque[tuple[float, int, float, np.ndarray, np.ndarray]] = deque()
        self._open_s: float | None = None
        self._quiet_since: float | None = None
        self._refractory = False
        self._refractory_since: float | None = None  # onset of the movement the refractory stretch waits out ...
        self._refractory_cause = ""  # ... and why its interval was ended
        self._settle_until_s = -np.inf  # a long movement ended: motion before this is still part of it
        self._candidate: SpottedInterval | None = None  # closed, waiting out confirm_s of rest
        self._moved = np.zeros(N_REGIONS, bool)  # the regions that have moved in the open interval
        self._step_score: float | None = None  # the onset's score while the open interval may still be a re-draw
        self._lids: deque[tuple[float, float, float]] = deque()  # (t_s, blink, gaze) of every frame, warm-up too

    @property
    def noise(self) -> RestingNoise | None:
        """The resting noise thresholds are in: the running baseline's; or a profile's, never tighter than the
        running baseline once it has one. A profile is the person at rest in the light, camera and compression of
        the day it was recorded, and a stream noisier than that (on the benchmark, the mouth's resting flow 4
        times the profile's) would otherwise never come back under close_z: its intervals outlast a
        micro-expression and are refused, the micro-expression with them."""
        if self.fixed is None:
            return self.running.noise
        running = self.running.noise
        if running is None:
            return self.fixed
        if self._combined is None or self._combined[0] is not running:
            self._combined = (running, RestingNoise(
                self.fixed.names, np.maximum(self.fixed.median, running.median),
                np.maximum(self.fixed.scale, running.scale), self.fixed.samples + running.samples))
        return self._combined[1]

    @property
    def is_open(self) -> bool:
        return self._open_s is not None

    @property
    def busy_since_s(self) -> float | None:
        """When the interval still being decided began: open, or closed and waiting out its confirmation."""
        if self._open_s is not None:
            return self._open_s
        return self._candidate.onset_s if self._candidate is not None else None

    def push(self, t_s: float, frame_index: int, values: np.ndarray) -> DetectorStep:
        self._lids.append((t_s, float(values[_INDEX["blink"]]), float(values[_INDEX["gaze"]])))
        while self._lids and self._lids[0][0] < t_s - self._keep_s:
            self._lids.popleft()
        if self.running.noise is None:  # every frame until it has a first estimate (which leaves nuisances out):
            self.running.add(t_s, values)  # beside a profile, a stream far noisier than it may never look idle
        noise = self.noise
        if noise is None:
            return DetectorStep(0.0, False)
        if self._refractory_since is None:  # the first frame with thresholds: a movement already under way began
            self._refractory, self._refractory_since, self._refractory_cause = True, t_s, "warm-up"  # unseen
        s = self.settings
        z = (values - noise.median) / np.maximum(noise.scale, NOISE_FLOORS)
        score = float(z[:N_REGIONS][self._group].max())
        self._history.append((t_s, frame_index, score, z, values))
        while self._history and self._history[0][0] < t_s - self._keep_s:
            self._history.popleft()
        if self._open_s is None:
            moving = self._moving(z, values)
            confirmed, refusal = self._confirm(t_s, moving.any())
            if self._refractory:
                self._refractory = score >= s.close_z
                if not self._refractory and t_s - self._refractory_since > s.max_duration_s + s.lag_s:
                    self._settle_until_s = t_s + s.confirm_s
            elif moving.any() and t_s <= self._settle_until_s:
                self._refractory = True  # the face moves again on coming back from a long movement: its tail
                return DetectorStep(score, False, None, Refusal(self._refractory_cause, self._refractory_since, t_s))
            elif moving.any():
                self._open_s, self._quiet_since, self._moved = t_s, None, moving
                self._step_score = score if self._jumped(score, values) else None
                return DetectorStep(score, True, None, refusal)
            if not self._refractory and self._candidate is None and self.running.noise is not None:
                self.running.add(t_s, values)
            return DetectorStep(score, False, confirmed, refusal)
        self._moved = self._moved | self._moving(z, values)
        redraw = self._redraw(t_s, score)
        if redraw is not None:
            return DetectorStep(score, False, None, redraw)
        if float(z[:N_REGIONS][self._moved].max()) < s.close_z:
            self._quiet_since = t_s if self._quiet_since is None else self._quiet_since
        else:
            self._quiet_since = None
        if self._quiet_since is not None and t_s - self._quiet_since >= s.close_s:
            self._candidate, refusal = self._finish()
            return DetectorStep(score, False, None, refusal)
        if self._outlasted(t_s) and self._came_back(t_s):
            self._candidate, refusal = self._finish()
            return DetectorStep(score, False, None, refusal)
        cause = self._abort_cause(t_s, z, values)
        if cause is not None:
            refusal = Refusal(cause, self._open_s, t_s)
            self._refractory_since, self._refractory_cause = self._open_s, cause
            self._open_s, self._refractory = None, True
            return DetectorStep(score, False, None, refusal)
        return DetectorStep(score, True)

    def _jumped(self, score: float, values: np.ndarray) -> bool:
        """The interval opening now (`score`, `values`) came in one frame, across the face: against the frame
        before, the one before it in `_history`."""
        s = self.settings
        if s.step_s <= 0 or len(self._history) < 2:
            return False
        _, _, before, _, before_values = self._history[-2]
        rise = (values - before_values)[:N_REGIONS] / np.maximum(self.noise.scale[:N_REGIONS], 1e-12)
        return before < s.step_rise_share * score and (rise >= s.close_z).mean() >= s.step_global_share

    def _redraw(self, t_s: float, score: float) -> Refusal | None:
        """A "re-draw" refusal, ending the open interval, once it has stayed flat for step_s after jumping open in
        one frame; None while it may still be one (or can no longer be)."""
        s, onset = self.settings, self._step_score
        if onset is None:
            return None
        if abs(score - onset) > s.step_flat_share * onset:
            self._step_score = None
            return None
        if t_s - self._open_s < s.step_s - 1e-6:
            return None
        refusal = Refusal(REDRAW, self._open_s, t_s)
        self._open_s = self._quiet_since = self._step_score = None
        return refusal

    def _outlasted(self, t_s: float) -> bool:
        """The open interval has lasted longer than any micro-expression, its reference lag included."""
        return t_s - self._open_s > self.settings.max_duration_s + self.settings.lag_s

    def _came_back(self, t_s: float) -> bool:
        """Every region the open interval moved has stayed under return_share of its peak for the last lag_s:
        the face is back but for what the codec has not coded yet."""
        s = self.settings
        peak = max(r[2] for r in self._history if r[0] >= self._open_s)
        recent = [float(r[3][:N_REGIONS][self._moved].max()) for r in self._history if r[0] > t_s - s.lag_s]
        return s.return_share > 0 and max(recent) < s.return_share * peak

    def _abort_cause(self, t_s: float, z: np.ndarray, values: np.ndarray) -> str | None:
        """Why an open interval ends at once, unfinished: it outlasted any micro-expression, or the head turned or
        the light changed (the face will not come back to the frozen reference, and waiting for it would hide
        a micro-expression that follows)."""
        if self._outlasted(t_s):
            rows = [r for r in self._history if r[0] >= self._open_s]
            return self._long_cause(np.stack([r[3] for r in rows]), np.stack([r[4] for r in rows]), self._open_s)
        return self._scene_change(z, values)

    def _long_cause(self, z: np.ndarray, values: np.ndarray, onset_s: float) -> str:
        """Why a movement too long for a micro-expression was: "macro", or the nuisance that explains every region
        of it (a stretch of talking, a held glance), which is no expression of the face's other regions either."""
        moving, explained = self._unexplained(z, values, onset_s)
        return " and ".join(explained) if explained and not moving.any() else "macro"

    def _scene_change(self, z: np.ndarray, values: np.ndarray) -> str | None:
        """"head motion" or "light change" when the rotation or the brightness change in `values` reached its
        minimum and `nuisance_z` resting deviations in `z` (one frame's, or an interval's peaks); else None."""
        s = self.settings
        for name, minimum, cause in (("pose_deg", s.head_min_deg, "head motion"),
                                     ("light", s.light_min, "light change")):
            if values[_INDEX[name]] >= minimum and z[_INDEX[name]] >= s.nuisance_z:
                return cause
        return None

    def _confirm(self, t_s: float, moving: bool) -> tuple[SpottedInterval | None, Refusal | None]:
        """A closed interval becomes an event once the face has stayed at rest for confirm_s after it; motion
        again in that time (against the same pre-onset face) makes it part of a longer movement: a macro."""
        candidate = self._candidate
        if candidate is None:
            return None, None
        if moving:
            self._candidate = None
            return None, Refusal("macro", candidate.onset_s, t_s)
        if t_s - candidate.offset_s >= self.settings.confirm_s:
            self._candidate = None
            return candidate, None
        return None, None

    def flush(self) -> SpottedInterval | None:
        """At the end of a stream: the interval still waiting for its confirmation, if any."""
        candidate, self._candidate = self._candidate, None
        return candidate

    def _moving(self, z: np.ndarray, values: np.ndarray, whole_face: bool = False) -> np.ndarray:
        """(N_REGIONS,) regions of this detector's group (or of the whole face) moving enough to open an
        interval."""
        excess = values[:N_REGIONS] - self.noise.median[:N_REGIONS]
        moving = (z[:N_REGIONS] >= self.settings.open_z) & (excess >= self.settings.min_motion_fw)
        return moving if whole_face else moving & self._group

    def _unexplained(self, z: np.ndarray, values: np.ndarray, onset_s: float) -> tuple[np.ndarray, list[str]]:
        """(regions of the group that moved in the span `z`/`values` (frames, features) and no nuisance
        explains, the nuisances that happened in it). A blink or glance up to lid_tail_s before `onset_s` counts,
        and so does the motion it made then: a blink shakes the lower face, which settles after the lids."""
        s = self.settings
        peak_values = values.max(axis=0)
        before = [r[4][:N_REGIONS] for r in self._history if onset_s - s.lid_tail_s <= r[0] < onset_s]
        nuisance_motion = np.max([peak_values[:N_REGIONS], *before], axis=0)
        lids_before = np.max([(b, g) for t, b, g in self._lids if onset_s - s.lid_tail_s <= t <= onset_s] or
                             [(0.0, 0.0)], axis=0)  # a blink just before: the interval is its reopening
        share = s.coincident_leak_share if self._lids_start_near(onset_s) else s.leak_share
        reached = {name: bool(peak_values[_INDEX[name]] >= self._minimums[_INDEX[name]])
                   for name in ("blink", "gaze", "jaw", "lip_gap")}
        lids_reached = lids_before >= self._lid_minimums
        happened = {"blink": reached["blink"] or bool(lids_reached[0]),
                    "glance": reached["gaze"] or bool(lids_reached[1]),
                    "talking": reached["jaw"] or reached["lip_gap"]}
        explained = [cause for cause in NUISANCE_REGIONS if happened[cause]]
        masked = explained_regions(explained)
        moving = np.stack([self._moving(zz, vv) for zz, vv in zip(z, values)]).any(axis=0)
        if masked.any():  # what a nuisance moves, it also shakes elsewhere: the rest must stand out of that
            moving &= ~masked & (peak_values[:N_REGIONS] >= share * nuisance_motion[masked].max())
        return moving, explained

    def _lids_start_near(self, onset_s: float) -> bool:
        """The lids began a blink or a glance within coincident_s of `onset_s`: their first frame past the
        minimum after a frame under it."""
        s = self.settings
        rows = [(t, np.array([b, g]) >= self._lid_minimums) for t, b, g in self._lids
                if onset_s - s.lid_tail_s - s.coincident_s <= t <= onset_s + s.coincident_s]
        return any(abs(t - onset_s) <= s.coincident_s and (now & ~before).any()
                   for (_, before), (t, now) in zip(rows, rows[1:]))

    def _global_motion(self, z: np.ndarray, values: np.ndarray, explained: list[str]) -> bool:
        """The whole face moved at once and evenly at the apex (`z`/`values`: its features), judged on the regions
        no nuisance of the interval explains, and only while they are at least half the face."""
        s = self.settings
        free = ~explained_regions(explained)
        if free.sum() * 2 < N_REGIONS:
            return False
        motion = values[:N_REGIONS][free]
        return bool(self._moving(z, values, whole_face=True)[free].mean() >= s.global_share
                    and np.median(motion) >= s.global_evenness * motion.max())

    def _finish(self) -> tuple[SpottedInterval | None, Refusal | None]:
        """Time the closed interval and apply the refusal rules."""
        s, open_s = self.settings, self._open_s
        self._open_s = self._quiet_since = None
        rows = list(self._history)
        times = np.array([r[0] for r in rows])
        scores = np.array([r[2] for r in rows])
        start = int(np.searchsorted(times, open_s))
        apex = start + int(np.argmax(scores[start:]))
        level = max(s.close_z, s.edge_share * scores[apex])
        onset = apex
        while onset > 0 and scores[onset] > level:
            onset -= 1
        offset = apex
        while offset < len(rows) - 1 and scores[offset] > level:
            offset += 1
        onset_s, offset_s = float(times[onset]), float(times[offset])
        span = rows[onset:offset + 1]
        z = np.stack([r[3] for r in span])
        values = np.stack([r[4] for r in span])
        if offset_s - onset_s > s.max_duration_s:
            return None, Refusal(self._long_cause(z, values, onset_s), onset_s, offset_s)
        if offset_s - onset_s < s.min_duration_s:
            return None, Refusal("brief", onset_s, offset_s)
        peak_z, peak_values = z.max(axis=0), values.max(axis=0)
        cause = self._scene_change(peak_z, peak_values)
        if cause is not None:
            return None, Refusal(cause, onset_s, offset_s)
        moving, explained = self._unexplained(z, values, onset_s)
        if self._global_motion(rows[apex][3], rows[apex][4], explained):
            return None, Refusal("global motion", onset_s, offset_s)
        if not moving.any():
            return None, Refusal(" and ".join(explained) or "weak", onset_s, offset_s)
        order = np.argsort(-peak_z[:N_REGIONS])
        regions = tuple(REGION_NAMES[i] for i in order if moving[i])
        strongest = REGION_NAMES.index(regions[0])
        return SpottedInterval(
            onset_frame=rows[onset][1], apex_frame=rows[apex][1], offset_frame=rows[offset][1], onset_s=onset_s,
            apex_s=float(times[apex]), offset_s=offset_s, peak_z=float(peak_z[strongest]),
            peak_fw=float(peak_values[strongest]), regions=regions), None
