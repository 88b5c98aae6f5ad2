"""More identities from few real faces, the way face-recognition work stretches scarce data: morphs and reshapes.

A *morph* blends two real stills into a face that is neither (both warped onto their average landmarks, the
textures cross-dissolved inside the face); a *reshape* moves one still's features (eye spacing and size, nose
length, mouth width, lower-face height) by a smooth landmark-driven warp and shifts its skin tone. Each derived face
is a new subject for training, but it carries its real parents (`SourceInfo.parents`): a leave-identities-out
evaluation must keep every face made from a held-out parent out of training, and `family` says which real faces a
subject is made of. The derived image is landmarked again by the aligner like any photo, never by its recipe.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fdp.align import face_width
from fdp.synthesis import warp
from fdp.synthesis.face_sources import FaceTrack, SourceInfo, cache_dir, still_tracks

# (centre u, v in the canonical frame's IOD units; radius) of the features a reshape moves, each as a unit
_FEATURES = {"eye_left": (-0.5, 0.0, 0.3), "eye_right": (0.5, 0.0, 0.3), "nose": (0.0, 0.55, 0.3),
             "mouth": (0.0, 1.1, 0.35)}
_FEATHER_FW = 0.08  # the blend falls off over this share of the face width inside the face outline


@dataclass(frozen=True)
class Reshape:
    """One reshape, drawn from a seed: feature moves in face widths, scales as factors, and a skin-tone change."""

    eye_spacing: float  # each eye moves out (+) or in by this share of the face width
    eye_scale: float
    nose_drop: float  # nose moves down (+) or up, share of the face width
    mouth_scale: float
    lower_stretch: float  # mouth and chin move down (+) or up, share of the face width
    lightness: float  # skin lightness factor (LAB L inside the face)
    warmth: float  # LAB b shift inside the face (+ yellower, - bluer)

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Reshape:
        return cls(*(round(float(v), 4) for v in (
            rng.uniform(-0.025, 0.025), rng.uniform(0.9, 1.12), rng.uniform(-0.03, 0.03), rng.uniform(0.88, 1.12),
            rng.uniform(-0.04, 0.04), rng.uniform(0.75, 1.2), rng.uniform(-8.0, 8.0))))


def family(info: SourceInfo) -> frozenset[str]:
    """The real identities a subject is made of: its parents, or itself for a real face."""
    return frozenset(info.parents) if info.parents else frozenset({info.subject})


def _canonical_to_image(canonical: np.ndarray, points: np.ndarray) -> warp.Similarity:
    return warp.fit_similarity(canonical[:warp.MESH_VERTICES], np.asarray(points, np.float64)[:warp.MESH_VERTICES])


def reshape_targets(points: np.ndarray, canonical: np.ndarray, shape: Reshape) -> np.ndarray:
    """(478, 2) where each landmark of `points` goes under `shape`: feature moves blended smoothly (Gaussian
    weights around each feature's centre), so the face stays one smooth surface."""
    to_image = _canonical_to_image(canonical, points)
    fw_units = face_width(points) / to_image.scale  # face width in canonical units
    u, v = canonical[:, 0], canonical[:, 1]
    delta = np.zeros_like(canonical)
    for name, (cu, cv, radius) in _FEATURES.items():
        weight = np.exp(-((u - cu) ** 2 + (v - cv) ** 2) / (2 * radius**2))[:, None]
        centre = np.array([cu, cv])
        if name.startswith("eye"):
            move = np.array([np.sign(cu) * shape.eye_spacing * fw_units, 0.0])
            delta += weight * (move + (shape.eye_scale - 1.0) * (canonical - centre))
        elif name == "nose":
            delta += weight * np.array([0.0, shape.nose_drop * fw_units])
        else:
            scale = np.array([shape.mouth_scale - 1.0, 0.0])
            delta += weight * ((canonical - centre) * scale + np.array([0.0, shape.lower_stretch * fw_units]))
    chin = np.clip((v - 0.6) / 1.0, 0.0, 1.0)[:, None]  # the lower face follows the mouth's vertical move
    delta[:, 1:] += chin * shape.lower_stretch * fw_units * (1.0 - np.exp(-((v - 1.1) ** 2) / 0.2))[:, None]
    return np.asarray(points, np.float64)[:, :2] + to_image.vectors(delta)


def _face_mask(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(h, w) float32 coverage of the face outline, feathered inwards: 0 at the outline, 1 well inside."""
    mask = np.zeros(shape, np.uint8)
    hull = cv2.convexHull(np.round(points[:warp.MESH_VERTICES] * 16).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 255, cv2.LINE_AA, 4)
    inside = cv2.distanceTransform((mask > 127).astype(np.uint8), cv2.DIST_L2, 5)
    return np.clip(inside / max(_FEATHER_FW * face_width(points), 1.0), 0.0, 1.0).astype(np.float32)


def warp_to(image: np.ndarray, points: np.ndarray, targets: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """`image` with its face (landmarks `points`) moved piecewise-affinely onto `targets`: each pixel of a target
    triangle is looked up in the same triangle of the source, an exact backward map (no fixed-point guess)."""
    raster = warp.MeshRaster.build(targets, triangles, 1)
    field = raster.dense(np.asarray(points, np.float64)[:, :2] - targets)
    h, w = image.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    offset = raster.sample(field, gx, gy)
    return cv2.remap(image, gx + offset[..., 0], gy + offset[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REFLECT_101)


def _retone(image: np.ndarray, mask: np.ndarray, lightness: float, warmth: float) -> np.ndarray:
    lab = cv2.cvtColor(image, cv2.COLOR_BGR2LAB).astype(np.float32)
    changed = lab.copy()
    changed[..., 0] = np.clip(lab[..., 0] * lightness, 0, 255)
    changed[..., 2] = np.clip(lab[..., 2] + warmth, 0, 255)
    blend = lab * (1.0 - mask[..., None]) + changed * mask[..., None]
    out = cv2.cvtColor(np.round(blend).astype(np.uint8), cv2.COLOR_LAB2BGR)
    out[mask == 0] = image[mask == 0]  # off the face, not even the colour-space round trip
    return out


def reshaped_image(track: FaceTrack, canonical: np.ndarray, triangles: np.ndarray, shape: Reshape) -> np.ndarray:
    """A still's image with its features moved and its skin retoned by `shape` (the background is kept)."""
    image, points = np.asarray(track.frames[0]), np.asarray(track.points[0], np.float64)
    targets = reshape_targets(points, canonical, shape)
    mask = _face_mask(targets, image.shape[:2])
    moved = warp_to(image, points, targets, triangles)
    blended = np.round(image * (1.0 - mask[..., None]) + moved * mask[..., None]).astype(np.uint8)
    return _retone(blended, mask, shape.lightness, shape.warmth)


def morph_image(base: FaceTrack, other: FaceTrack, triangles: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """`base`'s photo with its face replaced by the morph of both faces: `other` is first brought onto `base` by a
    similarity, then both are warped onto the landmarks' weighted mean and cross-dissolved (`alpha` of `other`)."""
    image_a, points_a = np.asarray(base.frames[0]), np.asarray(base.points[0], np.float64)
    image_b, points_b = np.asarray(other.frames[0]), np.asarray(other.points[0], np.float64)
    onto = warp.fit_similarity(points_b[:warp.MESH_VERTICES], points_a[:warp.MESH_VERTICES])
    affine = np.c_[onto.scale * onto.rotation, onto.shift]
    h, w = image_a.shape[:2]
    image_b = cv2.warpAffine(image_b, affine, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    points_b = onto.apply(points_b)
    targets = (1.0 - alpha) * points_a + alpha * points_b
    mask = _face_mask(targets, (h, w))[..., None]
    face = (1.0 - alpha) * warp_to(image_a, points_a, targets, triangles) + alpha * warp_to(
        image_b, points_b, targets, triangles)
    return np.round(image_a * (1.0 - mask) + face * mask).astype(np.uint8)


def derive_stills(tracks: list[FaceTrack], canonical: np.ndarray, triangles: np.ndarray, morphs: bool,
                  reshapes: int, seed: int, isolate: tuple[str, ...] = ()) -> list[tuple[SourceInfo, np.ndarray]]:
    """(info, image) of every derived face of the real stills in `tracks`: a morph of each pair (when `morphs`)
    that leaves out the `isolate`d faces (kept apart for validation: no morph may mix them with a training face),
    and `reshapes` reshapes of each still, drawn from `seed`."""
    stills = [t for t in tracks if not t.is_video and t.usable[0] and not t.info.parents]
    out: list[tuple[SourceInfo, np.ndarray]] = []
    if morphs:
        mixable = [t for t in stills if t.info.subject not in isolate]
        for a, b in itertools.combinations(mixable, 2):
            info = SourceInfo(f"morph_{a.info.subject}_{b.info.subject}", f"morph of {a.info.source} and "
                              f"{b.info.source}", f"derived; parents' terms: {a.info.licence}; {b.info.licence}",
                              parents=(a.info.subject, b.info.subject))
            out.append((info, morph_image(a, b, triangles)))
    rng = np.random.default_rng(seed)
    for track in stills:
        for k in range(reshapes):
            shape = Reshape.draw(rng)
            info = dataclasses.replace(track.info, subject=f"{track.info.subject}_reshape{k + 1}",
                                       source=f"reshape of {track.info.source} ({shape})",
                                       parents=(track.info.subject,))
            out.append((info, reshaped_image(track, canonical, triangles, shape)))
    return out


def with_derived(tracks: list[FaceTrack], canonical: np.ndarray, triangles: np.ndarray, morphs: bool, reshapes: int,
                 seed: int, isolate: tuple[str, ...] = (), cache: Path | None = None) -> list[FaceTrack]:
    """`tracks` plus a track for every derived face the aligner finds again (landmarks cached like any photo's)."""
    derived = []
    for info, image in derive_stills(tracks, canonical, triangles, morphs, reshapes, seed, isolate):
        derived.extend(t for t in still_tracks(info, image, cache or cache_dir(), max_faces=1) if t.usable.any())
    return tracks + derived
