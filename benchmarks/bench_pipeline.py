"""The live loop against its floor, in one run on one machine (figures are only compared inside a run).

1. The MediaPipe Tasks FaceLandmarker alone in VIDEO mode on WolfgangLanger_Pexels.mp4 (640x360, decoded ahead), the
   floor of a loop whose alignment is that landmarker, against the whole live loop on the same file, unpaced (capture,
   alignment and the model stage overlapping); the landmarker is timed before and after the loop, to see drift.
2. The loop paced as a camera (the file read as a live stream: newest frame wins, drops counted per stage) at 30 fps
   and at 200 fps, from files made of the real video's frames retimed to that rate (played forward then backward, so
   it loops without a jump; at 200 fps the face moves 8.3x faster than it did). e2e is grab to publication; lag is
   how far each grab falls behind the camera's schedule, first and last 10 s.
3. Faces: the same video tiled 1x1, 2x1 and 2x2 (each tile offset in time and every other one mirrored), the loop
   unpaced with --max-faces 1, 2, 4, against the landmarker alone on the same tiles.

Usage: python -m benchmarks.bench_pipeline [--model DIR] [--minute-s 60] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.timing import machine_line
from engines.base import crops_to_input
from engines.factory import load_engine
from fdp.align import FaceAligner, landmarker_options, resolve_landmarker
from fdp.assets import asset_path
from fdp.rank_pooling import rank_pool
from realtime import schema
from realtime.capture import ReconnectPolicy, SourceKind, VideoSource
from realtime.frames import MONITORED_STAGES
from realtime.live_config import LiveConfig
from realtime.pipeline import StopRequest, run_live
from realtime.window import FaceWindow

VIDEO = "WolfgangLanger_Pexels.mp4"
TILE_OFFSET = 118  # frames between the tiles' start points: four different moments of the video
START_UP_FRAMES = 30  # a short run whose CPU time is the start-up's, taken out of the loop's CPU a frame


def real_frames() -> tuple[list[np.ndarray], float]:
    capture = cv2.VideoCapture(str(asset_path(VIDEO)))
    fps, frames = capture.get(cv2.CAP_PROP_FPS), []
    while (got := capture.read())[0]:
        frames.append(got[1])
    return frames, fps


def tiled(frames: list[np.ndarray], faces: int) -> list[np.ndarray]:
    """Each frame of the video with `faces` tiles (1, 2 side by side, 4 as 2x2): different moments, half mirrored."""
    n = len(frames)
    tiles = [[frames[(i + k * TILE_OFFSET) % n][:, ::-1] if k % 2 else frames[(i + k * TILE_OFFSET) % n]
              for k in range(faces)] for i in range(n)]
    if faces == 1:
        return [t[0] for t in tiles]
    rows = [np.hstack(t[:2]) for t in tiles] if faces == 2 else [np.vstack([np.hstack(t[:2]), np.hstack(t[2:])])
                                                                   for t in tiles]
    return [np.ascontiguousarray(r) for r in rows]


def write_video(path: Path, frames: list[np.ndarray], fps: float, count: int) -> Path:
    """`count` frames at `fps`, ping-pong over `frames`, as MPEG-4 (MJPG would take 40 KB a frame)."""
    if path.is_file() and int(cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FRAME_COUNT)) == count:
        return path
    cycle = frames + frames[-2:0:-1]
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for i in range(count):
        writer.write(cycle[i % len(cycle)])
    writer.release()
    return path


def landmarker_alone(frames: list[np.ndarray], fps: float, faces: int) -> tuple[float, float]:
    """Frames per second of the Tasks FaceLandmarker alone (VIDEO mode, the aligner's options) on decoded frames,
    and the CPU it costs, in core-ms a frame (every thread of the process)."""
    import mediapipe as mp
    from mediapipe.tasks.python import vision

    options = landmarker_options(resolve_landmarker(), "video", faces, 0.5)
    with vision.FaceLandmarker.create_from_options(options) as landmarker:
        for i, frame in enumerate(frames[:5]):  # warm-up
            landmarker.detect_for_video(mp.Image(image_format=mp.ImageFormat.SRGB, data=frame[..., ::-1].copy()),
                                        int(i * 1000 / fps))
        start, cpu = time.perf_counter(), time.process_time()
        for i, frame in enumerate(frames):
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            landmarker.detect_for_video(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb),
                                        10_000 + int(i * 1000 / fps))
        return len(frames) / (time.perf_counter() - start), (time.process_time() - cpu) * 1e3 / len(frames)


def run_loop(video: Path, log: Path, model: str | None, threads: int | None, *, live: bool = False,
             paced: bool = False, faces: int = 1, max_frames: int | None = None) -> dict:
    """One live run; its figures read back from its own JSONL log, as a subscriber would see them."""
    config = LiveConfig(video=str(video), realtime=paced, model=model, engine="onnxruntime", threads=threads,
                        zmq="off", record=str(log), headless=True, quiet=True, max_faces=faces, max_frames=max_frames)
    source = VideoSource(video, kind=SourceKind.STREAM, realtime=paced, reconnect=ReconnectPolicy(give_up_s=0)) \
        if live else None
    cpu = time.process_time()
    end = run_live(config, StopRequest(), log=lambda line: None, source=source)
    cpu_s = time.process_time() - cpu
    messages = [schema.decode_json_line(line) for line in log.read_text().splitlines()]
    predictions = [m.payload for m in messages if m.topic == schema.TOPIC_PREDICTION]
    statuses = [m.payload for m in messages if m.topic == schema.TOPIC_STATUS]
    frames = sorted({p["frame_index"]: p["t_capture_ns"] for p in predictions}.items())
    t0, t1 = frames[0][1], frames[-1][1]
    result = {"frames": end.frames, "reason": end.reason, "cpu_s": cpu_s, "fps": (len(frames) - 1) / ((t1 - t0) / 1e9),
              "drops": statuses[-1]["dropped_by_stage"], "faces_max": max(s["faces"] for s in statuses),
              "predictions": len(predictions)}
    for stage in MONITORED_STAGES:
        values = np.array([p["latency_ms"][stage] for p in predictions])
        result[stage] = (np.percentile(values, 50), np.percentile(values, 99))
    if live and paced:  # lag behind the camera's schedule, and e2e, over the first and the last 10 s
        rate = cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FPS)
        stamps = np.array([t for _, t in frames], np.float64)
        indices = np.array([i for i, _ in frames], np.float64)
        lag_ms = ((stamps - stamps[0]) / 1e6) - (indices - indices[0]) * 1e3 / rate
        e2e = np.array([p["latency_ms"]["e2e"] for p in predictions])
        media = np.array([p["media_s"] for p in predictions])
        first, last = media <= media[0] + 10, media >= media[-1] - 10
        result["lag_ms"] = (float(np.median(lag_ms[:int(10 * rate)])), float(np.median(lag_ms[-int(10 * rate):])))
        result["e2e_first_last"] = (float(np.median(e2e[first])), float(np.median(e2e[last])))
    return result


def stage_table(r: dict) -> str:
    names = MONITORED_STAGES
    return ("    stage ms " + "".join(f"{s:>11}" for s in names) + "\n    p50      " +
            "".join(f"{r[s][0]:11.2f}" for s in names) + "\n    p99      " + "".join(f"{r[s][1]:11.2f}" for s in names))


def streaming_vs_reencoding(model: str | None, threads: int | None, frames: list[np.ndarray]) -> tuple[float, float]:
    """Per-frame model cost of a new window: encode 1 crop + pool + head, against encode T crops + pool + head."""
    from benchmarks.timing import interleaved

    engine, _ = load_engine(model, "onnxruntime", threads=threads)
    config = engine.config
    crops = []
    with FaceAligner(config.aligner, running_mode="video") as aligner:
        for index, frame in enumerate(frames[:40]):
            crops += [face.crop for face in aligner.process(frame, int(index * 1000 / 24))[:1]]
    window = FaceWindow(config.frames, config.window_s, config.rank_dim, crops[0].shape, max_fps=30)
    for index, crop in enumerate(crops):
        encoded = engine.encode(crops_to_input(crop[None]))
        window.push(index / 24, index, crop, encoded.rank_features[0], float(encoded.scores[0]))
    slots = window.resample()
    newest, steps = crops_to_input(crops[-1][None]), crops_to_input(window.crops[slots])

    def streaming() -> None:
        engine.encode(newest)
        engine.head(window.pooled(slots)[None])

    def reencoding() -> None:
        engine.head(rank_pool(engine.encode(steps).rank_features)[None])

    timings = interleaved({"streaming": streaming, "re-encoding": reencoding}, rounds=30)
    return timings["streaming"].median_ms, timings["re-encoding"].median_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model folder (default: the bundled model)")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads (default: the live default)")
    parser.add_argument("--minute-s", type=float, default=60.0, help="length of the 200 fps paced run, seconds")
    parser.add_argument("--videos", default=os.path.join(tempfile.gettempdir(), "fdp-bench-videos"),
                        help="where the made videos are kept between runs")
    args = parser.parse_args()
    print(f"machine: {machine_line()}; load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    folder = Path(args.videos)
    folder.mkdir(parents=True, exist_ok=True)
    frames, fps = real_frames()
    tiles = {n: tiled(frames, n) for n in (1, 2, 4)}
    videos = {n: write_video(folder / f"tiles{n}.mp4", tiles[n], fps, len(frames)) for n in (2, 4)}
    videos[1] = asset_path(VIDEO)
    paced = {rate: write_video(folder / f"paced{rate}.mp4", frames, rate, int(seconds * rate))
             for rate, seconds in ((30, 15.0), (200, args.minute_s))}
    with tempfile.TemporaryDirectory() as logs:
        log = Path(logs)
        before, alone_cpu_ms = landmarker_alone(frames, fps, 1)
        loop = run_loop(videos[1], log / "unpaced.jsonl", args.model, args.threads)
        after, _ = landmarker_alone(frames, fps, 1)
        start_up = run_loop(videos[1], log / "start_up.jsonl", args.model, args.threads, max_frames=START_UP_FRAMES)
        loop_cpu_ms = (loop["cpu_s"] - start_up["cpu_s"]) * 1e3 / (loop["frames"] - START_UP_FRAMES)
        print(f"\n1. {VIDEO} ({len(frames)} frames): Tasks landmarker alone {before:.1f} fps (before) / {after:.1f} "
              f"fps (after); whole loop unpaced {loop['fps']:.1f} fps = {loop['fps'] / before:.2f}x / "
              f"{loop['fps'] / after:.2f}x the landmarker (target >= 1.5x); drops {loop['drops']}")
        print(f"   CPU a frame: landmarker alone {alone_cpu_ms:.1f} core-ms, whole loop {loop_cpu_ms:.1f} core-ms "
              f"(start-up taken out): with all {os.cpu_count()} cores to itself the loop could reach at most "
              f"{os.cpu_count() * 1e3 / loop_cpu_ms:.0f} fps = {os.cpu_count() * 1e3 / loop_cpu_ms / before:.2f}x "
              "the landmarker alone")
        print(stage_table(loop))
        for rate in (30, 200):
            r = run_loop(paced[rate], log / f"paced{rate}.jsonl", args.model, args.threads, live=True, paced=True)
            print(f"\n2. paced at {rate} fps as a camera, {r['frames']} of "
                  f"{int(cv2.VideoCapture(str(paced[rate])).get(cv2.CAP_PROP_FRAME_COUNT))} frames processed "
                  f"({r['fps']:.1f} fps), dropped {r['drops']}; e2e p50 {r['e2e'][0]:.1f} ms, p99 {r['e2e'][1]:.1f} "
                  f"ms; e2e p50 first/last 10 s {r['e2e_first_last'][0]:.1f}/{r['e2e_first_last'][1]:.1f} ms; grab lag "
                  f"behind schedule first/last 10 s {r['lag_ms'][0]:.1f}/{r['lag_ms'][1]:.1f} ms")
            print(stage_table(r))
        print("\n3. faces (tiled video, unpaced): faces | landmarker alone fps | loop fps | ratio | align p50 | "
              "encode p50 (one batched call) | faces tracked")
        for n in (1, 2, 4):
            alone, _ = landmarker_alone(tiles[n], fps, n)
            r = run_loop(videos[n], log / f"faces{n}.jsonl", args.model, args.threads, faces=n)
            print(f"   {n} | {alone:6.1f} | {r['fps']:6.1f} | {r['fps'] / alone:4.2f}x | {r['align'][0]:6.2f} ms | "
                  f"{r['encode'][0]:5.2f} ms | {r['faces_max']}")
    stream_ms, reencode_ms = streaming_vs_reencoding(args.model, args.threads, frames)
    print(f"\nnew window, model work only: streaming {stream_ms:.3f} ms vs re-encoding the window "
          f"{reencode_ms:.3f} ms: {reencode_ms / stream_ms:.1f}x")
    print(f"load average at the end {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
