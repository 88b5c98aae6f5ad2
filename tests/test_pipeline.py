"""The live recognizer end to end: real face videos, a real ONNX Runtime engine, a real ZeroMQ SUB, a real log."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import pytest
import zmq

from fdp.assets import asset_path
from models import make_model_folder
from realtime import schema
from realtime.capture import ReconnectPolicy
from realtime.live_config import LiveConfig
from realtime.pipeline import StopRequest, run_live

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny_model")
    make_model_folder(folder)
    return folder


def free_endpoint() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{probe.getsockname()[1]}"


def read_log(path: Path) -> list[schema.Message]:
    return [schema.decode_json_line(line) for line in path.read_text().splitlines()]


class Subscriber:
    """A real SUB on its own thread, collecting every message until fdp/end."""

    def __init__(self, endpoint: str):
        self.socket = zmq.Context.instance().socket(zmq.SUB)
        self.socket.setsockopt(zmq.SUBSCRIBE, b"fdp/")
        self.socket.setsockopt(zmq.RCVTIMEO, 200)
        self.socket.connect(endpoint)
        self.messages: list[schema.Message] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        deadline = time.monotonic() + 200
        while time.monotonic() < deadline:
            try:
                message = schema.decode(self.socket.recv_multipart())  # validates against the schema
            except zmq.Again:
                continue
            self.messages.append(message)
            if message.topic == schema.TOPIC_END:
                break
        self.socket.close(linger=0)


def test_pipeline_real_video_sub_and_log_hold_what_was_published(tmp_path, tiny_model):
    endpoint = free_endpoint()
    subscriber = Subscriber(endpoint)
    log = tmp_path / "run.jsonl"
    config = LiveConfig(demo=True, model=str(tiny_model), zmq=endpoint, record=str(log), headless=True, quiet=True,
                        max_frames=150)
    end = run_live(config, StopRequest(), log=lambda line: None)
    subscriber.thread.join(30)
    assert end.frames == 150 and end.reason == "max frames (150) reached"
    logged = read_log(log)
    # The log is complete: consecutive seq from 0, status first, end last, every line valid.
    assert [m.payload["seq"] for m in logged] == list(range(len(logged)))
    assert logged[0].topic == schema.TOPIC_STATUS and logged[-1].topic == schema.TOPIC_END
    predictions = [m for m in logged if m.topic == schema.TOPIC_PREDICTION]
    assert len(predictions) > 100  # a face is in every frame; windows are ready after ~0.5 s
    assert set(predictions[0].payload["probs"]) == {"none", "negative", "positive", "surprise"}
    assert all(p.payload["latency_ms"]["e2e"] > 0 for p in predictions)
    # The subscriber got status (with the label order), predictions and the end, each equal to the logged one.
    topics = {m.topic for m in subscriber.messages}
    assert {schema.TOPIC_STATUS, schema.TOPIC_PREDICTION, schema.TOPIC_END} <= topics
    by_seq = {m.payload["seq"]: m.payload for m in logged}
    assert all(by_seq[m.payload["seq"]] == m.payload for m in subscriber.messages)
    status = next(m for m in subscriber.messages if m.topic == schema.TOPIC_STATUS)
    assert status.payload["labels"] == ["none", "negative", "positive", "surprise"]
    assert "random weights (a test model)" in status.payload["model"]
    assert (tmp_path / "run.jsonl.config.json").is_file()


def test_pipeline_video_with_no_face_stretches_keeps_running(tmp_path, tiny_model):
    log = tmp_path / "noface.jsonl"
    video = asset_path("face_noface.mov")
    frames = int(cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FRAME_COUNT))
    config = LiveConfig(video=str(video), realtime=True, model=str(tiny_model), zmq="off", record=str(log),
                        headless=True, quiet=True)
    end = run_live(config, StopRequest(), log=lambda line: None)
    logged = read_log(log)
    assert end.frames == frames and logged[-1].topic == schema.TOPIC_END
    statuses = [m.payload["faces"] for m in logged if m.topic == schema.TOPIC_STATUS]
    assert 1 in statuses and 0 in statuses[1:]  # a face while it is there, none while it is away
    assert any(m.topic == schema.TOPIC_PREDICTION for m in logged)


def test_pipeline_subscriber_never_reading_does_not_slow_it(tmp_path, tiny_model):
    """Paced at the file's rate with heavy frame messages: a SUB that never reads changes nothing."""
    results = {}
    for case in ("stalled subscriber", "no subscriber"):
        endpoint = free_endpoint()
        stalled = None
        if case == "stalled subscriber":
            stalled = zmq.Context.instance().socket(zmq.SUB)
            stalled.setsockopt(zmq.SUBSCRIBE, b"")
            stalled.setsockopt(zmq.RCVHWM, 1)
            stalled.connect(endpoint)
        log = tmp_path / f"{case}.jsonl"
        config = LiveConfig(demo=True, model=str(tiny_model), zmq=endpoint, zmq_frames=True, frames_per_s=30,
                            record=str(log), headless=True, quiet=True, max_frames=72)
        end = run_live(config, StopRequest(), log=lambda line: None)
        logged = read_log(log)
        last_status = [m.payload for m in logged if m.topic == schema.TOPIC_STATUS][-1]
        results[case] = (end.frames, last_status["dropped_frames"],
                         sum(m.topic == schema.TOPIC_PREDICTION for m in logged))
        if stalled is not None:
            stalled.close(linger=0)
    assert results["stalled subscriber"] == results["no subscriber"]
    assert results["no subscriber"][:2] == (72, 0)


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "run_live.py", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("args, expected", [
    (["--camera", "97"], "CameraError: camera 97: cannot open (no such device or it is busy); check --camera, or "
                         "use --video FILE"),
    (["--video", "/nonexistent/clip.mp4"], "VideoError: /nonexistent/clip.mp4: no such file; check --video"),
    (["--demo", "--camera", "0"], "ConfigError: choose one input, not --camera and --demo"),
])
def test_cli_bad_input_one_line_exit_1(args, expected, tiny_model):
    result = run_cli(*args, "--model", str(tiny_model), "--zmq", "off", "--headless")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [expected]


