"""One fold of training: epochs over clip batches, BatchNorm recalibration, model selection, test predictions.

Two measured facts shape it. The model normalizes the pooled representation with a BatchNorm; at high learning
rates its running statistics trail the weights, and eval-mode accuracy lagged train accuracy by a wide margin.
So the learning rate warms up linearly and then follows a cosine, and before every evaluation the BatchNorm
statistics are recomputed from scratch over a few training batches ("precise BN", Wu & Johnson 2021), which makes
eval mode see the statistics of the weights it evaluates. Selection then compares epochs fairly.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fdp.checkpoint import weights_digest
from fdp.clip_batches import Augmentation, ClipItem, class_weights, clip_batch, epoch_order
from fdp.config import ModelConfig
from fdp.errors import ConfigError
from fdp.losses import LossWeights, fdp_loss
from fdp.metrics import score
from fdp.model import FDP
from fdp.training_state import ResumePoint, fingerprint, load_state, save_state

SELECTION_RULES: dict[str, str] = {
    "val-uf1": "best validation UF1 (validation subjects held out from training; ties go to the lower "
               "validation loss)",
    "last-epoch": "last epoch (no validation subjects to select on)",
    "test-uf1": "SELECT-ON-TEST: the epoch with the best UF1 on the test subjects themselves (the published "
                "habit; optimistic, not a fair estimate)",
}


@dataclass(frozen=True)
class LoopSettings:
    """Everything the loop needs besides the model config and the data."""

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    warmup_epochs: float
    loss_weights: LossWeights
    window_s: float
    length_jitter: float
    imbalance: str  # 'weighted' (class-weighted CE), 'balanced' (class-balanced sampling) or 'none'
    augmentation: Augmentation | None
    precise_bn_batches: int  # 0 keeps the running statistics as training left them
    select_on_test: bool
    device: str
    grad_clip: float = 5.0
    eval_batch_size: int = 64


@dataclass
class Predictions:
    """Centred-window predictions on a set of clips."""

    y_true: np.ndarray  # (N,) int64
    y_pred: np.ndarray  # (N,) int64
    probs: np.ndarray  # (N, K) float32
    loss: float  # mean unweighted cross-entropy


@dataclass
class EpochRecord:
    epoch: int
    lr: float
    train_loss: float
    train_ce: float
    train_accuracy: float
    seconds: float
    val: dict[str, float | int | None] | None = None
    val_loss: float | None = None
    test: dict[str, float | int | None] | None = None


@dataclass
class FoldOutcome:
    model: FDP  # holding the selected epoch's weights and statistics, in eval mode
    selection_rule: str
    selected_epoch: int
    test: Predictions
    train_seconds: float
    history: list[EpochRecord] = field(default_factory=list)


def resolve_device(device: str) -> str:
    """'auto' is CUDA when torch sees a GPU, else the CPU; asking for CUDA where there is none is a ConfigError."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: this torch sees no CUDA device; use --device cpu or auto")
    return device


def selection_rule(has_val: bool, select_on_test: bool) -> str:
    return "test-uf1" if select_on_test else "val-uf1" if has_val else "last-epoch"


def lr_factor(step: int, warmup_steps: int, total_steps: int, floor: float = 0.01) -> float:
    """Linear warmup to 1, then a cosine down to `floor`."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def to_tensors(batch: tuple[np.ndarray, np.ndarray], device: str) -> tuple[torch.Tensor, torch.Tensor]:
    clips, labels = batch
    return torch.from_numpy(clips).to(device), torch.from_numpy(labels).to(device)


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches: Sequence[tuple[np.ndarray, np.ndarray]], device: str) -> None:
    """Precise BN: reset every BatchNorm's running statistics and set them to the plain average over `batches`
    (momentum None), in train mode; the decoder runs too, so its statistics stay in step for export."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms or not batches:
        return
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    was_training = model.training
    model.train()
    for batch in batches:
        clips, _ = to_tensors(batch, device)
        model(clips, with_dynamic_image=True)
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    model.train(was_training)


@torch.no_grad()
def predict(model: FDP, items: Sequence[ClipItem], window_s: float, device: str, batch_size: int = 64) -> Predictions:
    """Centred windows, no augmentation, eval mode."""
    model.eval()
    frames, num_classes = model.config.frames, model.config.num_classes
    probs, labels, loss_sum = [], [], 0.0
    for start in range(0, len(items), batch_size):
        clips, targets = to_tensors(clip_batch(items[start:start + batch_size], frames, window_s), device)
        logits = model(clips, with_dynamic_image=False).logits.float()
        loss_sum += float(F.cross_entropy(logits, targets, reduction="sum"))
        probs.append(torch.softmax(logits, dim=1).cpu().numpy())
        labels.append(targets.cpu().numpy())
    p = np.concatenate(probs) if probs else np.zeros((0, num_classes), np.float32)
    y = np.concatenate(labels) if labels else np.zeros(0, np.int64)
    return Predictions(y, p.argmax(axis=1).astype(np.int64), p, loss_sum / max(1, len(items)))


def _optimizer(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW; biases and normalization weights (1-d parameters) are not decayed."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    plain = [p for p in model.parameters() if p.ndim <= 1]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": plain, "weight_decay": 0.0}], lr=lr)


def _identity(items: Sequence[ClipItem]) -> list[tuple[str, str, str, int]]:
    return [(i.clip.dataset, i.clip.subject, i.clip.clip_id, i.label) for i in items]


