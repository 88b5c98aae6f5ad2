"""Leave-one-subject-out folds serially against Ray on this machine, side by side in one run.

    python -m benchmarks.bench_folds                              # tiny preset, 3 folds, 2 epochs, 3 rounds
    python -m benchmarks.bench_folds --preset live --epochs 2 --rounds 2

A synthetic LOSO (3 subjects, so 3 folds; crops of noise with a bright patch that drifts one way or the other, built
in memory: this times training and Ray, not aligning) runs through the driver loop `fdp.train` uses
(`fdp.fold_executors.run_folds`, every fold written to a scratch run folder) four ways: serially with 2 torch
threads and with 1; on a local Ray of 2 CPUs with 1 CPU per fold (two folds side by side, 1 thread each); and with
2 CPUs per fold (one at a time with 2 threads, as serially, so the difference is what Ray adds per fold: the task's
start, fetching the crops from the object store, sending the checkpoint and metrics back). Each Ray run goes twice
in a row: the first may start worker processes (a new process imports torch), the second finds them running. Each
round runs them all in turn, so bursts of load hit them all; medians over rounds are compared, and each Ray run's
figures are checked against the serial run with as many threads. Then Ray's fixed costs on their own: starting
the local Ray, a worker's first task (a new process importing torch), an empty task's round trip, putting the fold
data in the object store, and fetching a fold's result.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pickle
import statistics
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from rich.console import Console

from benchmarks.timing import machine_line
from fdp.config import preset
from fdp.datasets.clips import ClipSample
from fdp.datasets.crop_cache import CachedCrops, aligner_key
from fdp.datasets.folds import leave_one_subject_out
from fdp.datasets.sources import resolve_setting
from fdp.fold_executors import FoldTask, SerialFoldExecutor, run_folds
from fdp.fold_runner import FoldData, FoldResult, compute_fold
from fdp.ray_executor import RayFoldExecutor, ray_session
from fdp.train import fold_seed
from fdp.train_config import TrainConfig

FPS = 30.0
FRAMES = 30  # per clip: 1 s at 30 fps, the expression from frame 8 to 22


def synthetic_data(config: TrainConfig, clips_per_subject: int, seed: int = 0) -> FoldData:
    """3 subjects of clips in casme2-5's classes; each crop noise plus a patch drifting left or right."""
    setting = resolve_setting(config.classes, config.datasets)
    model_config = preset(config.preset, class_names=setting.class_names, window_s=config.window_s)
    side = model_config.aligner.crop_size
    native = {"happiness": "happiness", "disgust": "disgust", "repression": "repression", "surprise": "surprise",
              "others": "others"}
    rng = np.random.default_rng(seed)
    pairs, crops = [], {}
    for subject in ("sub01", "sub02", "sub03"):
        for k in range(clips_per_subject):
            label = k % len(setting.class_names)
            clip = ClipSample("casme2", subject, f"EP{k:02d}", tuple(Path(f"{subject}/{k}/{n}.jpg") for n in
                                                                     range(FRAMES)),
                              tuple(range(FRAMES)), 8, 15, 22, FPS, native[setting.class_names[label]])
            frames = rng.integers(0, 60, (FRAMES, side, side), dtype=np.uint8)
            for t in range(FRAMES):  # the class sets the drift's direction and speed
                x = int(side / 2 + (label - 2) * (t - 15) * 0.3) % (side - 8)
                frames[t, side // 3:side // 3 + 8, x:x + 8] = 220
            crops[("casme2", subject, clip.clip_id)] = CachedCrops(frames, np.arange(FRAMES), np.ones(FRAMES, bool),
                                                                   "synthetic", aligner_key(model_config.aligner))
            pairs.append((clip, label))
    return FoldData(pairs, crops, setting, model_config)


def tasks_in(data: FoldData, config: TrainConfig, out: Path) -> list[FoldTask]:
    folds = leave_one_subject_out([clip for clip, _ in data.clips], val_fraction=config.val_fraction,
                                  seed=config.seed)
    return [FoldTask(f, out / f"fold{f.index}", fold_seed(config.seed, f)) for f in folds]


def time_run(name: str, config: TrainConfig, data: FoldData) -> tuple[float, list[dict]]:
    """Wall time of every fold through run_folds, and the metrics records it wrote."""
    quiet = Console(quiet=True)
    with tempfile.TemporaryDirectory(prefix=f"bench-folds-{name}-") as scratch:
        tasks = tasks_in(data, config, Path(scratch))
        started = time.perf_counter()
        executor = RayFoldExecutor(config, data) if config.executor == "ray" else SerialFoldExecutor(
            config, data, quiet, False)
        failed = run_folds(executor, tasks, quiet, False)
        wall = time.perf_counter() - started
        assert not failed, f"{name}: folds failed"
        records = [json.loads((t.folder / "metrics.json").read_text()) for t in tasks]
    return wall, records


def _noop() -> None:
    return None


def _warm() -> int:
    import fdp.fold_runner  # noqa: F401  (what a fold task imports first: torch and the model)

    return torch.get_num_threads()


def _result_of(result: FoldResult) -> FoldResult:
    return result


def figures(records: list[dict]) -> list[tuple]:
    """What must not change between executors: each fold's metrics, selected epoch and training losses."""
    return [(r["metrics"], r["selection"], [(h["train_loss"], h["val"]) for h in r["history"]]) for r in records]


def fixed_costs(ray: ModuleType, data: FoldData, config: TrainConfig, started_s: float, cold_s: float) -> None:
    """Ray's costs apart from training, each on its own."""
    noop = ray.remote(_noop).options(num_cpus=1)
    trips = []
    for _ in range(50):
        began = time.perf_counter()
        ray.get(noop.remote())
        trips.append(time.perf_counter() - began)
    size_mb = sum(c.crops.nbytes for c in data.crops.values()) / 1e6
    puts = []
    for _ in range(5):
        began = time.perf_counter()
        ref = ray.put(data)
        puts.append(time.perf_counter() - began)
        del ref
    task = tasks_in(data, config, Path("unused"))[0]
    result = compute_fold(config, data, task.fold, task.seed, Console(quiet=True), progress=False)
    echo = ray.remote(_result_of).options(num_cpus=1)
    ref = ray.put(result)
    gets = []
    for _ in range(10):
        began = time.perf_counter()
        ray.get(echo.remote(ref))
        gets.append(time.perf_counter() - began)
    result_kb = (len(result.checkpoint) + len(pickle.dumps(result.record))) / 1e3
    print("\nRay's costs on their own (medians):")
    rows = [("start the local Ray (ray.init), once per run", f"{started_s:.2f} s"),
            ("first task on two new workers (import torch), once per worker", f"{cold_s:.2f} s"),
            ("empty task round trip, warm worker", f"{statistics.median(trips) * 1e3:.2f} ms"),
            (f"ray.put of the fold data ({size_mb:.1f} MB of crops), once per run",
             f"{statistics.median(puts) * 1e3:.2f} ms"),
            (f"a fold's result back ({result_kb:.0f} kB: checkpoint + record), round trip included",
             f"{statistics.median(gets) * 1e3:.2f} ms")]
    for what, figure in rows:
        print(f"  {what:<78} {figure:>10}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--clips-per-subject", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    base = dict(datasets=("casme2",), roots=(Path("unused"),), preset=args.preset, epochs=args.epochs, batch_size=8,
                precise_bn_batches=2, device="cpu")
    serial_2, serial_1 = TrainConfig(**base, cpus_per_fold=2), TrainConfig(**base, cpus_per_fold=1)
    ray_1, ray_2 = (TrainConfig(**base, executor="ray", cpus_per_fold=n) for n in (1, 2))
    # each Ray run twice in a row: the first may start worker processes (Ray stops idle ones beyond its CPUs), the
    # second finds them running
    runs = [("serial", serial_2), ("serial-1thread", serial_1), ("ray-1cpu", ray_1), ("ray-1cpu again", ray_1),
            ("ray-2cpu", ray_2), ("ray-2cpu again", ray_2)]
    data = synthetic_data(serial_2, args.clips_per_subject)
    print(f"machine: {machine_line()}; torch {torch.__version__}")
    print(f"synthetic LOSO: 3 folds, {len(data.clips)} clips, preset {args.preset}, {args.epochs} epochs, "
          f"{args.rounds} rounds")
    began = time.perf_counter()
    with ray_session(num_cpus=2):
        import ray

        started_s = time.perf_counter() - began
        began = time.perf_counter()
        ray.get([ray.remote(_warm).options(num_cpus=1).remote() for _ in range(2)])
        cold_s = time.perf_counter() - began
        for name, config in runs[:2]:  # warm-up, untimed: a process's first fold is slower (torch's first ops)
            time_run(name, dataclasses.replace(config, epochs=1), data)
        walls: dict[str, list[float]] = {name: [] for name, _ in runs}
        same: dict[str, bool] = {}
        for round_index in range(args.rounds):
            line, serial_figures = [], {}
            for name, config in runs:
                wall, records = time_run(name, config, data)
                walls[name].append(wall)
                line.append(f"{name} {wall:.2f} s")
                reference = serial_figures.setdefault(config.cpus_per_fold, figures(records))
                same[name] = same.get(name, True) and figures(records) == reference
            print(f"round {round_index + 1}: " + ", ".join(line))
            same["threads"] = same.get("threads", True) and serial_figures[1] == serial_figures[2]
        print("the same metrics, epochs and losses as the serial run with as many threads: "
              + ", ".join(f"{name} {'yes' if ok else 'NO'}" for name, ok in same.items() if name.startswith("ray"))
              + f"; serially, 1 thread and 2 give {'the same' if same['threads'] else 'other'} figures")
        median = {name: statistics.median(v) for name, v in walls.items()}
        print("\nmedian wall time of the 3 folds, and its ratio to the serial run with 2 threads (the default) and "
              "with as many threads per fold:")
        for name, config in runs:
            alike = median["serial" if config.cpus_per_fold == 2 else "serial-1thread"]
            print(f"  {name:>14}: {median[name]:6.2f} s  {median[name] / median['serial']:5.2f}x  "
                  f"{median[name] / alike:5.2f}x")
        fold_s = median["serial"] / 3
        overhead = (median["ray-2cpu again"] - median["serial"]) / 3
        print(f"Ray's per-fold overhead, workers running (ray-2cpu again minus serial, per fold): {overhead:+.3f} s, "
              f"{overhead / fold_s:+.1%} of a serial fold ({fold_s:.2f} s); starting workers in a run adds "
              f"{median['ray-1cpu'] - median['ray-1cpu again']:+.2f} s (1 CPU per fold), "
              f"{median['ray-2cpu'] - median['ray-2cpu again']:+.2f} s (2)")
        fixed_costs(ray, data, ray_2, started_s, cold_s)

if __name__ == "__main__":
    main()
