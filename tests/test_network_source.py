"""A network camera that drops out mid-run: a real MJPEG-over-HTTP server on 127.0.0.1 (multipart/x-mixed-replace,
real JPEG frames of a face video) stops serving (its connections closed, then refused) and comes back. Capture
reconnects with backoff and says so in its state; the live command keeps running, reports the outage in fdp/status
and on the console, keeps its JSONL log and ZeroMQ stream valid, and ends with fdp/end when the camera never
comes back."""

from __future__ import annotations

import pytest
from live_process import LiveRun, MjpegCamera, Subscriber, face_jpegs, free_endpoint, log_records, wait_until

from fdp.assets import asset_path
from realtime import schema
from realtime.capture import CaptureState, ReconnectPolicy, SourceKind, VideoSource, classify_source


@pytest.fixture(scope="module")
def jpegs(fetched_assets) -> list[bytes]:
    return face_jpegs(asset_path("WolfgangLanger_Pexels.mp4"), 60)


@pytest.fixture
def camera(jpegs):
    server = MjpegCamera(jpegs, fps=15.0)
    yield server
    server.close()


@pytest.mark.timeout(120)
def test_capture_network_camera_drops_out_reconnects_with_backoff_then_ends_when_gone(camera):
    assert classify_source(camera.url) is SourceKind.STREAM
    source = VideoSource(camera.url, reconnect=ReconnectPolicy(initial_s=0.2, max_s=1.0, give_up_s=6.0))
    source.start()
    try:
        frames = []

        def read_some() -> bool:
            frame = source.read(timeout_s=0.05)
            if frame is not None:
                frames.append(frame)
            return frame is not None

        wait_until(lambda: read_some() and len(frames) >= 10, 60, "frames from the camera")
        assert source.state is CaptureState.RUNNING and source.outage_s == 0.0
        camera.go_down()
        wait_until(lambda: not read_some() and source.state is CaptureState.RECONNECTING, 30, "the loss noticed")
        wait_until(lambda: not read_some() and source.outage_s >= 1.0, 30, "an outage of a second")
        assert camera.refuses() and not source.ended
        before = len(frames)
        camera.come_back()
        wait_until(lambda: read_some() and len(frames) > before + 5, 60, "frames again after the outage")
        assert source.state is CaptureState.RUNNING and source.outage_s == 0.0 and source.reconnects == 1
        indices = [f.index for f in frames]
        assert indices == sorted(set(indices))  # numbered on across the reconnect
        media = [f.media_s for f in frames]
        assert all(b > a for a, b in zip(media, media[1:]))  # seconds since start, the gap included
        gap = max(b - a for a, b in zip(media, media[1:]))
        assert gap >= 1.0  # the outage shows in media time
        camera.go_down()  # for good
        wait_until(lambda: (read_some() or True) and source.ended, 60, "the end once the camera stays away")
        assert source.state is CaptureState.ENDED
        assert source.end_reason == f"{camera.url}: lost, not back within 6 s; check the connection"
    finally:
        source.stop()


@pytest.mark.timeout(400)
def test_cli_network_camera_outage_reported_log_and_zmq_valid_then_ends_when_gone(camera, tmp_path):
    log = tmp_path / "outage.jsonl"
    endpoint = free_endpoint()
    subscriber = Subscriber(endpoint)
    run = LiveRun("--video", camera.url, "--headless", "--quiet", "--zmq", endpoint, "--record", str(log),
                  "--reconnect-s", "15")
    try:
        def statuses() -> list[dict]:
            return [m.payload for m in log_records(log) if m.topic == schema.TOPIC_STATUS]

        def predictions() -> list[dict]:
            return [m.payload for m in log_records(log) if m.topic == schema.TOPIC_PREDICTION]

        run.wait_for(lambda: len(predictions()) >= 10, 180, "predictions from the network camera")
        assert statuses()[-1]["source_state"] == "running" and statuses()[-1]["outage_s"] == 0.0
        camera.go_down()
        run.wait_for(lambda: any(s["source_state"] == "reconnecting" and s["outage_s"] >= 2.0 for s in statuses()),
                     60, "fdp/status reporting the outage")
        last_before = predictions()[-1]["frame_index"]
        camera.come_back()
        run.wait_for(lambda: any(p["frame_index"] > last_before + 10 for p in predictions()), 120,
                     "predictions again after the camera came back")
        run.wait_for(lambda: statuses()[-1]["source_state"] == "running" and statuses()[-1]["reconnects"] >= 1,
                     30, "fdp/status saying the camera is back")
        camera.go_down()  # for good: the run ends by itself, with fdp/end and the reason
        returncode = run.finish(timeout_s=120)
    finally:
        run.kill()
    assert returncode == 0, run.stderr
    records = log_records(log)  # every line decodes and validates
    assert [m.payload["seq"] for m in records] == list(range(len(records)))
    assert records[-1].topic == schema.TOPIC_END
    assert records[-1].payload["reason"] == f"{camera.url}: lost, not back within 15 s; check the connection"
    outages = [m.payload["outage_s"] for m in records if m.topic == schema.TOPIC_STATUS]
    assert max(outages) >= 2.0 and outages[0] == 0.0
    # The console said when the camera went and when it came back; no traceback.
    assert any(line.startswith("input lost: no frames for") and "reconnecting" in line for line in run.lines)
    assert any(line.startswith("input back after") for line in run.lines)
    assert "Traceback" not in run.stderr
    # The ZeroMQ stream stayed valid throughout and matches the log message for message.
    subscriber.thread.join(30)
    assert subscriber.errors == [] and subscriber.messages[-1].topic == schema.TOPIC_END
    seqs = [m.payload["seq"] for m in subscriber.messages]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    by_seq = {m.payload["seq"]: m.payload for m in records}
    assert all(by_seq[m.payload["seq"]] == m.payload for m in subscriber.messages)
    assert any(m.topic == schema.TOPIC_STATUS and m.payload["source_state"] == "reconnecting"
               for m in subscriber.messages)
