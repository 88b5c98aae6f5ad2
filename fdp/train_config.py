"""`TrainConfig`: every setting of `python -m fdp.train`, in one frozen dataclass written beside its outputs.

Its own module so that what runs a fold (`fdp.fold_runner`) can read the settings without importing the command.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fdp.config import PRESETS, ModelConfig
from fdp.datasets.sources import check_sources, resolve_setting
from fdp.errors import ConfigError

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
        if self.seed < 0:
            raise ConfigError(f"--seed {self.seed}: use 0 or more")
        if self.device != "auto" and self.device != "cpu" and not self.device.startswith("cuda"):
            raise ConfigError(f"--device {self.device!r}; use auto, cpu or cuda (cuda:N)")

    @property
    def selection_flag(self) -> str:
        return "select-on-test" if self.select_on_test else "validation"

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))
