"""Side-by-side timing on a shared, noisy machine: candidates run interleaved in blocks, round-robin, the first
call of each block dropped, and only medians and percentiles are compared (never single runs)."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Timing:
    median_ms: float
    p90_ms: float
    samples: int


def interleaved(cases: dict[str, Callable[[], object]], rounds: int = 30, block: int = 4) -> dict[str, Timing]:
    """Time each case `rounds` x (`block` - 1) times, interleaving the cases so bursts of load hit them all."""
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for case in cases.values():  # warm-up: JIT, caches, thread pools
        for _ in range(3):
            case()
    for _ in range(rounds):
        for name, case in cases.items():
            for call in range(block):
                start = time.perf_counter_ns()
                case()
                elapsed = (time.perf_counter_ns() - start) / 1e6
                if call:
                    samples[name].append(elapsed)
    return {name: Timing(float(np.median(v)), float(np.percentile(v, 90)), len(v)) for name, v in samples.items()}


def machine_line() -> str:
    """One line naming the machine, so every printed figure says where it was measured."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"
