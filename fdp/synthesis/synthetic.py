"""Synthetic micro-expressions on real faces: the training set of the bundled default model (ARCHITECTURE.md §7).

`python -m fdp.synthesis.synthetic --out DIR --clips N --seed S` writes a data set laid out like a real one: face-region
frames at the source resolution, `DIR/<subject>/<clip_id>/img<N>.jpg`, and `DIR/manifest.csv` (subject, clip,
class, onset/apex/offset frame numbers, fps, AUs, peak size as a share of the face width and at the aligned-crop
scale, source, seed).
`load_synthetic(DIR)` reads it back as `ClipSample`s, unaligned, so training aligns it exactly like real data.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from fdp.cli import CommandParser, add_config_options, config_from_args, option, run_main
from fdp.config import SYNTHETIC_CLASSES, AlignerSettings
from fdp.datasets.clips import ClipSample
from fdp.errors import ConfigError, DatasetLayoutError
from fdp.io import output_folder, write_bytes, write_json
from fdp.synthesis.au_fields import FIELD_SETS, field_provenance, load_field_bank
from fdp.synthesis.clip_plan import Ranges, plan_clip
from fdp.synthesis.derived_faces import with_derived
from fdp.synthesis.face_sources import DEFAULT_SOURCES, FaceTrack, load_tracks
from fdp.synthesis.synthetic_render import FrameGeometry, render_clip

MANIFEST = "manifest.csv"
CONFIG_FILE = "synthetic_config.json"
COLUMNS = ("subject", "clip_id", "label", "onset", "apex", "offset", "fps", "frames", "aus", "peak_fw",
           "peak_px", "duration_s", "blink", "occluder", "source", "source_frame", "seed")


@dataclass(frozen=True)
class SynthConfig:
    """One synthetic-set run; written next to the set as synthetic_config.json."""

    out: Path = field(metadata=option("folder to write (must not hold a set already)"))
    clips: int = field(default=400, metadata=option("clips to write"))
    seed: int = field(default=0, metadata=option("seed of the set: each clip's own comes from it and the clip's index"))
    ranges: Ranges = field(default_factory=Ranges)
    subjects: tuple[str, ...] = field(default=(), metadata=option(
        "comma-separated subject ids (default: all licence-clear)", many="comma"))
    extra_faces: Path | None = field(default=None, metadata=option(
        "folder of extra face photos; every face found becomes a subject (opt-in licence)"))
    morphs: bool = field(default=False, metadata=option(
        "add a morph of every pair of real stills as a subject (its parents recorded with it)"))
    isolate: tuple[str, ...] = field(default=(), metadata=option(
        "comma-separated real faces no morph may mix with another (kept apart as validation identities)",
        many="comma"))
    reshapes: int = field(default=0, metadata=option(
        "add this many reshaped variants (features moved, skin retoned) of every real still as subjects"))
    workers: int = field(default=min(2, os.cpu_count() or 1), metadata=option("render processes"))
    fields: str = field(default="mixed", metadata=option(
        "AU fields: 'mixed' uses py-feat's where right (research-only terms), 'own' only ours (MIT)",
        choices=FIELD_SETS))
    aligner: AlignerSettings = field(default_factory=AlignerSettings)

    def __post_init__(self) -> None:
        r = self.ranges
        if self.clips < 1:
            raise ConfigError(f"--clips {self.clips}: write at least one clip")
        if self.seed < 0:
            raise ConfigError(f"--seed {self.seed}: use 0 or more")
        if not 0 < r.min_fw <= r.max_fw < 0.2:
            raise ConfigError(f"--min-fw {r.min_fw} / --max-fw {r.max_fw}: need 0 < min <= max < 0.2 "
                              "(shares of the face width: 0.01 is 1 %)")
        if not 0 < r.min_me_s <= r.max_me_s:
            raise ConfigError(f"--min-me-s {r.min_me_s} / --max-me-s {r.max_me_s}: need 0 < min <= max seconds")
        if r.fps < 5 or r.min_me_s * r.fps < 2:
            raise ConfigError(f"--fps {r.fps}: an ME of {r.min_me_s} s needs 2 frames or more; raise --fps")
        if r.min_clip_s < r.max_me_s + 3 / r.fps or r.max_clip_s < r.min_clip_s:
            raise ConfigError(f"--min-clip-s {r.min_clip_s}: clips must outlast the longest ME ({r.max_me_s} s) "
                              "by a few frames, and --max-clip-s must not be shorter")
        if not 0 <= self.reshapes <= 20:
            raise ConfigError(f"--reshapes {self.reshapes}: use 0 to 20 variants per still")
        unknown = sorted(set(self.isolate) - set(self.subjects or DEFAULT_SOURCES))
        if unknown and self.extra_faces is None:
            raise ConfigError(f"--isolate {', '.join(unknown)}: not a selected real face; choose from "
                              f"{', '.join(self.subjects or tuple(DEFAULT_SOURCES))}")
        if self.workers < 1:
            raise ConfigError(f"--workers {self.workers}: use 1 or more")
        if self.fields not in FIELD_SETS:
            raise ConfigError(f"--fields {self.fields!r}: choose one of {', '.join(FIELD_SETS)}")


def clip_assignment(index: int, n_subjects: int) -> tuple[int, str]:
    """Clip index -> (subject position, class): classes cycle fastest, so every subject gets every class alike."""
    n_classes = len(SYNTHETIC_CLASSES)
    return (index // n_classes) % n_subjects, SYNTHETIC_CLASSES[index % n_classes]


def clip_seed(seed: int, index: int) -> int:
    """A clip's own seed, independent of worker count and order."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


