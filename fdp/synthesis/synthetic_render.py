"""Render a `ClipPlan` on a real face: AU fields mapped onto the face, clamped, warped, drifted, lit and noised.

The AU field lives in the canonical frame; a 3D similarity fitted to each source frame's landmarks and MediaPipe
depth carries it onto the face, in perspective for turned heads (shared/notes/au-to-mesh.md §4-5). Its size is a
share of the face width (`fdp.align.face_width`), so it means the same at every source and crop size; the manifest
also gives it at the aligned-crop scale the model sees, converted with the scale of the very transform `fdp.align`
will cut the face with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from fdp.align import EYE_CORNERS, estimate_matrix, face_width
from fdp.config import AlignerSettings
from fdp.synthesis import warp
from fdp.synthesis.au_definitions import BLINK_PAIRS, EYE_PAIRS, LIP_PAIRS
from fdp.synthesis.au_fields import AUFieldBank
from fdp.synthesis.clip_plan import ClipPlan, blink_envelope, drift_at, gain_at, me_envelope
from fdp.synthesis.face_sources import FaceTrack
from fdp.synthesis.occluders import lay_over, occluder_layer

ME_EYE_CLOSING = 0.6  # a micro-expression may narrow an eye by at most this share of its own aperture
ME_LIP_CLOSING = 0.9
MAX_OUTPUT_FACE_PX = 160  # clip frames show the face at most this wide: what webcams give, and far more than the
# 59 px of a 64 px crop (a larger face costs warp, noise and JPEG time per frame for nothing the model sees)
RASTER_EYE_PX = 50  # one raster step per this many pixels of eye distance: same accuracy at every face size
_REFINE_STEPS = 3  # rescale rounds so the clamped apex still reaches the requested peak


@dataclass(frozen=True)
class RenderedClip:
    """The frames, and the motion that made them (for the manifest and for tests)."""

    frames: list[np.ndarray]  # BGR uint8, out_size x out_size
    me_delta: np.ndarray  # (n, 478, 2) source pixels: the AU motion per frame after clamping (zero for `none`)
    total_delta: np.ndarray  # (n, 478, 2) source pixels: AU motion plus blink, what was warped
    source_index: np.ndarray  # (n,) source frame per output frame
    crop_scale: float  # aligned-crop pixels per source pixel
    peak_px: float  # largest AU vertex motion over the clip, crop pixels
    peak_fw: float  # the same, a share of the face width at the apex


def expression_field(bank: AUFieldBank, aus: dict[str, float], weak_side: str = "left",
                     side_scale: float = 1.0) -> np.ndarray:
    """(478, 3) field of an AU mix with the image side `weak_side` moving by `side_scale` of the other (smoothly
    across the midline: real expressions are rarely symmetric), scaled so its largest in-plane motion is 1."""
    field = bank.combine(aus)
    if side_scale != 1.0:
        u = bank.face.points[:, 0] * (-1.0 if weak_side == "left" else 1.0)
        field = field * (1.0 - (1.0 - side_scale) * np.clip(0.5 + 5.0 * u, 0.0, 1.0))[:, None]
    return field / max(float(np.linalg.norm(field[:, :2], axis=1).max()), 1e-12)


def eye_centre_distance(points: np.ndarray) -> float:
    """Distance between the eye centres as `fdp.align` defines them (corner midpoints), source pixels."""
    left, right = np.asarray(points, np.float64)[list(EYE_CORNERS)].reshape(2, 2, 2).mean(axis=1)
    return float(np.linalg.norm(right - left))


def crop_scale_of(points: np.ndarray, settings: AlignerSettings) -> float:
    """Aligned-crop pixels per source pixel: the scale of the very transform `fdp.align` will cut this face with."""
    matrix = estimate_matrix(points, settings)
    return float(np.hypot(matrix[0, 0], matrix[1, 0]))


class FrameGeometry:
    """Per source frame: the canonical-to-image similarity and the mesh raster, computed once and reused."""

    def __init__(self, track: FaceTrack, bank: AUFieldBank, triangles: np.ndarray) -> None:
        self.track, self.bank, self.triangles = track, bank, triangles
        self._cache: dict[int, tuple[warp.Similarity, warp.MeshRaster, np.ndarray]] = {}

    def at(self, index: int) -> tuple[warp.Similarity, warp.MeshRaster, np.ndarray]:
        if index not in self._cache:
            points = np.asarray(self.track.points[index], np.float64)
            seen = np.c_[points, np.asarray(self.track.depth[index], np.float64)]
            similarity = warp.fit_similarity(self.bank.face.points3d, seen)  # 3D: turned faces in perspective
            down = (similarity.rotation @ np.array([0.0, 1.0, 0.0]))[:2]
            down /= max(float(np.linalg.norm(down)), 1e-9)
            step = max(1, int(eye_centre_distance(points) // RASTER_EYE_PX))
            self._cache[index] = (similarity, warp.MeshRaster.build(points, self.triangles, step), down)
        return self._cache[index]


def clamped(points: np.ndarray, delta: np.ndarray, down: np.ndarray, eye: float, lip: float) -> np.ndarray:
    """`delta` with each eye and the lips closing by at most `eye` / `lip` of their own gap: lids never cross."""
    delta = warp.clamp_apertures(points, delta, EYE_PAIRS, down, eye)
    return warp.clamp_apertures(points, delta, LIP_PAIRS, down, lip)


def face_region(points: np.ndarray, frame_hw: tuple[int, int], others: np.ndarray,
                region_factor: float) -> tuple[np.ndarray, int]:
    """Centre (whole-pixel crop) and side, source pixels, of the square around the face; other faces of a group
    photo are kept out of it, so the aligner finds this face."""
    box_min, box_max = points[:468].min(0), points[:468].max(0)
    height, width = frame_hw
    out_size = int(min(round(region_factor * float((box_max - box_min).max())), height, width))
    face_centre = 0.5 * (box_min + box_max)
    for other in others:
        reach = 2.0 * float(np.abs(other - face_centre).max()) - eye_centre_distance(points)
        out_size = max(min(out_size, int(reach)), int(float((box_max - box_min).max())))
    half = (out_size - 1) / 2.0
    centre = np.clip(face_centre, half, np.array([width, height]) - 1 - half)
    return np.round(centre - half) + half, out_size  # whole pixels: with nuisances off, the warp resamples nothing


def fit_amplitude(field: np.ndarray, similarity: warp.Similarity, points: np.ndarray, down: np.ndarray,
                  target: float, unit_scale: float = 1.0) -> float:
    """Canonical amplitude of `field` whose clamped motion on `points` peaks at `target` (source px x unit_scale):
    clamping eats into lid and lip motions, so the amplitude is rescaled until the clamped peak is on target."""
    amplitude = target / (unit_scale * similarity.scale)
    for _ in range(_REFINE_STEPS):
        moved = similarity.vectors(amplitude * field)[:, :2]
        reached = float(np.linalg.norm(clamped(points, moved, down, ME_EYE_CLOSING, ME_LIP_CLOSING), axis=1).max())
        reached *= unit_scale
        if reached <= 0 or abs(reached - target) < 1e-3 * max(target, 1e-9):
            break
        amplitude *= target / reached
    return amplitude


def blink_delta(unit: np.ndarray, moved: np.ndarray, down: np.ndarray, closure: float,
                pairs: tuple[tuple[int, int], ...] = BLINK_PAIRS) -> np.ndarray:
    """The lid motion `unit` (source px) scaled to close the lids of `pairs` by `closure` of the aperture they
    have in `moved` (the face as the expression left it), so a blink closes a widened or narrowed eye alike."""
    gaps = np.array([(moved[lo] - moved[up]) @ down for up, lo in pairs])
    closing = np.array([(unit[up] - unit[lo]) @ down for up, lo in pairs])
    return unit * closure * float(np.mean(np.maximum(gaps, 0)) / max(np.mean(closing), 1e-9))


def _source_indices(plan: ClipPlan, track: FaceTrack) -> np.ndarray:
    """Source frame per output frame: the video played at `plan.speed`, held between its frames (stills: 0)."""
    if not track.is_video:
        return np.zeros(plan.n_frames, int)
    steps = np.floor(np.arange(plan.n_frames) / plan.fps * track.fps * plan.speed).astype(int)
    index = np.minimum(plan.source_start + steps, len(track.frames) - 1)
    usable = np.flatnonzero(track.usable)  # frames without a usable face borrow the nearest usable one
    return usable[np.abs(usable[None, :] - index[:, None]).argmin(1)]


def view_affine(centre: np.ndarray, out_size: int, zoom: float, rotation_deg: float, flip: bool,
                offset: np.ndarray) -> np.ndarray:
    """(2, 3) affine from output pixels to source pixels: an out_size square around `centre` + `offset` (source
    px), zoomed (output px per source px), rotated and optionally mirrored."""
    theta = math.radians(rotation_deg)
    c, s = math.cos(theta), math.sin(theta)
    linear = np.array([[c, s], [-s, c]]) / zoom  # rotation by -theta, then un-zoom
    if flip:
        linear = linear @ np.diag([-1.0, 1.0])
    half = (out_size - 1) / 2.0
    shift = centre + offset - linear @ np.array([half, half])
    return np.c_[linear, shift]


def _out_to_source(plan: ClipPlan, centre: np.ndarray, out_size: int, crop_scale: float, t_s: float,
                   resolution: float) -> np.ndarray:
    """(2, 3) affine from output pixels to source pixels: crop, zoom (times `resolution`, output px per source px
    of the unzoomed view), rotation, flip, head drift."""
    dx, dy, d_rot, d_scale = drift_at(plan, t_s)
    return view_affine(centre, out_size, resolution * plan.scale * (1.0 + d_scale), plan.rotation_deg + d_rot,
                       plan.flip, np.array([dx, dy]) / crop_scale)


def render_clip(plan: ClipPlan, track: FaceTrack, bank: AUFieldBank, triangles: np.ndarray,
                settings: AlignerSettings, geometry: FrameGeometry | None = None) -> RenderedClip:
    """Render every frame of `plan` on `track` (pass a shared `geometry` to reuse rasters across clips)."""
    geometry = geometry or FrameGeometry(track, bank, triangles)
    sources = _source_indices(plan, track)
    first = np.asarray(track.points[sources[0]], np.float64)
    crop_scale = crop_scale_of(first, settings)
    centre, out_size = face_region(first, track.frames.shape[1:3], track.others, plan.region_factor)
    resolution = min(1.0, MAX_OUTPUT_FACE_PX / face_width(first))  # a big face is written smaller
    out_size = max(16, round(out_size * resolution))

    me_field = expression_field(bank, dict(plan.aus), plan.weak_side, plan.side_scale)
    blink_field = bank.fields["AU43"]
    me_amp, blink_amp = me_envelope(plan), blink_envelope(plan)

    # canonical amplitude so the clamped apex reaches the requested peak at crop scale
    sim, _, down = geometry.at(sources[plan.apex])
    apex_points = np.asarray(track.points[sources[plan.apex]], np.float64)
    amplitude = fit_amplitude(me_field, sim, apex_points, down, plan.peak_fw * face_width(apex_points))

    light = light_map(out_size, *plan.light)[..., None] * np.asarray(plan.tint, np.float32)
    layers: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # occluder per source frame
    frames, me_deltas, totals = [], [], []
    for i, source in enumerate(sources):
        sim, raster, down = geometry.at(int(source))
        points = np.asarray(track.points[source], np.float64)
        moved = sim.vectors(me_amp[i] * amplitude * me_field)[:, :2]
        me = clamped(points, moved, down, ME_EYE_CLOSING, ME_LIP_CLOSING)
        blink = np.zeros_like(me)
        if blink_amp[i] > 0:  # close each eye by the blink's share of its aperture as the ME left it
            blink = blink_delta(sim.vectors(blink_field)[:, :2], points + me, down, blink_amp[i])
        total = clamped(points, me + blink, down, 1.0, 1.0)
        t_s = i / plan.fps
        affine = _out_to_source(plan, centre, out_size, crop_scale, t_s, resolution)
        image = warp.warp_frame(np.asarray(track.frames[source]), affine, out_size, raster, total)
        if plan.occluder is not None:
            if int(source) not in layers:
                layers[int(source)] = occluder_layer(plan.occluder, np.asarray(track.frames[source]), points)
            image = lay_over(image, *layers[int(source)], affine)
        if plan.light[1] > 0 or plan.tint != (1.0, 1.0, 1.0):
            image = np.clip(image * light, 0, 255).astype(np.uint8)
        frames.append(_photometric(image, plan, t_s, i))
        me_deltas.append(me)
        totals.append(total)
    me_delta = np.stack(me_deltas)
    peak = float(np.linalg.norm(me_delta, axis=2).max())
    return RenderedClip(frames, me_delta, np.stack(totals), sources, crop_scale, peak * crop_scale,
                        peak / face_width(apex_points))


def light_map(size: int, direction: float, strength: float) -> np.ndarray:
    """(size, size) float32 gain of a light from one side: 1 + strength at that edge, 1 - strength at the other.
    Fixed in the frame, as a lamp is: a face that drifts moves through it."""
    grid = (np.arange(size, dtype=np.float32) - (size - 1) / 2.0) / max((size - 1) / 2.0, 1.0)
    gx, gy = np.meshgrid(grid, grid)
    return (1.0 + strength * (np.cos(direction) * gx + np.sin(direction) * gy)).astype(np.float32)


def _photometric(image: np.ndarray, plan: ClipPlan, t_s: float, index: int) -> np.ndarray:
    """Exposure, flicker and sensor noise of one clip frame."""
    return photometric(image, plan.gain * gain_at(plan, t_s), plan.bias, plan.noise_sigma, plan.seed, index)


def photometric(image: np.ndarray, gain: float, bias: float, noise_sigma: float, seed: int,
                index: int) -> np.ndarray:
    """Gain, bias and sensor noise; the noise is seeded by (seed, frame index), so every frame is reproducible."""
    if gain == 1.0 and bias == 0.0 and noise_sigma == 0.0:
        return image
    lit = cv2.addWeighted(image, gain, image, 0.0, bias, dtype=cv2.CV_16S)
    noise = np.zeros(image.shape, np.int16)
    if noise_sigma > 0:
        cv2.setRNGSeed(int(np.random.SeedSequence([seed, index]).generate_state(1)[0] & 0x7FFFFFFF))
        cv2.randn(noise, 0.0, noise_sigma)
    return cv2.add(lit, noise, dtype=cv2.CV_8U)
