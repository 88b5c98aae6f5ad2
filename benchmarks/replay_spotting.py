"""Spotter settings side by side in seconds: every video of the long-video sets measured once (aligner and
`measure_face`, stored beside the set), then `FaceSpotter` replayed on the stored measures with each settings
variant. For tuning on TUNE sets only; never point it at a held-out set you still mean to report.

    python -m benchmarks.replay_spotting data/spotting/tune data/tune_b --set open_z=3.5 --set global_share=1.01
    python -m benchmarks.replay_spotting data/spotting/tune --misses        # each missed ME, false and macro event
    python -m benchmarks.replay_spotting data/spotting/tune --variant open_z=3.5 --variant close_z=1.5,lag_s=0.4

Scored as `benchmarks.bench_spotting` scores (IoU >= 0.5 hits, control events, macro events), on spotting only
(no classifier): on the tune set it reproduces that benchmark's spotting figures. The stored measures are keyed by
the crop size and margin and the aligner and spotter versions; delete `measures/` in a set to measure again.

`--variant` (repeat; comma-separated fields, `base` for the shipped settings) replays several settings in one run,
video by video, each optical flow computed once for all of them: the flow is four fifths of a replay's time, and it
depends only on the two stored crops it compares, never on the thresholds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import zipfile
from pathlib import Path

import cv2
import numpy as np
from rich.progress import track

from benchmarks.bench_spotting import Spotted, Tally, score_video
from fdp.align import FaceAligner
from fdp.config import ALIGNER_VERSION, AlignerSettings
from fdp.synthesis.long_videos import VideoTruth, load_truth
from realtime.spotting import SPOTTER_VERSION, SpotterSettings
from realtime.spotting.detector import Refusal
from realtime.spotting.measures import FaceMeasure, FlowMeter, measure_face, spotting_settings
from realtime.spotting.spotter import FaceSpotter

MEASURE_FIELDS = tuple(f.name for f in dataclasses.fields(FaceMeasure) if f.name not in ("t_s", "frame_index"))


def store_path(truth: VideoTruth, settings: SpotterSettings) -> Path:
    versions = f"{ALIGNER_VERSION}-{SPOTTER_VERSION}".replace("/", "_")
    size = f"{settings.crop_size}px-m{settings.margin_px}"
    return truth.video.parent / "measures" / f"{truth.video.stem}-{size}-{versions}.npz"


def readable_store(path: Path) -> bool:
    """True if `path` holds stored measures with every field (a store cut off by an earlier run is measured again)."""
    try:
        with np.load(path) as stored:
            return {"frame_index", *MEASURE_FIELDS} <= set(stored.files)
    except (OSError, ValueError, zipfile.BadZipFile):
        return False


def measure_video(truth: VideoTruth, settings: SpotterSettings) -> list[FaceMeasure]:
    """Every frame's first face, measured as the live spotter measures it (stored after the first call)."""
    path = store_path(truth, settings)
    if not readable_store(path):
        capture = cv2.VideoCapture(str(truth.video))
        measures, index = [], 0
        framing = spotting_settings(settings.crop_size, settings.margin_px)
        with FaceAligner(AlignerSettings(), running_mode="video") as aligner:
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                media_s = index / truth.fps
                faces = aligner.process(frame, timestamp_ms=int(round(media_s * 1000)))
                if faces:
                    measures.append(measure_face(frame, faces[0].face, media_s, index, framing))
                index += 1
        capture.release()
        path.parent.mkdir(exist_ok=True)
        partial = path.with_name(f"{path.stem}.partial.npz")  # renamed once whole: a cut-off run leaves no store
        np.savez_compressed(partial, frame_index=np.array([m.frame_index for m in measures]),
                            **{name: np.stack([np.asarray(getattr(m, name)) for m in measures])
                               for name in MEASURE_FIELDS})
        os.replace(partial, path)
    stored = np.load(path)
    arrays = {name: stored[name] for name in MEASURE_FIELDS}
    return [FaceMeasure(t_s=int(i) / truth.fps, frame_index=int(i),
                        **{name: (a[k] if a.ndim > 1 else float(a[k])) for name, a in arrays.items()})
            for k, i in enumerate(stored["frame_index"])]


class RememberedFlows(FlowMeter):
    """A FlowMeter that computes the flow between two crops once: settings variants replayed on the same stored
    measures compare the same crops again and again. Keyed by the crops' identity, so it lives while they do."""

    def __init__(self, crop_size: int) -> None:
        super().__init__(crop_size)
        self._flows: dict[tuple[int, int], np.ndarray] = {}

    @property
    def computed(self) -> int:
        """How many flows it has computed (each pair of crops once)."""
        return len(self._flows)

    def flow(self, reference: np.ndarray, current: np.ndarray) -> np.ndarray:
        key = (id(reference), id(current))
        if key not in self._flows:
            self._flows[key] = super().flow(reference, current)
        return self._flows[key]


