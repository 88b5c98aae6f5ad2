"""Things in front of a face that webcams see every day: glasses, a strand of hair, a hand on the chin.

Each is drawn from the face's landmarks in source pixels as a colour layer and a coverage (alpha) layer, and the
renderer lays it over the warped frame through the same view transform, without the expression's mesh motion: a
frame of glasses or a hand moves with the head but does not smile with the mouth. The model then learns that an
occluded region says nothing, instead of reading the occluder's edges as motion.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from fdp.align import EYE_CORNERS, face_width

OCCLUDER_KINDS: tuple[str, ...] = ("glasses", "hair", "hand")
_BROW_TOP = (105, 334, 66, 296, 107, 336)  # upper brow landmarks, both sides
_JAW = {"left": (172, 136, 150, 149), "right": (397, 365, 379, 378)}  # image-left / image-right jaw, top to chin
_CHEEKS = (50, 280)


@dataclass(frozen=True)
class Occluder:
    """One occluder, fixed for a clip: what it is, its side, size and colour (0..1 parameters, drawn per clip)."""

    kind: str  # one of OCCLUDER_KINDS
    side: str  # 'left' or 'right' (image side) for hair and hands; glasses ignore it
    size: float  # 0..1: thin rims / a short strand / a small part of the jaw .. thick / long / most of it
    shade: float  # 0..1: dark .. light frame or hair; hands take the cheek's own colour


def occluder_layer(occluder: Occluder, image: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(colour BGR uint8, coverage float32 0..1) the size of `image`, drawn around the face at `points`."""
    h, w = image.shape[:2]
    colour = np.zeros((h, w, 3), np.uint8)
    cover = np.zeros((h, w), np.float32)
    fw = face_width(points)
    if occluder.kind == "glasses":
        _glasses(colour, cover, points, occluder, fw)
    elif occluder.kind == "hair":
        _hair(colour, cover, points, occluder, fw)
    elif occluder.kind == "hand":
        _hand(colour, cover, image, points, occluder, fw)
    else:
        raise ValueError(f"unknown occluder {occluder.kind!r}; choose one of {', '.join(OCCLUDER_KINDS)}")
    soft = max(1, int(round(0.006 * fw))) * 2 + 1  # anti-aliased edges, as a lens would show them
    return colour, cv2.GaussianBlur(cover, (soft, soft), 0)


def _fixed(points: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(points, np.float64) * 16).astype(np.int32)  # 4 fractional bits for cv2 drawing


def _glasses(colour: np.ndarray, cover: np.ndarray, points: np.ndarray, occ: Occluder, fw: float) -> None:
    corners = np.asarray(points, np.float64)[list(EYE_CORNERS)].reshape(2, 2, 2)
    centres = corners.mean(axis=1)
    span = centres[1] - centres[0]
    angle = float(np.degrees(np.arctan2(span[1], span[0])))
    half_w, half_h = 0.2 * fw, 0.13 * fw
    thick = max(1, int(round((0.008 + 0.02 * occ.size) * fw)))
    grey = int(20 + 200 * occ.shade)
    lens = np.zeros_like(cover)
    for centre in centres:
        c = tuple(int(v) for v in np.round(centre * 16))
        axes = (int(round(half_w * 16)), int(round(half_h * 16)))
        cv2.ellipse(lens, c, axes, angle, 0, 360, 0.12, -1, cv2.LINE_AA, 4)  # a faint tint of the lens
        cv2.ellipse(cover, c, axes, angle, 0, 360, 1.0, thick, cv2.LINE_AA, 4)
        cv2.ellipse(colour, c, axes, angle, 0, 360, (grey, grey, grey), thick, cv2.LINE_AA, 4)
    direction = span / max(float(np.linalg.norm(span)), 1e-9)
    inner = _fixed([centres[0] + direction * half_w, centres[1] - direction * half_w])
    cv2.line(cover, tuple(inner[0]), tuple(inner[1]), 1.0, thick, cv2.LINE_AA, 4)
    cv2.line(colour, tuple(inner[0]), tuple(inner[1]), (grey, grey, grey), thick, cv2.LINE_AA, 4)
    np.maximum(cover, lens, out=cover)


