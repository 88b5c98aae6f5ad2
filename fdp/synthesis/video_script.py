"""The timeline of one long synthetic test video, as frozen data: which face, and what happens on it when.

A script is fixed before anything is rendered (`draw_script` from a seed, or `preset_script` for tests), so one
script always renders the same video and its ground truth is exact. Times are seconds from the first frame; sizes
are face widths (fw: the distance between the face-outline landmarks 234 and 454), so a script means the same on
any face at any output size. `item_frames` is the one conversion of an item's times to frame indices, shared by the
renderer and the ground truth.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from fdp.errors import ConfigError
from fdp.synthesis.au_definitions import OWN_FIELDS
from fdp.synthesis.clip_plan import CLASS_RECIPES, log_uniform, uneven_weights

NUISANCES: tuple[str, ...] = ("blink", "talk", "head", "light", "macro")
PRESETS: tuple[str, ...] = ("one_me", "blinks", "talk", "macro", "nothing")
ME_LABELS: tuple[str, ...] = tuple(CLASS_RECIPES)
MACRO_RECIPES: dict[str, tuple[tuple[str, ...], ...]] = {"smile": (("AU06", "AU12"),),
                                                         "frown": (("AU04", "AU15"), ("AU04", "AU07"))}
MIN_ME_S, MAX_ME_S = 0.15, 0.5  # onset to offset
MIN_FPS = 15  # a 0.15 s micro-expression needs an onset, an apex and an offset frame
ME_GAP_S = 1.0  # micro-expressions at least this far apart
ME_CLEAR_S = 0.3  # ... and this far from a talking stretch, a nod or turn or a macro expression (a lamp: 1 s)
BLINK_CLEAR_S = 0.2  # a blink may sit 0.2-1 s from a micro-expression (a wanted hard case), never on it
EDGE_S = 0.5  # no micro-expression in the last half second
LEAD_S = 1.5  # ... nor in a drawn video's first 1.5 s: a live spotter needs a stretch of the face at rest first
# (the running baseline learns from its first idle second), as a camera has run a while before anything happens
LONG_SHARE = 0.4  # talking and macro expressions take at most this share of a drawn video
_ATTEMPTS = 8  # redraws of a crowded timeline before it is refused
FACE_WIDTH_PX = 160.0  # output face width by default: a webcam's 640x480 view at arm's length


@dataclass(frozen=True)
class MicroExpression:
    """One micro-expression; its frames from onset to offset are the ground truth a spotter must find."""

    label: str  # negative, positive or surprise (the recipes of fdp.synthesis.clip_plan.CLASS_RECIPES)
    aus: tuple[tuple[str, float], ...]  # (AU, weight): unequal weights, the strongest 1
    onset_s: float  # last moment at rest
    apex_s: float
    offset_s: float  # first moment back at rest
    peak_fw: float  # largest vertex motion at the apex: 0.005 barely visible .. 0.03 clear
    weak_side: str  # image side ('left' or 'right') that moves by side_scale of the other
    side_scale: float
    kind: ClassVar[str] = "me"

    @property
    def start_s(self) -> float:
        return self.onset_s

    @property
    def end_s(self) -> float:
        return self.offset_s


@dataclass(frozen=True)
class Blink:
    """Lids closing and opening again; one-eyed blinks close only the given image side's eye."""

    start_s: float
    duration_s: float
    eyes: str  # 'both', 'left' or 'right' (image sides)
    closure: float  # share of each eye's aperture closed at the deepest point
    kind: ClassVar[str] = "blink"

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


@dataclass(frozen=True)
class Talk:
    """A stretch of speech: syllables of jaw drop and parted lips. No syllables: the source video talks itself."""

    start_s: float
    duration_s: float
    syllables: tuple[tuple[float, float, float, float], ...]  # (start_s, duration_s, jaw_fw, corner) each
    kind: ClassVar[str] = "talk"  # corner: lip-corner weight per jaw motion, + pulls out (AU12), - in (AU14)

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


