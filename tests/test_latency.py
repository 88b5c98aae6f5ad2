"""realtime.latency: rolling per-stage percentiles, fps and drops, and a null monitor with the same interface."""

from __future__ import annotations

import threading
import time

import pytest

from realtime.frames import LATENCY_STAGES
from realtime.latency import LatencyMonitor, NullLatencyMonitor


def test_latency_monitor_percentiles_roll_over_the_window():
    monitor = LatencyMonitor(window=100)
    for ms in range(1, 101):
        monitor.record_ms("e2e", ms)
    assert monitor.percentile_ms("e2e", 50) == pytest.approx(50.5)
    assert monitor.percentile_ms("e2e", 99) == pytest.approx(99.01)
    for _ in range(100):  # a full window of new samples pushes every old one out
        monitor.record_ms("e2e", 7.0)
    assert monitor.percentile_ms("e2e", 50) == monitor.percentile_ms("e2e", 99) == 7.0
    assert monitor.percentile_ms("align", 50) is None


def test_latency_monitor_measure_times_a_block():
    monitor = LatencyMonitor()
    with monitor.measure("encode"):
        time.sleep(0.02)
    snapshot = monitor.snapshot()
    assert snapshot.samples["encode"] == 1 and snapshot.p50_ms["encode"] >= 15  # sanity bound only
    assert set(snapshot.p50_ms) == set(snapshot.p99_ms) == set(LATENCY_STAGES)


def test_latency_monitor_fps_and_drops():
    monitor = LatencyMonitor(fps_window_s=2.0)
    t0_ns = 10**12
    for i in range(31):  # 30 intervals of 1/30 s
        monitor.record_frame(t0_ns + round(i * 1e9 / 30))
    now_ns = t0_ns + 10**9
    assert monitor.fps(now_ns) == pytest.approx(30.0)
    assert monitor.fps(now_ns + 5 * 10**9) == 0.0  # a stalled stream shows 0 fps, not its old rate
    monitor.record_drops(3)
    monitor.record_drops(2)
    assert monitor.dropped_frames == 5
    with pytest.raises(ValueError):
        monitor.record_drops(-1)
    monitor.reset()
    assert monitor.dropped_frames == 0 and monitor.snapshot().samples["e2e"] == 0


def test_latency_monitor_rejects_unknown_stage():
    with pytest.raises(ValueError, match="unknown latency stage 'decode'; expected one of align, spot, encode, pool"):
        LatencyMonitor().record_ms("decode", 1.0)


@pytest.mark.timeout(30)
def test_latency_monitor_records_from_threads_while_read():
    monitor = LatencyMonitor(window=10_000)

    def record() -> None:
        for _ in range(2000):
            monitor.record_ms("head", 0.5)
            monitor.record_frame()

    threads = [threading.Thread(target=record) for _ in range(4)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        monitor.snapshot()
    for thread in threads:
        thread.join()
    assert monitor.snapshot().samples["head"] == 8000


def test_null_latency_monitor_records_nothing_through_the_same_interface():
    monitor = NullLatencyMonitor()
    assert isinstance(monitor, LatencyMonitor)
    monitor.record_ms("e2e", 5.0)
    with monitor.measure("align"):
        pass
    monitor.record_frame()
    monitor.record_drops(4)
    snapshot = monitor.snapshot()
    assert snapshot.fps == 0.0 and snapshot.dropped_frames == 0
    assert all(v is None for v in snapshot.p50_ms.values()) and all(n == 0 for n in snapshot.samples.values())
