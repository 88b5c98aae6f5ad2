"""Soak: the live command for a long run, paced at 30 fps from a looped real video, with every output on.

`run_live.py` runs in a process of its own on a 30 fps ping-pong file of WolfgangLanger_Pexels.mp4's frames
(`--video --realtime --loop`), with ZeroMQ, the JSONL log and the preview page on. A subscriber here disconnects
and reconnects every minute, and the preview page is fetched every minute. Each minute reports the run's resident
memory (the process and its children), and from the last fdp/status: fps, dropped frames, e2e p99 (a paced file
loses no frame: a run that cannot keep up shows as fps under 30, not as drops). At the end the run is stopped with
Ctrl-C (SIGINT) and its log is checked: every line valid, seq increasing, fdp/end last.

Passes (exit 0) when memory is flat (the largest RSS after the warm-up within 5 % of the RSS at its end), the
preview page answered every time, each subscriber connection received messages, the command exited 130 and the
log is whole. Not in CI: it runs for `--minutes`.

Usage: python -m benchmarks.soak [--minutes 30] [--warmup-minutes 2] [--model DIR] [--out soak.json]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

import zmq

from benchmarks.bench_pipeline import real_frames, write_video
from benchmarks.timing import machine_line
from realtime import schema

REPO = Path(__file__).resolve().parents[1]
FPS = 30.0
GROWTH_LIMIT = 0.05  # flat: RSS after the warm-up stays within 5 % of the RSS at the warm-up's end


@dataclass
class Minute:
    """One minute of the soak, as measured from outside the run."""

    minute: int
    rss_mb: float
    fps: float | None
    dropped_frames: int | None
    e2e_ms_p99: float | None
    received: int  # messages this minute's subscriber connection received
    page_ok: bool


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def tree_rss_mb(pid: int) -> float:
    """Resident memory of `pid` and every process below it, in MiB, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    total_kb, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo.extend(children.get(current, []))
        try:
            status = (Path("/proc") / str(current) / "status").read_text()
        except OSError:
            continue
        total_kb += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return total_kb / 1024


