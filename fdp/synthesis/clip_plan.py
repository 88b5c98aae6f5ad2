"""What one synthetic clip will show, drawn from its seed: class, AUs, timing, size, and the nuisance motions.

Every class draws the same nuisances from the same distributions (head drift, blinks, light flicker, sensor noise,
augmentation, the source video's own motion), and `none` even draws an AU recipe, timing and size that it then
multiplies by zero, so the only thing that tells the classes apart is the AU motion itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from fdp.cli import option
from fdp.config import SYNTHETIC_CLASSES
from fdp.errors import ConfigError
from fdp.synthesis.occluders import OCCLUDER_KINDS, Occluder

# Class -> the AU combinations it is drawn from (uniformly); `none` draws any of them and scales it by zero.
CLASS_RECIPES: dict[str, tuple[tuple[str, ...], ...]] = {
    "negative": (("AU04",), ("AU04", "AU07"), ("AU09",), ("AU10",), ("AU14",), ("AU15", "AU17")),
    "positive": (("AU12",), ("AU06", "AU12")),
    "surprise": (("AU01", "AU02"), ("AU01", "AU02", "AU05")),
}
ALL_RECIPES: tuple[tuple[str, ...], ...] = tuple(r for recipes in CLASS_RECIPES.values() for r in recipes)
BLINK_PROBABILITY = 0.35  # per clip, every class alike
OCCLUDER_PROBABILITY = 0.3  # per clip: glasses, a strand of hair or a hand, every class alike
BLINK_BESIDE_ME = 0.5  # share of those blinks that end just before the onset or start just after the offset


@dataclass(frozen=True)
class Ranges:
    """The user-set ranges a plan is drawn from."""

    fps: float = field(default=30.0, metadata=option("frame rate of the clips"))
    min_fw: float = field(default=0.005, metadata=option(
        "least peak motion, a share of the face width (0.005: barely visible; 1 %% of it is 0.6 px at a 64 px crop)"))
    max_fw: float = field(default=0.03, metadata=option("largest peak motion, a share of the face width (0.03: clear)"))
    min_me_s: float = field(default=0.1, metadata=option("shortest expression, onset to offset, s"))
    max_me_s: float = field(default=0.5, metadata=option("longest expression, onset to offset, s"))
    min_clip_s: float = field(default=0.8, metadata=option("shortest clip, s"))
    max_clip_s: float = field(default=1.2, metadata=option("longest clip, s"))


@dataclass(frozen=True)
class ClipPlan:
    """Everything random about one clip, fixed before rendering (so a plan renders the same way every time)."""

    seed: int
    label: str
    aus: tuple[tuple[str, float], ...]  # (AU, weight): one at 1, the others weaker; drawn for `none` too
    peak_fw: float  # requested peak vertex motion, a share of the face width; 0 for `none`
    weak_side: str  # image side ('left' or 'right') that moves by side_scale of the other
    side_scale: float
    fps: float
    n_frames: int
    onset: int  # frame indices from 0: last still frame before the motion
    apex: int  # first frame at full amplitude
    hold_end: int  # last frame at full amplitude
    offset: int  # first frame back at rest
    blink: tuple[int, int, int, float] | None  # start, closed, end frame index; lid closure fraction
    drift: tuple[float, ...]  # x, y amplitude (crop px), x, y frequency (Hz), x, y phase, rotation (deg), scale
    drift_rotation: tuple[float, float, float]  # amplitude (deg), frequency (Hz), phase
    flicker: tuple[float, float, float, float]  # amplitude, frequency (Hz), phase, slope (1/s)
    noise_sigma: float  # grey levels
    scale: float  # augmentation zoom
    rotation_deg: float
    flip: bool
    gain: float
    bias: float
    region_factor: float  # output side / face box side
    source_start: int  # first source frame (videos)
    speed: float  # source playback speed (videos)
    jpeg_quality: int
    light: tuple[float, float] = (0.0, 0.0)  # direction (rad) and strength of a light from one side, 0..0.35
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)  # B, G, R gains: white balance and the colour of the light
    occluder: Occluder | None = None

    @property
    def duration_s(self) -> float:
        return (self.offset - self.onset) / self.fps


def uneven_weights(rng: np.random.Generator, aus: tuple[str, ...]) -> tuple[tuple[str, float], ...]:
    """One AU at weight 1, the others weaker and unequal, so no recipe always looks the same."""
    weights = rng.uniform(0.35, 0.85, len(aus))
    weights[rng.integers(len(aus))] = 1.0
    return tuple((au, round(float(w), 3)) for au, w in zip(aus, weights))


def log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """As many subtle sizes as clear ones: uniform in log size."""
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def _ramp(x: np.ndarray) -> np.ndarray:
    """Raised cosine 0 -> 1 over [0, 1]: zero slope at both ends, as a muscle starts and stops."""
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(x, 0.0, 1.0))


def envelope(n_frames: int, onset: int, peak: int, peak_end: int, offset: int) -> np.ndarray:
    """(n_frames,) 0 up to `onset`, raised-cosine rise to 1 at `peak`, 1 until `peak_end`, fall to 0 at `offset`."""
    i = np.arange(n_frames, dtype=np.float64)
    rise = _ramp((i - onset) / max(peak - onset, 1))
    fall = 1.0 - _ramp((i - peak_end) / max(offset - peak_end, 1))
    return np.where(i <= peak_end, rise, fall)


def me_envelope(plan: ClipPlan) -> np.ndarray:
    """The micro-expression's amplitude per frame, 0..1 (all zero for `none`)."""
    scale = 0.0 if plan.label == "none" else 1.0
    return scale * envelope(plan.n_frames, plan.onset, plan.apex, plan.hold_end, plan.offset)


