"""Train FDP leave-one-subject-out (or on one held-out split) and write per-fold checkpoints and metrics.

    python -m fdp.train --dataset casme2 --root /data/CASME2 --out runs/casme2 --preset paper
    python -m fdp.train --dataset casme2 --root /data/CASME2 --dataset samm --root /data/SAMM --out runs/megc
    python -m fdp.train --dataset synthetic --root data/synth --holdout-subjects astronaut --out runs/default
    python -m fdp.train --dataset casme2 --root /data/CASME2 --out runs/casme2 --executor ray --ray-address auto

Each fold writes `folds/<fold>/checkpoint.safetensors` and then `folds/<fold>/metrics.json`; a fold whose
metrics.json exists is finished and skipped when the run is started again (resume), and `--folds` runs a subset,
so the folds of one protocol can be spread over machines that share (or later merge) the `--out` folder, or run as
Ray tasks on a cluster (`--executor ray`, `fdp.ray_executor`), which send every fold's outputs back here. A failed
fold is tried once more, then reported while the others go on. A serial fold keeps its state after every epoch
(`fdp.training_state`), so a run cut off mid-fold resumes at the next epoch with the same result. The run ends
by pooling every finished fold (`fdp.reporting`). Epochs are selected on validation subjects drawn from the
training subjects (or named with `--val-subjects`); `--select-on-test` selects on the test subject instead, and
every output says so.
"""

from __future__ import annotations

import dataclasses
import json
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from fdp.checkpoint import load_matching_weights
from fdp.cli import CommandParser, add_config_options, config_from_args, run_main
from fdp.config import preset
from fdp.datasets.classes import count_classes, labelled_clips
from fdp.datasets.folds import Fold, fold_subjects, holdout_fold, leave_one_subject_out, match_subjects, subjects_of
from fdp.datasets.sources import load_sources, resolve_setting
from fdp.errors import ConfigError, FDPError
from fdp.io import output_folder, write_json
from fdp.preprocess import clip_key, preprocess_clips
from fdp.train_config import PER_MACHINE_FIELDS, TrainConfig


def plan_folds(config: TrainConfig, clips: list[Any]) -> tuple[list[Fold], list[Fold]]:
    """(every fold of the protocol, the folds this invocation runs)."""
    keys = subjects_of(clips)
    if config.train_all or config.holdout_subjects:
        fold = holdout_fold(keys, match_subjects(config.holdout_subjects, keys), val_fraction=config.val_fraction,
                            seed=config.seed, val=match_subjects(config.val_subjects, keys))
        return [fold], [fold]
    folds = leave_one_subject_out(clips, val_fraction=config.val_fraction, seed=config.seed)
    if not config.folds:
        return folds, folds
    return folds, leave_one_subject_out(clips, val_fraction=config.val_fraction, seed=config.seed,
                                        only=fold_subjects(config.folds, keys))


def fold_dir(out: Path, fold: Fold, holdout: bool) -> Path:
    if holdout:
        name = "holdout" if fold.test else "all"
    else:
        name = f"fold{fold.index:02d}_" + fold.name.replace("/", "-").replace("+", "_")
    return out / "folds" / name


def fold_seed(seed: int, fold: Fold) -> int:
    """A fold's training seed: from the run's seed and the fold's index only, so any executor and any subset of
    folds (--folds) trains a fold the same way."""
    return int(np.random.SeedSequence([seed, fold.index]).generate_state(1)[0])


def check_resume(config: TrainConfig) -> None:
    """A run folder holds one protocol: refuse options that would mix results of different ones."""
    path = config.out / "train_config.json"
    if not path.is_file():
        return
    before = json.loads(path.read_text())
    now = config.to_dict()
    changed = sorted(k for k in now if k not in PER_MACHINE_FIELDS and before.get(k) != now[k])
    if changed:
        raise ConfigError(f"{config.out} holds a run with other settings ({', '.join(changed)} differ); "
                          "use the same options to resume, or a new --out")


def run_training(config: TrainConfig, progress: bool = True) -> dict[str, Any]:
    """Everything `python -m fdp.train` does; returns the pooled summary of the finished folds. Folds that fail
    (twice) do not stop the others: the run pools what finished, then raises one line listing the failed ones."""
    check_resume(config)
    if config.executor == "ray":
        from fdp.ray_executor import ray_session

        session = ray_session(config.ray_address)
    else:
        session = nullcontext()
    with session:
        return _train(config, progress)


