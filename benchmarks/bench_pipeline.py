"""The whole live loop on WolfgangLanger_Pexels.mp4 (640x360, one face): paced at the file's rate (drops, end-to-end
latency p50/p99) and unpaced (frames per second), with the per-stage breakdown; and, in the same run, the streaming
window (encode the new frame only) against re-encoding the whole window every frame, as a ratio.

Usage: python -m benchmarks.bench_pipeline [--model models/fdp_live] [--engine onnxruntime] [--frames 472]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.timing import interleaved, machine_line
from engines.base import crops_to_input
from engines.factory import load_engine
from fdp.align import FaceAligner
from fdp.assets import asset_path
from fdp.rank_pooling import rank_pool
from realtime import schema
from realtime.frames import LATENCY_STAGES
from realtime.live_config import LiveConfig
from realtime.pipeline import StopRequest, run_live
from realtime.window import FaceWindow



def run_once(model: str | None, engine: str, paced: bool, frames: int, log: Path) -> dict[str, float]:
    config = LiveConfig(video=str(asset_path("WolfgangLanger_Pexels.mp4")), realtime=paced, model=model,
                        engine=engine, zmq="off", record=str(log), headless=True, quiet=True, max_frames=frames)
    start = time.perf_counter()
    end = run_live(config, StopRequest(), log=lambda line: None)
    wall_s = time.perf_counter() - start
    messages = [schema.decode_json_line(line) for line in log.read_text().splitlines()]
    predictions = [m.payload for m in messages if m.topic == schema.TOPIC_PREDICTION]
    status = [m.payload for m in messages if m.topic == schema.TOPIC_STATUS][-1]
    # Loop rate from the grab stamps of the frames it processed (start-up and model loading left out).
    stamps = [p["t_capture_ns"] for p in predictions]
    loop_fps = (len(stamps) - 1) / ((stamps[-1] - stamps[0]) / 1e9)
    result = {"frames": end.frames, "wall_s": wall_s, "fps": loop_fps, "dropped": status["dropped_frames"],
              "predictions": len(predictions)}
    for stage in LATENCY_STAGES:
        values = np.array([p["latency_ms"][stage] for p in predictions])
        result[f"{stage}_p50"], result[f"{stage}_p99"] = np.percentile(values, 50), np.percentile(values, 99)
    return result


def streaming_vs_reencoding(model: str | None, engine_kind: str, rounds: int) -> tuple[float, float]:
    """Per-frame cost of a new window: encode 1 crop + pool + head, against encode T crops + pool + head."""
    engine, _ = load_engine(model, engine_kind)
    config = engine.config
    capture = cv2.VideoCapture(str(asset_path("WolfgangLanger_Pexels.mp4")))
    crops = []
    with FaceAligner(config.aligner, running_mode="video") as aligner:
        for index in range(40):
            ok, frame = capture.read()
            faces = aligner.process(frame, int(index * 1000 / 24)) if ok else []
            if faces:
                crops.append(faces[0].crop)
    window = FaceWindow(config.frames, config.window_s, config.rank_dim, crops[0].shape, max_fps=30)
    for index, crop in enumerate(crops):
        encoded = engine.encode(crops_to_input(crop[None]))
        window.push(index / 24, index, crop, encoded.rank_features[0], float(encoded.scores[0]))
    slots = window.resample()
    newest = crops_to_input(crops[-1][None])
    steps = crops_to_input(window.crops[slots])

    def streaming() -> None:
        engine.encode(newest)
        engine.head(window.pooled(slots)[None])

    def reencoding() -> None:
        engine.head(rank_pool(engine.encode(steps).rank_features)[None])

    timings = interleaved({"streaming": streaming, "re-encoding": reencoding}, rounds=rounds)
    return timings["streaming"].median_ms, timings["re-encoding"].median_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model folder (default: the bundled model)")
    parser.add_argument("--engine", default="onnxruntime", choices=("onnxruntime", "torch"))
    parser.add_argument("--frames", type=int, default=472, help="frames per run (the file has 472)")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    print(f"machine: {machine_line()}; engine {args.engine}")
    with tempfile.TemporaryDirectory() as folder:
        for paced in (True, False):
            r = run_once(args.model, args.engine, paced, args.frames, Path(folder) / f"{paced}.jsonl")
            title = "paced at the file's 23.98 fps" if paced else "unpaced (as fast as possible)"
            print(f"\n{title}: {r['frames']} frames ({r['wall_s']:.1f} s with start-up), loop {r['fps']:.1f} fps, "
                  f"{r['dropped']} dropped, {r['predictions']} predictions")
            print("  stage ms  " + "  ".join(f"{s:>14}" for s in LATENCY_STAGES))
            print("  p50       " + "  ".join(f"{r[f'{s}_p50']:14.2f}" for s in LATENCY_STAGES))
            print("  p99       " + "  ".join(f"{r[f'{s}_p99']:14.2f}" for s in LATENCY_STAGES))
    stream_ms, reencode_ms = streaming_vs_reencoding(args.model, args.engine, args.rounds)
    print(f"\nnew window, model work only: streaming {stream_ms:.3f} ms vs re-encoding the window "
          f"{reencode_ms:.3f} ms: {reencode_ms / stream_ms:.1f}x")


if __name__ == "__main__":
    main()