@dataclass(frozen=True)
class HeadMove:
    """A quick nod (pitch; + tips the chin down) or turn (yaw; + turns the face to image right), and back."""

    kind: str  # 'nod' or 'turn'
    start_s: float
    duration_s: float
    degrees: float

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


@dataclass(frozen=True)
class HeadDrift:
    """Slow wander of the head over the whole video: a sinusoid per component."""

    start_s: float
    duration_s: float
    amplitude: tuple[float, ...]  # x, y (fw), roll (degrees), relative scale
    frequency_hz: tuple[float, ...]  # the same four
    phase: tuple[float, ...]
    kind: ClassVar[str] = "drift"

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s

    def at(self, t_s: float) -> tuple[float, float, float, float]:
        """dx, dy (fw), roll (degrees), relative scale at time t."""
        x, y, roll, scale = (a * math.sin(2.0 * math.pi * f * t_s + p)
                             for a, f, p in zip(self.amplitude, self.frequency_hz, self.phase))
        return x, y, roll, scale


@dataclass(frozen=True)
class LightChange:
    """Light on the face: slow exposure drift, flicker, or a lamp switched (a step that stays; duration 0)."""

    kind: str  # 'exposure', 'flicker' or 'step'
    start_s: float
    duration_s: float
    amplitude: float  # relative gain: sinusoid amplitude, or the step's size (signed)
    frequency_hz: float = 0.0
    phase: float = 0.0

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s

    def gain(self, t_s: np.ndarray) -> np.ndarray:
        """Its additive share of the relative gain at the times `t_s`."""
        if self.kind == "step":
            return np.where(t_s >= self.start_s, self.amplitude, 0.0)
        wave = self.amplitude * np.sin(2.0 * np.pi * self.frequency_hz * (t_s - self.start_s) + self.phase)
        return np.where((t_s >= self.start_s) & (t_s <= self.end_s), wave, 0.0)


@dataclass(frozen=True)
class MacroExpression:
    """A slow, large posed expression (a smile or a frown): the motion a micro-expression spotter must ignore."""

    label: str  # 'smile' or 'frown'
    aus: tuple[tuple[str, float], ...]
    start_s: float
    rise_s: float
    hold_s: float
    fall_s: float
    peak_fw: float
    kind: ClassVar[str] = "macro"

    @property
    def end_s(self) -> float:
        return self.start_s + self.rise_s + self.hold_s + self.fall_s


Item = MicroExpression | Blink | Talk | HeadMove | HeadDrift | LightChange | MacroExpression
ITEM_TYPES: dict[str, type] = {"me": MicroExpression, "blink": Blink, "talk": Talk, "nod": HeadMove,
                               "turn": HeadMove, "drift": HeadDrift, "exposure": LightChange,
                               "flicker": LightChange, "step": LightChange, "macro": MacroExpression}


