"""Approximate rank pooling: NumPy reference vs the Numba kernel, and the live gather form vs copy-then-pool.

Usage: python -m benchmarks.bench_rank_pooling [--rounds 30]
There is no exact O(1)-per-frame sliding update (fdp/rank_pooling.py says why), so the live "incremental" case is
pooling T rows in place from a ring buffer (`rank_pool_gather`) against copying the window out first.
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks.timing import interleaved, machine_line
from fdp.rank_pooling import rank_pool, rank_pool_gather, rank_pooling_weights, warm_up


def numpy_pool(frames: np.ndarray) -> np.ndarray:
    """The fastest plain-NumPy form: a float32 weights-times-rows product."""
    weights = rank_pooling_weights(frames.shape[0], np.float32)
    return weights @ frames.reshape(frames.shape[0], -1).astype(np.float32, copy=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    warm_up()
    rng = np.random.default_rng(0)
    print(f"machine: {machine_line()}")
    print(f"{'input':>24} {'T':>3} | {'numpy ms':>9} {'numba ms':>9} {'numpy/numba':>11} | "
          f"{'copy+pool':>9} {'gather':>9} {'copy/gather':>11}")
    for label, row_shape, dtype in (("64x64 uint8 crops", (64, 64), np.uint8),
                                    ("128x128 uint8 crops", (128, 128), np.uint8),
                                    ("D=64 float32 features", (64,), np.float32),
                                    ("D=512 float32 features", (512,), np.float32)):
        for steps in (8, 16, 32):
            capacity = 4 * steps  # a ring holding more frames than the window resamples from
            ring = (rng.integers(0, 256, (capacity, *row_shape)) if dtype == np.uint8
                    else rng.standard_normal((capacity, *row_shape))).astype(dtype)
            indices = np.sort(rng.choice(capacity, steps, replace=False))
            window = ring[indices]
            timings = interleaved({
                "numpy": lambda window=window: numpy_pool(window),
                "numba": lambda window=window: rank_pool(window),
                "copy": lambda ring=ring, indices=indices: rank_pool(ring[indices]),
                "gather": lambda ring=ring, indices=indices: rank_pool_gather(ring, indices),
            }, rounds=args.rounds)
            n, b, c, g = (timings[k].median_ms for k in ("numpy", "numba", "copy", "gather"))
            print(f"{label:>24} {steps:>3} | {n:9.4f} {b:9.4f} {n / b:11.2f} | {c:9.4f} {g:9.4f} {c / g:11.2f}")


if __name__ == "__main__":
    main()