class ReconnectingSubscriber:
    """A SUB that listens one connection at a time: `reconnect()` closes it and opens a new one, as a client that
    comes and goes would. Keeps the last fdp/status and counts messages per connection and invalid ones."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.context = zmq.Context()
        self.status: dict | None = None
        self.received = 0
        self.invalid = 0
        self.ended = False
        self._lock = threading.Lock()
        self._socket = self._connect()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-subscriber", daemon=True)
        self._thread.start()

    def _connect(self) -> zmq.Socket:
        sub = self.context.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, schema.TOPIC_PREFIX.encode())
        sub.connect(self.endpoint)
        return sub

    def reconnect(self) -> int:
        """Close this connection and open a new one; returns what the closed one received."""
        with self._lock:
            self._socket.close(linger=0)
            received, self.received = self.received, 0
            self._socket = self._connect()
        return received

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                frames = self._socket.recv_multipart() if self._socket.poll(100) else None
            if frames is None:
                continue
            try:
                message = schema.decode(frames)
            except schema.SchemaError:
                self.invalid += 1
                continue
            self.received += 1
            if message.topic == schema.TOPIC_STATUS:
                self.status = dict(message.payload)
            elif message.topic == schema.TOPIC_END:
                self.ended = True

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._socket.close(linger=0)
        self.context.term()


def page_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=20) as response:
            return response.status == 200
    except OSError:
        return False


def check_log(path: Path) -> tuple[int, list[str]]:
    """(lines, problems) of a finished JSONL log: each line valid, seq increasing, fdp/end the last line."""
    problems, last_seq, topic = [], -1, None
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        try:
            message = schema.decode_json_line(line)
        except schema.SchemaError as error:
            problems.append(f"line {number}: {error}")
            continue
        if message.payload["seq"] <= last_seq:
            problems.append(f"line {number}: seq {message.payload['seq']} after {last_seq}")
        last_seq, topic = message.payload["seq"], message.topic
    if topic != schema.TOPIC_END:
        problems.append(f"the last line is {topic}, not {schema.TOPIC_END}")
    return len(lines), problems


def soak(minutes: int, warmup_minutes: int, model: str | None, folder: Path) -> dict:
    frames, _ = real_frames()
    video = write_video(folder / "soak_30fps.mp4", frames, FPS, 2 * len(frames) - 2)  # one seamless ping-pong
    endpoint, port, log = f"tcp://127.0.0.1:{free_port()}", free_port(), folder / "soak.jsonl"
    argv = [sys.executable, "run_live.py", "--video", str(video), "--realtime", "--loop", "--engine", "onnxruntime",
            "--zmq", endpoint, "--record", str(log), "--preview-port", str(port), "--quiet"]
    if model is not None:
        argv += ["--model", model]
    process = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    subscriber = ReconnectingSubscriber(endpoint)
    rows: list[Minute] = []
    try:
        deadline = time.monotonic() + 300
        while not page_answers(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the live command did not start its preview page:\n{process.stderr.read()}")
            time.sleep(1)
        started = time.monotonic()
        for minute in range(1, minutes + 1):
            time.sleep(max(0.0, started + 60 * minute - time.monotonic()))
            if process.poll() is not None:
                raise SystemExit(f"the live command ended at minute {minute}:\n{process.stderr.read()}")
            status = subscriber.status or {}
            row = Minute(minute, tree_rss_mb(process.pid), status.get("fps"), status.get("dropped_frames"),
                         status.get("e2e_ms_p99"), subscriber.reconnect(), page_answers(port))
            rows.append(row)
            print(f"minute {row.minute:3d}: RSS {row.rss_mb:7.1f} MiB  fps {_fmt(row.fps)}  dropped "
                  f"{row.dropped_frames}  e2e p99 {_fmt(row.e2e_ms_p99)} ms  received "
                  f"{row.received}  page {'ok' if row.page_ok else 'DOWN'}", flush=True)
        process.send_signal(signal.SIGINT)
        returncode = process.wait(120)
    finally:
        if process.poll() is None:
            process.kill()
        subscriber.close()
    lines, problems = check_log(log)
    base = rows[min(warmup_minutes, len(rows)) - 1].rss_mb
    after = [r.rss_mb for r in rows[warmup_minutes:]] or [base]
    growth = max(after) / base - 1
    failures = [f"RSS grew {growth:.1%} after the warm-up (limit {GROWTH_LIMIT:.0%})"] if growth > GROWTH_LIMIT else []
    failures += [f"minute {r.minute}: the preview page did not answer" for r in rows if not r.page_ok]
    failures += [f"minute {r.minute}: the subscriber received nothing" for r in rows if r.received == 0]
    failures += [f"{subscriber.invalid} invalid messages"] if subscriber.invalid else []
    failures += [] if subscriber.ended else ["the subscriber connected at the stop never received fdp/end"]
    failures += [f"exit status {returncode}, not 130 after Ctrl-C"] if returncode != 130 else []
    failures += problems[:5]
    return {"machine": machine_line(), "load_avg": os.getloadavg(), "minutes": minutes,
            "warmup_minutes": warmup_minutes, "rows": [asdict(r) for r in rows], "rss_growth": growth,
            "log_lines": lines, "exit_status": returncode, "failures": failures}


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=30, help="how long to run (default 30)")
    parser.add_argument("--warmup-minutes", type=int, default=2, help="minutes before RSS must be flat (default 2)")
    parser.add_argument("--model", default=None, help="model folder (default: the bundled model)")
    parser.add_argument("--out", type=Path, default=None, help="write the figures to this JSON file")
    args = parser.parse_args()
    if args.minutes < 1 or not 1 <= args.warmup_minutes < args.minutes:
        parser.error("--minutes must be 1 or more and --warmup-minutes from 1 to less than --minutes")
    with tempfile.TemporaryDirectory() as folder:
        result = soak(args.minutes, args.warmup_minutes, args.model, Path(folder))
    print(f"{result['machine']}; load average {', '.join(f'{v:.1f}' for v in result['load_avg'])}")
    print(f"RSS growth after {args.warmup_minutes} min warm-up: {result['rss_growth']:+.1%}; log "
          f"{result['log_lines']} lines; exit status {result['exit_status']}")
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=1))
    for failure in result["failures"]:
        print(f"FAILED: {failure}")
    raise SystemExit(1 if result["failures"] else 0)


if __name__ == "__main__":
    main()
