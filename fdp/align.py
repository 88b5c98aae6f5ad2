"""The one face aligner, for training and live use: MediaPipe landmarks, then a similarity warp to a canonical face.

Alignment defines the model's input, so dataset preprocessing and the live loop both call this module and nothing
else may cut faces. MediaPipe is imported here only, and only when a `FaceAligner` is built: `align_crop` is plain
NumPy/OpenCV, for code that already has landmarks (the synthesizer).

Measured choices (`python benchmarks/bench_align.py --jitter`; crop px at the default 64x64 crop, 0.4 eye distance):
- Anchors: the four eye corners (weight 3) and the nasal midline 168-6-197-195-4 (weight 1). Mouth corners, brows and
  lids are left out because micro-expressions move them: with eye centres, nose tip and mouth corners as anchors,
  py-feat's AU fields leaked 46 % of an AU17 and 22 % of an AU26 motion into the transform, against 19 % and 5 % here,
  at the same jitter. Eye centres are corner midpoints, not irises, so gaze does not move the crop.
- No smoothing of our own. MediaPipe's VIDEO mode already filters its landmarks: a still face under camera noise
  jitters 0.013-0.018 px (IMAGE mode: 0.085-0.150 px). A One Euro filter on the transform was at best a tie (8 Hz,
  beta 2: 0.068 vs 0.070 px between consecutive crops of WolfgangLanger_Pexels.mp4, 0.295 vs 0.284 px over 0.25 s)
  and otherwise worse (1 Hz: 0.356 px over 0.25 s; tracking error of a moving face 0.41-0.54 vs 0.36 px).
  IMAGE mode keeps no state, so one frame always gives the same crop.
- The source is low-pass filtered before shrinking (sigma = 0.5*sqrt(1/s^2 - 1) source px at scale s): aliasing
  otherwise made consecutive crops of that video drift 0.110 px (median) instead of 0.070 px.
"""

from __future__ import annotations

import os
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from fdp.assets import ASSETS, FETCH_HINT, asset_path, sha256_of
from fdp.config import ALIGNER_VERSION, AlignerSettings
from fdp.errors import ConfigError, ModelFileError, first_line
from fdp.native_logs import quiet_native_logs

ENV_LANDMARKER = "FDP_LANDMARKER"
LANDMARKER_ASSET = "face_landmarker.task"
_BUNDLE_MEMBERS = {"face_detector.tflite", "face_landmarks_detector.tflite", "face_blendshapes.tflite"}

# MediaPipe mesh indices. 33/133 are the outer/inner corners of the image-left eye, 362/263 inner/outer of the other.
EYE_CORNERS = (33, 133, 362, 263)
FACE_OUTLINE = (234, 454)  # the widest points of the face outline: face width, the unit motions are stated in
ANCHORS = (33, 133, 362, 263, 168, 6, 197, 195, 4)
ANCHOR_WEIGHTS = np.array([3, 3, 3, 3, 1, 1, 1, 1, 1], np.float64)
# The anchors on MediaPipe's canonical face model (the mesh in the .task's geometry metadata) seen from the front
# (x right, y down), in inter-eye distances from the midpoint of the eye centres. The mouth-corner line lies MOUTH_Y
# below the eyes; the crop centre is halfway between the eyes and that line, so brows to chin fit in the default crop.
CANONICAL_ANCHORS = np.array([[-0.7054, -0.0062], [-0.2946, 0.0062], [0.2946, 0.0062], [0.7054, -0.0062],
                              [0.0, -0.1026], [0.0, 0.0240], [0.0, 0.1422], [0.0, 0.2484], [0.0, 0.4899]])
MOUTH_Y = 1.1055

BLENDSHAPE_NAMES: tuple[str, ...] = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight", "cheekPuff",
    "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight",
    "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight",
    "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen", "jawRight",
    "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight", "mouthFunnel",
    "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight", "mouthPucker",
    "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft",
    "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "noseSneerLeft", "noseSneerRight")


