"""realtime.latency: rolling per-stage percentiles and fps, and a null monitor with the same interface."""

from __future__ import annotations

import threading

import pytest

from realtime.frames import LATENCY_STAGES, MONITORED_STAGES, QUEUE_STAGES
from realtime.latency import LatencyMonitor, NullLatencyMonitor


def test_latency_monitor_percentiles_roll_over_the_window():
    monitor = LatencyMonitor(window=100)
    for ms in range(1, 101):
        monitor.record_ms("e2e", ms)
    snapshot = monitor.snapshot()
    assert snapshot.p50_ms["e2e"] == pytest.approx(50.5) and snapshot.p99_ms["e2e"] == pytest.approx(99.01)
    for _ in range(100):  # a full window of new samples pushes every old one out
        monitor.record_ms("e2e", 7.0)
    snapshot = monitor.snapshot()
    assert snapshot.p50_ms["e2e"] == snapshot.p99_ms["e2e"] == 7.0 and snapshot.samples["e2e"] == 100
    assert snapshot.p50_ms["align"] is None and snapshot.samples["align"] == 0


def test_latency_monitor_keeps_every_stage_and_queue_wait():
    monitor = LatencyMonitor()
    for stage in MONITORED_STAGES:
        monitor.record_ms(stage, 2.0)
    snapshot = monitor.snapshot()
    assert set(snapshot.p50_ms) == set(snapshot.p99_ms) == set(LATENCY_STAGES) | set(QUEUE_STAGES)
    assert all(snapshot.samples[stage] == 1 for stage in MONITORED_STAGES)


def test_latency_monitor_fps_over_its_window():
    monitor = LatencyMonitor(fps_window_s=2.0)
    t0_ns = 10**12
    for i in range(31):  # 30 intervals of 1/30 s
        monitor.record_frame(t0_ns + round(i * 1e9 / 30))
    now_ns = t0_ns + 10**9
    assert monitor.fps(now_ns) == pytest.approx(30.0)
    assert monitor.fps(now_ns + 5 * 10**9) == 0.0  # a stalled stream shows 0 fps, not its old rate


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
    monitor.record_frame()
    snapshot = monitor.snapshot()
    assert snapshot.fps == 0.0
    assert all(v is None for v in snapshot.p50_ms.values()) and all(n == 0 for n in snapshot.samples.values())
