"""Checkpoints: safetensors weights with the `ModelConfig` as metadata. Never pickle.

Loading needs no flags (the config travels in the file) and a wrong, truncated or foreign file gives one
`ModelFileError` line that names the file and the fix, with the option the caller's command reads the file from
(`--checkpoint` for fdp.evaluate and fdp.export, `--model` for the live recognizer's torch engine).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from fdp.config import CHECKPOINT_FORMAT, ModelConfig
from fdp.errors import ConfigError, FDPError, ModelFileError, first_line
from fdp.model import FDP


def _fix(flag: str) -> str:
    return (f"pass {flag} an FDP .safetensors checkpoint (python -m fdp.train writes them; the bundled one is "
            "models/fdp_live/model.safetensors)")


def save_checkpoint(model: FDP, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Write the weights (BatchNorm statistics included) and the config; `metadata` adds string fields."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    header = {**(metadata or {}), "format": CHECKPOINT_FORMAT, "fdp_config": model.config.to_json()}
    save_file(tensors, str(path), metadata=header)
    return path


def read_checkpoint_metadata(path: str | Path, flag: str = "--checkpoint") -> dict[str, str]:
    """The header of an FDP checkpoint, checked to be one; no weights are read."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such checkpoint; {_fix(flag)}")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except Exception as error:  # safetensors raises its own error types, and OSError for unreadable files
        raise ModelFileError(f"{path}: not a readable safetensors file ({first_line(error)}); {_fix(flag)}") from None
    if metadata.get("format") != CHECKPOINT_FORMAT or "fdp_config" not in metadata:
        raise ModelFileError(f"{path}: a safetensors file without FDP metadata (not an FDP checkpoint); {_fix(flag)}")
    return metadata


def read_checkpoint_config(path: str | Path, flag: str = "--checkpoint") -> ModelConfig:
    metadata = read_checkpoint_metadata(path, flag)
    try:
        return ModelConfig.from_json(metadata["fdp_config"])
    except (ConfigError, json.JSONDecodeError, TypeError) as error:
        raise ModelFileError(f"{path}: its model config cannot be read ({first_line(error)}); {_fix(flag)}") from None


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu", flag: str = "--checkpoint") -> FDP:
    """Build the model from the config in the file and load its weights; returns it in eval mode."""
    config = read_checkpoint_config(path, flag)
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as handle:
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except FDPError:
        raise
    except Exception as error:
        raise ModelFileError(f"{path}: its weights cannot be read ({first_line(error)}); {_fix(flag)}") from None
    model = FDP(config).to(device)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as error:
        raise ModelFileError(f"{path}: weights do not match its own config ({first_line(error)}); "
                             f"the file is damaged or was edited: {_fix(flag)}") from None
    return model.eval()