def blink_envelope(plan: ClipPlan) -> np.ndarray:
    """Lid closure per frame as a fraction of the eye's own aperture (zeros when the clip has no blink)."""
    if plan.blink is None:
        return np.zeros(plan.n_frames)
    start, closed, end, closure = plan.blink
    return closure * envelope(plan.n_frames, start, closed, closed, end)


def drift_at(plan: ClipPlan, t_s: float) -> tuple[float, float, float, float]:
    """Head drift at time t: (dx, dy) crop pixels, rotation degrees, relative scale."""
    ax, ay, fx, fy, px, py, scale = plan.drift
    rot_a, rot_f, rot_p = plan.drift_rotation
    two_pi_t = 2.0 * math.pi * t_s
    return (ax * math.sin(fx * two_pi_t + px), ay * math.sin(fy * two_pi_t + py),
            rot_a * math.sin(rot_f * two_pi_t + rot_p), scale * math.sin(0.5 * (fx + fy) * two_pi_t + px + py))


def gain_at(plan: ClipPlan, t_s: float) -> float:
    """Light flicker and slow exposure change at time t (multiplicative)."""
    amplitude, frequency, phase, slope = plan.flicker
    return 1.0 + amplitude * math.sin(2.0 * math.pi * frequency * t_s + phase) + slope * t_s


def _draw_blink(rng: np.random.Generator, fps: float, n_frames: int, onset: int,
                offset: int) -> tuple[int, int, int, float]:
    """A blink anywhere in the clip, or (BLINK_BESIDE_ME of the time) ending at the onset or starting at the
    offset, as people blink right before and after an expression: a model must not take the lids for the ME."""
    length = max(2, round(rng.uniform(0.1, 0.3) * fps))
    if rng.random() < BLINK_BESIDE_ME:
        start = onset - length if rng.random() < 0.5 else offset
    else:
        start = int(rng.integers(0, max(1, n_frames - length)))
    start = int(np.clip(start, 0, max(0, n_frames - length)))
    return start, start + max(1, round(0.35 * length)), start + length, float(rng.uniform(0.6, 1.0))


