"""realtime.publishers and realtime.subscribe on real ZeroMQ sockets (127.0.0.1, random ports) and real files:
messages arrive and validate, nothing a subscriber does can block publishing, a failing publisher is isolated,
and the JSONL recording holds exactly what was published, flushed as it goes."""

from __future__ import annotations

import inspect
import logging
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import zmq

from fdp.errors import ConfigError
from realtime import schema
from realtime.frames import AnnotatedFrame, EndOfStream, MEEvent, Prediction, StatusReport
from realtime.publishers.base import Publisher, PublisherFanout
from realtime.publishers.recorder import JsonlRecorder
from realtime.publishers.zmq import ZmqPublisher

REPO = Path(__file__).resolve().parents[1]
ANY_PORT = "tcp://127.0.0.1:*"
LABELS = ("none", "negative", "positive", "surprise")
PROBS = dict(zip(LABELS, (0.7, 0.1, 0.1, 0.1)))
LATENCY = {"align": 4.0, "spot": 1.1, "encode": 2.0, "pool": 0.1, "head": 0.1, "e2e": 8.0}


def status() -> StatusReport:
    return StatusReport(labels=LABELS, model="tiny", engine="onnxruntime", device="cpu", fps=30.0,
                        e2e_ms_p50=8.0, e2e_ms_p99=12.0, dropped_frames=0, faces=1,
                        spotter="fdp-spot/1", baseline="running baseline")


def prediction(i: int) -> Prediction:
    return Prediction(face_id=0, frame_index=i, media_s=i / 30, t_capture_ns=10**9 + i, time_unix=1.7e9 + i / 30,
                      window_s=0.5, label="none", probs=PROBS, motion=0.1, me_active=False, latency_ms=LATENCY)


def event() -> MEEvent:
    return MEEvent(face_id=0, onset_frame=3, apex_frame=5, offset_frame=9, onset_media_s=0.1, apex_media_s=0.17,
                   offset_media_s=0.3,
                   onset_time_unix=1.7e9, offset_time_unix=1.7e9 + 0.2, duration_s=0.2, label="none", probs=PROBS,
                   peak_motion=1.2, regions=("mouth_l",), spotter="fdp-spot/1")


def noisy_frame(i: int, size: tuple[int, int] = (48, 64)) -> AnnotatedFrame:
    rng = np.random.default_rng(i)
    return AnnotatedFrame(frame_index=i, t_capture_ns=i, image=rng.integers(0, 256, (*size, 3), dtype=np.uint8))


@pytest.fixture
def subscriber():
    socket = zmq.Context.instance().socket(zmq.SUB)
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.SUBSCRIBE, b"fdp/")
    yield socket
    socket.close(linger=0)


def receive_all(socket: zmq.Socket, quiet_ms: int = 300) -> list[list[bytes]]:
    messages = []
    while socket.poll(quiet_ms):
        messages.append(socket.recv_multipart())
    return messages


def join(publisher: ZmqPublisher, subscriber: zmq.Socket, timeout_s: float = 30.0) -> None:
    """The slow-joiner handshake from the subscriber's side: publish a probe until one arrives, then drain the
    probes, so the messages a test sends next reach a subscriber that is surely connected."""
    subscriber.connect(publisher.endpoint)
    probe = schema.Message("fdp/probe", {}, b"{}")  # no message of the schema: nothing a test counts
    deadline = time.monotonic() + timeout_s
    while not subscriber.poll(50):
        assert time.monotonic() < deadline, f"no probe reached the subscriber within {timeout_s} s"
        publisher.publish(probe)
    receive_all(subscriber)


class FailingPublisher:
    """A publisher that always raises, as a crashed preview or a full disk would."""

    name = "failing"

    def __init__(self) -> None:
        self.calls = 0
        self.closed = False

    def publish(self, message: schema.Message) -> None:
        self.calls += 1
        raise OSError("device unplugged")

    def close(self) -> None:
        self.closed = True
        raise OSError("still unplugged")


class StalledPublisher:
    """A publisher that hangs until released, as a stalled network file system would."""

    name = "stalled"

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.topics: list[str] = []

    def publish(self, message: schema.Message) -> None:
        self.entered.set()
        self.release.wait(10)
        self.topics.append(message.topic)

    def close(self) -> None:
        self.release.set()