class Synthesizer:
    """Loads the faces and AU fields once (per worker process) and renders clips by index."""

    def __init__(self, config: SynthConfig) -> None:
        self.config = config
        self.bank, self.triangles = load_field_bank(config.fields)
        self.dropped: list[str] = []  # extra faces too turned to use
        real = load_tracks(config.subjects, config.extra_faces, dropped=self.dropped)
        self.tracks: list[FaceTrack] = sorted(
            with_derived(real, self.bank.face.points, self.triangles, config.morphs, config.reshapes, seed=0,
                         isolate=config.isolate),
            key=lambda t: t.info.subject)
        self._geometry = {t.info.subject: FrameGeometry(t, self.bank, self.triangles) for t in self.tracks}

    def write_clip(self, index: int) -> dict[str, object]:
        """Render clip `index`, write its frames, and return its manifest row."""
        cfg = self.config
        position, label = clip_assignment(index, len(self.tracks))
        track = self.tracks[position]
        seed = clip_seed(cfg.seed, index)
        plan = plan_clip(seed, label, cfg.ranges, len(track.frames), track.fps, track.usable)
        clip = render_clip(plan, track, self.bank, self.triangles, cfg.aligner, self._geometry[track.info.subject])
        clip_id = f"clip{index:06d}"
        folder = cfg.out / track.info.subject / clip_id
        folder.mkdir(parents=True, exist_ok=True)
        for number, frame in enumerate(clip.frames, start=1):
            ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, plan.jpeg_quality])
            if not ok:
                raise RuntimeError(f"OpenCV could not JPEG-encode frame {number} of {folder}")
            (folder / f"img{number}.jpg").write_bytes(data.tobytes())
        return {"subject": track.info.subject, "clip_id": clip_id, "label": label, "onset": plan.onset + 1,
                "apex": plan.apex + 1, "offset": plan.offset + 1, "fps": plan.fps, "frames": plan.n_frames,
                "aus": "" if label == "none" else "+".join(au.removeprefix("AU").lstrip("0") for au, _ in plan.aus),
                "peak_fw": round(clip.peak_fw, 5), "peak_px": round(clip.peak_px, 3),
                "duration_s": round(plan.duration_s, 4), "blink": int(plan.blink is not None),
                "occluder": plan.occluder.kind if plan.occluder else "", "source": track.info.source,
                "source_frame": int(clip.source_index[0]), "seed": seed}


_worker: Synthesizer | None = None


def _init_worker(config: SynthConfig) -> None:
    global _worker
    cv2.setNumThreads(1)
    _worker = Synthesizer(config)


def _write_one(index: int) -> dict[str, object]:
    assert _worker is not None  # set by _init_worker in every pool process
    return _worker.write_clip(index)


