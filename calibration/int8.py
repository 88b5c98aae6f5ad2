"""INT8 calibration: aligned crops from real input, ONNX Runtime static quantization to QDQ, drift against FP32.

    python -m calibration.int8 --video CALIBRATION.mp4 --heldout OTHER.avi --out models/mine-int8 [--model DIR]

The calibration crops come from `fdp/align.py`, exactly as the live loop cuts them, so the activation ranges are
those the model meets when serving. Each quantization choice (MatMul/Gemm only or also Conv; per-channel or
per-tensor weight scales) is measured on windows of a *different* video (top-1 agreement of the head and the
largest logit difference against FP32) and timed per frame on this CPU; the fastest with at least
`--min-agreement` top-1 agreement is written as a model folder that `run_live.py --model DIR` runs on ONNX Runtime
and that TensorRT builds INT8 engines from. The figures go to `int8_report.json` in the folder and to the console.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from engines.base import ENCODER_FILE, HEAD_FILE, ModelFiles, crops_to_input
from engines.onnxruntime_engine import OnnxRuntimeEngine
from engines.ort_quantization import QUANT_CHOICES, QuantChoice, choice_named, quantize_graph
from fdp.cli import CommandParser, run_command, run_main
from fdp.config import ModelConfig
from fdp.errors import ConfigError, EngineError, VideoError
from fdp.io import output_folder, write_json
from fdp.rank_pooling import rank_pool

REPORT_FILE = "int8_report.json"
REPORT_FORMAT = "fdp-live/int8-report/1"
CPU_INT8_FLAGS = ("avx2", "avx512_vnni", "avx_vnni", "amx_tile", "amx_int8")


@dataclass(frozen=True)
class FaceCrops:
    """The aligned crops of one input, one face per frame where a face was found, with the frames' times."""

    source: str
    crops: np.ndarray  # (N, H, W) or (N, H, W, 3) uint8
    times_s: np.ndarray  # (N,) media time of each crop's frame
    frames_read: int


@dataclass(frozen=True)
class Drift:
    """How far an INT8 model's outputs are from FP32's on the same windows."""

    windows: int
    top1_agreement: float
    max_logit_diff: float
    max_rank_feature_diff: float


@dataclass(frozen=True)
class Candidate:
    choice: str
    drift: Drift
    encoder_ms: float  # median per frame at batch 1
    speedup: float  # FP32 encoder time / this one's


def cpu_int8_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> list[str]:
    """The x86 features that decide INT8 speed here (VNNI dot products, AMX tiles), as the kernel reports them."""
    try:
        flags = next((line.split(":", 1)[1].split() for line in cpuinfo.read_text().splitlines()
                      if line.startswith("flags")), [])
    except OSError:
        return []
    return [flag for flag in CPU_INT8_FLAGS if flag in flags]