def _hair(colour: np.ndarray, cover: np.ndarray, points: np.ndarray, occ: Occluder, fw: float) -> None:
    """A strand falling from above the brow over one side of the forehead, down to the outer eye corner at most."""
    p = np.asarray(points, np.float64)
    side = 0 if occ.side == "left" else 1
    outer = p[EYE_CORNERS[0] if side == 0 else EYE_CORNERS[3]]
    top = p[list(_BROW_TOP)][:, 1].min() - 0.25 * fw
    tip = outer + np.array([0.0, -(0.05 + 0.2 * (1.0 - occ.size)) * fw])
    inward = 1.0 if side == 0 else -1.0
    root = np.array([outer[0] + inward * 0.2 * fw, top])
    width = (0.05 + 0.1 * occ.size) * fw
    spine = np.linspace(root, tip, 12)
    bend = np.sin(np.linspace(0.0, np.pi, 12))[:, None] * np.array([-inward * 0.08 * fw, 0.0])
    spine = spine + bend
    normal = np.array([1.0, 0.0])
    strand = np.r_[spine - normal * width * np.linspace(1.0, 0.2, 12)[:, None],
                   (spine + normal * width * np.linspace(1.0, 0.2, 12)[:, None])[::-1]]
    shade = int(15 + 150 * occ.shade)
    cv2.fillPoly(cover, [_fixed(strand)], 1.0, cv2.LINE_AA, 4)
    cv2.fillPoly(colour, [_fixed(strand)], (shade, int(shade * 1.1), int(shade * 1.25)), cv2.LINE_AA, 4)


def _hand(colour: np.ndarray, cover: np.ndarray, image: np.ndarray, points: np.ndarray, occ: Occluder,
          fw: float) -> None:
    """A hand resting on one side of the jaw, below the mouth corner: the skin colour of the cheek, with knuckle
    creases, covering part of the jaw line but never the mouth itself."""
    p = np.asarray(points, np.float64)
    jaw = p[list(_JAW[occ.side])]
    outward = -1.0 if occ.side == "left" else 1.0
    centre = jaw.mean(0) + np.array([outward * 0.05 * fw, 0.1 * fw])
    axes = (int(round((0.2 + 0.15 * occ.size) * fw * 16)), int(round((0.12 + 0.08 * occ.size) * fw * 16)))
    tilt = 25.0 if occ.side == "left" else -25.0
    cheek = p[_CHEEKS[0] if occ.side == "left" else _CHEEKS[1]]
    x, y = (int(np.clip(v, 0, s - 1)) for v, s in zip(cheek, (image.shape[1], image.shape[0])))
    skin = tuple(int(v) for v in cv2.blur(image, (9, 9))[y, x])
    c = tuple(int(v) for v in np.round(centre * 16))
    cv2.ellipse(cover, c, axes, tilt, 0, 360, 1.0, -1, cv2.LINE_AA, 4)
    cv2.ellipse(colour, c, axes, tilt, 0, 360, skin, -1, cv2.LINE_AA, 4)
    crease = tuple(max(0, int(v * 0.85)) for v in skin)
    for k in (-0.5, 0.0, 0.5):  # knuckle creases: the edges a hand shows, that a cheek does not
        offset = np.array([k * axes[0] / 16, 0.0])
        start, end = _fixed([centre + offset - [0, axes[1] / 32], centre + offset + [0, axes[1] / 32]])
        cv2.line(colour, tuple(start), tuple(end), crease, max(1, int(0.01 * fw)), cv2.LINE_AA, 4)


def lay_over(frame: np.ndarray, colour: np.ndarray, cover: np.ndarray, out_to_source: np.ndarray) -> np.ndarray:
    """`frame` (already in output pixels) with the occluder layers seen through the same view transform."""
    size = (frame.shape[1], frame.shape[0])
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    seen = cv2.warpAffine(colour, out_to_source, size, flags=flags, borderMode=cv2.BORDER_CONSTANT)
    alpha = cv2.warpAffine(cover, out_to_source, size, flags=flags, borderMode=cv2.BORDER_CONSTANT)[..., None]
    return np.round(frame * (1.0 - alpha) + seen * alpha).astype(np.uint8)
