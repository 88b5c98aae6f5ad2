"""The model folders the engine benchmarks time: the bundled model for `live`, a random-weight export otherwise
(speed does not depend on the weights)."""

from __future__ import annotations

from pathlib import Path

import torch

from engines.base import BUNDLED_MODEL
from fdp.checkpoint import save_checkpoint
from fdp.config import preset
from fdp.export import export_onnx
from fdp.model import FDP


def model_folder(name: str, scratch: Path) -> Path:
    """The bundled model for `live`; a random-weight export of preset `name` under `scratch` for any other."""
    if name == "live":
        return BUNDLED_MODEL
    torch.manual_seed(0)
    model = FDP(preset(name)).eval()
    folder = scratch / name
    folder.mkdir()
    save_checkpoint(model, folder / "model.safetensors", {"training_data": "random weights (benchmark)"})
    export_onnx(model, folder, training_data="random weights (benchmark)")
    return folder