@dataclass(frozen=True)
class VideoScript:
    """Everything one video shows, fixed before rendering: the face, frame rate, length, noise and every item."""

    face: str  # subject id of fdp.synthesis.face_sources (a still animated, or a video played along)
    fps: float  # whole frames per second (the AVI writer stores whole rates)
    duration_s: float
    seed: int  # sensor noise per frame
    noise_sigma: float  # grey levels
    jpeg_quality: int  # MJPG quality of every frame
    items: tuple[Item, ...] = ()
    source_start: int = 0  # first source frame of a video face
    face_width_px: float = FACE_WIDTH_PX  # output scale: the face this wide in the frame, however big the source

    def __post_init__(self) -> None:
        if self.fps < MIN_FPS or self.fps != round(self.fps):
            raise ConfigError(f"fps {self.fps:g}: use a whole frame rate of {MIN_FPS} or more")
        if self.duration_s * self.fps < 2:
            raise ConfigError(f"duration_s {self.duration_s:g}: a video needs at least 2 frames")
        if not 1 <= self.jpeg_quality <= 100:
            raise ConfigError(f"jpeg_quality {self.jpeg_quality}: use 1..100")
        if self.face_width_px < 40:
            raise ConfigError(f"face_width_px {self.face_width_px:g}: use 40 or more pixels")
        if self.source_start < 0 or self.noise_sigma < 0:
            raise ConfigError(f"source_start {self.source_start} / noise_sigma {self.noise_sigma:g}: use 0 or more")
        for item in self.items:
            if item.kind not in ITEM_TYPES or not isinstance(item, ITEM_TYPES[item.kind]):
                raise ConfigError(f"script item of kind {item.kind!r}: choose one of {', '.join(ITEM_TYPES)}")
            if item.start_s < 0 or item.end_s > self.duration_s + 1e-6:
                raise ConfigError(f"{item.kind} at {item.start_s:g}-{item.end_s:g} s lies outside the "
                                  f"{self.duration_s:g} s video; move it inside")
            for au, _ in getattr(item, "aus", ()):
                if au not in OWN_FIELDS:
                    raise ConfigError(f"{item.kind} AU {au!r}: no such AU field; choose from {', '.join(OWN_FIELDS)}")

    @property
    def n_frames(self) -> int:
        return int(round(self.duration_s * self.fps))


def frame_at(t_s: float, fps: float) -> int:
    """Index of the frame shown at time t (frame i is the i-th frame the file returns, from 0)."""
    return int(round(t_s * fps))


def item_frames(item: Item, fps: float, n_frames: int) -> tuple[int, int, int]:
    """(start, peak, end) frame indices: for an ME onset (last still frame), apex, offset (first back at rest)."""
    last = n_frames - 1
    if isinstance(item, MicroExpression):
        onset = min(frame_at(item.onset_s, fps), last - 2)
        apex = min(max(frame_at(item.apex_s, fps), onset + 1), last - 1)
        return onset, apex, min(max(frame_at(item.offset_s, fps), apex + 1), last)
    start, end = min(frame_at(item.start_s, fps), last), min(frame_at(item.end_s, fps), last)
    if isinstance(item, MacroExpression):
        peak = frame_at(item.start_s + item.rise_s, fps)
    elif isinstance(item, Blink):
        peak = frame_at(item.start_s + 0.35 * item.duration_s, fps)  # lids close faster than they open
    else:
        peak = frame_at(0.5 * (item.start_s + item.end_s), fps)
    return start, min(max(peak, start), end), end


def script_to_dict(script: VideoScript) -> dict[str, Any]:
    """JSON-ready form; every item carries its kind so `script_from_dict` can rebuild it."""
    record = {f.name: getattr(script, f.name) for f in dataclasses.fields(script) if f.name != "items"}
    record["items"] = [{"kind": item.kind, **dataclasses.asdict(item)} for item in script.items]
    return record


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def script_from_dict(record: dict[str, Any]) -> VideoScript:
    """Rebuild a script written by `script_to_dict` (lists back to tuples)."""
    items = []
    for entry in record["items"]:
        cls = ITEM_TYPES[entry["kind"]]
        items.append(cls(**{f.name: _tuples(entry[f.name]) for f in dataclasses.fields(cls)}))
    fields = {f.name: record[f.name] for f in dataclasses.fields(VideoScript) if f.name != "items"}
    return VideoScript(**fields, items=tuple(items))


# ----------------------------------------------------------------------------------------------- drawing items


def draw_me(rng: np.random.Generator, onset_s: float, length_s: float | None = None) -> MicroExpression:
    """A random micro-expression starting at onset_s: class, recipe, timing, size and asymmetry."""
    label = ME_LABELS[rng.integers(len(ME_LABELS))]
    recipes = CLASS_RECIPES[label]
    aus = uneven_weights(rng, recipes[rng.integers(len(recipes))])
    length = float(rng.uniform(MIN_ME_S, MAX_ME_S)) if length_s is None else length_s
    peak_fw = log_uniform(rng, 0.005, 0.03)
    return MicroExpression(label, aus, round(onset_s, 4), round(onset_s + rng.uniform(0.3, 0.6) * length, 4),
                           round(onset_s + length, 4), round(peak_fw, 5), ("left", "right")[rng.integers(2)],
                           round(float(rng.uniform(0.6, 1.0)), 3))