def replay(measures: list[FaceMeasure], settings: SpotterSettings,
           meter: FlowMeter | None = None) -> tuple[list[Spotted], list[Refusal]]:
    """Spots and refusals of `settings` on stored measures; `meter` replaces the spotter's own flow (a
    `RememberedFlows` shared by several replays of the same measures)."""
    spotter = FaceSpotter(settings)
    if meter is not None:
        spotter.meter = meter
    spotted, refusals = [], []
    for measure in measures:
        step = spotter.update_measured(measure)
        spotted += [Spotted(i.onset_frame, i.offset_frame) for i in step.intervals]
        refusals += step.refusals
    spotted += [Spotted(i.onset_frame, i.offset_frame) for i in spotter.finish()]
    return spotted, refusals


def misses(truth: VideoTruth, spotted: list[Spotted], refusals: list[Refusal]) -> list[str]:
    """A line for each true ME no spot matched, with the refusals around it, and each spot that matched none."""
    lines = []
    for me in truth.mes:
        if not any(s.onset <= me.end and s.offset >= me.start for s in spotted):
            near = [f"{r.cause} {r.onset_s:.2f}-{r.offset_s:.2f}" for r in refusals
                    if r.onset_s - 0.3 <= me.end / truth.fps and r.offset_s + 0.3 >= me.start / truth.fps]
            lines.append(f"  missed {truth.video.name} {me.label} {me.start / truth.fps:.2f}-{me.end / truth.fps:.2f}"
                         f" s; refused nearby: {', '.join(near) or 'none'}")
    if truth.kind in ("control", "real_talk", "macro"):
        lines += [f"  {truth.kind} event {truth.video.name} {s.onset / truth.fps:.2f}-{s.offset / truth.fps:.2f} s"
                  for s in spotted]
    return lines


def settings_from(pairs: list[str], base: SpotterSettings | None = None) -> SpotterSettings:
    """`base` (default: the shipped settings) with each FIELD=VALUE of `pairs` changed."""
    defaults = SpotterSettings() if base is None else base
    values = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if not hasattr(defaults, name):
            raise SystemExit(f"{pair}: SpotterSettings has no field {name!r}")
        try:
            values[name] = type(getattr(defaults, name))(value)
        except ValueError:
            raise SystemExit(f"{pair}: {name} takes a {type(getattr(defaults, name)).__name__}") from None
    return dataclasses.replace(defaults, **values)


def variant_settings(variants: list[str], base: SpotterSettings) -> dict[str, SpotterSettings]:
    """{variant: settings} for `--variant` values ("a=1,b=2", or "base" for `base` itself); one changing the crop
    size or margin is refused, since the stored measures (and so every flow) are cut at one."""
    chosen = {}
    for variant in variants:
        settings = base if variant == "base" else settings_from(variant.split(","), base)
        if (settings.crop_size, settings.margin_px) != (base.crop_size, base.margin_px):
            raise SystemExit(f"--variant {variant}: crop_size and margin_px change the stored measures; "
                             "give them with --set instead")
        chosen[variant] = settings
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.replay_spotting", description=__doc__.split("\n\n")[0])
    parser.add_argument("sets", nargs="+", type=Path, help="long-video set folders (each with index.json)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="a SpotterSettings field to change (repeat); default: the shipped settings")
    parser.add_argument("--variant", action="append", default=[], metavar="FIELD=VALUE[,...]",
                        help="replay these settings too, on top of --set (repeat; 'base' for --set alone); each flow "
                             "is computed once for all of them")
    parser.add_argument("--misses", action="store_true", help="list every missed ME, control and macro event")
    args = parser.parse_args(argv)
    settings = settings_from(args.set)
    variants = variant_settings(args.variant or ["base"], settings)
    truths = [load_truth(folder / v["truth"]) for folder in args.sets
              for v in json.loads((folder / "index.json").read_text())["videos"]]
    tallies = {variant: (Tally(), {}) for variant in variants}
    lines: dict[str, list[str]] = {variant: [] for variant in variants}
    for truth in track(truths, description="replaying"):
        measures, meter = measure_video(truth, settings), RememberedFlows(settings.crop_size)
        for variant, chosen in variants.items():
            spotted, refusals = replay(measures, chosen, meter)
            total, groups = tallies[variant]
            for tally in (total, groups.setdefault(f"{truth.kind} {truth.fps:g}fps", Tally())):
                score_video(truth, spotted, tally)
            lines[variant] += misses(truth, spotted, refusals) if args.misses else []
    for variant, (total, groups) in tallies.items():
        if len(variants) > 1:
            print(f"[{variant}]")
        print("\n".join(lines[variant]))
        for name, tally in (("all", total), *sorted(groups.items())):
            s = tally.summary()
            f1 = "–" if s["f1"] is None else f"{s['f1']:.3f}"
            print(f"{name:>18}: F1 {f1} ({s['hits']} hits / {s['spotted']} spotted / {s['truths']} MEs), control "
                  f"events {tally.control_events}, macro events {tally.macro_events}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
