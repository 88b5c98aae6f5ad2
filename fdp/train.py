"""Train FDP leave-one-subject-out (or on one held-out split) and write per-fold checkpoints and metrics.

    python -m fdp.train --dataset casme2 --root /data/CASME2 --out runs/casme2 --preset paper
    python -m fdp.train --dataset casme2 --root /data/CASME2 --dataset samm --root /data/SAMM --out runs/megc
    python -m fdp.train --dataset synthetic --root data/synth --holdout-subjects astronaut --out runs/default

Each fold writes `folds/<fold>/checkpoint.safetensors` and then `folds/<fold>/metrics.json`; a fold whose
metrics.json exists is finished and skipped when the run is started again (resume), and `--folds` runs a subset,
so the folds of one protocol can be spread over machines that share (or later merge) the `--out` folder. The run
ends by pooling every finished fold (`fdp.evaluate`). Epochs are selected on validation subjects drawn from the
training subjects; `--select-on-test` selects on the test subject instead, and every output says so.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fdp.cli import run_main
from fdp.config import PRESETS, ModelConfig, preset
from fdp.data.classes import count_classes, labelled_clips
from fdp.data.folds import Fold, leave_one_subject_out, subjects_of, validation_subjects
from fdp.data.sources import DATASET_IDS, check_sources, load_sources, resolve_setting, setting_names
from fdp.errors import ConfigError
from fdp.preprocess import clip_key, preprocess_clips
from fdp.evaluate import write_json

IMBALANCE = ("weighted", "balanced", "none")
# Fields that may differ between the invocations that fill one run folder (other machines, other paths).
PER_MACHINE_FIELDS = ("out", "roots", "folds", "device", "cache_dir", "landmarker", "align_workers")


@dataclass(frozen=True)
class TrainConfig:
    """`python -m fdp.train`; written to <out>/train_config.json."""

    out: Path = Path("runs/fdp")
    datasets: tuple[str, ...] = ()
    roots: tuple[Path, ...] = ()
    classes: str = ""  # class setting; empty: the datasets' default (megc2019-3 for casme2 + samm)
    preset: str = "live"
    epochs: int = 30
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 2.0
    lambda_di: float = 100.0  # the released FDP code's weight of the dynamic-image MSE
    lambda_rank: float = 1.0
    rank_margin: float = 0.1
    window_s: float = ModelConfig().window_s
    length_jitter: float = 0.2
    augment: bool = True
    imbalance: str = "weighted"  # class-weighted cross-entropy; or 'balanced' sampling; or 'none'
    precise_bn_batches: int = 8  # BatchNorm statistics recomputed over up to this many training batches per eval
    val_fraction: float = 0.2
    select_on_test: bool = False
    holdout_subjects: tuple[str, ...] = ()
    train_all: bool = False  # one model on every subject, no test (evaluate it on other data with fdp.evaluate)
    folds: tuple[str, ...] = ()  # fold indices or test subjects to run; empty: all
    device: str = "auto"
    seed: int = 0
    cache_dir: Path | None = None
    landmarker: Path | None = None
    align_workers: int = min(2, os.cpu_count() or 1)  # processes aligning clips not in the crop cache yet

    def __post_init__(self) -> None:
        check_sources(self.datasets, self.roots)
        resolve_setting(self.classes, self.datasets)
        if self.preset not in PRESETS:
            raise ConfigError(f"unknown model preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        if self.epochs < 1 or self.batch_size < 2:
            raise ConfigError(f"--epochs {self.epochs} / --batch-size {self.batch_size}: need 1+ epochs and "
                              "batches of 2+ clips (BatchNorm)")
        if self.lr <= 0 or self.weight_decay < 0 or self.warmup_epochs < 0:
            raise ConfigError(f"--lr {self.lr} must be positive, --weight-decay and --warmup-epochs 0 or more")
        if min(self.lambda_di, self.lambda_rank, self.rank_margin) < 0:
            raise ConfigError("--lambda-di, --lambda-rank and --rank-margin must be 0 or more")
        if self.window_s <= 0 or not 0 <= self.length_jitter < 1:
            raise ConfigError(f"--window-s {self.window_s} must be positive, --length-jitter in 0..1")
        if self.imbalance not in IMBALANCE:
            raise ConfigError(f"--imbalance {self.imbalance!r}; choose one of {', '.join(IMBALANCE)}")
        if self.precise_bn_batches < 0 or not 0 <= self.val_fraction < 1:
            raise ConfigError("--precise-bn-batches must be 0 or more and --val-fraction in 0..1 (exclusive of 1)")
        if self.train_all and (self.holdout_subjects or self.folds or self.select_on_test):
            raise ConfigError("--train-all trains one model on every subject: it does not combine with "
                              "--holdout-subjects, --folds or --select-on-test")
        if self.holdout_subjects and self.folds:
            raise ConfigError("--folds selects leave-one-subject-out folds; it does not combine with "
                              "--holdout-subjects")
        if self.align_workers < 1:
            raise ConfigError(f"--align-workers {self.align_workers}: use 1 or more")
        if self.device != "auto" and self.device != "cpu" and not self.device.startswith("cuda"):
            raise ConfigError(f"--device {self.device!r}; use auto, cpu or cuda (cuda:N)")

    @property
    def selection_flag(self) -> str:
        return "select-on-test" if self.select_on_test else "validation"

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))


def match_subjects(names: tuple[str, ...], keys: list[str]) -> tuple[str, ...]:
    """Subject keys for names given as keys ('casme2/sub01') or bare subjects ('sub01') that name one key."""
    found = []
    for name in names:
        matches = [k for k in keys if k == name or k.split("/", 1)[1] == name]
        if len(matches) != 1:
            shown = ", ".join(keys[:6]) + (", ..." if len(keys) > 6 else "")
            why = "names several subjects; use dataset/subject" if matches else "has no usable clips"
            raise ConfigError(f"subject {name!r} {why}; subjects are {shown}")
        found.append(matches[0])
    return tuple(found)


def plan_folds(config: TrainConfig, clips: list[Any]) -> tuple[list[Fold], list[Fold]]:
    """(every fold of the protocol, the folds this invocation runs)."""
    keys = subjects_of(clips)
    if config.train_all:
        val = validation_subjects(keys, config.val_fraction, config.seed, 0)
        fold = Fold(0, (), tuple(k for k in keys if k not in val), val)
        return [fold], [fold]
    if config.holdout_subjects:
        test = match_subjects(config.holdout_subjects, keys)
        rest = [k for k in keys if k not in test]
        if not rest:
            raise ConfigError("--holdout-subjects leaves no subject to train on")
        val = validation_subjects(rest, config.val_fraction, config.seed, 0)
        fold = Fold(0, test, tuple(k for k in rest if k not in val), val)
        return [fold], [fold]
    folds = leave_one_subject_out(clips, val_fraction=config.val_fraction, seed=config.seed)
    if not config.folds:
        return folds, folds
    wanted: set[int] = set()
    for token in config.folds:
        if token.isdigit():
            if int(token) >= len(folds):
                raise ConfigError(f"--folds {token}: this protocol has folds 0..{len(folds) - 1}")
            wanted.add(int(token))
        else:
            key = match_subjects((token,), keys)[0]
            wanted.add(next(f.index for f in folds if f.test == (key,)))
    return folds, [f for f in folds if f.index in wanted]


def fold_dir(out: Path, fold: Fold, holdout: bool) -> Path:
    name = ("all" if not fold.test else "holdout") if holdout else f"fold{fold.index:02d}_" + fold.name.replace("/", "-").replace("+", "_")
    return out / "folds" / name


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
    """Everything `python -m fdp.train` does; returns the pooled summary of the finished folds."""
    from rich.console import Console

    from fdp.evaluate import aggregate_run
    from fdp.fold_runner import FoldData, run_fold

    console = Console(highlight=False, soft_wrap=True)
    check_resume(config)
    config.out.mkdir(parents=True, exist_ok=True)
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
    report, crops = preprocess_clips([c for c, _ in pairs], model_config.aligner, cache_dir=config.cache_dir,
                                     landmarker=config.landmarker, window_s=config.window_s,
                                     length_jitter=config.length_jitter, workers=config.align_workers,
                                     progress=progress, log=console.print)
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
    data = FoldData(usable, crops, setting, model_config)
    for fold in chosen:
        folder = fold_dir(config.out, fold, holdout)
        if (folder / "metrics.json").is_file() and (folder / "checkpoint.safetensors").is_file():
            console.print(f"fold {fold.index} ({fold.name}): finished earlier, skipped")
            continue
        seed = int(np.random.SeedSequence([config.seed, fold.index]).generate_state(1)[0])
        run_fold(config, data, fold, folder, seed, console, progress)
    if config.train_all:
        console.print(f"trained on every subject; evaluate {fold_dir(config.out, chosen[0], True)}/"
                      "checkpoint.safetensors on other data with python -m fdp.evaluate --checkpoint")
        return {"protocol": protocol}
    summary = aggregate_run(config.out)
    print(summary["markdown"], end="")
    return summary


def parse_args(argv: list[str] | None) -> tuple[TrainConfig, bool]:
    """The config, and whether to show progress bars."""
    d = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    p = argparse.ArgumentParser(prog="python -m fdp.train", description=__doc__.splitlines()[0])
    p.add_argument("--dataset", action="append", default=[], choices=DATASET_IDS,
                   help="dataset id; repeat for a composite, each with its --root, in the same order")
    p.add_argument("--root", action="append", default=[], type=Path, help="the unpacked dataset folder")
    p.add_argument("--out", type=Path, default=d["out"], help="run folder (default %(default)s)")
    p.add_argument("--classes", default=d["classes"], metavar="SETTING",
                   help=f"class setting: {', '.join(setting_names())} (default: the datasets' own)")
    p.add_argument("--preset", default=d["preset"], choices=tuple(PRESETS), help="model preset (default %(default)s)")
    for name in ("epochs", "batch_size", "precise_bn_batches", "seed", "align_workers"):
        p.add_argument(f"--{name.replace('_', '-')}", type=int, default=d[name], help="default %(default)s")
    for name in ("lr", "weight_decay", "warmup_epochs", "lambda_di", "lambda_rank", "rank_margin", "window_s",
                 "length_jitter", "val_fraction"):
        p.add_argument(f"--{name.replace('_', '-')}", type=float, default=d[name], help="default %(default)s")
    p.add_argument("--no-augment", dest="augment", action="store_false", help="no clip-consistent augmentation")
    p.add_argument("--imbalance", default=d["imbalance"], choices=IMBALANCE,
                   help="weighted: class-weighted cross-entropy (default); balanced: class-balanced sampling")
    p.add_argument("--select-on-test", action="store_true",
                   help="pick each fold's epoch on its TEST subject (the published habit; optimistic; labelled)")
    p.add_argument("--holdout-subjects", default="", help="comma-separated test subjects of one split, instead "
                                                          "of leave-one-subject-out")
    p.add_argument("--train-all", action="store_true",
                   help="train one model on every subject (no test split); evaluate it with fdp.evaluate")
    p.add_argument("--folds", default="", help="comma-separated fold indices or test subjects to run")
    p.add_argument("--device", default=d["device"], help="auto, cpu or cuda (default %(default)s)")
    p.add_argument("--cache-dir", type=Path, default=None, help="crop cache (default ~/.cache/fdp-live/crops)")
    p.add_argument("--landmarker", type=Path, default=None, help="face_landmarker.task (default: the fetched)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    a = p.parse_args(argv)

    def listed(text: str) -> tuple[str, ...]:
        return tuple(t.strip() for t in text.split(",") if t.strip())

    values = {k: v for k, v in vars(a).items() if k in d and k not in ("dataset", "root")}
    values |= {"datasets": tuple(a.dataset), "roots": tuple(a.root), "holdout_subjects": listed(a.holdout_subjects),
               "folds": listed(a.folds)}
    return TrainConfig(**values), not a.quiet


def main(argv: list[str] | None = None) -> int:
    config, progress = parse_args(argv)
    run_training(config, progress=progress)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
