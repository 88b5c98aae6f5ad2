"""Run one fold of a training run (`compute_fold`, in memory) and write what it leaves behind (`write_fold`): the
checkpoint, then metrics.json. The two halves are apart so that a fold can train on a Ray worker and be written by
the driver (`fdp.fold_executors`), exactly as a serial run writes it.

metrics.json is written last and atomically, so its presence is what marks a fold finished (see `fdp.train`).
It records everything needed to pool the folds later without the model: the subjects each part used (taken from
the clips actually used, so the tests can check that no test subject was trained on), the selection rule and
epoch, the training curve, and every test prediction.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from fdp.checkpoint import InitialWeights, save_checkpoint
from fdp.clip_batches import Augmentation, ClipItem, epoch_order
from fdp.config import ModelConfig
from fdp.datasets.classes import ClassSetting
from fdp.datasets.clips import ClipSample
from fdp.datasets.crop_cache import CachedCrops
from fdp.datasets.folds import Fold, subject_key
from fdp.datasets.sources import training_data_statement
from fdp.errors import ConfigError
from fdp.io import write_bytes, write_json
from fdp.losses import LossWeights
from fdp.metrics import score
from fdp.preprocess import ClipKey, clip_key
from fdp.train_config import TrainConfig
from fdp.training_loop import SELECTION_RULES, EpochRecord, LoopSettings, resolve_device, train_fold

FOLD_FORMAT = "fdp-live/fold/1"
CHECKPOINT_NAME = "checkpoint.safetensors"
METRICS_NAME = "metrics.json"
ERROR_NAME = "error.txt"
STATE_NAME = "training_state.safetensors"  # the state after the last finished epoch, while a fold trains


@dataclass(frozen=True, eq=False)
class FoldData:
    """What every fold of a run shares: the labelled clips that have crops, the crops, the classes, the model."""

    clips: Sequence[tuple[ClipSample, int]]
    crops: dict[ClipKey, CachedCrops]
    setting: ClassSetting
    model_config: ModelConfig
    initial: InitialWeights | None = None  # --init: where every fold starts (else random weights)

    def items(self, clips: Sequence[tuple[ClipSample, int]]) -> list[ClipItem]:
        return [ClipItem(clip, self.crops[clip_key(clip)], label) for clip, label in clips]


def loop_settings(config: TrainConfig) -> LoopSettings:
    return LoopSettings(
        epochs=config.epochs, batch_size=config.batch_size, lr=config.lr, weight_decay=config.weight_decay,
        warmup_epochs=config.warmup_epochs,
        loss_weights=LossWeights(dynamic_image=config.lambda_di, rank=config.lambda_rank,
                                 rank_margin=config.rank_margin),
        window_s=config.window_s, length_jitter=config.length_jitter, imbalance=config.imbalance,
        augmentation=Augmentation() if config.augment else None, precise_bn_batches=config.precise_bn_batches,
        select_on_test=config.select_on_test, device=resolve_device(config.device))


def fold_metadata(fold: Fold, setting: ClassSetting, rule: str, label: str, epoch: int,
                  metrics: dict[str, Any], config: TrainConfig, initial: InitialWeights | None) -> dict[str, str]:
    """String metadata for the fold's checkpoint: what it was trained on (and started from) and how it was
    selected."""
    started = ({"initialised_from": initial.source, "initial_subjects": json.dumps(initial.subjects)}
               if initial is not None else {})
    return {**started, "training_data": training_data_statement(fold.train), "fold": str(fold.index),
            "test_subjects": json.dumps(fold.test), "train_subjects": json.dumps(fold.train),
            "val_subjects": json.dumps(fold.val), "class_setting": setting.name, "selection_rule": rule,
            "selection": label, "select_on_test": json.dumps(config.select_on_test), "selected_epoch": str(epoch),
            "metrics": json.dumps(metrics), "train_config": json.dumps(config.to_dict())}


@dataclass(frozen=True, eq=False)
class FoldResult:
    """Everything a trained fold leaves behind, in memory: a Ray worker sends it back whole, so the machine that
    trained it needs no shared filesystem with the one that writes the run folder."""

    checkpoint: bytes  # the checkpoint.safetensors file
    record: dict[str, Any]  # metrics.json: metrics, selection, history and every test prediction


def compute_fold(config: TrainConfig, data: FoldData, fold: Fold, seed: int, console: Console,
                 progress: bool = True, state_path: Path | None = None) -> FoldResult:
    """Train and test one fold; returns its checkpoint and metrics record, writing nothing but, with
    `state_path`, the state after each epoch that lets a cut-off fold resume there (`fdp.training_state`)."""
    train, val, test = (data.items(part) for part in fold.split(data.clips, subject=lambda pair: subject_key(pair[0])))
    if len(train) < 2 or (not test and fold.test):
        raise ConfigError(f"fold {fold.index} ({fold.name}): {len(train)} training and {len(test)} test clips; "
                          "a fold needs 2+ training clips and 1+ test clip")
    settings = loop_settings(config)
    names = data.setting.class_names
    steps = len(epoch_order([i.label for i in train], settings.batch_size, np.random.default_rng(0)))
    console.print(f"fold {fold.index} ({fold.name}): {len(train)} train / {len(val)} val / {len(test)} test clips, "
                  f"{settings.epochs} epochs on {settings.device}")
    columns = (TextColumn(f"fold {fold.index} {{task.fields[note]}}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console, disable=not progress, transient=True) as bar, \
            torch_threads(config.fold_cpus):
        task = bar.add_task("steps", total=steps * settings.epochs, note="")

        def on_epoch(record: EpochRecord) -> None:
            line = (f"  epoch {record.epoch:3d}: loss {record.train_loss:.4f} (ce {record.train_ce:.4f}) "
                    f"train acc {record.train_accuracy:.3f}")
            if record.val is not None:
                line += f" | val UF1 {_fmt(record.val['uf1'])} acc {_fmt(record.val['accuracy'])}"
            if record.test is not None:
                line += f" | TEST UF1 {_fmt(record.test['uf1'])} (select-on-test)"
            bar.update(task, note=f"epoch {record.epoch}")
            console.print(line + f" | {record.seconds:.1f} s")

        if state_path is not None and state_path.is_file():
            console.print(f"fold {fold.index} ({fold.name}): resuming from {state_path} if it matches this run")
        outcome = train_fold(data.model_config, train, val, test, settings, seed,
                             on_step=lambda: bar.advance(task), on_epoch=on_epoch, state_path=state_path,
                             initial=data.initial.weights if data.initial else None)
    metrics = score(outcome.test.y_true, outcome.test.y_pred, len(names)).to_dict()
    label = SELECTION_RULES[outcome.selection_rule]
    metadata = fold_metadata(fold, data.setting, outcome.selection_rule, label, outcome.selected_epoch, metrics,
                             config, data.initial)
    with tempfile.TemporaryDirectory(prefix="fdp-fold-") as scratch:  # save_checkpoint is the one writer of the format
        checkpoint = save_checkpoint(outcome.model, Path(scratch) / "checkpoint.safetensors", metadata).read_bytes()
    record = {
        "format": FOLD_FORMAT, "fold": fold.index, "name": fold.name, "test_subjects": list(fold.test),
        "train_subjects": list(fold.train), "val_subjects": list(fold.val),
        "subjects_used": {part: sorted({subject_key(i.clip) for i in items})
                          for part, items in (("train", train), ("val", val), ("test", test))},
        "clips": {"train": len(train), "val": len(val), "test": len(test)},
        "class_setting": data.setting.name, "class_names": list(names), "model": data.model_config.name,
        "selection": {"rule": outcome.selection_rule, "label": label, "select_on_test": config.select_on_test,
                      "epoch": outcome.selected_epoch},
        "metrics": metrics, "train_seconds": round(outcome.train_seconds, 3), "device": settings.device,
        "history": [asdict(r) for r in outcome.history],
        "predictions": [{"dataset": i.clip.dataset, "subject": i.clip.subject, "clip_id": i.clip.clip_id,
                         "true": int(t), "pred": int(p), "probs": [round(float(x), 5) for x in probs]}
                        for i, t, p, probs in zip(test, outcome.test.y_true, outcome.test.y_pred,
                                                  outcome.test.probs)],
        "checkpoint": CHECKPOINT_NAME, "config": config.to_dict()}
    return FoldResult(checkpoint, record)


def write_fold(folder: Path, result: FoldResult) -> None:
    """The fold's checkpoint, then its metrics.json (last: its presence marks the fold finished)."""
    write_bytes(folder / CHECKPOINT_NAME, result.checkpoint)
    write_json(folder / METRICS_NAME, result.record)
    (folder / ERROR_NAME).unlink(missing_ok=True)  # what an earlier, failed attempt left


def write_fold_error(folder: Path, traceback_text: str) -> Path:
    """A failed fold's traceback, kept beside where its outputs would be: the console gets one line."""
    return write_bytes(folder / ERROR_NAME, traceback_text.encode("utf-8"))


def is_finished(folder: Path) -> bool:
    return (folder / METRICS_NAME).is_file() and (folder / CHECKPOINT_NAME).is_file()


def fold_line(record: dict[str, Any]) -> str:
    """The one line a finished fold gets on the console, read from its record (so both executors print it)."""
    selection, metrics = record["selection"], record["metrics"]
    flag = " [SELECT-ON-TEST]" if selection["select_on_test"] else ""
    return (f"fold {record['fold']} ({record['name']}): epoch {selection['epoch']} by {selection['rule']}{flag}; "
            f"test UF1 {_fmt(metrics['uf1'])} acc {_fmt(metrics['accuracy'])} on {record['clips']['test']} clips; "
            f"{record['train_seconds']:.1f} s")


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """torch's intra-op threads for one fold, restored after: the thread count changes how float sums split, so
    a fold gives the same figures wherever it runs only with the same count."""
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _fmt(value: float | int | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