def test_cli_truncated_video_one_line_exit_1(tmp_path, tiny_model):
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes(asset_path("single_face.mp4").read_bytes()[:4000])
    result = run_cli("--video", str(truncated), "--model", str(tiny_model), "--zmq", "off", "--headless")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"VideoError: {truncated}: cannot read this video (corrupt, truncated, or a codec OpenCV lacks); re-encode "
        f"it, e.g. ffmpeg -i IN -c:v mjpeg OUT.avi"]


def test_cli_wrong_model_file_one_line_exit_1(tmp_path):
    wrong = tmp_path / "weights.safetensors"
    wrong.write_text("not a model")
    result = run_cli("--demo", "--model", str(wrong), "--engine", "torch", "--zmq", "off", "--headless")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ModelFileError: {wrong}: not a readable safetensors file (")


@pytest.mark.parametrize("signum, returncode, reason", [
    (signal.SIGINT, 130, "stopped by Ctrl-C"),
    (signal.SIGTERM, 0, "stopped by SIGTERM"),
], ids=["SIGINT", "SIGTERM"])
def test_cli_signal_mid_run_log_complete_and_ends_with_end(signum, returncode, reason, tmp_path, tiny_model):
    log = tmp_path / "stopped.jsonl"
    process = subprocess.Popen(
        [sys.executable, "run_live.py", "--demo", "--model", str(tiny_model), "--zmq", free_endpoint(),
         "--record", str(log), "--headless", "--quiet"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 30):
        time.sleep(0.2)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == returncode, stderr
    lines = log.read_text().splitlines()
    assert len(lines) >= 31
    records = [json.loads(line) for line in lines]
    assert [r["payload"]["seq"] for r in records] == list(range(len(records)))
    assert records[-1]["topic"] == "fdp/end" and records[-1]["payload"]["reason"] == reason
    assert "Traceback" not in stderr


def test_cli_exit_status_reads_the_end_cause_not_the_reason_wording():
    from realtime.cli import exit_status
    from realtime.frames import EndCause, EndOfStream

    assert exit_status(EndCause.INTERRUPTED) == 130
    assert exit_status(EndCause.FAILED) == 1
    for cause in EndCause:
        if cause not in (EndCause.INTERRUPTED, EndCause.FAILED):
            assert exit_status(cause) == 0, cause
    # The wording of a reason is for people: rewording it changes no exit status.
    assert EndOfStream("Ctrl-C pressed", frames=1, events=0, cause=EndCause.INTERRUPTED).cause is EndCause.INTERRUPTED
    assert EndOfStream("stopped by Ctrl-C", frames=1, events=0).cause is EndCause.END_OF_STREAM


def test_cli_calibration_stopped_by_ctrl_c_writes_no_profile_and_exits_130_quietly(tmp_path):
    from live_process import LiveRun

    profiles = tmp_path / "profiles"
    run = LiveRun("--demo", "--calibrate", "60", "--user", "ada", "--profiles", str(profiles), "--headless")
    try:
        run.wait_for(lambda: any(line.startswith("Calibrating:") for line in run.lines), 120, "the calibration prompt")
        run.signal(signal.SIGINT)
        assert run.finish(60) == 130, run.stderr
    finally:
        run.kill()
    assert "Traceback" not in run.stderr and "Error" not in run.stderr
    assert run.lines[-1] == "calibration stopped before 60 s of a face were recorded; no profile written"
    assert not (profiles / "ada.json").exists()


@pytest.fixture(scope="module")
def short_video(tmp_path_factory) -> Path:
    """The first 60 frames of the demo video, as a file that really ends there."""
    path = tmp_path_factory.mktemp("video") / "first_60.avi"
    capture = cv2.VideoCapture(str(asset_path("WolfgangLanger_Pexels.mp4")))
    ok, image = capture.read()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), capture.get(cv2.CAP_PROP_FPS),
                             (image.shape[1], image.shape[0]))
    for _ in range(60):
        writer.write(image)
        ok, image = capture.read()
        assert ok
    writer.release()
    capture.release()
    return path


