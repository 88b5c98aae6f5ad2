"""Checkpoints: safetensors weights with the `ModelConfig` as metadata. Never pickle.

Loading needs no flags (the config travels in the file) and a wrong, truncated or foreign file gives one
`ModelFileError` line that names the file and the fix, with the option the caller's command reads the file from
(`--checkpoint` for fdp.evaluate and fdp.export, `--model` for the live recognizer's torch engine).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
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


@dataclass(frozen=True, eq=False)
class InitialWeights:
    """Weights a training run starts from instead of random ones, and what they were trained on (which the new
    checkpoint records, since its model has seen that data too)."""

    weights: dict[str, torch.Tensor]  # every weight of the model, or all but those a crop size changes the shape of
    source: str  # the file, with its own training-data statement
    subjects: tuple[str, ...] = ()  # the subjects it was trained and validated on, as its metadata lists them


def load_matching_weights(path: str | Path, config: ModelConfig, flag: str = "--init") -> InitialWeights:
    """The weights of a checkpoint made for `config` (a run that starts from another run's weights). A model of
    another preset, classes, frames or window would load only by accident, so it is refused in one line. Another
    crop size is allowed: the encoder's convolutions and attention work at any size (its spatial reductions are
    ratios), so a 96 px model can start from a 64 px one; the weights whose shape depends on the crop (the
    dynamic-image decoder's first layer, used only in training) are left out and start random."""
    model = load_checkpoint(path, flag=flag)
    theirs, ours = model.config.to_dict(), config.to_dict()
    aligner_theirs = {**theirs["aligner"], "crop_size": ours["aligner"]["crop_size"]}
    differ = sorted(key for key in ours if theirs.get(key) != ours[key]
                    and not (key == "aligner" and aligner_theirs == ours["aligner"]))
    if differ:
        found = ", ".join(f"{k} {theirs.get(k)!r}" for k in differ)
        needed = ", ".join(f"{k} {ours[k]!r}" for k in differ)
        raise ConfigError(f"{flag} {path}: made for another model ({found}; this run needs {needed}): pick a "
                          "checkpoint trained with the same --preset, --classes, --window-s and frames")
    shapes = {name: value.shape for name, value in FDP(config).state_dict().items()}
    weights = {name: value.detach().clone() for name, value in model.state_dict().items()
               if value.shape == shapes[name]}
    metadata = read_checkpoint_metadata(path, flag)
    source = f"{path} ({metadata.get('training_data', 'no training-data statement')})"
    if len(weights) < len(shapes):
        source += (f"; {', '.join(sorted(set(shapes) - set(weights)))} started random: made for "
                   f"{theirs['aligner']['crop_size']} px crops, not {ours['aligner']['crop_size']}")
    subjects = [s for part in ("train_subjects", "val_subjects") for s in json.loads(metadata.get(part, "[]"))]
    return InitialWeights(weights, source, tuple(dict.fromkeys(subjects)))


def weights_digest(weights: dict[str, torch.Tensor]) -> str:
    """A short hash of a state dict's names and values (what a training state keys a warm start by)."""
    digest = hashlib.sha256()
    for name in sorted(weights):
        digest.update(name.encode())
        digest.update(weights[name].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:24]
