"""Real (small) FDP models for tests: random weights, non-trivial BatchNorm statistics, exported like the bundle."""

from __future__ import annotations

from pathlib import Path

import torch

from fdp.checkpoint import save_checkpoint
from fdp.config import preset
from fdp.export import export_onnx
from fdp.model import FDP


def make_model_folder(folder: Path, name: str = "tiny", seed: int = 2, head_dynamic_image: bool = False) -> FDP:
    """Write model.safetensors, encoder.onnx and head.onnx for a `name`-preset model into `folder`."""
    torch.manual_seed(seed)
    model = FDP(preset(name))
    config = model.config
    model.train()
    with torch.no_grad():
        model(torch.rand(4, config.frames, config.in_chans, config.image_size, config.image_size))
    model.eval()
    folder.mkdir(parents=True, exist_ok=True)
    save_checkpoint(model, folder / "model.safetensors", {"training_data": "random weights (a test model)"})
    export_onnx(model, folder, head_dynamic_image=head_dynamic_image, training_data="random weights (a test model)")
    return model