@pytest.mark.timeout(30)
def test_zmq_subscriber_receives_messages_that_validate(subscriber):
    publisher = ZmqPublisher(ANY_PORT)
    assert publisher.endpoint.startswith("tcp://127.0.0.1:") and isinstance(publisher, Publisher)
    join(publisher, subscriber)
    probes = publisher.sent_messages
    items = [status(), prediction(0), event(), noisy_frame(1), EndOfStream("end of file", frames=2, events=1)]
    with PublisherFanout([publisher], source="clip.mp4") as fanout:
        sent = [fanout.publish(item) for item in items]
        assert fanout.flush()
    received = receive_all(subscriber)
    assert [len(frames) for frames in received] == [2, 2, 2, 3, 2]
    decoded = [schema.decode(frames) for frames in received]
    assert [m.topic for m in decoded] == ["fdp/status", "fdp/prediction", "fdp/event", "fdp/frame", "fdp/end"]
    assert [m.payload["seq"] for m in decoded] == [0, 1, 2, 3, 4]
    assert [dict(m.payload) for m in decoded] == [dict(m.payload) for m in sent]
    assert {m.payload["source"] for m in decoded} == {"clip.mp4"}
    assert publisher.sent_messages - probes == 5


@pytest.mark.timeout(60)
def test_zmq_subscriber_that_never_reads_cannot_block_publishing(subscriber):
    subscriber.setsockopt(zmq.RCVHWM, 2)
    publisher = ZmqPublisher(ANY_PORT, send_hwm=2)
    join(publisher, subscriber)
    probes = publisher.sent_messages + publisher.dropped_messages
    message = schema.encode(noisy_frame(0, size=(480, 640)), source="camera 0", seq=0)  # ~200 kB of JPEG noise
    n = 300  # ~60 MB: far more than the socket buffers between the two could ever hold
    for _ in range(n):
        publisher.publish(message)
    assert publisher.sent_messages + publisher.dropped_messages - probes == n
    received = receive_all(subscriber)  # the subscriber wakes up at last: ZeroMQ dropped what it could not hold
    assert 0 < len(received) < n
    publisher.close()


@pytest.mark.timeout(30)
def test_zmq_publishing_without_any_subscriber_never_blocks():
    publisher = ZmqPublisher(ANY_PORT, send_hwm=1)
    message = schema.encode(prediction(0), source="camera 0", seq=0)
    for _ in range(20_000):
        publisher.publish(message)
    assert publisher.sent_messages == 20_000
    publisher.close()
    publisher.close()  # twice is fine


def test_zmq_endpoint_in_use_raises_one_line_config_error():
    first = ZmqPublisher(ANY_PORT)
    try:
        with pytest.raises(ConfigError) as error:
            ZmqPublisher(first.endpoint)
        assert str(error.value) == (f"{first.endpoint}: cannot bind the ZeroMQ publisher (Address already in use); "
                                    "pick another --zmq endpoint, or stop the program that holds it")
    finally:
        first.close()


@pytest.mark.parametrize("endpoint, expected", [
    ("nonsense", "nonsense: not a ZeroMQ endpoint (Invalid argument); give --zmq as tcp://HOST:PORT, e.g. "
                 "tcp://127.0.0.1:5555, or off"),
    ("tcp://127.0.0.1", "tcp://127.0.0.1: not a ZeroMQ endpoint (Invalid argument); give --zmq as tcp://HOST:PORT, "
                        "e.g. tcp://127.0.0.1:5555, or off"),
    ("udp://127.0.0.1:5555", "udp://127.0.0.1:5555: not a ZeroMQ endpoint (The protocol is not compatible with the "
                             "socket type); give --zmq as tcp://HOST:PORT, e.g. tcp://127.0.0.1:5555, or off"),
    ("tcp://nohost.invalid:5555", "tcp://nohost.invalid:5555: cannot bind the ZeroMQ publisher (No such device): "
                                  "the host is not an address of this machine; give --zmq tcp://127.0.0.1:PORT, or "
                                  "tcp://*:PORT to publish on every interface"),
])
def test_zmq_malformed_endpoint_raises_one_line_config_error_that_names_the_form(endpoint, expected):
    with pytest.raises(ConfigError) as error:
        ZmqPublisher(endpoint)
    assert str(error.value) == expected