def plan_clip(seed: int, label: str, ranges: Ranges, source_frames: int = 1, source_fps: float = 0.0,
              usable: np.ndarray | None = None) -> ClipPlan:
    """Draw a clip plan from its own seed; `source_*` describe the identity's video (1 frame for a still)."""
    if label not in SYNTHETIC_CLASSES:
        raise ConfigError(f"unknown synthetic class {label!r}; choose one of {', '.join(SYNTHETIC_CLASSES)}")
    rng = np.random.default_rng(seed)
    fps = ranges.fps
    recipes = ALL_RECIPES if label == "none" else CLASS_RECIPES[label]
    recipe = recipes[rng.integers(len(recipes))]
    aus = uneven_weights(rng, recipe)
    peak_fw = log_uniform(rng, ranges.min_fw, ranges.max_fw)
    weak_side, side_scale = ("left", "right")[rng.integers(2)], float(rng.uniform(0.6, 1.0))
    lo, hi = max(2, math.ceil(ranges.min_me_s * fps - 1e-9)), max(2, math.floor(ranges.max_me_s * fps + 1e-9))
    me_frames = int(np.clip(round(rng.uniform(ranges.min_me_s, ranges.max_me_s) * fps), lo, max(lo, hi)))
    n_frames = max(round(rng.uniform(ranges.min_clip_s, ranges.max_clip_s) * fps), me_frames + 3)
    onset = int(rng.integers(1, n_frames - me_frames - 1))
    hold = rng.uniform(0.0, 0.2)
    apex = onset + int(np.clip(round(rng.uniform(0.3, 0.6) * (1.0 - hold) * me_frames), 1, me_frames - 1))
    offset = onset + me_frames
    hold_end = min(apex + round(hold * me_frames), offset - 1)
    blink = None
    if rng.random() < BLINK_PROBABILITY:
        blink = _draw_blink(rng, fps, n_frames, onset, offset)
    drift = (float(rng.uniform(0, 1.5)), float(rng.uniform(0, 1.5)), float(rng.uniform(0.2, 1.2)),
             float(rng.uniform(0.2, 1.2)), float(rng.uniform(0, 2 * math.pi)), float(rng.uniform(0, 2 * math.pi)),
             float(rng.uniform(0, 0.01)))
    drift_rotation = (float(rng.uniform(0, 1.0)), float(rng.uniform(0.2, 1.0)), float(rng.uniform(0, 2 * math.pi)))
    flicker = (float(rng.uniform(0, 0.03)), float(rng.uniform(0.5, 10.0)), float(rng.uniform(0, 2 * math.pi)),
               float(rng.uniform(-0.03, 0.03)))
    speed = float(rng.uniform(0.8, 1.2))
    start = 0
    if source_frames > 1 and source_fps > 0:
        span = math.ceil(n_frames / fps * source_fps * speed) + 1
        starts = np.arange(max(1, source_frames - span))
        if usable is not None:  # prefer windows whose every frame has a usable face
            ok = np.convolve(usable.astype(int), np.ones(span, int), "valid")[: len(starts)] == span
            starts = starts[ok] if ok.any() else starts
        start = int(rng.choice(starts))
    return ClipPlan(
        seed=seed, label=label, aus=aus, peak_fw=0.0 if label == "none" else peak_fw, weak_side=weak_side,
        side_scale=round(side_scale, 3), fps=fps, n_frames=n_frames,
        onset=onset, apex=apex, hold_end=hold_end, offset=offset, blink=blink, drift=drift,
        drift_rotation=drift_rotation, flicker=flicker, noise_sigma=float(rng.uniform(0.5, 2.5)),
        scale=float(rng.uniform(0.9, 1.1)), rotation_deg=float(rng.uniform(-8, 8)), flip=bool(rng.random() < 0.5),
        gain=float(rng.uniform(0.85, 1.15)), bias=float(rng.uniform(-12, 12)),
        region_factor=float(rng.uniform(2.2, 2.8)), source_start=start, speed=speed,
        jpeg_quality=int(rng.integers(88, 97)), light=(float(rng.uniform(0, 2 * math.pi)), float(rng.uniform(0, 0.35))),
        tint=tuple(float(g) for g in rng.uniform(0.88, 1.12, 3)), occluder=_draw_occluder(rng))


def _draw_occluder(rng: np.random.Generator) -> Occluder | None:
    if rng.random() >= OCCLUDER_PROBABILITY:
        return None
    return Occluder(OCCLUDER_KINDS[rng.integers(len(OCCLUDER_KINDS))], ("left", "right")[rng.integers(2)],
                    round(float(rng.random()), 3), round(float(rng.random()), 3))
