"""Many cameras behind one endpoint: two real recognizers (run_live.py subprocesses on two videos, each with its
own --source-name and PUB endpoint) behind `python -m realtime.proxy`, and one real SUB connected to the proxy
alone that receives both streams: status, predictions and each one's fdp/end, every message in order."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import cv2
import pytest
import zmq
from live_process import LiveRun, free_endpoint

from fdp.assets import asset_path
from realtime import schema

pytestmark = pytest.mark.timeout(300)
FRAMES = 30


def mirrored_copy(video: Path, out: Path, frames: int) -> Path:
    """A second real-face video: the first `frames` frames of `video`, mirrored, as MJPG."""
    capture = cv2.VideoCapture(str(video))
    fps = capture.get(cv2.CAP_PROP_FPS)
    writer = None
    for _ in range(frames):
        ok, frame = capture.read()
        assert ok, f"{video}: fewer than {frames} frames"
        if writer is None:
            writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), fps, frame.shape[1::-1])
        writer.write(cv2.flip(frame, 1))
    capture.release()
    writer.release()
    return out


def test_two_recognizers_behind_one_proxy_reach_one_subscriber_in_full(tmp_path):
    videos = {"cam-a": asset_path("WolfgangLanger_Pexels.mp4"),
              "cam-b": mirrored_copy(asset_path("WolfgangLanger_Pexels.mp4"), tmp_path / "b.avi", FRAMES)}
    endpoints = {name: free_endpoint() for name in videos}
    backend = free_endpoint()
    proxy = LiveRun("--frontend", *endpoints.values(), "--backend", backend,
                    command=[sys.executable, "-m", "realtime.proxy"])
    subscriber = zmq.Context.instance().socket(zmq.SUB)
    subscriber.setsockopt(zmq.SUBSCRIBE, schema.TOPIC_PREFIX.encode())
    subscriber.setsockopt(zmq.RCVTIMEO, 200)
    subscriber.connect(backend)
    runs = []
    try:
        runs = [LiveRun("--video", str(video), "--max-frames", str(FRAMES), "--headless", "--quiet", "--zmq",
                        endpoints[name], "--source-name", name) for name, video in videos.items()]
        received: dict[str, list[schema.Message]] = defaultdict(list)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not all(
                received[name] and received[name][-1].topic == schema.TOPIC_END for name in videos):
            try:
                message = schema.decode(subscriber.recv_multipart())
            except zmq.Again:
                continue
            received[message.payload["source"]].append(message)
        for run in runs:
            assert run.finish() == 0, run.stderr
    finally:
        subscriber.close(linger=0)
        for run in runs:
            run.kill()
        if proxy.process.poll() is None:
            proxy.signal(signal.SIGTERM)
    assert proxy.finish(30) == 0, proxy.stderr
    assert set(received) == set(videos)
    for name, messages in received.items():
        topics = [m.topic for m in messages]
        assert topics[-1] == schema.TOPIC_END and messages[-1].payload["frames"] == FRAMES, (name, topics[-5:])
        assert schema.TOPIC_STATUS in topics and schema.TOPIC_PREDICTION in topics, (name, set(topics))
        seqs = [m.payload["seq"] for m in messages]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"{name}: messages lost or reordered"


@pytest.mark.parametrize("args, expected", [
    (("--frontend", "bogus"), "ConfigError: --frontend bogus: cannot connect"),
    (("--frontend", "tcp://127.0.0.1:5555", "--backend", "tcp://10.255.255.1:5"), "ConfigError: --backend "),
])
def test_proxy_bad_endpoint_is_one_line_exit_1(args, expected):
    result = subprocess.run([sys.executable, "-m", "realtime.proxy", *args], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1 and result.stdout == "" and result.stderr.count("\n") == 1
    assert result.stderr.startswith(expected), result.stderr


@pytest.mark.parametrize("number, code", [(signal.SIGTERM, 0), (signal.SIGINT, 130)])
def test_proxy_stops_on_a_signal_that_lands_while_it_forwards(number, code):
    """A signal that landed while libzmq was forwarding (not waiting in poll) was left pending for ever: the proxy
    ignored SIGTERM 4 times in 10 under a steady stream. Each try here signals it in the middle of one."""
    context = zmq.Context.instance()
    payload = b"x" * 2000
    for _ in range(5):
        publisher = context.socket(zmq.PUB)
        port = publisher.bind_to_random_port("tcp://127.0.0.1")
        backend = free_endpoint()
        proxy = LiveRun("--frontend", f"tcp://127.0.0.1:{port}", "--backend", backend,
                        command=[sys.executable, "-m", "realtime.proxy"])
        subscriber = context.socket(zmq.SUB)
        subscriber.setsockopt(zmq.SUBSCRIBE, b"")
        subscriber.connect(backend)
        try:
            assert proxy.process.stdout.readline().startswith("proxy: "), proxy.stderr
            received, deadline = 0, time.monotonic() + 60
            while received < 200 and time.monotonic() < deadline:  # until the stream flows through the proxy
                publisher.send(payload)
                if subscriber.poll(0):
                    subscriber.recv()
                    received += 1
            assert received == 200, "nothing came through the proxy"
            proxy.signal(number)
            for _ in range(2000):
                publisher.send(payload)
                while subscriber.poll(0):
                    subscriber.recv()
            assert proxy.finish(30) == code, proxy.stderr
        finally:
            proxy.kill()
            subscriber.close(linger=0)
            publisher.close(linger=0)


def test_only_the_proxys_main_thread_can_take_a_stop_signal():
    """The kernel hands a process's SIGTERM or Ctrl-C to any thread that does not block it. Taken by the forwarder
    thread (interrupting its poll inside zmq.proxy_steerable), it raised there while the main thread, woken by the
    same signal, closed the sockets under it or waited on it for ever: a proxy that ignored SIGTERM in CI. libzmq's
    threads block both already; the forwarder must too, so only the main thread can take them."""
    context = zmq.Context.instance()
    publisher = context.socket(zmq.PUB)
    port = publisher.bind_to_random_port("tcp://127.0.0.1")
    proxy = LiveRun("--frontend", f"tcp://127.0.0.1:{port}", "--backend", free_endpoint(),
                    command=[sys.executable, "-m", "realtime.proxy"])
    try:
        assert proxy.process.stdout.readline().startswith("proxy: "), proxy.stderr
        pid = proxy.process.pid
        tasks = Path(f"/proc/{pid}/task")
        stop_bits = (1 << (signal.SIGINT - 1)) | (1 << (signal.SIGTERM - 1))

        def blocking() -> dict[int, bool]:
            """Each thread of the proxy: does it block both stop signals?"""
            found = {}
            for task in tasks.iterdir():
                status = (task / "status").read_text()
                mask = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigBlk:")), 16)
                found[int(task.name)] = mask & stop_bits == stop_bits
            return found

        blocked, deadline = blocking(), time.monotonic() + 30
        while time.monotonic() < deadline and (len(blocked) < 4 or blocked[pid]):
            time.sleep(0.05)  # until the forwarder runs (main, forwarder, libzmq's I/O and reaper threads) and the
            blocked = blocking()  # main thread lets the signals through again
        assert len(blocked) >= 4 and not blocked[pid], blocked
        assert all(blocked[tid] for tid in blocked if tid != pid), blocked
        proxy.signal(signal.SIGTERM)
        assert proxy.finish(30) == 0 and "Traceback" not in proxy.stderr, proxy.stderr
    finally:
        proxy.kill()
        publisher.close(linger=0)
