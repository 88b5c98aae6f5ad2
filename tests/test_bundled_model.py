"""The bundled default model: it loads with no flags, says what it was trained on, and recognizes synthetic
micro-expressions on faces it never saw well above chance, through the engine that ships (ONNX Runtime)."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from engines.base import BUNDLED_MODEL, crops_to_input
from engines.factory import load_engine
from fdp.checkpoint import read_checkpoint_metadata
from fdp.clip_batches import ClipItem, window_crops
from fdp.config import SYNTHETIC_CLASSES
from fdp.metrics import score
from fdp.preprocess import clip_key, preprocess_clips
from fdp.rank_pooling import rank_pool
from fdp.synthesis.clip_plan import Ranges
from fdp.synthesis.face_sources import DEFAULT_SOURCES
from fdp.synthesis.heldout import HELDOUT_SUBJECTS, write_heldout_set
from fdp.synthesis.synthetic import load_synthetic

# 128 fresh clips (32 per class) on the held-out faces, with a seed the model card's evaluation did not use, at the
# synthesizer's default sizes, which the bundled model was trained on: peaks of 0.5-3 % of the face width.
CLIPS, SEED = 128, 7
SIZES = Ranges()
# The model card measures 0.603 on 400 such clips (seed 1000). One 128-clip sample has a standard error of
# sqrt(.603 * .397 / 128) = 0.043, so 0.47 is that figure minus three of them: a regression breaks it, sampling
# rarely does. It is also 5.7 standard errors (of chance, 0.038) above chance (0.25); the model it replaced
# scored 0.310 on these sizes and would fail it.
THRESHOLD = 0.47


def test_bundled_model_loads_with_no_flags_and_states_its_training_data():
    engine, reason = load_engine()
    assert engine.name == "onnxruntime" and reason.startswith("auto")
    assert engine.config.class_names == SYNTHETIC_CLASSES and engine.config.name == "live"
    assert "synthetic" in engine.training_data and "never" in engine.training_data
    metadata = read_checkpoint_metadata(BUNDLED_MODEL / "model.safetensors")
    assert metadata["training_data"] == engine.training_data
    trained = _trained_identities()
    assert trained and not set(HELDOUT_SUBJECTS) & trained
    total = sum(p.stat().st_size for p in BUNDLED_MODEL.iterdir())
    assert total < 20 * 2**20


def _trained_identities() -> set[str]:
    """Every subject the bundled model learned from: its own training and validation subjects and, where it was
    warm-started (`fdp.train --init`), those of the weights it started from."""
    metadata = read_checkpoint_metadata(BUNDLED_MODEL / "model.safetensors")
    parts = ("train_subjects", "val_subjects", "initial_subjects")
    return {s.split("/")[-1] for part in parts for s in json.loads(metadata.get(part, "[]"))}


def test_every_training_identity_is_a_real_training_face_or_made_only_of_them():
    """No held-out face, nor a morph or reshape of one, is in the bundled model's training or validation set, nor
    in those of the weights it started from."""
    trained = _trained_identities()
    real = set(DEFAULT_SOURCES)
    derived = {f"morph_{a}_{b}" for a, b in itertools.permutations(real, 2)} | {
        f"{face}_reshape{k}" for face in real for k in range(1, 21)}
    assert trained <= real | derived, sorted(trained - real - derived)
    assert not real & set(HELDOUT_SUBJECTS)  # and the parents themselves are never evaluation faces


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_bundled_model_on_held_out_faces_stays_within_three_standard_errors_of_its_card(tmp_path):
    root = write_heldout_set(tmp_path / "heldout", CLIPS, SEED, workers=2, ranges=SIZES)
    clips = load_synthetic(root)
    engine, _ = load_engine()
    config = engine.config
    _, crops = preprocess_clips(clips, config.aligner, cache_dir=tmp_path / "crops", window_s=config.window_s,
                                progress=False)
    y_true, y_pred = [], []
    for clip in clips:
        window = window_crops(ClipItem(clip, crops[clip_key(clip)], 0), config.frames, config.window_s)
        pooled = rank_pool(engine.encode(crops_to_input(window)).rank_features)
        y_pred.append(int(engine.head(pooled[None]).probs.argmax()))
        y_true.append(SYNTHETIC_CLASSES.index(clip.label))
    result = score(y_true, y_pred, len(SYNTHETIC_CLASSES))
    print(f"held-out faces: accuracy {result.accuracy:.3f}, UF1 {result.uf1:.3f} on {len(clips)} clips")
    assert len(clips) == CLIPS and set(np.bincount(y_true)) == {CLIPS // 4}
    assert result.accuracy >= THRESHOLD
