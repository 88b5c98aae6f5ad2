"""Warm starts (`fdp.train --init`): a fold starts from a checkpoint's weights, a checkpoint of another model is
refused in one line, the new checkpoint says what it started from, and a cut-off warm-started fold resumes only
from a state of the same starting weights."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from rich.console import Console

from fdp.checkpoint import (
    InitialWeights,
    load_matching_weights,
    read_checkpoint_metadata,
    save_checkpoint,
    weights_digest,
)
from fdp.config import preset
from fdp.datasets.classes import class_setting
from fdp.datasets.folds import Fold
from fdp.errors import ConfigError
from fdp.fold_runner import FoldData, compute_fold
from fdp.model import FDP
from fdp.preprocess import clip_key
from fdp.train_config import TrainConfig
from fdp.training_loop import train_fold
from tests.test_training_resume import CONFIG, SETTINGS, TEST, TRAIN, VAL, CutOff, _cut_after

STILL = dataclasses.replace(SETTINGS, epochs=1, lr=1e-12, weight_decay=0.0, precise_bn_batches=0)


def _parameters(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in model.named_parameters()}


def test_a_fold_starts_from_the_initial_weights():
    torch.manual_seed(3)
    start = FDP(CONFIG).state_dict()
    warm = train_fold(CONFIG, TRAIN, VAL, TEST, STILL, seed=5, initial=start)
    cold = train_fold(CONFIG, TRAIN, VAL, TEST, STILL, seed=5)
    warm_parameters, cold_parameters = _parameters(warm.model), _parameters(cold.model)
    for name, value in warm_parameters.items():  # a learning rate of 1e-12 leaves every weight where it started
        assert torch.allclose(value, start[name], atol=1e-6), name
    assert any(not torch.allclose(value, start[name], atol=1e-3) for name, value in cold_parameters.items())


def test_a_state_of_other_initial_weights_starts_over(tmp_path):
    first, second = (FDP(CONFIG).state_dict() for _ in range(2))
    assert weights_digest(first) != weights_digest(second)
    state = tmp_path / "state.safetensors"
    with pytest.raises(CutOff):
        train_fold(CONFIG, TRAIN, VAL, TEST, SETTINGS, seed=5, on_epoch=_cut_after(1), state_path=state,
                   initial=first)
    epochs: list[int] = []
    train_fold(CONFIG, TRAIN, VAL, TEST, SETTINGS, seed=5, state_path=state, initial=second,
               on_epoch=lambda r: epochs.append(r.epoch))
    assert epochs == [1, 2, 3]


def test_a_checkpoint_of_the_same_model_is_loaded_with_its_training_data(tmp_path):
    model = FDP(CONFIG)
    path = save_checkpoint(model, tmp_path / "start.safetensors", {
        "training_data": "synthetic MEs on two faces", "train_subjects": '["synthetic/a"]',
        "val_subjects": '["synthetic/b"]'})
    initial = load_matching_weights(path, CONFIG)
    assert weights_digest(initial.weights) == weights_digest(model.state_dict())
    assert "synthetic MEs on two faces" in initial.source and str(path) in initial.source
    assert initial.subjects == ("synthetic/a", "synthetic/b")
    assert read_checkpoint_metadata(path)["training_data"] == "synthetic MEs on two faces"


@pytest.mark.parametrize("other", [
    preset("tiny", class_names=("negative", "positive", "surprise")),
    preset("live"),
    preset("tiny", window_s=0.3),
])
def test_a_checkpoint_of_another_model_is_refused_in_one_line(tmp_path, other):
    path = save_checkpoint(FDP(other), tmp_path / "other.safetensors")
    with pytest.raises(ConfigError) as refused:
        load_matching_weights(path, CONFIG)
    message = str(refused.value)
    assert "\n" not in message and "--init" in message and str(path) in message


def test_a_warm_started_fold_records_where_it_started(tmp_path):
    """`compute_fold` writes the starting checkpoint and its training data into the new checkpoint."""
    crops = {clip_key(item.clip): item.crops for item in TRAIN}
    initial = InitialWeights(FDP(CONFIG).state_dict(), "start.safetensors (synthetic MEs on two faces)",
                             ("synthetic/a",))
    data = FoldData([(item.clip, item.label) for item in TRAIN], crops, class_setting("synthetic-4"), CONFIG, initial)
    config = TrainConfig(datasets=("synthetic",), roots=(tmp_path,), preset="tiny", epochs=1, batch_size=4)
    fold = Fold(0, test=("synthetic/s0",), train=("synthetic/s1", "synthetic/s2"), val=())
    result = compute_fold(config, data, fold, seed=1, console=Console(quiet=True), progress=False)
    (tmp_path / "checkpoint.safetensors").write_bytes(result.checkpoint)
    metadata = read_checkpoint_metadata(tmp_path / "checkpoint.safetensors")
    assert metadata["initialised_from"] == "start.safetensors (synthetic MEs on two faces)"
    assert json.loads(metadata["initial_subjects"]) == ["synthetic/a"]


def test_a_model_of_another_crop_size_starts_from_every_weight_that_fits(tmp_path):
    """A 64 px start for a 32 px run: the encoder's weights carry over; the decoder's crop-sized first layer does
    not, is named in the source, and starts as a fresh seeded model's would."""
    larger = preset("tiny").replace(aligner=dataclasses.replace(preset("tiny").aligner, crop_size=64))
    start = FDP(larger)
    path = save_checkpoint(start, tmp_path / "larger.safetensors")
    initial = load_matching_weights(path, CONFIG)
    left_out = set(start.state_dict()) - set(initial.weights)
    assert left_out and all(name.startswith("decoder.") for name in left_out)
    assert all(name in initial.source for name in left_out) and "64 px" in initial.source
    warm = train_fold(CONFIG, TRAIN, VAL, TEST, STILL, seed=5, initial=initial.weights)
    parameters = _parameters(warm.model)
    for name, value in initial.weights.items():
        if name in parameters:
            assert torch.allclose(parameters[name], value, atol=1e-6), name