def train_fold(config: ModelConfig, train: Sequence[ClipItem], val: Sequence[ClipItem], test: Sequence[ClipItem],
               settings: LoopSettings, seed: int, on_step: Callable[[], None] | None = None,
               on_epoch: Callable[[EpochRecord], None] | None = None,
               state_path: Path | None = None, initial: dict[str, torch.Tensor] | None = None) -> FoldOutcome:
    """Train a model on `train` (fresh, or from the `initial` weights), select an epoch by the rule the settings
    imply, predict `test`.

    With `state_path`, the state after every epoch is kept there (`fdp.training_state`) and a run cut off earlier
    with the same settings and data continues after its last finished epoch; the file goes once the fold is done."""
    started = time.perf_counter()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    device = settings.device
    model = FDP(config).to(device)
    if initial is not None:  # what `initial` lacks (a crop-size-dependent layer) keeps the seeded fresh values
        model.load_state_dict({**model.state_dict(), **initial})
    optimizer = _optimizer(model, settings.lr, settings.weight_decay)
    labels = [item.label for item in train]
    steps_per_epoch = len(epoch_order(labels, settings.batch_size, np.random.default_rng(0)))
    total_steps = steps_per_epoch * settings.epochs
    warmup_steps = max(1, round(settings.warmup_epochs * steps_per_epoch))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, warmup_steps, total_steps))
    weights = None
    if settings.imbalance == "weighted":
        weights = torch.tensor(class_weights(labels, config.num_classes), dtype=torch.float32, device=device)
    rule = selection_rule(bool(val), settings.select_on_test)
    with_di = bool(settings.loss_weights.dynamic_image)

    def train_batch(order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return clip_batch([train[i] for i in order], config.frames, settings.window_s, rng, settings.augmentation,
                          settings.length_jitter)

    history: list[EpochRecord] = []
    best_key: tuple[float, float] | None = None
    best_state: dict[str, torch.Tensor] | None = None
    best_epoch = settings.epochs
    first_epoch = 1
    state_key = fingerprint(config.to_dict(), repr(settings), seed, _identity(train), _identity(val), _identity(test),
                            weights_digest(initial) if initial is not None else None)
    point = load_state(state_path, state_key) if state_path is not None else None
    if point is not None:
        model.load_state_dict(point.model)
        optimizer.load_state_dict(point.optimizer)
        schedule.load_state_dict(point.schedule)
        rng.bit_generator.state = point.numpy_rng
        torch.set_rng_state(point.torch_rng)
        history = [EpochRecord(**record) for record in point.history]
        best_key, best_state, best_epoch = point.best_key, point.best, point.best_epoch
        first_epoch = point.epoch + 1
    for epoch in range(first_epoch, settings.epochs + 1):
        epoch_start = time.perf_counter()
        model.train()
        loss_sum = ce_sum = correct = seen = 0.0
        for order in epoch_order(labels, settings.batch_size, rng, settings.imbalance == "balanced"):
            clips, targets = to_tensors(train_batch(order), device)
            output = model(clips, with_dynamic_image=with_di)
            loss, parts = fdp_loss(output, targets, clips, settings.loss_weights, weights)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if settings.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            optimizer.step()
            schedule.step()
            loss_sum += parts["total"] * len(order)
            ce_sum += parts["ce"] * len(order)
            correct += float((output.logits.argmax(1) == targets).sum())
            seen += len(order)
            if on_step is not None:
                on_step()
        record = EpochRecord(epoch, optimizer.param_groups[0]["lr"], loss_sum / max(seen, 1), ce_sum / max(seen, 1),
                             correct / max(seen, 1), 0.0)
        if rule != "last-epoch" or epoch == settings.epochs:
            # at most one pass over the training clips: more batches would only repeat clips
            bn_orders = epoch_order(labels, settings.batch_size, rng)[:settings.precise_bn_batches]
            recalibrate_batchnorm(model, [train_batch(o) for o in bn_orders], device)
        if val:
            found = predict(model, val, settings.window_s, device, settings.eval_batch_size)
            record.val = score(found.y_true, found.y_pred, config.num_classes).to_dict()
            record.val_loss = found.loss
        if rule == "test-uf1":
            found = predict(model, test, settings.window_s, device, settings.eval_batch_size)
            record.test = score(found.y_true, found.y_pred, config.num_classes).to_dict()
        chosen = record.test if rule == "test-uf1" else record.val
        if rule != "last-epoch" and chosen is not None:
            key = (float(chosen["uf1"] or 0.0), -(record.val_loss or 0.0) if rule == "val-uf1" else 0.0)
            if best_key is None or key > best_key:
                best_key, best_epoch = key, epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        record.seconds = time.perf_counter() - epoch_start
        history.append(record)
        if state_path is not None:
            save_state(state_path, state_key, ResumePoint(
                epoch, model.state_dict(), best_state, optimizer.state_dict(), schedule.state_dict(),
                dict(rng.bit_generator.state), torch.get_rng_state(), [asdict(r) for r in history], best_key,
                best_epoch))
        if on_epoch is not None:
            on_epoch(record)
    if best_state is not None:
        model.load_state_dict(best_state)
    tested = predict(model, test, settings.window_s, device, settings.eval_batch_size)
    if state_path is not None:
        state_path.unlink(missing_ok=True)
    return FoldOutcome(model.eval(), rule, best_epoch, tested, time.perf_counter() - started, history)
