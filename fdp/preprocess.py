"""Align every frame a clip's windows can reach, once, and keep the crops on disk (see `fdp.datasets.crop_cache`).

Each clip is aligned by its own `FaceAligner` in VIDEO mode, fed timestamps from its frame numbers and frame rate,
so MediaPipe's temporal filtering sees the clip as the live loop sees a camera. A frame where no face is found is
cut with the transform of the nearest frame that had one (counted); a clip with no face at all is skipped
(counted). Training calls `preprocess_clips` itself; `python -m fdp.preprocess` runs it alone, e.g. to fill the
cache on one machine before training on several:

    python -m fdp.preprocess --dataset casme2 --root /data/CASME2 --preset live
"""

from __future__ import annotations

import dataclasses
import functools
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from fdp.cli import CommandParser, add_config_options, config_from_args, option, run_main
from fdp.config import PRESETS, AlignerSettings, ModelConfig, preset
from fdp.datasets.clips import ClipSample
from fdp.datasets.crop_cache import (
    CachedCrops,
    aligner_key,
    clip_cache_path,
    default_cache_dir,
    read_crops,
    source_fingerprint,
    write_crops,
)
from fdp.datasets.sources import DATASET_IDS, check_sources, load_sources
from fdp.errors import ConfigError
from fdp.io import output_folder, write_json

ClipKey = tuple[str, str, str]  # (dataset, subject, clip_id)


def clip_key(clip: ClipSample) -> ClipKey:
    return clip.dataset, clip.subject, clip.clip_id