def _train(config: TrainConfig, progress: bool) -> dict[str, Any]:
    from rich.console import Console

    from fdp.fold_executors import FoldTask, SerialFoldExecutor, run_folds
    from fdp.fold_runner import FoldData, is_finished
    from fdp.reporting import aggregate_run

    console = Console(highlight=False, soft_wrap=True)
    output_folder(config.out, "--out")
    if not (config.out / "train_config.json").is_file():
        write_json(config.out / "train_config.json", config.to_dict())
    sources = load_sources(config.datasets, config.roots)
    for line in sources.summaries:
        console.print(line)
    setting = resolve_setting(config.classes, config.datasets)
    pairs = labelled_clips(sources.clips, setting)
    counts = count_classes(sources.clips, setting)
    console.print(f"{setting.title}: " + ", ".join(f"{k} {v}" for k, v in counts.counts.items())
                  + (f"; left out: {', '.join(f'{k} {v}' for k, v in counts.excluded.items())}"
                     if counts.excluded else ""))
    model_config = preset(config.preset, class_names=setting.class_names, window_s=config.window_s)
    if config.crop_size is not None:
        model_config = model_config.replace(aligner=dataclasses.replace(model_config.aligner,
                                                                        crop_size=config.crop_size))
    initial = load_matching_weights(config.init, model_config) if config.init is not None else None
    on_ray = config.executor == "ray"
    if on_ray:
        from fdp.ray_executor import RayFoldExecutor, align_on_ray
    report, crops = preprocess_clips([c for c, _ in pairs], model_config.aligner, cache_dir=config.cache_dir,
                                     landmarker=config.landmarker, window_s=config.window_s,
                                     length_jitter=config.length_jitter, workers=config.align_workers,
                                     run_jobs=align_on_ray if on_ray else None, progress=progress, log=console.print)
    console.print(report.summary())
    usable = [(clip, label) for clip, label in pairs if clip_key(clip) in crops]
    if not usable:
        raise ConfigError(f"no clip of {', '.join(config.datasets)} has a face the aligner can find; "
                          "check --root and the frames")
    every, chosen = plan_folds(config, [clip for clip, _ in usable])
    holdout = bool(config.holdout_subjects) or config.train_all
    protocol = "train-all" if config.train_all else "holdout" if holdout else "leave-one-subject-out"
    write_json(config.out / "protocol.json", {
        "protocol": protocol, "class_setting": setting.name,
        "class_names": list(setting.class_names), "selection": config.selection_flag,
        "folds": [{"fold": f.index, "dir": fold_dir(config.out, f, holdout).name, "test": list(f.test),
                   "train": list(f.train), "val": list(f.val)} for f in every]})
    tasks = []
    for fold in chosen:
        folder = fold_dir(config.out, fold, holdout)
        if is_finished(folder):
            console.print(f"fold {fold.index} ({fold.name}): finished earlier, skipped")
            continue
        tasks.append(FoldTask(fold, folder, fold_seed(config.seed, fold)))
    data = FoldData(usable, crops, setting, model_config, initial)
    executor = RayFoldExecutor(config, data) if on_ray else SerialFoldExecutor(config, data, console, progress)
    # the bar over folds on Ray; a serial fold shows its own bar over steps instead (rich before 14 allows one)
    failed = run_folds(executor, tasks, console, progress and on_ray) if tasks else []
    summary: dict[str, Any] = {"protocol": protocol}
    if config.train_all and not failed:
        console.print(f"trained on every subject; evaluate {fold_dir(config.out, chosen[0], True)}/"
                      "checkpoint.safetensors on other data with python -m fdp.evaluate --checkpoint")
    elif not config.train_all and any(is_finished(fold_dir(config.out, f, holdout)) for f in every):
        summary = aggregate_run(config.out)
        print(summary["markdown"], end="")
    if failed:
        raise FDPError(f"{len(failed)} of {len(chosen)} folds failed: {', '.join(t.title for t in failed)}; each "
                       "one's error.txt holds its traceback: fix the cause and run the same command again "
                       "(finished folds are skipped)")
    return summary


def parse_args(argv: list[str] | None) -> tuple[TrainConfig, bool]:
    """The config, and whether to show progress bars."""
    parser = CommandParser(prog="python -m fdp.train", description=__doc__.splitlines()[0])
    add_config_options(parser, TrainConfig)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    return config_from_args(TrainConfig, args), not args.quiet


def main(argv: list[str] | None = None) -> int:
    config, progress = parse_args(argv)
    run_training(config, progress=progress)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
