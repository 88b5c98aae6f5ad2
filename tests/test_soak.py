"""benchmarks/soak.py's own checks, on real files and this process (the soak itself is too long for CI)."""

from __future__ import annotations

import os
from pathlib import Path

from benchmarks.soak import check_log, tree_rss_mb
from realtime.frames import EndOfStream, StatusReport
from realtime.publishers.base import PublisherFanout
from realtime.publishers.recorder import JsonlRecorder


def write_log(path: Path, end: bool) -> None:
    with PublisherFanout([JsonlRecorder(path)], source="soak") as fanout:
        for frames in range(3):
            fanout.publish(EndOfStream("end of file", frames=frames, events=0) if end and frames == 2 else
                           _status())


def _status() -> StatusReport:
    return StatusReport(labels=("none",), model="m", engine="onnxruntime", device="cpu", fps=30.0, e2e_ms_p50=1.0,
                        e2e_ms_p99=2.0, dropped_frames=0, faces=1, spotter="s", baseline="b")


def test_soak_check_log_whole_log_has_no_problem(tmp_path):
    write_log(tmp_path / "run.jsonl", end=True)
    assert check_log(tmp_path / "run.jsonl") == (3, [])


def test_soak_check_log_names_a_missing_end_and_a_broken_line(tmp_path):
    path = tmp_path / "run.jsonl"
    write_log(path, end=False)
    path.write_text(path.read_text() + '{"topic": "fdp/status"}\n')
    lines, problems = check_log(path)
    assert lines == 4 and problems[0].startswith("line 4: ")
    assert problems[-1] == "the last line is fdp/status, not fdp/end"


def test_soak_tree_rss_counts_this_process():
    assert 10 < tree_rss_mb(os.getpid()) < 100_000
