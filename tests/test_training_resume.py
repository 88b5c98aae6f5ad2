"""Epoch-granular resume: a fold cut off after an epoch continues from its saved state and ends with exactly the
weights and history of the run that was never cut; a state of other settings is not used."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fdp.clip_batches import ClipItem
from fdp.config import preset
from fdp.datasets.clips import ClipSample
from fdp.datasets.crop_cache import CachedCrops
from fdp.losses import LossWeights
from fdp.training_loop import EpochRecord, LoopSettings, train_fold

CONFIG = preset("tiny")


class CutOff(Exception):
    """The run stops here, as a killed process or a lost machine would stop it."""


def _items(count: int, seed: int) -> list[ClipItem]:
    rng = np.random.default_rng(seed)
    items = []
    for index in range(count):
        numbers = np.arange(1, 31)
        crops = rng.integers(0, 256, (30, 32, 32), dtype=np.uint8)
        clip = ClipSample("synthetic", f"s{index % 3}", f"clip{index}", tuple(Path(f"img{n}.jpg") for n in numbers),
                          tuple(int(n) for n in numbers), 8, 14, 22, 30.0, "x")
        items.append(ClipItem(clip, CachedCrops(crops, numbers, np.ones(30, bool), "f", "s"), index % 4))
    return items


SETTINGS = LoopSettings(epochs=3, batch_size=4, lr=1e-3, weight_decay=0.05, warmup_epochs=1.0,
                        loss_weights=LossWeights(dynamic_image=1.0, rank=1.0, rank_margin=0.1), window_s=0.5,
                        length_jitter=0.2, imbalance="weighted", augmentation=None, precise_bn_batches=2,
                        select_on_test=False, device="cpu")
TRAIN, VAL, TEST = _items(12, 1), _items(4, 2), _items(4, 3)


def _cut_after(epoch: int):
    def on_epoch(record: EpochRecord) -> None:
        if record.epoch == epoch:
            raise CutOff
    return on_epoch


def test_a_fold_cut_off_after_an_epoch_resumes_to_the_uninterrupted_result(tmp_path):
    whole = train_fold(CONFIG, TRAIN, VAL, TEST, SETTINGS, seed=5)
    state = tmp_path / "state.safetensors"
    with pytest.raises(CutOff):
        train_fold(CONFIG, TRAIN, VAL, TEST, SETTINGS, seed=5, on_epoch=_cut_after(2), state_path=state)
    assert state.is_file()
    resumed_epochs: list[int] = []
    resumed = train_fold(CONFIG, TRAIN, VAL, TEST, SETTINGS, seed=5, state_path=state,
                         on_epoch=lambda r: resumed_epochs.append(r.epoch))
    assert resumed_epochs == [3]  # only the epoch that had not run
    assert not state.exists()  # a finished fold leaves no state behind
    for name, tensor in whole.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name
    assert resumed.selected_epoch == whole.selected_epoch
    assert [r.train_loss for r in resumed.history] == [r.train_loss for r in whole.history]
    assert np.array_equal(resumed.test.probs, whole.test.probs)


def test_a_state_of_other_settings_or_data_starts_over(tmp_path):
    state = tmp_path / "state.safetensors"
    with pytest.raises(CutOff):
        train_fold(CONFIG, TRAIN, VAL, TEST, SETTINGS, seed=5, on_epoch=_cut_after(1), state_path=state)
    epochs: list[int] = []
    train_fold(CONFIG, TRAIN[:-1], VAL, TEST, SETTINGS, seed=5, state_path=state,
               on_epoch=lambda r: epochs.append(r.epoch))
    assert epochs == [1, 2, 3]
    state.write_bytes(b"not a state")  # a truncated or foreign file is ignored, not half-used
    epochs.clear()
    train_fold(CONFIG, TRAIN, VAL, TEST, SETTINGS, seed=5, state_path=state, on_epoch=lambda r: epochs.append(r.epoch))
    assert epochs == [1, 2, 3]