def start_subscriber_process(endpoint: str) -> subprocess.Popen:
    """`python -m realtime.subscribe --until-end` in a process of its own, already subscribed when this returns:
    a stand-in XPUB on the endpoint sees its subscription and lets the endpoint go, and the SUB reconnects to
    the run that binds it next (resending its subscription)."""
    stand_in = zmq.Context.instance().socket(zmq.XPUB)
    stand_in.setsockopt(zmq.LINGER, 0)
    stand_in.bind(endpoint)
    process = subprocess.Popen([sys.executable, "-m", "realtime.subscribe", "--endpoint", endpoint, "--json",
                                "--until-end"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert stand_in.poll(90_000) and stand_in.recv() == b"\x01fdp/"
    finally:
        stand_in.close(linger=0)
    return process


@pytest.mark.parametrize("stop", ["end of file", "max frames", "SIGTERM"])
def test_cli_subscriber_in_another_process_gets_end_on_every_clean_stop(stop, tmp_path, short_video):
    endpoint = free_endpoint()
    subscriber = start_subscriber_process(endpoint)
    log = tmp_path / "run.jsonl"
    video = short_video if stop == "end of file" else asset_path("WolfgangLanger_Pexels.mp4")
    extra = ["--max-frames", "60"] if stop == "max frames" else []
    run = subprocess.Popen([sys.executable, "run_live.py", "--video", str(video), "--headless", "--quiet", "--zmq",
                            endpoint, "--record", str(log), *extra], cwd=REPO, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        if stop == "SIGTERM":
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and run.poll() is None and (
                    not log.exists() or len(log.read_text().splitlines()) < 20):
                time.sleep(0.2)
            run.send_signal(signal.SIGTERM)
        _, run_err = run.communicate(timeout=120)
        assert run.returncode == 0, run_err
        out, err = subscriber.communicate(timeout=60)  # --until-end: it exits once fdp/end has arrived
    finally:
        run.kill()
        subscriber.kill()
    reason = {"end of file": "end of file", "max frames": "max frames (60) reached",
              "SIGTERM": "stopped by SIGTERM"}[stop]
    assert (subscriber.returncode, err) == (0, "")
    received = [json.loads(line) for line in out.splitlines()]
    assert received[-1]["topic"] == "fdp/end" and received[-1]["payload"]["reason"] == reason
    assert received[-1] == json.loads(log.read_text().splitlines()[-1])


# The concurrent stages (realtime/stages.py): order, timestamps, drop counts and clean shutdown of every stage.

class Run:
    """One LivePipeline over a real source with the real aligner and ONNX Runtime engine, recorded to JSONL, with
    the console's lines kept; built here (not by run_live) so a test can hand in a source, an aligner or an engine
    that fails on purpose, or a publisher that stops the run."""

    def __init__(self, tmp_path: Path, model: Path, source, aligner_type=None, engine=None, publishers=()) -> None:
        import io

        from engines.factory import load_engine
        from fdp.align import FaceAligner
        from realtime.console import ConsoleStatus
        from realtime.pipeline import LivePipeline
        from realtime.publishers.base import PublisherFanout
        from realtime.publishers.recorder import JsonlRecorder

        self.log, self.console = tmp_path / "stages.jsonl", io.StringIO()
        loaded, _ = load_engine(str(model), "onnxruntime", threads=1)
        self.engine = engine(loaded) if engine is not None else loaded
        self.source = source
        self.stop = StopRequest()
        fanout = PublisherFanout([ConsoleStatus(self.console, show_status=False), JsonlRecorder(self.log),
                                  *publishers], source=source.name)
        config = LiveConfig(video=str(source.name), model=str(model), zmq="off", headless=True, quiet=True)
        self.aligner = (aligner_type or FaceAligner)(self.engine.config.aligner, running_mode="video")
        source.start()
        self.pipeline = LivePipeline(config, self.engine, self.aligner, source, fanout, "tiny test model")
        self.fanout = fanout

    def run(self):
        try:
            return self.pipeline.run(self.stop)
        finally:
            self.source.stop()
            self.fanout.close()
            self.aligner.close()

    def messages(self, topic: str | None = None) -> list[schema.Message]:
        logged = read_log(self.log)
        return [m for m in logged if topic is None or m.topic == topic]


def stage_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name in ("fdp-align", "fdp-capture", "fdp-publish")]


def assert_complete_log(run: Run, reason: str) -> list[schema.Message]:
    logged = run.messages()
    assert [m.payload["seq"] for m in logged] == list(range(len(logged)))
    assert logged[-1].topic == schema.TOPIC_END and logged[-1].payload["reason"] == reason
    assert run.console.getvalue().splitlines()[-1].startswith(f"end: {reason}; ")
    assert stage_threads() == []  # capture, alignment and publishing all finished
    return logged


def file_positions_s(path: Path) -> list[float]:
    capture = cv2.VideoCapture(str(path))
    positions = []
    while capture.grab():
        positions.append(capture.get(cv2.CAP_PROP_POS_MSEC) / 1e3)
    capture.release()
    return positions


def test_stages_file_every_frame_in_order_with_its_own_timestamps(tmp_path, tiny_model, short_video):
    from realtime.capture import VideoSource

    run = Run(tmp_path, tiny_model, VideoSource(short_video))
    end = run.run()
    logged = assert_complete_log(run, "end of file")
    assert end.frames == 60
    predictions = [m.payload for m in logged if m.topic == schema.TOPIC_PREDICTION]
    indices = [p["frame_index"] for p in predictions]
    assert indices == list(range(indices[0], 60))  # once the window is full, every frame, in order
    positions = file_positions_s(short_video)
    assert [p["media_s"] for p in predictions] == pytest.approx([positions[i] for i in indices], abs=1e-6)
    stamps = [p["t_capture_ns"] for p in predictions]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert all({"wait_align", "wait_model"} <= set(p["latency_ms"]) for p in predictions)
    status = [m.payload for m in logged if m.topic == schema.TOPIC_STATUS][-1]
    assert status["dropped_by_stage"] == {"capture": 0, "align": 0} and status["dropped_frames"] == 0
    assert {"align", "wait_align", "wait_model", "e2e"} <= set(status["stage_ms_p50"]) <= set(status["stage_ms_p99"])


def test_stages_live_source_drops_are_counted_exactly_per_stage(tmp_path, tiny_model, short_video):
    """A file read as a live stream, unpaced: capture outruns alignment, and whatever is not processed is counted
    as dropped at the stage that lost it; the frames that do arrive keep grab order."""
    from realtime.capture import SourceKind, VideoSource

    source = VideoSource(short_video, kind=SourceKind.STREAM, reconnect=ReconnectPolicy(give_up_s=0))
    run = Run(tmp_path, tiny_model, source)
    end = run.run()
    logged = assert_complete_log(run, f"{source.name}: lost (reconnecting is off); check the connection")
    status = [m.payload for m in logged if m.topic == schema.TOPIC_STATUS][-1]
    drops = status["dropped_by_stage"]
    assert drops["capture"] == source.dropped_frames > 0
    assert source.frames_captured == end.frames + drops["capture"] + drops["align"] == 60
    assert status["dropped_frames"] == drops["capture"] + drops["align"]
    indices = [m.payload["frame_index"] for m in logged if m.topic == schema.TOPIC_PREDICTION]
    assert indices == sorted(set(indices))


class FailingAligner:
    """The real aligner, failing on purpose at its 30th frame (as a native error would)."""

    def __new__(cls, *args, **kwargs):
        from fdp.align import FaceAligner

        class Failing(FaceAligner):
            calls = 0

            def process(self, frame_bgr, timestamp_ms=None):
                self.calls += 1
                if self.calls == 30:
                    raise RuntimeError("landmark graph crashed")
                return super().process(frame_bgr, timestamp_ms)

        return Failing(*args, **kwargs)


def failing_engine(engine):
    """The real engine, its encoder failing on purpose at the 20th call."""

    class Failing:
        def __init__(self) -> None:
            self.calls = 0

        def __getattr__(self, name):
            return getattr(engine, name)

        def encode(self, frames):
            self.calls += 1
            if self.calls == 20:
                raise ValueError("encoder output has NaNs")
            return engine.encode(frames)

    return Failing()


@pytest.mark.parametrize("stage", ["alignment", "model", "spotting", "capture"])
def test_stages_a_stage_that_raises_ends_the_run_with_one_line_and_a_complete_log(stage, tmp_path, tiny_model,
                                                                                   monkeypatch):
    from realtime import pipeline
    from realtime.capture import VideoSource
    from realtime.frames import EndCause

    if stage == "spotting":  # the spotter is part of the model stage: its error ends the run as the encoder's does
        class FailingSpotter(pipeline.FaceSpotter):
            calls = 0

            def update(self, *args):
                FailingSpotter.calls += 1
                if FailingSpotter.calls == 25:
                    raise FloatingPointError("flow overflow")
                return super().update(*args)

        monkeypatch.setattr(pipeline, "FaceSpotter", FailingSpotter)
    video = asset_path("WolfgangLanger_Pexels.mp4")
    if stage == "capture":
        class FailingSource(VideoSource):
            def _grab(self, capture, *, index, since_open, pace_from):
                if index == 40:
                    raise OSError("USB bus reset")
                return super()._grab(capture, index=index, since_open=since_open, pace_from=pace_from)

        source = FailingSource(video)
    else:
        source = VideoSource(video)
    run = Run(tmp_path, tiny_model, source, aligner_type=FailingAligner if stage == "alignment" else None,
              engine=failing_engine if stage == "model" else None)
    end = run.run()
    reason = {"alignment": "alignment stage failed (RuntimeError: landmark graph crashed)",
              "model": "model stage failed (ValueError: encoder output has NaNs)",
              "spotting": "model stage failed (FloatingPointError: flow overflow)",
              "capture": f"{video}: capture failed (OSError: USB bus reset)"}[stage]
    assert (end.reason, end.cause) == (reason, EndCause.FAILED)
    logged = assert_complete_log(run, reason)
    # A file loses no frame: every frame before the failure reached the model stage (the encoder fails on its
    # 20th frame with a face and the spotter on its 25th, so at or after that frame).
    assert end.frames == {"alignment": 29, "capture": 40}.get(stage, end.frames) and end.frames >= 20
    assert any(m.topic == schema.TOPIC_PREDICTION for m in logged)


class StopAfter:
    """A publisher that requests a stop (as the Ctrl-C and SIGTERM handlers do) when it sees the n-th prediction."""

    name = "stopper"

    def __init__(self, stop: StopRequest, cause, after: int) -> None:
        self.stop, self.cause, self.after, self.seen = stop, cause, after, 0

    def publish(self, message: schema.Message) -> None:
        self.seen += message.topic == schema.TOPIC_PREDICTION
        if self.seen == self.after:
            self.stop.request(self.cause)

    def close(self) -> None:
        pass


@pytest.mark.parametrize("cause_name, reason", [("INTERRUPTED", "stopped by Ctrl-C"),
                                                ("TERMINATED", "stopped by SIGTERM")])
def test_stages_stop_mid_run_finishes_every_stage(cause_name, reason, tmp_path, tiny_model):
    from realtime.capture import VideoSource
    from realtime.frames import EndCause

    cause = EndCause[cause_name]
    stopper = StopAfter(StopRequest(), cause, after=15)
    run = Run(tmp_path, tiny_model, VideoSource(asset_path("WolfgangLanger_Pexels.mp4"), realtime=True),
              publishers=[stopper])
    stopper.stop = run.stop
    end = run.run()
    assert end.cause is cause and end.frames < 472
    logged = assert_complete_log(run, reason)
    assert sum(m.topic == schema.TOPIC_PREDICTION for m in logged) >= 15


def aligned_frames(n: int):
    import numpy as np

    from realtime.frames import AlignedFrame, Frame

    image = np.zeros((8, 8, 3), np.uint8)
    return [AlignedFrame(Frame(i, 1000 + i, i / 30, image, "test"), (), 0.0, 0.0, 2000 + i) for i in range(n)]


@pytest.mark.timeout(30)
def test_hand_over_newest_wins_counts_exact_drops_and_keeps_order():
    from realtime.stages import HandOver

    queue = HandOver(capacity=4, drop_oldest=True)
    items = aligned_frames(10)
    assert all(queue.put(item) for item in items)
    assert queue.dropped == 6
    assert [queue.get(1.0).frame.index for _ in range(4)] == [6, 7, 8, 9]
    queue.close("end of stream")
    assert queue.get(0.01) is None and queue.finished and queue.close_reason == "end of stream"


@pytest.mark.timeout(30)
def test_hand_over_for_files_waits_for_room_loses_nothing_and_close_frees_the_writer():
    from realtime.stages import HandOver

    queue = HandOver(capacity=1, drop_oldest=False)
    items = aligned_frames(5)
    results: list[bool] = []
    writer = threading.Thread(target=lambda: results.extend(queue.put(item) for item in items))
    writer.start()
    got = [queue.get(30.0).frame.index for _ in range(5)]
    writer.join(30)
    assert got == [0, 1, 2, 3, 4] and results == [True] * 5 and queue.dropped == 0
    assert queue.put(items[0])  # full again: the next put waits until close() frees it
    blocked = threading.Thread(target=lambda: results.append(queue.put(items[1])))
    blocked.start()
    queue.close("failed", failed=True)
    blocked.join(30)
    assert not blocked.is_alive() and results[-1] is False
    assert queue.get(0.01).frame.index == 0 and queue.finished and queue.failed  # what was handed over stays


def test_console_status_line_says_where_frames_were_dropped():
    import io

    from realtime.console import ConsoleStatus
    from realtime.frames import StatusReport

    stream = io.StringIO()
    console = ConsoleStatus(stream)
    for drops in ({"capture": 0, "align": 0}, {"capture": 31, "align": 2}):
        console.publish(schema.encode(StatusReport(
            labels=("none", "surprise"), model="m", engine="onnxruntime fp32", device="cpu", fps=29.5,
            e2e_ms_p50=12.0, e2e_ms_p99=30.0, dropped_frames=sum(drops.values()), faces=1, spotter="s",
            baseline="running baseline", dropped_by_stage=drops), source="camera 0", seq=0))
    assert stream.getvalue().splitlines() == [
        " 29.5 fps | e2e p50 12.0 ms p99 30.0 ms | dropped 0 | 1 face(s) | no face",
        " 29.5 fps | e2e p50 12.0 ms p99 30.0 ms | dropped 33 (capture 31, align 2) | 1 face(s) | no face"]
