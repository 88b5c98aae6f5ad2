"""Real things for the end-to-end tests of the live command: `run_live.py` in a subprocess whose stderr is read as
it comes, the JSONL log read while it is written, a real ZeroMQ SUB, free ports on 127.0.0.1, and a real
MJPEG-over-HTTP camera (multipart/x-mixed-replace, real JPEG frames of a face video) that can go away and come back.

Everything here waits on conditions with generous deadlines; nothing asserts how long something took.
"""

from __future__ import annotations

import http.server
import os
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import zmq

from realtime import schema

REPO = Path(__file__).resolve().parents[1]
BOUNDARY = "fdpframe"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def free_endpoint() -> str:
    return f"tcp://127.0.0.1:{free_port()}"


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str,
               process: subprocess.Popen | None = None, stderr: Callable[[], str] | None = None) -> None:
    """Poll `condition` until it holds; fail naming `what` (and the process's stderr) after `timeout_s`, or as soon
    as `process` has exited without the condition holding."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        exited = process is not None and process.poll() is not None
        if exited and condition():
            return
        if exited or time.monotonic() > deadline:
            state = f"exited with {process.returncode}" if exited else f"not within {timeout_s:g} s"
            raise AssertionError(f"{what}: {state}\n{stderr() if stderr else ''}")
        time.sleep(0.1)


def log_records(path: Path) -> list[schema.Message]:
    """The complete lines of a JSONL log being written, each decoded and validated (a last, partial line is left)."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")[:-1]  # whatever follows the last newline is still being written
    return [schema.decode_json_line(line) for line in lines]


class LiveRun:
    """`python run_live.py ARGS` (or another command line) with its stderr collected line by line on a thread."""

    def __init__(self, *args: str, command: list[str] | None = None) -> None:
        argv = (command or [sys.executable, "run_live.py"]) + list(args)
        self.process = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, condition: Callable[[], bool], timeout_s: float, what: str) -> None:
        wait_until(condition, timeout_s, what, self.process, lambda: self.stderr)

    def signal(self, number: int) -> None:
        self.process.send_signal(number)

    def finish(self, timeout_s: float = 120) -> int:
        """Wait for the exit status (the stderr reader has read everything by then)."""
        returncode = self.process.wait(timeout_s)
        self._reader.join(10)
        return returncode

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)


class Subscriber:
    """A real SUB on its own thread: every message, decoded and validated, until fdp/end (or `stop`)."""

    def __init__(self, endpoint: str) -> None:
        self.socket = zmq.Context.instance().socket(zmq.SUB)
        self.socket.setsockopt(zmq.SUBSCRIBE, schema.TOPIC_PREFIX.encode())
        self.socket.setsockopt(zmq.RCVTIMEO, 200)
        self.socket.connect(endpoint)
        self.messages: list[schema.Message] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                frames = self.socket.recv_multipart()
            except zmq.Again:
                continue
            try:
                message = schema.decode(frames)
            except schema.SchemaError as error:
                self.errors.append(str(error))
                continue
            self.messages.append(message)
            if message.topic == schema.TOPIC_END:
                break
        self.socket.close(linger=0)

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(10)


def face_jpegs(video: Path, count: int) -> list[bytes]:
    """The first `count` frames of a real video as JPEG files' bytes."""
    capture = cv2.VideoCapture(str(video))
    jpegs = []
    while len(jpegs) < count:
        ok, image = capture.read()
        if not ok:
            break
        jpegs.append(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes())
    capture.release()
    assert len(jpegs) == count, f"{video} has fewer than {count} frames"
    return jpegs


class MjpegCamera:
    """A network camera on 127.0.0.1: an HTTP server streaming JPEG frames as multipart/x-mixed-replace, as IP
    cameras and mjpg-streamer do. `go_down()` closes every connection and the listening socket (new connections
    are refused) and `come_back()` listens on the same port again."""

    def __init__(self, jpegs: list[bytes], fps: float = 15.0) -> None:
        self.jpegs = jpegs
        self.period_s = 1.0 / fps
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/stream.mjpg"
        self.frames_sent = 0
        self.connections = 0
        self._server: socketserver.ThreadingTCPServer | None = None
        self._up = threading.Event()
        self.come_back()

    def come_back(self) -> None:
        camera = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                camera.connections += 1
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                i = 0
                try:
                    while camera._up.is_set():
                        jpeg = camera.jpegs[i % len(camera.jpegs)]
                        self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                         f"{len(jpeg)}\r\n\r\n".encode("ascii") + jpeg + b"\r\n")
                        self.wfile.flush()
                        camera.frames_sent += 1
                        i += 1
                        time.sleep(camera.period_s)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True
            block_on_close = False

        self._server = Server(("127.0.0.1", self.port), Handler)
        self._up.set()
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def go_down(self) -> None:
        """Stop serving: streaming connections end, and the port refuses connections until `come_back()`."""
        self._up.clear()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def refuses(self) -> bool:
        """True while nothing listens on the port."""
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.port)) != 0

    def close(self) -> None:
        self.go_down()