def draw_blink(rng: np.random.Generator, start_s: float) -> Blink:
    eyes = "both" if rng.random() < 0.7 else ("left", "right")[rng.integers(2)]
    return Blink(round(start_s, 4), round(float(rng.uniform(0.1, 0.3)), 4), eyes,
                 round(float(rng.uniform(0.7, 1.0)), 3))


def draw_talk(rng: np.random.Generator, start_s: float, duration_s: float) -> Talk:
    """Syllables at 3-6 Hz, each a jaw drop of 3-8 % of the face width with a little lip-corner motion."""
    rate = float(rng.uniform(3.0, 6.0))
    syllables, t = [], start_s
    while t + 0.6 / rate <= start_s + duration_s:
        length = min(float(rng.uniform(0.7, 1.0)) / rate, start_s + duration_s - t)
        syllables.append((round(t, 4), round(length, 4), round(float(rng.uniform(0.03, 0.08)), 4),
                          round(float(rng.uniform(-0.3, 0.3)), 3)))
        t += length + float(rng.uniform(0.0, 0.25)) / rate
    return Talk(round(start_s, 4), round(duration_s, 4), tuple(syllables))


def draw_macro(rng: np.random.Generator, start_s: float, duration_s: float) -> MacroExpression:
    """A smile (AU6+AU12) or frown (AU4+AU15 or AU4+AU7) of 4-8 % of the face width, rising and falling slowly."""
    label = ("smile", "frown")[rng.integers(2)]
    recipes = MACRO_RECIPES[label]
    rise, fall = (float(rng.uniform(0.5, min(1.0, 0.4 * duration_s))) for _ in range(2))
    return MacroExpression(label, uneven_weights(rng, recipes[rng.integers(len(recipes))]), round(start_s, 4),
                           round(rise, 4), round(duration_s - rise - fall, 4), round(fall, 4),
                           round(float(rng.uniform(0.04, 0.08)), 4))


def draw_head_move(rng: np.random.Generator, start_s: float) -> HeadMove:
    kind = ("nod", "turn")[rng.integers(2)]
    degrees = float(rng.uniform(3.0, 10.0)) * (1 if rng.random() < 0.5 else -1)
    return HeadMove(kind, round(start_s, 4), round(float(rng.uniform(0.3, 0.8)), 4), round(degrees, 3))


def draw_drift(rng: np.random.Generator, duration_s: float) -> HeadDrift:
    amplitude = rng.uniform((0.003, 0.003, 0.3, 0.002), (0.015, 0.015, 1.5, 0.01))
    return HeadDrift(0.0, duration_s, tuple(round(float(a), 4) for a in amplitude),
                     tuple(round(float(f), 4) for f in rng.uniform(0.05, 0.4, 4)),
                     tuple(round(float(p), 4) for p in rng.uniform(0, 2 * math.pi, 4)))


# -------------------------------------------------------------------------------------------- drawing scripts

Taken = list[tuple[float, float, float]]  # (start_s, end_s, clearance_s) a new item must keep away from


def _starts(rng: np.random.Generator, length: float, lo: float, hi: float, taken: Taken,
            clear: float) -> float | None:
    """A random start in [lo, hi - length] whose item keeps `clear` (and each taken item's own clearance) away
    from everything taken; None if there is no room."""
    starts = np.arange(lo, hi - length + 1e-9, 0.01)
    ok = np.ones(len(starts), bool)
    for a, b, own in taken:
        gap = max(clear, own)
        ok &= (starts + length + gap <= a) | (starts >= b + gap)
    return float(rng.choice(starts[ok])) if ok.any() else None


