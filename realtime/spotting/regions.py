"""Where the spotter looks: facial regions as groups of MediaPipe mesh landmarks, and the motion inside each.

Regions follow the muscles micro-expressions move (brows: AU1/2/4; lids: AU5/7; nose sides and cheeks: AU6/9;
mouth corners: AU12/14/15; lips: AU10; chin: AU17), one per side wherever an action can be one-sided, so that a
motion is measured as a region's MEAN flow vector: a muscle moves its skin coherently while sensor noise and JPEG
do not, so averaging vectors (not magnitudes) keeps the first and cancels the second. The nasal bridge, the
temples and the face outline at eye level move with the head but with no action unit the spotter reads, so a
similarity fitted to their flow is the rigid motion the alignment left (a blink, say, nudges the eye corners the
aligner is anchored on, and with them the whole crop), and is taken off every region before it is read. Each of
those points is trusted only in the directions its texture shows (the outline is an edge: its flow sees motion
across it, not along it). Sides are the image's: `_l` is image-left (the subject's right).
"""

from __future__ import annotations

import cv2
import numpy as np

REGIONS: dict[str, tuple[int, ...]] = {
    "brow_l": (70, 63, 105, 66, 107, 46, 53, 52, 65, 55),
    "brow_r": (300, 293, 334, 296, 336, 276, 283, 282, 295, 285),
    "eye_l": (159, 158, 160, 145, 144, 153, 157, 161, 163),
    "eye_r": (386, 385, 387, 374, 373, 380, 384, 388, 390),
    "cheek_l": (129, 49, 48, 64, 98, 203, 205, 50, 101, 118),
    "cheek_r": (358, 279, 278, 294, 327, 423, 425, 280, 330, 347),
    "mouth_l": (61, 146, 91, 185, 40, 39, 76, 62, 78, 191, 95),
    "mouth_r": (291, 375, 321, 409, 270, 269, 306, 292, 308, 415, 324),
    "lips": (0, 37, 267, 17, 84, 314, 13, 14),
    "chin": (152, 175, 199, 200, 18, 83, 313, 201, 421, 208, 428),
}
REGION_NAMES: tuple[str, ...] = tuple(REGIONS)
STABLE = (168, 6, 197, 195, 5, 127, 356, 162, 389, 234, 454, 10)  # nasal bridge, temples, outline, hairline
# (the hairline lies above most spotting crops, and a point outside the crop is left out of the fit)

BLINK_REGIONS = ("eye_l", "eye_r", "brow_l", "brow_r")  # a blink or a glance drags the skin up to the brows
TALKING_REGIONS = ("mouth_l", "mouth_r", "lips", "chin", "cheek_l", "cheek_r")
REGION_GROUPS: dict[str, tuple[str, ...]] = {"upper": BLINK_REGIONS, "lower": TALKING_REGIONS}
"""Parts of the face the spotter follows on timelines of their own (`realtime.spotting.groups`): every region is in
one, and each nuisance moves one of them (blinks and glances the upper, talking the lower)."""
LID_PAIRS = (((159, 145), (158, 153), (160, 144)), ((386, 374), (385, 380), (387, 373)))  # per eye: upper, lower
EYE_CORNER_PAIRS = ((33, 133), (362, 263))
IRIS_CENTRES = (468, 473)  # image-left, image-right eye
LIP_GAP = (13, 14)  # inner upper and lower lip, mid-line


def region_motion(flow: np.ndarray, points: np.ndarray, reference: np.ndarray, window: int,
                  smooth_px: int = 3) -> np.ndarray:
    """(len(REGIONS),) norm of each region's mean flow vector once the rigid motion is taken off (pixels of
    `flow`).

    flow: (H, W, 2) displacement from the `reference` crop (H, W) to the current one; points: (478, 2) landmarks of
    the reference crop, in the same pixels; window: the flow's own window, over which the texture that steers the
    rigid fit is read. The flow is box-filtered over `smooth_px` first so each landmark reads its neighbourhood, not
    one pixel."""
    if smooth_px > 1:
        flow = cv2.blur(flow, (smooth_px, smooth_px))
    height, width = flow.shape[:2]
    xy = np.rint(points).astype(np.int64)
    xy[:, 0] = np.clip(xy[:, 0], 0, width - 1)
    xy[:, 1] = np.clip(xy[:, 1], 0, height - 1)
    at = flow[xy[:, 1], xy[:, 0]]  # (478, 2)
    residual = at - rigid_flow(points, at, texture_at(reference, points, window))
    return np.array([np.linalg.norm(residual[list(indices)].mean(axis=0)) for indices in REGIONS.values()])


def texture_at(image: np.ndarray, points: np.ndarray, window: int) -> np.ndarray:
    """(len(STABLE), 2, 2) the structure tensor of `image` around each STABLE point (gradients summed over
    `window`, divided by its trace), zero for a point outside the image: in which directions the flow there is
    known. Along a straight edge (the face outline at the temples) a flow sees only the motion across it (the
    aperture problem): on a tune video a one-eyed blink nudged the aligner's eye corners and turned the crop by
    about a degree, the outline's flow showed 40 % of that turn, and a fit that trusted every direction equally
    left 0.4 % of the face width of motion on the chin, an event. Divided by its trace, each point counts once
    whatever its contrast, so a sharp hairline does not outweigh the nasal bridge."""
    gray = image.astype(np.float32)
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    sums = [cv2.blur(a * b, (window, window)) for a, b in ((gx, gx), (gx, gy), (gy, gy))]
    stable = np.asarray(points, np.float64)[list(STABLE)]
    height, width = gray.shape
    inside = (stable[:, 0] >= 0) & (stable[:, 0] <= width - 1) & (stable[:, 1] >= 0) & (stable[:, 1] <= height - 1)
    xy = np.rint(stable[inside]).astype(np.int64)
    xx, xy_, yy = (s[xy[:, 1], xy[:, 0]] for s in sums)
    tensors = np.zeros((len(STABLE), 2, 2))
    tensors[inside] = np.stack([np.stack([xx, xy_], -1), np.stack([xy_, yy], -1)], -2)
    return tensors / (np.trace(tensors, axis1=1, axis2=2) + window ** 2)[:, None, None]


def rigid_flow(points: np.ndarray, flow_at: np.ndarray, texture: np.ndarray) -> np.ndarray:
    """(478, 2) the flow predicted at every point by the similarity fitted to the STABLE points' flow, each point's
    residual weighted by its `texture` (`texture_at`): the motion along an edge, which the flow cannot see, is left
    to the points that can (a Lucas-Kanade-style fit of a similarity)."""
    pts = np.asarray(points, np.float64)
    centre = pts[list(STABLE)].mean(axis=0)
    x, y = (pts[list(STABLE)] - centre).T
    one, zero = np.ones_like(x), np.zeros_like(x)
    jacobian = np.stack([np.stack([x, -y, one, zero], -1), np.stack([y, x, zero, one], -1)], -2)  # (k, 2, 4)
    weighted = np.swapaxes(jacobian, 1, 2) @ texture  # (k, 4, 2)
    normal = (weighted @ jacobian).sum(axis=0)
    target = (weighted @ np.asarray(flow_at, np.float64)[list(STABLE)][..., None]).sum(axis=0)[:, 0]
    ridge = 1e-9 * max(float(np.trace(normal)), 1.0) * np.eye(4)
    scale, turn, tx, ty = np.linalg.solve(normal + ridge, target)
    dx, dy = (pts - centre).T
    return np.stack([scale * dx - turn * dy + tx, turn * dx + scale * dy + ty], axis=1)