def read_face_crops(source: str, config: ModelConfig, max_frames: int, landmarker: str | None = None,
                    label: str = "aligning", spread: bool = False) -> FaceCrops:
    """Align the first face of up to `max_frames` frames with the live aligner: consecutive frames (windows need
    them), or with `spread` frames spread evenly over a whole file (calibration ranges from every part of it)."""
    from rich.progress import Progress

    from fdp.align import FaceAligner

    camera = source.isdigit()
    capture = cv2.VideoCapture(int(source) if camera else source)
    if not capture.isOpened():
        raise VideoError(f"{source}: cannot be opened as a video{' camera' if camera else ' file'}; pass --video "
                         "with a readable video file or a camera index")
    length = 0 if camera else int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    stride = max(1, length // max_frames) if spread else 1
    total = min(max_frames, length // stride) if length else max_frames
    crops, times, read, index, start = [], [], 0, 0, time.monotonic()
    try:
        with FaceAligner(config.aligner, landmarker, running_mode="video") as aligner, \
                Progress(transient=True) as progress:
            task = progress.add_task(f"{label} {Path(source).name}", total=total)
            while read < max_frames:
                ok, frame = capture.read()
                if not ok:
                    break
                index += 1
                if (index - 1) % stride:
                    continue
                t_s = time.monotonic() - start if camera else capture.get(cv2.CAP_PROP_POS_MSEC) / 1e3
                faces = aligner.process(frame, int(t_s * 1e3))
                if faces:
                    crops.append(faces[0].crop)
                    times.append(t_s)
                read += 1
                progress.update(task, advance=1)
    finally:
        capture.release()
    if not crops:
        raise VideoError(f"{source}: no face found in {read} frames; use a video in which one face is visible")
    return FaceCrops(source, np.stack(crops), np.asarray(times), read)


def window_indices(times_s: np.ndarray, steps: int, window_s: float) -> np.ndarray:
    """(W, T) crop indices of every full window, one ending at each crop: T evenly spaced times over the last
    window_s, nearest crop to each, as the live window resamples its ring."""
    ends = np.flatnonzero(times_s - times_s[0] >= window_s * (steps - 1) / steps)
    targets = times_s[ends, None] - window_s + np.linspace(0.0, window_s, steps)[None]  # (W, T)
    right = np.clip(np.searchsorted(times_s, targets), 1, len(times_s) - 1)
    nearer_left = (targets - times_s[right - 1]) <= (times_s[right] - targets)
    return np.where(nearer_left, right - 1, right)


def pooled_windows(engine: OnnxRuntimeEngine, crops: FaceCrops, batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Rank features of every crop (N, D) and the rank-pooled feature of every window (W, D), by this engine."""
    frames = crops_to_input(crops.crops)
    features = np.concatenate([engine.encode(frames[i:i + batch]).rank_features
                               for i in range(0, len(frames), batch)])
    windows = window_indices(crops.times_s, engine.config.frames, engine.config.window_s)
    pooled = np.stack([rank_pool(features[index]) for index in windows]) if len(windows) else \
        np.zeros((0, features.shape[1]), np.float32)
    return features, pooled


def measure_drift(reference: OnnxRuntimeEngine, candidate: OnnxRuntimeEngine, crops: FaceCrops) -> Drift:
    """Top-1 agreement and largest differences of `candidate` against `reference` on the windows of `crops`."""
    ref_features, ref_pooled = pooled_windows(reference, crops)
    features, pooled = pooled_windows(candidate, crops)
    if not len(ref_pooled):
        raise VideoError(f"{crops.source}: too short for one {reference.config.window_s} s window; use a longer "
                         "--heldout video")
    ref_logits, logits = reference.head(ref_pooled).logits, candidate.head(pooled).logits
    return Drift(len(ref_pooled), float(np.mean(ref_logits.argmax(1) == logits.argmax(1))),
                 float(np.abs(ref_logits - logits).max()), float(np.abs(ref_features - features).max()))


def encoder_ms(engines: dict[str, OnnxRuntimeEngine], frames: np.ndarray, rounds: int = 20) -> dict[str, float]:
    """Median per-frame encoder time at batch 1 of each engine, interleaved so load bursts hit them all alike."""
    samples: dict[str, list[float]] = {name: [] for name in engines}
    for engine in engines.values():
        engine.encode(frames[:1])
    for round_index in range(rounds):
        for name, engine in engines.items():
            for i in range(5):
                frame = frames[(round_index * 5 + i) % len(frames)][None]
                start = time.perf_counter_ns()
                engine.encode(frame)
                samples[name].append((time.perf_counter_ns() - start) / 1e6)
    return {name: float(np.median(values)) for name, values in samples.items()}


def quantize_folder(files: ModelFiles, out: Path, calibration: FaceCrops, choice: QuantChoice,
                    reference: OnnxRuntimeEngine) -> None:
    """Write a quantized model folder: the encoder calibrated on the crops, the head on the pooled windows the
    FP32 encoder makes of them (what the head sees live)."""
    quantize_graph(files.encoder, out / ENCODER_FILE, crops_to_input(calibration.crops), choice)
    _, pooled = pooled_windows(reference, calibration)
    quantize_graph(files.head, out / HEAD_FILE, pooled if len(pooled) else reference.encode(
        crops_to_input(calibration.crops)).rank_features, choice)


def calibrate(files: ModelFiles, out: Path, calibration: FaceCrops, heldout: FaceCrops,
              choices: tuple[QuantChoice, ...], min_agreement: float, threads: int | None = None,
              log: Callable[[str], object] = print) -> tuple[Candidate, list[Candidate]]:
    """Quantize with every choice, measure each, and write the fastest that agrees enough into `out`."""
    reference = OnnxRuntimeEngine(files, threads=threads)
    candidates, engines = [], {"fp32": reference}
    with tempfile.TemporaryDirectory(prefix="fdp-quantize-") as scratch:
        for choice in choices:
            folder = Path(scratch) / choice.name
            folder.mkdir()
            quantize_folder(files, folder, calibration, choice, reference)
            engines[choice.name] = OnnxRuntimeEngine(ModelFiles.locate(folder), threads=threads)
        times = encoder_ms(engines, crops_to_input(heldout.crops))
        for choice in choices:
            drift = measure_drift(reference, engines[choice.name], heldout)
            candidates.append(Candidate(choice.name, drift, times[choice.name], times["fp32"] / times[choice.name]))
            log(f"  {choice.name:24s} top-1 agreement {drift.top1_agreement:7.2%} over {drift.windows} windows, "
                f"max |logit diff| {drift.max_logit_diff:.4f}, encoder {times[choice.name]:.3f} ms/frame "
                f"({candidates[-1].speedup:.2f}x FP32 {times['fp32']:.3f} ms)")
        kept = [c for c in candidates if c.drift.top1_agreement >= min_agreement]
        if not kept:
            best = max(candidates, key=lambda c: c.drift.top1_agreement)
            raise EngineError(f"no INT8 choice kept {min_agreement:.0%} top-1 agreement with FP32 (best: {best.choice}"
                              f", {best.drift.top1_agreement:.1%}); keep the FP32 model, or calibrate on more varied "
                              "video")
        chosen = min(kept, key=lambda c: c.encoder_ms)
        for name in (ENCODER_FILE, HEAD_FILE):
            shutil.copyfile(Path(scratch) / chosen.choice / name, out / name)
    return chosen, candidates


def _parser() -> argparse.ArgumentParser:
    parser = CommandParser(prog="python -m calibration.int8",
                           description="Quantize an FDP model to INT8 (QDQ) on aligned crops of real video, and "
                                       "report its drift from FP32 on another video.")
    parser.add_argument("--video", required=True, help="calibration input: a video file, or a camera index (0)")
    parser.add_argument("--heldout", required=True, help="another video, for the drift figures (never calibrated on)")
    parser.add_argument("--out", required=True, type=Path, help="folder to write the INT8 model to")
    parser.add_argument("--model", default=None, help="FP32 model folder (default: the bundled model)")
    parser.add_argument("--frames", type=int, default=400, help="calibration frames to read, at most")
    parser.add_argument("--heldout-frames", type=int, default=600, help="held-out frames to read, at most")
    parser.add_argument("--choice", default="fastest", choices=("fastest", *(c.name for c in QUANT_CHOICES)),
                        help="quantization to try: every choice (keep the fastest that agrees), or one")
    parser.add_argument("--min-agreement", type=float, default=0.98, help="least top-1 agreement with FP32 to keep")
    parser.add_argument("--landmarker", default=None, help="MediaPipe face_landmarker.task to align with")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.frames < 8 or args.heldout_frames < 8:
        raise ConfigError("--frames and --heldout-frames: read 8 or more frames (a few hundred calibrate well)")
    if not 0.0 < args.min_agreement <= 1.0:
        raise ConfigError(f"--min-agreement {args.min_agreement}: use a fraction above 0 and at most 1 (0.98)")
    if not args.video.isdigit() and Path(args.video).resolve() == Path(args.heldout).resolve():
        raise ConfigError("--heldout is the calibration --video; measure drift on another video")
    files = ModelFiles.locate(args.model)
    config = OnnxRuntimeEngine(files, threads=args.threads).config  # a wrong model is one line before any video
    out = output_folder(args.out, "--out")
    calibration = read_face_crops(args.video, config, args.frames, args.landmarker, "calibration crops", spread=True)
    heldout = read_face_crops(args.heldout, config, args.heldout_frames, args.landmarker, "held-out crops")
    print(f"INT8 calibration of {files.folder}: {len(calibration.crops)} crops of {calibration.frames_read} frames "
          f"of {args.video}; drift on {len(heldout.crops)} crops of {args.heldout}; CPU int8 features: "
          f"{', '.join(cpu_int8_flags()) or 'none of ' + ', '.join(CPU_INT8_FLAGS)}")
    choices = QUANT_CHOICES if args.choice == "fastest" else (choice_named(args.choice),)
    chosen, candidates = calibrate(files, out, calibration, heldout, choices, args.min_agreement, args.threads)
    write_json(out / REPORT_FILE, {
        "format": REPORT_FORMAT, "source_model": str(files.folder), "kept": chosen.choice,
        "min_top1_agreement": args.min_agreement, "calibration": {"video": args.video, "crops": len(calibration.crops)},
        "heldout": {"video": args.heldout, "crops": len(heldout.crops)}, "cpu_int8_flags": cpu_int8_flags(),
        "candidates": [asdict(candidate) for candidate in candidates],
        "config": {key: str(value) for key, value in vars(args).items()}})
    print(f"kept {chosen.choice}: top-1 agreement {chosen.drift.top1_agreement:.2%}, max |logit diff| "
          f"{chosen.drift.max_logit_diff:.4f}, {chosen.speedup:.2f}x FP32 per frame; wrote {out} (run it with "
          f"python run_live.py --model {out})")
    if chosen.speedup < 1.0:
        print(f"note: on this CPU the INT8 encoder is slower than FP32 ({chosen.speedup:.2f}x); the FP32 model stays "
              "the faster choice here (INT8 gains need larger convolutions and matmuls, or a GPU through TensorRT)")
    return 0



def command() -> int:
    """`fdp-quantize`, the installed name of `python -m calibration.int8`."""
    return run_command(main, "fdp-quantize")

if __name__ == "__main__":
    raise SystemExit(run_main(main))
