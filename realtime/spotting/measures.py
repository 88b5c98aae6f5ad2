"""What the spotter measures on each frame of a face, and how a frame differs from a reference frame.

Per frame (`FaceMeasure`): a gray crop cut by the one aligner's geometry (`fdp.align.align_crop`) at the
spotter's own size, normalised to zero mean and unit contrast (so light flicker and exposure drift do not read as
motion), its landmarks, and the nuisance signals MediaPipe already computes: lid apertures and the `eyeBlink*`
blendshapes (blinks), `jawOpen` and the lip gap (talking), the head pose matrix (nods, turns), the crop's raw mean
gray (light). Against a reference (`compare`): the dense optical flow (Farneback) from the reference crop to this
one, read as region motion (`regions.region_motion`), plus the change of every nuisance signal. Every motion is in
face widths, so the numbers mean the same at every crop size and every distance from the camera.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from fdp.align import BLENDSHAPE_NAMES, FaceLandmarks, align_crop, face_width, transform_points
from fdp.config import AlignerSettings
from realtime.spotting.regions import (
    EYE_CORNER_PAIRS,
    IRIS_CENTRES,
    LID_PAIRS,
    LIP_GAP,
    REGION_NAMES,
    region_motion,
)

NUISANCE_NAMES: tuple[str, ...] = ("blink", "gaze", "jaw", "lip_gap", "pose_deg", "light")
FEATURE_NAMES: tuple[str, ...] = REGION_NAMES + NUISANCE_NAMES
"""Every per-frame spotting feature, in the order of `FrameFeatures.values` and of a neutral profile."""

CONTRAST_LEVELS = 48.0  # gray levels per standard deviation of the normalised crop (Farneback reads 8-bit images)
_BLINK = (BLENDSHAPE_NAMES.index("eyeBlinkLeft"), BLENDSHAPE_NAMES.index("eyeBlinkRight"))
_JAW_OPEN = BLENDSHAPE_NAMES.index("jawOpen")


@dataclass(frozen=True, eq=False)
class FaceMeasure:
    """One face in one frame, as the spotter sees it."""

    t_s: float
    frame_index: int
    crop: np.ndarray  # (S, S) uint8, contrast-normalised: mean 128, one standard deviation = CONTRAST_LEVELS
    points: np.ndarray  # (478, 2) landmarks in crop px
    width_px: float  # face width in crop px
    apertures: np.ndarray  # (2,) lid gap / eye width, image-left then image-right eye
    gaze: np.ndarray  # (2, 2) iris centre from the eye's corner midpoint, eye widths, per eye
    blink_scores: np.ndarray  # (2,) eyeBlinkLeft, eyeBlinkRight blendshapes
    jaw_open: float  # jawOpen blendshape
    lip_gap: float  # inner lip gap, face widths
    rotation: np.ndarray  # (3, 3) head rotation, scale removed
    brightness: float  # mean gray of the raw crop


def spotting_settings(crop_size: int, margin_px: int) -> AlignerSettings:
    """The aligner's geometry (same template) with the face at the scale of a `crop_size` crop, `margin_px` more
    on every side, in gray. The margin keeps the face outline and temples, which the rigid fit reads
    (`regions.rigid_flow`), inside the crop and away from its edge: at the template's own framing they sit on
    the edge or past it, where the flow is the border's, not the face's."""
    side = crop_size + 2 * margin_px
    return AlignerSettings(crop_size=side, gray=True, eye_distance=AlignerSettings().eye_distance * crop_size / side)


def measure_face(frame_bgr: np.ndarray, face: FaceLandmarks, t_s: float, frame_index: int,
                 settings: AlignerSettings) -> FaceMeasure:
    """Cut and measure one face (about 1 ms at a 64 px crop)."""
    raw, matrix = align_crop(frame_bgr, face.points, settings)
    gray = raw.astype(np.float32)
    mean, std = float(gray.mean()), float(gray.std())
    crop = np.clip((gray - mean) * (CONTRAST_LEVELS / max(std, 1.0)) + 128.0, 0, 255).astype(np.uint8)
    points = transform_points(matrix, face.points).astype(np.float32)
    width = max(face_width(points), 1.0)
    eye_widths = [max(float(np.linalg.norm(points[b] - points[a])), 1e-6) for a, b in EYE_CORNER_PAIRS]
    apertures = np.array([np.mean([np.linalg.norm(points[lower] - points[upper]) for upper, lower in lids]) / width
                          for lids, width in zip(LID_PAIRS, eye_widths)])
    gaze = np.array([(points[iris] - (points[a] + points[b]) / 2) / width
                     for iris, (a, b), width in zip(IRIS_CENTRES, EYE_CORNER_PAIRS, eye_widths)])
    rotation = np.asarray(face.pose, np.float64)[:3, :3]
    rotation = rotation / np.maximum(np.linalg.norm(rotation, axis=0, keepdims=True), 1e-9)
    upper, lower = LIP_GAP
    return FaceMeasure(
        t_s=t_s, frame_index=frame_index, crop=crop, points=points, width_px=width, apertures=apertures, gaze=gaze,
        blink_scores=np.asarray(face.blendshapes, np.float32)[list(_BLINK)],
        jaw_open=float(face.blendshapes[_JAW_OPEN]),
        lip_gap=float(np.linalg.norm(points[lower] - points[upper])) / width, rotation=rotation,
        brightness=mean)


class FlowMeter:
    """Dense optical flow between two spotting crops (Farneback; the window scales with the crop).

    Two iterations a pyramid level, not OpenCV's customary three: on the tune sets (MJPG and H.264 copies, 260
    MEs) the spotter found the same MEs with the same false, control and macro events, and the flow, most of a
    frame's spotting, took 1.9 ms instead of 2.3-2.6 at the 96 px scale. One iteration lost 6 of 128 MEs on the
    H.264 copies; a 19 px window instead of 13, 7-point polynomials, a blurred crop and OpenCV's DIS flow (fast or
    medium) were no better or worse (docs/STATUS.md)."""

    ITERATIONS = 2

    def __init__(self, crop_size: int) -> None:
        self.window = max(5, int(round(crop_size / 8)) | 1)

    def flow(self, reference: np.ndarray, current: np.ndarray) -> np.ndarray:
        return cv2.calcOpticalFlowFarneback(reference, current, None, 0.5, 2, self.window, self.ITERATIONS, 5, 1.1, 0)


def rotation_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle of the rotation that takes pose `a` to pose `b`, degrees."""
    cosine = (float(np.trace(a.T @ b)) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))))