def _draw_once(rng: np.random.Generator, duration_s: float, nuisances: frozenset[str], n_me: int) -> list[Item] | None:
    """One try at a timeline: the long items first, the MEs in what they leave free, then the short nuisances
    around the MEs; None when the MEs find no room."""
    items: list[Item] = []
    long: Taken = []  # talking stretches and macro expressions: never on each other
    budget = LONG_SHARE * duration_s
    n_long = max(1, round(duration_s / 12))
    for index in range(2 * n_long):
        kind = ("macro", "talk")[index % 2]
        if kind not in nuisances:
            continue
        shortest, longest = (2.0, 3.0) if kind == "macro" else (1.0, 4.0)
        length = min(float(rng.uniform(shortest, longest)), budget)
        start = _starts(rng, length, 0.2, duration_s - 0.2, long, 0.5) if length >= shortest else None
        if start is None:
            continue
        budget -= length
        long.append((start, start + length, 0.0))
        items.append(draw_macro(rng, start, length) if kind == "macro" else draw_talk(rng, start, length))
    me_taken: Taken = [(a, b, ME_CLEAR_S) for a, b, _ in long]
    mes = []
    for _ in range(n_me):
        length = float(rng.uniform(MIN_ME_S, MAX_ME_S))
        start = _starts(rng, length, LEAD_S, duration_s - EDGE_S, me_taken, 0.0)
        if start is None:
            return None
        mes.append(draw_me(rng, start, length))
        me_taken.append((start, start + length, ME_GAP_S))
    items.extend(mes)
    around_mes: Taken = [(m.start_s, m.end_s, ME_CLEAR_S) for m in mes]
    if "head" in nuisances:
        items.append(draw_drift(rng, duration_s))
        moves: Taken = list(around_mes)
        for _ in range(max(1, round(duration_s / 6))):
            move = draw_head_move(rng, 0.0)
            start = _starts(rng, move.duration_s, 0.2, duration_s - 0.2, moves, 0.5)
            if start is not None:
                items.append(dataclasses.replace(move, start_s=round(start, 4)))
                moves.append((start, start + move.duration_s, 0.5))
    if "blink" in nuisances:
        items.extend(_draw_blinks(rng, duration_s, mes))
    if "light" in nuisances:
        items.append(LightChange("exposure", 0.0, duration_s, round(float(rng.uniform(0.02, 0.05)), 4),
                                 round(1.0 / float(rng.uniform(8.0, 30.0)), 4), round(float(rng.uniform(0, 6.28)), 3)))
        length = min(float(rng.uniform(2.0, 6.0)), duration_s / 3)
        start = float(rng.uniform(0.0, duration_s - length))
        items.append(LightChange("flicker", round(start, 4), round(length, 4), round(float(rng.uniform(0.01, 0.04)), 4),
                                 round(float(rng.uniform(0.5, 10.0)), 3), round(float(rng.uniform(0, 6.28)), 3)))
        steps: Taken = [(m.start_s, m.end_s, ME_GAP_S) for m in mes]  # a lamp switched never next to an ME
        for _ in range(int(rng.integers(1, 3))):
            start = _starts(rng, 0.0, 0.5, duration_s - 0.5, steps, 1.0)
            if start is not None:
                size = float(rng.uniform(0.05, 0.10)) * (1 if rng.random() < 0.5 else -1)
                items.append(LightChange("step", round(start, 4), 0.0, round(size, 4)))
                steps.append((start, start, 1.0))
    return sorted(items, key=lambda item: (item.start_s, item.kind))