# A publisher in a process of its own sends a backlog far larger than the kernel's socket buffers, then fdp/end,
# then closes and exits at once, as run_live.py does after the last frame. Until the test writes a line to its
# stdin (a probe has reached the subscriber), it publishes probes.
BACKLOG_PUBLISHER = """
import select
import sys
import numpy as np
from realtime import schema
from realtime.frames import AnnotatedFrame, EndOfStream
from realtime.publishers.zmq import ZmqPublisher

publisher = ZmqPublisher("tcp://127.0.0.1:*")
print(publisher.endpoint, flush=True)
while not select.select([sys.stdin], [], [], 0.05)[0]:
    publisher.publish(schema.Message("fdp/probe", {}, b"{}"))
image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
frame = schema.encode(AnnotatedFrame(frame_index=0, t_capture_ns=0, image=image), source="clip.mp4", seq=0)
for _ in range(int(sys.argv[1])):
    publisher.publish(frame)
publisher.publish(schema.encode(EndOfStream("end of file", frames=1, events=0), source="clip.mp4", seq=1))
publisher.close()
"""


@pytest.mark.timeout(120)
def test_zmq_close_delivers_the_backlog_and_end_to_a_subscriber_in_another_process(subscriber):
    backlog = 90  # ~20 MB of JPEG noise, below the send high-water mark of 100 so nothing is dropped on purpose
    process = subprocess.Popen([sys.executable, "-c", BACKLOG_PUBLISHER, str(backlog)], cwd=REPO,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        subscriber.connect(process.stdout.readline().strip())
        assert subscriber.poll(90_000), "no probe from the publisher process"
        process.stdin.write("joined\n")
        process.stdin.flush()
        topics = []
        while not topics or topics[-1] != schema.TOPIC_END:
            if not subscriber.poll(60_000):  # nothing for a minute: the rest was thrown away
                break
            frames = subscriber.recv_multipart()
            if frames[0] != b"fdp/probe":  # the probes sent before the test's line arrived
                topics.append(schema.decode(frames).topic)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert topics == [schema.TOPIC_FRAME] * backlog + [schema.TOPIC_END]


def test_zmq_default_endpoints_are_loopback():
    from realtime.subscribe import build_parser

    assert inspect.signature(ZmqPublisher).parameters["endpoint"].default == "tcp://127.0.0.1:5555"
    assert build_parser().parse_args([]).endpoint == "tcp://127.0.0.1:5555"


@pytest.mark.timeout(30)
def test_fanout_failing_publisher_does_not_stop_the_others(tmp_path: Path, subscriber, caplog):
    failing = FailingPublisher()
    recorder = JsonlRecorder(tmp_path / "run.jsonl")
    zmq_publisher = ZmqPublisher(ANY_PORT)
    join(zmq_publisher, subscriber)
    with caplog.at_level(logging.WARNING, logger="realtime.publishers.base"):
        fanout = PublisherFanout([failing, recorder, zmq_publisher], source="camera 0")
        for i in range(20):
            fanout.publish(prediction(i))
        fanout.publish(EndOfStream("stopped", frames=20, events=0))
        fanout.close()
    assert failing.calls == 21 and fanout.failures == {failing.name: 21, recorder.name: 0, zmq_publisher.name: 0}
    assert recorder.lines_written == 21 and recorder.closed and failing.closed
    assert len(receive_all(subscriber)) == 21
    failures_logged = [r for r in caplog.records if "publisher failing failed on" in r.getMessage()]
    assert len(failures_logged) == 1  # logged once, not once per message


@pytest.mark.timeout(30)
def test_fanout_never_waits_for_a_stalled_publisher(tmp_path: Path):
    stalled = StalledPublisher()
    recorder = JsonlRecorder(tmp_path / "run.jsonl")
    fanout = PublisherFanout([stalled, recorder], source="camera 0", capacity=8)
    fanout.publish(event())
    assert stalled.entered.wait(10)  # the first event is now stuck in the stalled publisher
    for i in range(100):  # each call returns at once all the same
        fanout.publish(prediction(i))
    fanout.publish(event())
    fanout.publish(EndOfStream("end of file", frames=100, events=2))
    assert fanout.dropped_messages == 102 - 8  # of the 102 queued behind it, all but the queue's 8
    stalled.release.set()
    assert fanout.flush()
    fanout.close()
    assert stalled.topics == ["fdp/event"] + ["fdp/prediction"] * 6 + ["fdp/event", "fdp/end"]  # newest, events kept
    lines = (tmp_path / "run.jsonl").read_text().splitlines()
    assert [schema.decode_json_line(line).topic for line in lines] == stalled.topics
    with pytest.raises(RuntimeError):
        fanout.publish(prediction(0))


@pytest.mark.timeout(30)
def test_recorder_holds_exactly_the_published_messages_flushed_while_open(tmp_path: Path):
    path = tmp_path / "runs" / "today.jsonl"
    recorder = JsonlRecorder(path)
    fanout = PublisherFanout([recorder], source="clip.mp4")
    sent = [fanout.publish(status())]
    sent += [fanout.publish(prediction(i)) for i in range(5)]
    sent += [fanout.publish(event()), fanout.publish(noisy_frame(9))]
    assert fanout.flush()
    lines = path.read_text(encoding="utf-8").splitlines()  # read while the recorder is still open
    assert not recorder.closed
    assert [dict(schema.decode_json_line(line).payload) for line in lines] == [dict(m.payload) for m in sent]
    sent.append(fanout.publish(EndOfStream("end of file", frames=5, events=1)))
    assert fanout.flush()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(sent) == 9 and schema.decode_json_line(lines[-1]).topic == "fdp/end"
    fanout.close()
    assert recorder.closed and path.read_text(encoding="utf-8").splitlines() == lines


def test_recorder_unwritable_path_raises_one_line_config_error(tmp_path: Path):
    (tmp_path / "a_file").write_text("x")
    path = tmp_path / "a_file" / "run.jsonl"
    with pytest.raises(ConfigError) as error:
        JsonlRecorder(path)
    assert str(error.value) == f"{path}: cannot write the recording (Not a directory); choose another --record path"


def start_subscriber_cli(endpoint: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "realtime.subscribe", "--endpoint", endpoint, *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.timeout(60)
def test_subscribe_cli_prints_valid_messages_and_reports_invalid_ones():
    sender = zmq.Context.instance().socket(zmq.XPUB)  # a bare socket: it can also send a message that is wrong
    sender.setsockopt(zmq.LINGER, 0)
    port = sender.bind_to_random_port("tcp://127.0.0.1")
    process = start_subscriber_cli(f"tcp://127.0.0.1:{port}", "--plain", "--until-end")
    try:
        assert sender.poll(30_000) and sender.recv() == b"\x01fdp/"  # the CLI has subscribed
        sender.send_multipart([b"fdp/end", b'{"schema": "fdp-live/1"}'])
        items = [status(), prediction(4), EndOfStream("stopped", frames=5, events=0)]
        for seq, item in enumerate(items):
            sender.send_multipart(schema.encode(item, source="camera 0", seq=seq).to_frames())
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
        sender.close(linger=0)
    assert process.returncode == 0
    lines = out.splitlines()
    assert len(lines) == 3 and lines[0].startswith("fdp/status #0 camera 0  model tiny on onnxruntime/cpu")
    assert lines[1].startswith("fdp/prediction #1 face 0 frame 4 @0.133s  none 0.70")
    assert lines[2] == "fdp/end #2 stopped  frames 5  events 0"
    assert err == "invalid message: fdp/end: missing field 'source'\n"


# A subscriber started as a background job of a non-interactive shell (`python -m realtime.subscribe &`) inherits
# SIGINT ignored: Python then installs no KeyboardInterrupt handler of its own, so the command must.
IGNORING_SIGINT = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
                   "os.execv(sys.executable, [sys.executable, '-m', 'realtime.subscribe', *sys.argv[1:]])")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("inherited", ["default", "ignored"])
def test_subscribe_cli_ctrl_c_exits_130_quietly(inherited):
    sender = zmq.Context.instance().socket(zmq.XPUB)  # a bare XPUB: it sees the CLI's subscription arrive
    sender.setsockopt(zmq.LINGER, 0)
    endpoint = f"tcp://127.0.0.1:{sender.bind_to_random_port('tcp://127.0.0.1')}"
    if inherited == "default":
        process = start_subscriber_cli(endpoint)
    else:
        process = subprocess.Popen([sys.executable, "-c", IGNORING_SIGINT, "--endpoint", endpoint], cwd=REPO,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # The subscriber installs its Ctrl-C handler before it subscribes, so once the subscription arrives here
        # the signal is handled, however slowly the process got there.
        assert sender.poll(90_000) and sender.recv() == b"\x01fdp/"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=90)
    finally:
        process.kill()
        sender.close(linger=0)
    assert (process.returncode, out, err) == (130, "", "")


def test_subscribe_cli_bad_endpoint_is_one_line():
    result = subprocess.run([sys.executable, "-m", "realtime.subscribe", "--endpoint", "nowhere"], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith("ConfigError: nowhere: cannot connect (") and result.stderr.count("\n") == 1