def write_synthetic(config: SynthConfig, progress: bool = True,
                    log: Callable[[str], object] = lambda line: None) -> list[dict[str, object]]:
    """Write the whole set (frames, manifest, config) and return the manifest rows in clip order."""
    out = config.out
    if (out / MANIFEST).exists():
        raise ConfigError(f"{out} already holds a synthetic set ({MANIFEST}); choose a new --out or delete it")
    output_folder(out, "--out")
    probe = Synthesizer(config)  # loads and caches every face before the workers start, and fails early
    tracks, dropped = probe.tracks, probe.dropped
    if dropped:
        log(f"left out {len(dropped)} extra face(s) too turned for the mesh warp: {', '.join(dropped)}")
    rows: list[dict[str, object]] = []
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("synthesizing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not progress) as bar:
        task = bar.add_task("clips", total=config.clips)
        if config.workers == 1:
            for index in range(config.clips):
                rows.append(probe.write_clip(index))
                bar.advance(task)
        else:
            del probe
            spawn = multiprocessing.get_context("spawn")  # never fork a process that has run MediaPipe's threads
            with ProcessPoolExecutor(config.workers, spawn, initializer=_init_worker, initargs=(config,)) as pool:
                for row in pool.map(_write_one, range(config.clips), chunksize=4):
                    rows.append(row)
                    bar.advance(task)
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    write_json(out / CONFIG_FILE, dataclasses.asdict(config) | {
        "au_fields": field_provenance(config.fields),
        "sources": {t.info.subject: dataclasses.asdict(t.info) for t in tracks}, "left_out": dropped})
    write_bytes(out / MANIFEST, table.getvalue().encode("utf-8"))  # last: a manifest marks a finished set
    return rows


def load_synthetic(root: Path) -> list[ClipSample]:
    """The written set as `ClipSample`s (dataset 'synthetic', unaligned frames), in manifest order."""
    root = Path(root)
    manifest = root / MANIFEST
    if not manifest.is_file():
        raise DatasetLayoutError(f"{root}: no {MANIFEST}; point at a folder written by "
                                 "`python -m fdp.synthesis.synthetic`")
    clips = []
    with manifest.open(newline="") as handle:
        for row in csv.DictReader(handle):
            folder = root / row["subject"] / row["clip_id"]
            count = int(row["frames"])
            paths = tuple(folder / f"img{n}.jpg" for n in range(1, count + 1))
            present = sum(p.is_file() for p in paths)
            if present != count:
                raise DatasetLayoutError(f"{folder}: {present} of {count} frames present; regenerate the set with "
                                         "`python -m fdp.synthesis.synthetic`")
            clips.append(ClipSample(
                dataset="synthetic", subject=row["subject"], clip_id=row["clip_id"], frame_paths=paths,
                frame_numbers=tuple(range(1, count + 1)), onset=int(row["onset"]), apex=int(row["apex"]),
                offset=int(row["offset"]), fps=float(row["fps"]), label=row["label"], action_units=row["aus"],
                aligned=False))
    return clips


def _parse(argv: list[str] | None) -> SynthConfig:
    parser = CommandParser(prog="python -m fdp.synthesis.synthetic", description=__doc__.splitlines()[0])
    add_config_options(parser, SynthConfig)
    add_config_options(parser, Ranges)
    args = parser.parse_args(argv)
    return config_from_args(SynthConfig, args, ranges=config_from_args(Ranges, args))


def main(argv: list[str] | None = None) -> int:
    config = _parse(argv)
    started = time.perf_counter()
    rows = write_synthetic(config, log=print)
    elapsed = time.perf_counter() - started
    frames = sum(int(r["frames"]) for r in rows)
    print(f"wrote {len(rows)} clips ({frames} frames) to {config.out} in {elapsed:.1f} s: "
          f"{len(rows) / elapsed:.2f} clips/s at {config.ranges.fps:g} fps with {config.workers} worker(s)")
    by_class = Counter(str(r["label"]) for r in rows)
    print("per class:   " + ", ".join(f"{k} {by_class[k]}" for k in SYNTHETIC_CLASSES))
    by_subject = Counter(str(r["subject"]) for r in rows)
    print("per subject: " + ", ".join(f"{k} {v}" for k, v in sorted(by_subject.items())))
    peaks = [100 * float(r["peak_fw"]) for r in rows if r["label"] != "none"]
    if peaks:
        print(f"peak motion (% of the face width): min {min(peaks):.2f}, median {np.median(peaks):.2f}, "
              f"max {max(peaks):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
