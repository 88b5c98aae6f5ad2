"""`TrainConfig`: every setting of `python -m fdp.train`, in one frozen dataclass written beside its outputs.

Its own module so that what runs a fold (`fdp.fold_runner`) can read the settings without importing the command.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fdp.cli import option
from fdp.config import PRESETS, ModelConfig
from fdp.datasets.sources import DATASET_IDS, check_sources, resolve_setting, setting_names
from fdp.errors import ConfigError

IMBALANCE = ("weighted", "balanced", "none")
EXECUTORS = ("serial", "ray")
# Fields that may differ between the invocations that fill one run folder (other machines, other paths, another
# executor: a run started serially may be finished on a Ray cluster and the other way round).
PER_MACHINE_FIELDS = ("out", "roots", "folds", "device", "cache_dir", "landmarker", "align_workers", "executor",
                      "ray_address", "cpus_per_fold", "gpus_per_fold")


@dataclass(frozen=True)
class TrainConfig:
    """`python -m fdp.train`; written to <out>/train_config.json."""

    out: Path = field(default=Path("runs/fdp"), metadata=option("run folder"))
    datasets: tuple[str, ...] = field(default=(), metadata=option(
        "dataset id; repeat for a composite, each with its --root, in the same order", flag="--dataset",
        choices=DATASET_IDS, many="repeat"))
    roots: tuple[Path, ...] = field(default=(), metadata=option("the unpacked dataset folder", flag="--root",
                                                                 many="repeat"))
    classes: str = field(default="", metadata=option(
        f"class setting: {', '.join(setting_names())} (default: the datasets' own; megc2019-3 for casme2 + samm)",
        metavar="SETTING"))
    preset: str = field(default="live", metadata=option("model preset", choices=tuple(PRESETS)))
    epochs: int = field(default=30, metadata=option("training epochs per fold"))
    batch_size: int = field(default=16, metadata=option("clips per batch (2 or more: BatchNorm)"))
    lr: float = field(default=1e-3, metadata=option("peak learning rate (AdamW, cosine after the warm-up)"))
    weight_decay: float = field(default=0.05, metadata=option("AdamW weight decay"))
    warmup_epochs: float = field(default=2.0, metadata=option("epochs of linear learning-rate warm-up"))
    lambda_di: float = field(default=100.0, metadata=option(
        "weight of the dynamic-image MSE (the released FDP code's)"))
    lambda_rank: float = field(default=1.0, metadata=option("weight of the chronological rank loss"))
    rank_margin: float = field(default=0.1, metadata=option("score margin of the rank loss"))
    window_s: float = field(default=ModelConfig().window_s, metadata=option("window around each expression, s"))
    length_jitter: float = field(default=0.2, metadata=option("training windows vary in length by this fraction"))
    augment: bool = field(default=True, metadata=option("no clip-consistent augmentation"))
    imbalance: str = field(default="weighted", metadata=option(
        "weighted: class-weighted cross-entropy; balanced: class-balanced sampling; none", choices=IMBALANCE))
    precise_bn_batches: int = field(default=8, metadata=option(
        "BatchNorm statistics recomputed over up to this many training batches per evaluation"))
    val_fraction: float = field(default=0.2, metadata=option(
        "share of each fold's training subjects set apart for validation"))
    select_on_test: bool = field(default=False, metadata=option(
        "pick each fold's epoch on its TEST subject (the published habit; optimistic; labelled)"))
    holdout_subjects: tuple[str, ...] = field(default=(), metadata=option(
        "comma-separated test subjects of one split, instead of leave-one-subject-out", many="comma"))
    val_subjects: tuple[str, ...] = field(default=(), metadata=option(
        "comma-separated validation subjects of that split (with --holdout-subjects or --train-all), instead of "
        "a random --val-fraction: e.g. the identities a synthetic set kept apart with --isolate", many="comma"))
    crop_size: int | None = field(default=None, metadata=option(
        "aligned crop side in pixels (default: the preset's; a multiple of 32 for `live`)"))
    init: Path | None = field(default=None, metadata=option(
        "start every fold from this checkpoint's weights instead of random ones (fine-tuning, or the next stage "
        "of a curriculum); the same preset, classes, frames and window (another crop size starts its "
        "crop-dependent decoder layer random)"))
    train_all: bool = field(default=False, metadata=option(
        "train one model on every subject (no test split); evaluate it with fdp.evaluate"))
    folds: tuple[str, ...] = field(default=(), metadata=option(
        "comma-separated fold indices or test subjects to run (default: all)", many="comma"))
    device: str = field(default="auto", metadata=option("auto, cpu or cuda (cuda:N)"))
    seed: int = field(default=0, metadata=option("seed of the folds' validation split and of training"))
    cache_dir: Path | None = field(default=None, metadata=option(
        "crop cache (default $FDP_CACHE_DIR or ~/.cache/fdp-live/crops)"))
    landmarker: Path | None = field(default=None, metadata=option("face_landmarker.task (default: the fetched)"))
    align_workers: int = field(default=min(2, os.cpu_count() or 1), metadata=option(
        "processes aligning clips not in the crop cache yet"))
    executor: str = field(default="serial", metadata=option(
        "what runs the folds and the aligning: serial (this process) or ray (one Ray task per fold and per clip; "
        'pip install -e ".[ray]")', choices=EXECUTORS))
    ray_address: str | None = field(default=None, metadata=option(
        "Ray cluster to join: auto (the one `ray start` runs on this machine) or HOST:PORT "
        "(default: start a local Ray on this machine)"))
    cpus_per_fold: int | None = field(default=None, metadata=option(
        "CPUs a fold uses: torch's thread count and the CPUs its Ray task reserves (default: every core serially, "
        "1 on Ray); the same value gives the same metrics on either executor"))
    gpus_per_fold: float = field(default=0.0, metadata=option(
        "GPUs each fold's Ray task reserves (a fraction packs folds onto one GPU)"))

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
        if self.val_subjects and not (self.train_all or self.holdout_subjects):
            raise ConfigError("--val-subjects fixes the validation subjects of one split: add --holdout-subjects "
                              "or --train-all (leave-one-subject-out draws each fold's own with --val-fraction)")
        if self.crop_size is not None and self.crop_size < 16:
            raise ConfigError(f"--crop-size {self.crop_size}: use 16 or more pixels")
        if self.holdout_subjects and self.folds:
            raise ConfigError("--folds selects leave-one-subject-out folds; it does not combine with "
                              "--holdout-subjects")
        if self.align_workers < 1:
            raise ConfigError(f"--align-workers {self.align_workers}: use 1 or more")
        if self.executor not in EXECUTORS:
            raise ConfigError(f"--executor {self.executor!r}; choose one of {', '.join(EXECUTORS)}")
        if self.executor == "serial" and (self.ray_address is not None or self.gpus_per_fold):
            raise ConfigError("--ray-address and --gpus-per-fold are Ray's; add --executor ray (a serial run uses "
                              "--device)")
        if (self.cpus_per_fold is not None and self.cpus_per_fold < 1) or self.gpus_per_fold < 0:
            raise ConfigError(f"--cpus-per-fold {self.cpus_per_fold} / --gpus-per-fold {self.gpus_per_fold}: use 1 "
                              "or more CPUs and 0 or more GPUs")
        if self.seed < 0:
            raise ConfigError(f"--seed {self.seed}: use 0 or more")
        if self.device != "auto" and self.device != "cpu" and not self.device.startswith("cuda"):
            raise ConfigError(f"--device {self.device!r}; use auto, cpu or cuda (cuda:N)")

    @property
    def selection_flag(self) -> str:
        return "select-on-test" if self.select_on_test else "validation"

    @property
    def fold_cpus(self) -> int | None:
        """The CPUs (torch threads) a fold runs on; None leaves torch's default, every core of a serial run."""
        return self.cpus_per_fold or (1 if self.executor == "ray" else None)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))
