"""Prepared GPU benchmark (run it where a CUDA GPU is lent; nothing here runs without one): torch CUDA encoder
throughput at fp32/fp16/bf16, eager / CUDA graphs / torch.compile, batch 1, 8, 64 and 256, presets `live` and
`paper`, and parity of every combination with the CPU engine (ONNX Runtime FP32).

Usage: python -m benchmarks.bench_engines_gpu [--presets live paper] [--batches 1 8 64 256] [--out gpu.json]

Times are CUDA-event medians over `--iters` calls on GPU-resident input (the engine's own numpy round trip is
measured separately as `engine ms` at batch 1, what one live frame costs). `live` is the bundled model; `paper`
has random weights (speed does not depend on them). Parity: max |Δ| of rank features and logits at batch 8,
through the TorchEngine the live loop uses, against ONNX Runtime on the CPU.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.model_folders import model_folder
from engines.base import ModelFiles
from engines.onnxruntime_engine import OnnxRuntimeEngine
from engines.torch_engine import EncoderGraphs, TorchEngine
from fdp.checkpoint import load_checkpoint
from fdp.model import FDP

PRECISIONS = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
MODES = ("eager", "cuda-graphs", "compile")


def encoder_call(model: FDP, precision: str, mode: str):
    """The encoder as the torch engine runs it in this mode, on GPU tensors."""
    dtype = PRECISIONS[precision]

    def autocast():
        return torch.autocast("cuda", dtype=dtype, enabled=dtype is not None)

    if mode == "compile":
        compiled = torch.compile(model.encode_frames, mode="reduce-overhead")
        return lambda frames: _under(autocast, compiled, frames)
    if mode == "cuda-graphs":
        graphs = EncoderGraphs(torch, model.encode_frames, autocast)
        return lambda frames: graphs(frames)
    return lambda frames: _under(autocast, model.encode_frames, frames)


def _under(autocast, call, frames):
    with autocast():
        return call(frames)


def throughput(call, frames: torch.Tensor, iters: int) -> tuple[float, float]:
    """(median ms per call, first-call seconds: compile or capture included)."""
    start = time.perf_counter()
    with torch.inference_mode():
        call(frames)
        torch.cuda.synchronize()
        first_s = time.perf_counter() - start
        for _ in range(3):
            call(frames)
        times = []
        for _ in range(iters):
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            begin.record()
            call(frames)
            end.record()
            end.synchronize()
            times.append(begin.elapsed_time(end))
    return float(np.median(times)), first_s


def parity(files: ModelFiles, reference: OnnxRuntimeEngine, precision: str, mode: str) -> dict[str, float]:
    engine = TorchEngine(files, device="cuda", precision=precision, compile=mode == "compile",
                         cuda_graphs=mode == "cuda-graphs")
    config = reference.config
    frames = np.random.default_rng(0).random((8, config.in_chans, config.image_size, config.image_size),
                                             dtype=np.float32)
    expected, got = reference.encode(frames), engine.encode(frames)
    one = frames[:1]
    engine.encode(one)
    start = time.perf_counter()
    for _ in range(20):
        engine.encode(one)
    engine_ms = (time.perf_counter() - start) / 20 * 1e3
    result = {"features_max_abs_diff": float(np.abs(got.rank_features - expected.rank_features).max()),
              "logits_max_abs_diff": float(np.abs(engine.head(expected.rank_features).logits -
                                                  reference.head(expected.rank_features).logits).max()),
              "engine_ms_batch1": engine_ms, "warmup_s": engine.warmup_s}
    engine.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["live", "paper"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8, 64, 256])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=list(PRECISIONS))
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--out", type=Path, default=None, help="also write every figure as JSON here")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench_engines_gpu: torch sees no CUDA device; run it on a GPU machine")
    gpu = torch.cuda.get_device_name(0)
    print(f"GPU: {gpu}; torch {torch.__version__}, CUDA {torch.version.cuda}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="fdp-bench-gpu-") as folder:
        for name in args.presets:
            files = ModelFiles.locate(model_folder(name, Path(folder)))
            reference = OnnxRuntimeEngine(files)
            model = load_checkpoint(files.checkpoint, device=torch.device("cuda"), flag="--model").eval()
            config = model.config
            for precision in args.precisions:
                for mode in args.modes:
                    torch.compiler.reset()
                    call = encoder_call(model, precision, mode)
                    check = parity(files, reference, precision, mode)
                    for batch in args.batches:
                        frames = torch.rand(batch, config.in_chans, config.image_size, config.image_size,
                                            device="cuda")
                        median_ms, first_s = throughput(call, frames, args.iters)
                        rows.append({"preset": name, "precision": precision, "mode": mode, "batch": batch,
                                     "ms": median_ms, "frames_per_s": batch / median_ms * 1e3, "first_s": first_s,
                                     **check})
                        print(f"{name:6s} {precision:5s} {mode:12s} batch {batch:4d}: {median_ms:8.3f} ms, "
                              f"{rows[-1]['frames_per_s']:10.0f} frames/s (first call {first_s:.1f} s) | parity "
                              f"features {check['features_max_abs_diff']:.2e}, logits "
                              f"{check['logits_max_abs_diff']:.2e} | engine batch 1 {check['engine_ms_batch1']:.3f} ms")
    if args.out:
        args.out.write_text(json.dumps({"gpu": gpu, "torch": torch.__version__, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