def compare(reference: FaceMeasure, current: FaceMeasure, meter: FlowMeter) -> np.ndarray:
    """(len(FEATURE_NAMES),) how `current` differs from `reference`: region motion (face widths), then lid
    closure or opening (share of the wider aperture, or the blink blendshapes' change, whichever is larger: lids
    opening from a closed reference are a blink too), the largest
    iris shift (eye widths: a glance moves the eye regions' flow), the change of jawOpen, of the lip gap (face
    widths), head rotation (degrees) and relative brightness."""
    regions = region_motion(meter.flow(reference.crop, current.crop), reference.points, reference.crop,
                            meter.window) / reference.width_px
    closure = np.abs(reference.apertures - current.apertures) / np.maximum(
        np.maximum(reference.apertures, current.apertures), 1e-6)
    blink = max(float(closure.max()), float(np.abs(current.blink_scores - reference.blink_scores).max()))
    nuisances = np.array([
        blink,
        float(np.linalg.norm(current.gaze - reference.gaze, axis=1).max()),
        abs(current.jaw_open - reference.jaw_open),
        abs(current.lip_gap - reference.lip_gap),
        rotation_deg(reference.rotation, current.rotation),
        abs(current.brightness / max(reference.brightness, 1.0) - 1.0),
    ])
    return np.concatenate([regions, nuisances])