@dataclass(frozen=True)
class PreprocessConfig:
    """`python -m fdp.preprocess`: which data to align, and with which aligner (the preset's)."""

    datasets: tuple[str, ...] = field(default=(), metadata=option(
        "dataset id; repeat for several, each with its --root in the same order", flag="--dataset",
        choices=DATASET_IDS, many="repeat"))
    roots: tuple[Path, ...] = field(default=(), metadata=option("the unpacked dataset folder", flag="--root",
                                                                 many="repeat"))
    preset: str = field(default="live", metadata=option("model preset whose aligner settings cut the crops",
                                                         choices=tuple(PRESETS)))
    cache_dir: Path | None = field(default=None, metadata=option(
        "crop cache (default $FDP_CACHE_DIR or ~/.cache/fdp-live/crops)"))
    landmarker: Path | None = field(default=None, metadata=option(
        "face_landmarker.task (default $FDP_LANDMARKER, else the fetched one)"))
    window_s: float = field(default=ModelConfig().window_s, metadata=option(
        "the training window, s: frames no window can reach are not aligned"))
    length_jitter: float = field(default=0.2, metadata=option(
        "the training window's length jitter (it widens the reachable span)"))
    workers: int = field(default=min(2, os.cpu_count() or 1), metadata=option("aligner processes"))

    def __post_init__(self) -> None:
        check_sources(self.datasets, self.roots)
        if self.preset not in PRESETS:
            raise ConfigError(f"unknown model preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        if self.window_s <= 0 or not 0 <= self.length_jitter < 1:
            raise ConfigError(f"--window-s {self.window_s} must be positive and --length-jitter "
                              f"{self.length_jitter} in 0..1")
        if self.workers < 1:
            raise ConfigError(f"--workers {self.workers}: use 1 or more")


@dataclass
class PreprocessReport:
    """What a preprocessing pass did; `frames_per_s` counts aligned frames over the time spent aligning them."""

    clips: int = 0
    cache_hits: int = 0
    aligned_clips: int = 0
    aligned_frames: int = 0
    filled_frames: int = 0  # frames without a face of their own, over every clip used
    unreadable_frames: int = 0
    no_face: list[str] = field(default_factory=list)  # 'dataset/subject/clip' of clips skipped: no face anywhere
    align_s: float = 0.0

    @property
    def frames_per_s(self) -> float:
        return self.aligned_frames / self.align_s if self.align_s > 0 else 0.0

    def summary(self) -> str:
        line = (f"crops: {self.clips} clips, {self.cache_hits} from the cache, {self.aligned_clips} aligned "
                f"({self.aligned_frames} frames")
        line += f", {self.frames_per_s:.1f} frames/s)" if self.aligned_frames else ")"
        line += f"; {self.filled_frames} frames without a face cut with a neighbour's transform"
        line += f"; {len(self.no_face)} clips skipped, no face in any frame"
        if self.unreadable_frames:
            line += f"; {self.unreadable_frames} unreadable frames replaced by a neighbour's crop"
        return line


def needed_indices(clip: ClipSample, window_s: float, length_jitter: float) -> np.ndarray:
    """Indices of the frames any window of `fdp.datasets.sampling` can pick: every window holds onset..offset and
    lasts at most window_s * (1 + jitter), so it lies within [offset - that, onset + that] (one frame either
    side kept for the nearest-frame rounding)."""
    numbers = np.asarray(clip.frame_numbers, np.float64)
    reach = window_s * (1.0 + length_jitter) * clip.fps
    low = np.searchsorted(numbers, clip.offset - reach, side="left") - 1
    high = np.searchsorted(numbers, clip.onset + reach, side="right") + 1
    return np.arange(max(low, 0), min(high, len(numbers)))


@dataclass(frozen=True, eq=False)
class AlignJob:
    """One clip to align, with everything its aligner needs. `frames` are the source frames at `indices`: paths on
    this machine, or their encoded bytes (`carrying_bytes`) for a worker that does not share its filesystem."""

    clip: ClipSample
    indices: np.ndarray  # (N,) int: positions in clip.frame_paths
    settings: AlignerSettings
    landmarker: Path | None
    fingerprint: str  # source_fingerprint(clip, indices), taken where the files are
    frames: tuple[Path | bytes | None, ...]  # (N,); None: a file that could not be read

    def carrying_bytes(self) -> AlignJob:
        return dataclasses.replace(self, frames=tuple(_frame_bytes(frame) for frame in self.frames))


AlignResult = tuple[CachedCrops, int]  # (the clip's cache entry, its unreadable frames)
# Runs align_job over (position, job) pairs, yielding (position, result) as each clip is done, in any order.
JobRunner = Callable[[Sequence[tuple[int, AlignJob]]], Iterator[tuple[int, AlignResult]]]


def _frame_bytes(frame: Path | bytes | None) -> bytes | None:
    if not isinstance(frame, Path):
        return frame
    try:
        return frame.read_bytes()
    except OSError:
        return None


def _decode(frame: Path | bytes | None, mode: int) -> np.ndarray | None:
    """A frame read by one decoder whether it came as a path or as bytes, so every executor cuts the same crops."""
    data = _frame_bytes(frame)
    return cv2.imdecode(np.frombuffer(data, np.uint8), mode) if data else None


def align_clip(job: AlignJob, report: PreprocessReport) -> CachedCrops:
    """Align the job's frames with a fresh VIDEO-mode aligner; fill faceless frames from a neighbour."""
    from fdp.align import FaceAligner

    clip, settings = job.clip, job.settings
    numbers = np.asarray([clip.frame_numbers[i] for i in job.indices], np.int64)
    if clip.aligned:
        return _read_aligned(job, numbers, report)
    frames: list[np.ndarray | None] = []
    crops: list[np.ndarray | None] = []
    matrices: list[np.ndarray | None] = []
    with FaceAligner(settings, job.landmarker, running_mode="video", max_faces=1) as aligner:
        for source, number in zip(job.frames, numbers):
            frame = _decode(source, cv2.IMREAD_COLOR)
            faces = [] if frame is None else aligner.process(frame, round((number - numbers[0]) * 1000 / clip.fps))
            report.unreadable_frames += frame is None
            frames.append(frame)
            crops.append(faces[0].crop if faces else None)
            matrices.append(faces[0].matrix if faces else None)
    return filled_crops(frames, crops, matrices, numbers, settings, job.fingerprint)


def filled_crops(frames: Sequence[np.ndarray | None], crops: list[np.ndarray | None],
                 matrices: Sequence[np.ndarray | None], numbers: np.ndarray, settings: AlignerSettings,
                 fingerprint: str) -> CachedCrops:
    """A clip's CachedCrops from per-frame crops and transforms (None where no face was found): a faceless frame is
    cut with the nearest found frame's transform (or takes its crop where the frame itself is unreadable), so a
    clip's frames stay evenly spaced in time."""
    from fdp.align import warp_crop

    found = np.array([c is not None for c in crops], bool)
    shape = (settings.crop_size, settings.crop_size) + (() if settings.gray else (3,))
    if not found.any():
        return CachedCrops(np.zeros((0, *shape), np.uint8), numbers, found, fingerprint, aligner_key(settings))
    have = np.flatnonzero(found)
    for i in np.flatnonzero(~found):
        nearest = int(have[np.argmin(np.abs(have - i))])
        frame = frames[i]
        crops[i] = crops[nearest] if frame is None else warp_crop(frame, matrices[nearest], settings)
    return CachedCrops(np.stack(crops).astype(np.uint8), numbers, found, fingerprint, aligner_key(settings))


def _read_aligned(job: AlignJob, numbers: np.ndarray, report: PreprocessReport) -> CachedCrops:
    """Frames that are already aligned crops: read, converted to the settings' channels, resized to the crop."""
    settings = job.settings
    side = settings.crop_size
    mode = cv2.IMREAD_GRAYSCALE if settings.gray else cv2.IMREAD_COLOR
    crops = []
    for source in job.frames:
        frame = _decode(source, mode)
        if frame is None:
            report.unreadable_frames += 1
            frame = crops[-1] if crops else np.zeros((side, side) + (() if settings.gray else (3,)), np.uint8)
        elif not settings.gray:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        crops.append(cv2.resize(frame, (side, side), interpolation=cv2.INTER_AREA) if frame.shape[0] != side else frame)
    return CachedCrops(np.stack(crops), numbers, np.ones(len(numbers), bool), job.fingerprint, aligner_key(settings))


def align_job(job: AlignJob) -> AlignResult:
    """One clip, wherever it runs (this process, a worker process, a Ray task): its cache entry and unreadable
    frames. It writes nothing: the process that owns the cache writes every entry."""
    local = PreprocessReport()
    entry = align_clip(job, local)
    return entry, local.unreadable_frames


def align_locally(jobs: Sequence[tuple[int, AlignJob]], workers: int = 1) -> Iterator[tuple[int, AlignResult]]:
    """The jobs in this process, or in `workers` spawned processes (never forked: MediaPipe runs threads)."""
    if workers <= 1 or len(jobs) < 2:
        for position, job in jobs:
            yield position, align_job(job)
        return
    pool = ProcessPoolExecutor(min(workers, len(jobs)), multiprocessing.get_context("spawn"))
    try:
        futures = {pool.submit(align_job, job): position for position, job in jobs}
        for future in as_completed(futures):
            yield futures[future], future.result()
    finally:  # on Ctrl-C, do not wait for the queued clips: what was written stays, atomically
        pool.shutdown(wait=False, cancel_futures=True)


def preprocess_clips(clips: Sequence[ClipSample], settings: AlignerSettings, *, cache_dir: Path | None = None,
                     landmarker: Path | None = None, window_s: float = 0.5, length_jitter: float = 0.2,
                     workers: int = 1, run_jobs: JobRunner | None = None, keep: bool = True, progress: bool = True,
                     log: Callable[[str], None] = print) -> tuple[PreprocessReport, dict[ClipKey, CachedCrops]]:
    """Read each clip's crops from the cache or align them; returns the report and, with `keep`, the crops of
    every clip that has a face (clips without one are left out and listed in the report).

    workers: processes that align clips side by side. One aligner keeps about one core busy; on 2 cores shared
    with another busy process, 2 workers took the 240-clip synthetic set from 80 to 101 frames/s. Each clip still
    gets its own VIDEO-mode aligner: same crops either way. run_jobs: another way to run the clips' jobs instead
    (`fdp.ray_executor.align_on_ray`); every entry is written here, keyed the same way, whichever runs them.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = output_folder(cache / aligner_key(settings), "--cache-dir")
    write_json(folder / "aligner_settings.json", dataclasses.asdict(settings))
    report = PreprocessReport(clips=len(clips))
    entries: dict[int, CachedCrops] = {}
    jobs: list[tuple[int, AlignJob]] = []
    paths: dict[int, Path] = {}
    for position, clip in enumerate(clips):
        indices = needed_indices(clip, window_s, length_jitter)
        paths[position] = clip_cache_path(cache, settings, clip)
        entry = read_crops(paths[position])
        fingerprint = source_fingerprint(clip, indices)
        wanted = [clip.frame_numbers[i] for i in indices]
        if entry is not None and entry.fingerprint == fingerprint and entry.covers(wanted):
            report.cache_hits += 1
            entries[position] = entry
        else:
            frames = tuple(clip.frame_paths[int(i)] for i in indices)
            jobs.append((position, AlignJob(clip, indices, settings, landmarker, fingerprint, frames)))
    runner = run_jobs or functools.partial(align_locally, workers=workers)
    columns = (TextColumn("aligning {task.fields[fps]}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not progress, transient=True) as bar, closing(runner(jobs)) as results:
        task = bar.add_task("clips", total=len(jobs), fps="")
        started = time.perf_counter()
        for position, (entry, unreadable) in results:
            write_crops(paths[position], entry)
            entries[position] = entry
            report.unreadable_frames += unreadable
            report.aligned_clips += 1
            report.aligned_frames += len(entry.frame_numbers)
            report.align_s = time.perf_counter() - started
            bar.update(task, advance=1, fps=f"{report.frames_per_s:.0f} frames/s")
    kept: dict[ClipKey, CachedCrops] = {}
    for position, clip in enumerate(clips):
        entry = entries[position]
        if entry.has_face:
            report.filled_frames += entry.filled
            if keep:
                kept[clip_key(clip)] = entry
        else:
            report.no_face.append("/".join(clip_key(clip)))
    for name in report.no_face:
        log(f"skipped {name}: no face found in any frame")
    return report, kept


def parse_args(argv: list[str] | None) -> PreprocessConfig:
    parser = CommandParser(prog="python -m fdp.preprocess", description=__doc__.splitlines()[0])
    add_config_options(parser, PreprocessConfig)
    return config_from_args(PreprocessConfig, parser.parse_args(argv))


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    cache = output_folder(config.cache_dir if config.cache_dir is not None else default_cache_dir(), "--cache-dir")
    sources = load_sources(config.datasets, config.roots)
    for line in sources.summaries:
        print(line)
    settings = preset(config.preset).aligner
    report, _ = preprocess_clips(sources.clips, settings, cache_dir=cache, landmarker=config.landmarker,
                                 window_s=config.window_s, length_jitter=config.length_jitter,
                                 workers=config.workers, keep=False)
    folder = cache / aligner_key(settings)
    write_json(folder / f"preprocess_{'+'.join(config.datasets)}.json",
               {"config": dataclasses.asdict(config),
                "report": dataclasses.asdict(report) | {"frames_per_s": report.frames_per_s}})
    print(report.summary())
    print(f"cache: {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
