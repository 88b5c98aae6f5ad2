"""Speed and stability of fdp/align.py on real faces.

    python benchmarks/bench_align.py            # ms/frame of detect+align, VIDEO mode, WolfgangLanger_Pexels.mp4
    python benchmarks/bench_align.py --jitter   # the measurements behind align.py's anchor and smoothing choices

Stability is in crop px at the default 64x64 gray crop. Three probes: a still face under camera noise (pure jitter),
a still face moved along a known smooth path (tracking error against the truth), and phase correlation between
aligned crops of the real video (how far the crop content drifts between frames 1 and 0.25 s apart; it includes real
expression, so it is a ceiling). Each probe runs with MediaPipe's own VIDEO filter, in IMAGE mode, and with a One Euro
filter on the transform, to show whether smoothing earns its lag.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np
import skimage.data

from fdp.align import FaceAligner, estimate_matrix, invert_affine, template_points, transform_points, warp_crop
from fdp.assets import asset_path
from fdp.config import AlignerSettings

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("video", "image"), default="video", help="MediaPipe running mode")
    parser.add_argument("--jitter", action="store_true", help="also run the stability study (about a minute)")
    args = parser.parse_args()
    bench_speed(args.mode)
    if args.jitter:
        bench_jitter()


if __name__ == "__main__":
    main()