def _draw_blinks(rng: np.random.Generator, duration_s: float, mes: list[MicroExpression]) -> list[Blink]:
    """Blinks every 2-6 s; one that would land on a micro-expression moves to 0.2-1 s after it instead."""
    blinks: list[Blink] = []
    t = float(rng.uniform(0.3, 3.0))
    while True:
        blink = draw_blink(rng, t)
        clash = next((m for m in mes if blink.start_s < m.end_s + BLINK_CLEAR_S
                      and blink.end_s > m.start_s - BLINK_CLEAR_S), None)
        if clash is not None:
            t = clash.end_s + float(rng.uniform(BLINK_CLEAR_S, 1.0))
            continue
        if blink.end_s > duration_s - 0.1:
            return blinks
        blinks.append(blink)
        t = blink.end_s + float(rng.uniform(2.0, 6.0))


def _noise(rng: np.random.Generator) -> tuple[float, int]:
    """Sensor noise (grey levels) and MJPG quality, drawn for every video alike."""
    return round(float(rng.uniform(0.8, 3.0)), 3), int(rng.integers(85, 96))


def draw_script(seed: int, face: str, fps: float = 30.0, duration_s: float = 20.0,
                nuisances: set[str] | frozenset[str] = frozenset(), n_me: int = 3) -> VideoScript:
    """A random timeline: `n_me` micro-expressions at least 1 s apart, never in a talking stretch, nod, turn or
    macro expression (a blink may sit 0.2-1 s from one), among the named nuisances."""
    unknown = sorted(set(nuisances) - set(NUISANCES))
    if unknown:
        raise ConfigError(f"unknown nuisance(s) {', '.join(unknown)}; choose from {', '.join(NUISANCES)}")
    need = LEAD_S + EDGE_S + n_me * MAX_ME_S + max(n_me - 1, 0) * ME_GAP_S
    if n_me < 0 or duration_s < need:
        raise ConfigError(f"duration_s {duration_s:g} with n_me {n_me}: {n_me} micro-expressions need at least "
                          f"{need:g} s; lengthen the video or lower n_me")
    for attempt in range(_ATTEMPTS):
        rng = np.random.default_rng([seed, attempt])
        noise_sigma, quality = _noise(rng)
        items = _draw_once(rng, duration_s, frozenset(nuisances), n_me)
        if items is not None:
            return VideoScript(face, float(fps), float(duration_s), int(seed), noise_sigma, quality, tuple(items))
    raise ConfigError(f"duration_s {duration_s:g}: no room for {n_me} micro-expressions between the nuisances "
                      f"({', '.join(sorted(nuisances)) or 'none'}); lengthen the video, lower n_me or drop nuisances")


def preset_script(name: str, seed: int, face: str, fps: float = 30.0, duration_s: float = 3.0) -> VideoScript:
    """Short one-thing videos for tests: one ME, blinks only, talking only, one slow 2-s macro, or nothing."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    need = {"one_me": 2 * EDGE_S + MAX_ME_S, "blinks": 1.0, "talk": 1.6, "macro": 2.4, "nothing": 0.0}[name]
    if duration_s < need:
        raise ConfigError(f"preset {name} needs at least {need:g} s; lengthen duration_s")
    rng = np.random.default_rng(seed)
    noise_sigma, quality = _noise(rng)
    items: tuple[Item, ...] = ()
    if name == "one_me":
        items = (draw_me(rng, 0.5 * duration_s - 0.5 * MAX_ME_S),)
    elif name == "blinks":
        starts = np.arange(0.3, duration_s - 0.4, 0.9)
        items = tuple(dataclasses.replace(draw_blink(rng, float(t)), eyes=("both", "left", "right")[k % 3])
                      for k, t in enumerate(starts))
    elif name == "talk":
        items = (draw_talk(rng, 0.3, duration_s - 0.6),)
    elif name == "macro":
        start = 0.5 * (duration_s - 2.0)
        items = (dataclasses.replace(draw_macro(rng, start, 2.0), rise_s=0.6, hold_s=0.8, fall_s=0.6),)
    return VideoScript(face, float(fps), float(duration_s), int(seed), noise_sigma, quality, items)
