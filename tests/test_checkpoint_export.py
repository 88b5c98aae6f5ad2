"""Checkpoints round-trip bit-exactly and refuse foreign files in one line; ONNX graphs match torch."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from safetensors.numpy import save_file

from fdp.checkpoint import load_checkpoint, save_checkpoint
from fdp.config import ModelConfig, preset
from fdp.errors import ModelFileError
from fdp.export import export_onnx
from fdp.model import FDP

FIX = ("pass --checkpoint an FDP .safetensors checkpoint (python -m fdp.train writes them; the bundled one is "
       "models/fdp_live/model.safetensors)")


@pytest.fixture()
def trained_like_tiny(tmp_path):
    """A tiny model with non-trivial BatchNorm statistics (one training-mode pass)."""
    torch.manual_seed(1)
    model = FDP(preset("tiny"))
    model.train()
    model(torch.rand(4, 4, 1, 32, 32))
    return model.eval()


def test_checkpoint_round_trip_is_bit_exact(tmp_path, trained_like_tiny):
    path = save_checkpoint(trained_like_tiny, tmp_path / "m.safetensors", {"note": "test"})
    loaded = load_checkpoint(path)
    assert loaded.config == trained_like_tiny.config
    for (name, a), (_, b) in zip(trained_like_tiny.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    clip = torch.rand(2, 4, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(trained_like_tiny(clip).logits, loaded(clip).logits)


def test_checkpoint_missing_file_one_line(tmp_path):
    path = tmp_path / "absent.safetensors"
    with pytest.raises(ModelFileError) as error:
        load_checkpoint(path)
    assert str(error.value) == f"{path}: no such checkpoint; {FIX}"


def test_checkpoint_foreign_safetensors_one_line(tmp_path):
    path = tmp_path / "foreign.safetensors"
    save_file({"weight": np.zeros((2, 2), np.float32)}, str(path))
    with pytest.raises(ModelFileError) as error:
        load_checkpoint(path)
    assert str(error.value) == f"{path}: a safetensors file without FDP metadata (not an FDP checkpoint); {FIX}"


def test_checkpoint_not_safetensors_one_line(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"\x80\x04\x95 this is a pickle, not safetensors")
    with pytest.raises(ModelFileError) as error:
        load_checkpoint(path)
    message = str(error.value)
    assert message.startswith(f"{path}: not a readable safetensors file (") and message.endswith(FIX)
    assert "\n" not in message


def test_checkpoint_truncated_one_line(tmp_path, trained_like_tiny):
    path = save_checkpoint(trained_like_tiny, tmp_path / "m.safetensors")
    path.write_bytes(path.read_bytes()[:-500])
    with pytest.raises(ModelFileError) as error:
        load_checkpoint(path)
    assert str(error.value).startswith(f"{path}: ") and "\n" not in str(error.value)


@pytest.mark.parametrize("head_dynamic_image", [False, True])
def test_export_onnx_parity_batch_1_and_4(tmp_path, trained_like_tiny, head_dynamic_image):
    report = export_onnx(trained_like_tiny, tmp_path, head_dynamic_image=head_dynamic_image)
    outputs = 3 + (1 if head_dynamic_image else 0)  # rank_features, scores, logits [, dynamic_image], at 2 batches
    assert len(report.max_abs_diff) == 2 * outputs
    assert max(report.max_abs_diff.values()) <= 1e-4
    # The graphs carry their config, and a fresh session at batch 3 (not a checked batch) still matches torch.
    for path in (report.encoder_path, report.head_path):
        meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
        assert ModelConfig.from_json(meta["fdp_config"]) == trained_like_tiny.config
    frames = torch.rand(3, 1, 32, 32)
    session = ort.InferenceSession(str(report.encoder_path), providers=["CPUExecutionProvider"])
    rank_features, scores = session.run(None, {"frames": frames.numpy()})
    with torch.no_grad():
        want_features, want_scores = trained_like_tiny.encode_frames(frames)
    np.testing.assert_allclose(rank_features, want_features.numpy(), atol=1e-4)
    np.testing.assert_allclose(scores, want_scores.numpy(), atol=1e-4)