def _frozen(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class FaceLandmarks:
    """One face found in a frame. Pixel coordinates put pixel centres on integers, as OpenCV does."""

    points: np.ndarray  # (478, 2) float32 frame px; 468..477 are the irises
    depth: np.ndarray  # (478,) float32: MediaPipe's relative z times the frame width; negative is toward the camera
    blendshapes: np.ndarray  # (52,) float32 scores in BLENDSHAPE_NAMES order
    pose: np.ndarray  # (4, 4) float32 facial transformation matrix: canonical face model (cm) to camera
    bbox: tuple[float, float, float, float]  # x0, y0, x1, y1 of the landmarks, frame px
    timestamp_ms: int  # the timestamp MediaPipe saw (VIDEO mode bumps repeats); 0 in IMAGE mode unless given

    @property
    def eye_centres(self) -> np.ndarray:
        """(2, 2): the image-left then image-right eye, each the midpoint of its corners (gaze does not move it)."""
        return self.points[list(EYE_CORNERS)].reshape(2, 2, 2).mean(axis=1)

    def blendshape(self, name: str) -> float:
        return float(self.blendshapes[BLENDSHAPE_NAMES.index(name)])


@dataclass(frozen=True, eq=False)
class AlignedFace:
    """A face cut to the canonical template: the model's input, plus what it was cut from."""

    crop: np.ndarray  # (S, S) uint8 gray or (S, S, 3) uint8 RGB, per AlignerSettings
    matrix: np.ndarray  # (2, 3) float64: frame px -> crop px
    points: np.ndarray  # (478, 2) float32 landmarks in crop px
    face: FaceLandmarks

    @property
    def blendshapes(self) -> np.ndarray:
        return self.face.blendshapes

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        return self.face.bbox

    @property
    def timestamp_ms(self) -> int:
        return self.face.timestamp_ms


def template_points(settings: AlignerSettings) -> np.ndarray:
    """(9, 2) crop px where the ANCHORS land; eye centres sit at eye_distance*crop apart, level, centred."""
    side = settings.crop_size
    unit = settings.eye_distance * side
    origin = np.array([(side - 1) / 2, (side - 1) / 2 - unit * MOUTH_Y / 2])
    return origin + CANONICAL_ANCHORS * unit


def face_width(points: np.ndarray) -> float:
    """Distance between the face-outline extremes (landmarks 234 and 454), in the points' pixels: the unit of every
    expression size, so a size means the same at every face and crop size."""
    a, b = FACE_OUTLINE
    return float(np.linalg.norm(np.asarray(points[b], np.float64) - np.asarray(points[a], np.float64)))


def estimate_matrix(points: np.ndarray, settings: AlignerSettings) -> np.ndarray:
    """(2, 3) frame->crop similarity: weighted least squares of the anchors onto the template (closed form)."""
    src = np.asarray(points, np.float64)[list(ANCHORS)]
    dst = template_points(settings)
    w = ANCHOR_WEIGHTS / ANCHOR_WEIGHTS.sum()
    src_mean, dst_mean = w @ src, w @ dst
    s, d = src - src_mean, dst - dst_mean
    norm = w @ (s ** 2).sum(axis=1)
    a = w @ (s[:, 0] * d[:, 0] + s[:, 1] * d[:, 1]) / norm
    b = w @ (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]) / norm
    matrix = np.array([[a, -b, 0.0], [b, a, 0.0]])
    matrix[:, 2] = dst_mean - matrix[:, :2] @ src_mean
    return matrix


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine matrix to (N, 2) points."""
    return np.asarray(points, np.float64) @ matrix[:, :2].T + matrix[:, 2]


def warp_crop(frame_bgr: np.ndarray, matrix: np.ndarray, settings: AlignerSettings) -> np.ndarray:
    """Cut the crop a matrix defines: gray or RGB first, low-pass the source region when shrinking, then warpAffine."""
    side = settings.crop_size
    scale = float(np.hypot(matrix[0, 0], matrix[1, 0]))  # crop px per frame px
    corners = transform_points(invert_affine(matrix), np.array([[-1, -1], [side, -1], [-1, side], [side, side]]))
    sigma = 0.5 * np.sqrt(max(0.0, 1.0 / scale ** 2 - 1.0))
    pad = int(np.ceil(3 * sigma)) + 2
    height, width = frame_bgr.shape[:2]
    x0, y0 = np.maximum(np.floor(corners.min(axis=0)).astype(int) - pad, 0)
    x1, y1 = np.minimum(np.ceil(corners.max(axis=0)).astype(int) + pad + 1, (width, height))
    if x1 <= x0 or y1 <= y0:  # the face lies wholly outside the frame: let the border rule fill the crop
        x0, y0, x1, y1 = 0, 0, width, height
    region = frame_bgr[y0:y1, x0:x1]
    if region.ndim == 2:
        region = region if settings.gray else cv2.cvtColor(region, cv2.COLOR_GRAY2RGB)
    else:
        region = cv2.cvtColor(region, cv2.COLOR_BGR2GRAY if settings.gray else cv2.COLOR_BGR2RGB)
    if sigma > 0.25:
        region = cv2.GaussianBlur(region, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    shifted = matrix.copy()
    shifted[:, 2] += matrix[:, :2] @ np.array([x0, y0], np.float64)
    return cv2.warpAffine(region, shifted, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def align_crop(frame_bgr: np.ndarray, points: np.ndarray, settings: AlignerSettings) -> tuple[np.ndarray, np.ndarray]:
    """(crop, frame->crop matrix) from landmarks already at hand; the same geometry and pixels as `FaceAligner`."""
    matrix = estimate_matrix(points, settings)
    return warp_crop(frame_bgr, matrix, settings), matrix


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """The (2, 3) inverse of a (2, 3) affine matrix: crop px -> frame px for an aligner matrix."""
    linear = np.linalg.inv(matrix[:, :2])
    return np.hstack([linear, (-linear @ matrix[:, 2])[:, None]])


def _is_landmarker_bundle(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as bundle:
            return _BUNDLE_MEMBERS.issubset(bundle.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def resolve_landmarker(path: str | Path | None = None) -> Path:
    """The verified face-landmarker file: `path`, else `$FDP_LANDMARKER`, else the fetched asset."""
    if path is None and not os.environ.get(ENV_LANDMARKER):
        return asset_path(LANDMARKER_ASSET)
    chosen = Path(path if path is not None else os.environ[ENV_LANDMARKER]).expanduser()
    fix = f"{FETCH_HINT} and leave the landmarker path and ${ENV_LANDMARKER} unset to use the fetched copy"
    if not chosen.is_file():
        raise ModelFileError(f"face landmarker {chosen}: no such file; {fix}")
    if chosen.suffix != ".task" or not _is_landmarker_bundle(chosen):
        raise ModelFileError(f"face landmarker {chosen}: not a MediaPipe face-landmarker .task bundle; {fix}")
    found, pinned = sha256_of(chosen), ASSETS[LANDMARKER_ASSET].sha256
    if found != pinned:
        raise ModelFileError(f"face landmarker {chosen}: sha256 {found[:12]}... is not the pinned "
                             f"{pinned[:12]}... this aligner is built on; {fix}")
    return chosen


def landmarker_options(path: Path, running_mode: Literal["image", "video"], max_faces: int, min_confidence: float,
                       blendshapes: bool = True, matrices: bool = True) -> Any:
    """MediaPipe FaceLandmarkerOptions as the aligner sets them. The spotter reads the blendshapes (blinks, jaw)
    and the matrix (head pose), so the aligner keeps both on; benchmarks turn them off to price them."""
    from mediapipe.tasks.python import BaseOptions, vision

    return vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(path)),
        running_mode=vision.RunningMode.VIDEO if running_mode == "video" else vision.RunningMode.IMAGE,
        num_faces=max_faces, min_face_detection_confidence=min_confidence,
        min_face_presence_confidence=min_confidence, min_tracking_confidence=min_confidence,
        output_face_blendshapes=blendshapes, output_facial_transformation_matrixes=matrices)


class FaceAligner:
    """MediaPipe FaceLandmarker plus the canonical warp. Use it as a context manager, or call `close()`.

    VIDEO mode tracks faces between frames and needs strictly increasing timestamps: a repeated or earlier one is
    bumped to the last plus 1 ms, and None means the monotonic clock. IMAGE mode detects afresh on every frame.
    """

    def __init__(self, settings: AlignerSettings, landmarker_path: str | Path | None = None,
                 running_mode: Literal["image", "video"] = "video", max_faces: int = 1,
                 min_confidence: float = 0.5) -> None:
        if settings.version != ALIGNER_VERSION:
            raise ConfigError(f"aligner settings are version {settings.version!r} but this FDP Live aligns with "
                              f"{ALIGNER_VERSION!r}; use the FDP Live release the model was trained with, or retrain")
        if running_mode not in ("image", "video"):
            raise ConfigError(f"aligner running_mode {running_mode!r} is not 'image' or 'video'")
        if max_faces < 1:
            raise ConfigError(f"aligner max_faces is {max_faces}; use 1 or more")
        self.settings = settings
        self.running_mode = running_mode
        self.max_faces = max_faces
        self._landmarker: Any = None
        self.path = resolve_landmarker(landmarker_path)
        import mediapipe as mp  # imported here only, so code that just warps never loads it
        from mediapipe.tasks.python import vision

        self._image = lambda rgb: mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb)
        options = landmarker_options(self.path, running_mode, max_faces, min_confidence)
        # Start the graph and run it once on a blank image while its native start-up chatter is held back.
        blank = self._image(np.zeros((64, 64, 3), np.uint8))
        try:
            with quiet_native_logs():
                self._landmarker = vision.FaceLandmarker.create_from_options(options)
                if running_mode == "video":
                    self._landmarker.detect_for_video(blank, 0)
                else:
                    self._landmarker.detect(blank)
        except (RuntimeError, ValueError) as error:
            raise ModelFileError(f"face landmarker {self.path}: MediaPipe cannot load it "
                                 f"({first_line(error)}); {FETCH_HINT}") from None
        self._last_timestamp_ms = 0 if running_mode == "video" else -1
        self.last_detect_ms = 0.0  # wall time of the last detect() call
        self.last_align_ms = 0.0  # wall time of the align() calls of the last process() call

    @property
    def last_ms(self) -> float:
        """Detect plus align time of the last `process` call."""
        return self.last_detect_ms + self.last_align_ms

    def detect(self, frame_bgr: np.ndarray, timestamp_ms: int | None = None) -> list[FaceLandmarks]:
        """Landmarks, blendshapes and pose of every face found (at most max_faces), left to right; [] for none."""
        start = time.perf_counter()
        if self._landmarker is None:
            raise RuntimeError("FaceAligner.detect() after close()")
        self.last_align_ms = 0.0
        height, width = frame_bgr.shape[:2]
        code = cv2.COLOR_GRAY2RGB if frame_bgr.ndim == 2 else cv2.COLOR_BGR2RGB
        image = self._image(cv2.cvtColor(frame_bgr, code))
        if self.running_mode == "video":
            stamp = time.monotonic_ns() // 1_000_000 if timestamp_ms is None else int(timestamp_ms)
            stamp = max(stamp, self._last_timestamp_ms + 1)
            self._last_timestamp_ms = stamp
            result = self._landmarker.detect_for_video(image, stamp)
        else:
            stamp = 0 if timestamp_ms is None else int(timestamp_ms)
            result = self._landmarker.detect(image)
        faces = [self._face(result, i, width, height, stamp) for i in range(len(result.face_landmarks))]
        faces.sort(key=lambda face: face.bbox[0] + face.bbox[2])
        self.last_detect_ms = (time.perf_counter() - start) * 1e3
        return faces

    @staticmethod
    def _face(result: Any, index: int, width: int, height: int, stamp: int) -> FaceLandmarks:
        raw = np.array([(p.x, p.y, p.z) for p in result.face_landmarks[index]], np.float32)  # (478, 3) normalized
        points = raw[:, :2] * np.array([width, height], np.float32) - 0.5
        scores = np.array([c.score for c in result.face_blendshapes[index]], np.float32)
        pose = np.asarray(result.facial_transformation_matrixes[index], np.float32).reshape(4, 4)
        bbox = (float(points[:, 0].min()), float(points[:, 1].min()),
                float(points[:, 0].max()), float(points[:, 1].max()))
        return FaceLandmarks(_frozen(points), _frozen(raw[:, 2] * width), _frozen(scores), _frozen(pose), bbox, stamp)

    def align(self, frame_bgr: np.ndarray, face: FaceLandmarks) -> AlignedFace:
        """Warp one detected face to the template."""
        crop, matrix = align_crop(frame_bgr, face.points, self.settings)
        points = transform_points(matrix, face.points).astype(np.float32)
        return AlignedFace(_frozen(crop), _frozen(matrix), _frozen(points), face)

    def process(self, frame_bgr: np.ndarray, timestamp_ms: int | None = None) -> list[AlignedFace]:
        """Detect and align every face; an empty list when there is none, never an exception."""
        faces = self.detect(frame_bgr, timestamp_ms)
        start = time.perf_counter()
        aligned = [self.align(frame_bgr, face) for face in faces]
        self.last_align_ms = (time.perf_counter() - start) * 1e3
        return aligned

    def close(self) -> None:
        """Release MediaPipe now: left to the garbage collector at exit, mediapipe 1.2.2 prints a TypeError."""
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None

    def __enter__(self) -> FaceAligner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
