"""Where the spotter looks: facial regions as groups of MediaPipe mesh landmarks, and the motion inside each.

Regions follow the muscles micro-expressions move (brows: AU1/2/4; lids: AU5/7; nose sides and cheeks: AU6/9;
mouth corners: AU12/14/15; lips: AU10; chin: AU17), one per side wherever an action can be one-sided, so that a
motion is measured as a region's MEAN flow vector: a muscle moves its skin coherently while sensor noise and JPEG
do not, so averaging vectors (not magnitudes) keeps the first and cancels the second. The nasal bridge, the
temples and the face outline at eye level move with the head but with no action unit the spotter reads, so a
similarity fitted to their flow is the rigid motion the alignment left (a blink, say, nudges the eye corners the
aligner is anchored on, and with them the whole crop), and is taken off every region before it is read. Sides are
the image's: `_l` is image-left (the subject's right).
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

BLINK_REGIONS = ("eye_l", "eye_r", "brow_l", "brow_r")  # a blink or a glance drags the skin up to the brows
TALKING_REGIONS = ("mouth_l", "mouth_r", "lips", "chin", "cheek_l", "cheek_r")
REGION_GROUPS: dict[str, tuple[str, ...]] = {"upper": BLINK_REGIONS, "lower": TALKING_REGIONS}
"""Parts of the face the spotter follows on timelines of their own (`realtime.spotting.groups`): every region is in
one, and each nuisance moves one of them (blinks and glances the upper, talking the lower)."""
LID_PAIRS = (((159, 145), (158, 153), (160, 144)), ((386, 374), (385, 380), (387, 373)))  # per eye: upper, lower
EYE_CORNER_PAIRS = ((33, 133), (362, 263))
IRIS_CENTRES = (468, 473)  # image-left, image-right eye
LIP_GAP = (13, 14)  # inner upper and lower lip, mid-line


def region_motion(flow: np.ndarray, points: np.ndarray, smooth_px: int = 3) -> np.ndarray:
    """(len(REGIONS),) norm of each region's mean flow vector, less the nasal bridge's (pixels of `flow`).

    flow: (H, W, 2) displacement from a reference crop to the current one; points: (478, 2) landmarks of the
    reference crop, in the same pixels. The flow is box-filtered over `smooth_px` first so each landmark reads
    its neighbourhood, not one pixel."""
    if smooth_px > 1:
        flow = cv2.blur(flow, (smooth_px, smooth_px))
    height, width = flow.shape[:2]
    xy = np.rint(points).astype(np.int64)
    xy[:, 0] = np.clip(xy[:, 0], 0, width - 1)
    xy[:, 1] = np.clip(xy[:, 1], 0, height - 1)
    at = flow[xy[:, 1], xy[:, 0]]  # (478, 2)
    residual = at - rigid_flow(points, at)
    return np.array([np.linalg.norm(residual[list(indices)].mean(axis=0)) for indices in REGIONS.values()])


def rigid_flow(points: np.ndarray, flow_at: np.ndarray) -> np.ndarray:
    """(478, 2) the flow a similarity fitted (least squares) to the STABLE points' flow predicts at every point."""
    stable = list(STABLE)
    src = np.asarray(points, np.float64)[stable]
    dst = src + flow_at[stable]
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - src_mean, dst - dst_mean
    norm = max(float((s ** 2).sum()), 1e-9)
    a = float((s[:, 0] * d[:, 0] + s[:, 1] * d[:, 1]).sum()) / norm
    b = float((s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum()) / norm
    linear = np.array([[a, -b], [b, a]])
    moved = (np.asarray(points, np.float64) - src_mean) @ linear.T + dst_mean
    return moved - points
