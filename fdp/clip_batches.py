"""Clip batches for training and evaluation: T crops per clip from the crop cache, augmented per clip.

Micro-expressions are motion of a few pixels between frames, so an augmentation drawn per frame (a different
shift, flip or brightness for each) would add more motion than the expression has. Every augmentation here is
drawn once per clip and applied alike to its T frames. Plain NumPy/OpenCV: the batches become tensors in the
training loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from fdp.datasets.clips import ClipSample
from fdp.datasets.crop_cache import CachedCrops
from fdp.datasets.sampling import sample_indices


@dataclass(frozen=True)
class Augmentation:
    """Modest, clip-consistent augmentation; ranges are half-widths of uniform draws."""

    flip: float = 0.5  # probability of a horizontal flip
    rotate_deg: float = 5.0
    scale: float = 0.05  # zoom by 1 +- this
    shift: float = 0.04  # translation, as a fraction of the crop side
    brightness: float = 0.08  # added to [0, 1] pixel values
    contrast: float = 0.15  # scale of the deviation from the clip's mean, 1 +- this


@dataclass(frozen=True, eq=False)
class ClipItem:
    """A clip, its cached crops and its class index under the run's class setting."""

    clip: ClipSample
    crops: CachedCrops
    label: int


def window_crops(item: ClipItem, frames: int, window_s: float, rng: np.random.Generator | None = None,
                 length_jitter: float = 0.2) -> np.ndarray:
    """The T crops of one window, (T, S, S) or (T, S, S, 3) uint8: centred without rng, randomly placed with."""
    indices = sample_indices(item.clip, frames, window_s, rng=rng, length_jitter=length_jitter)
    return item.crops.take([item.clip.frame_numbers[i] for i in indices])


def augment_clip(crops: np.ndarray, rng: np.random.Generator, augmentation: Augmentation) -> np.ndarray:
    """One draw of every augmentation, applied to all T frames alike; uint8 in, float32 in [0, 1] out."""
    side = crops.shape[1]
    angle = rng.uniform(-augmentation.rotate_deg, augmentation.rotate_deg)
    zoom = 1.0 + rng.uniform(-augmentation.scale, augmentation.scale)
    shift = rng.uniform(-augmentation.shift, augmentation.shift, size=2) * side
    matrix = cv2.getRotationMatrix2D(((side - 1) / 2, (side - 1) / 2), angle, zoom)
    matrix[:, 2] += shift
    flip = rng.random() < augmentation.flip
    brightness = rng.uniform(-augmentation.brightness, augmentation.brightness)
    contrast = 1.0 + rng.uniform(-augmentation.contrast, augmentation.contrast)
    out = np.empty(crops.shape, np.float32)
    for t, frame in enumerate(crops):
        warped = cv2.warpAffine(frame, matrix, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        out[t] = warped[:, ::-1] if flip else warped
    out /= 255.0
    mean = float(out.mean())
    return np.clip((out - mean) * contrast + mean + brightness, 0.0, 1.0)


def clip_batch(items: Sequence[ClipItem], frames: int, window_s: float, rng: np.random.Generator | None = None,
               augmentation: Augmentation | None = None,
               length_jitter: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """(clips (B, T, C, H, W) float32 in [0, 1], labels (B,) int64). Evaluation: rng=None (centred, no
    augmentation). Training: a generator, and an Augmentation or None."""
    batch = []
    for item in items:
        crops = window_crops(item, frames, window_s, rng, length_jitter)
        if rng is not None and augmentation is not None:
            clip = augment_clip(crops, rng, augmentation)
        else:
            clip = crops.astype(np.float32) / 255.0
        batch.append(clip[:, None] if clip.ndim == 3 else clip.transpose(0, 3, 1, 2))  # (T, C, H, W)
    labels = np.array([item.label for item in items], np.int64)
    return np.stack(batch), labels


def class_weights(labels: Sequence[int], num_classes: int) -> np.ndarray:
    """Inverse-frequency weights N / (K_present * n_c), so each present class weighs the same in total and the
    average weight per clip is 1; a class absent from training gets 0 (it has no clip to weigh)."""
    counts = np.bincount(np.asarray(labels, np.int64), minlength=num_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(num_classes)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights


def epoch_order(labels: Sequence[int], batch_size: int, rng: np.random.Generator,
                balanced: bool = False) -> list[np.ndarray]:
    """Index batches for one epoch: a shuffle of every clip, or with `balanced` N draws with replacement at
    probability 1/n_class, so each class is seen equally often. A last batch of one clip is dropped (BatchNorm
    cannot normalize a batch of one)."""
    labels = np.asarray(labels, np.int64)
    if balanced:
        counts = np.bincount(labels)
        p = 1.0 / counts[labels]
        order = rng.choice(len(labels), size=len(labels), replace=True, p=p / p.sum())
    else:
        order = rng.permutation(len(labels))
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    return [b for b in batches if len(b) > 1]
