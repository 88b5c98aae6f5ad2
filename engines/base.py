"""The `Engine` protocol every backend implements, its outputs, and where a model's files live.

An engine runs the two graphs of an FDP model: `encode` once per new face crop, `head` once per window on the
rank-pooled features. Inputs are float32 crops in [0, 1], (N, C, H, W); N counts faces.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from fdp.config import ModelConfig
from fdp.errors import ModelFileError

ENCODER_FILE = "encoder.onnx"
HEAD_FILE = "head.onnx"
CHECKPOINT_FILE = "model.safetensors"
BUNDLED_NAME = "fdp_live"


def bundled_model_folder() -> Path:
    """The bundled model's folder. Installed from a wheel, models/ is the package-data package `fdp_models`
    (pyproject.toml maps it, so the files live once, in models/); in a source checkout it is models/ beside us."""
    spec = importlib.util.find_spec("fdp_models")
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        if (Path(location) / BUNDLED_NAME / ENCODER_FILE).is_file():
            return Path(location) / BUNDLED_NAME
    return Path(__file__).resolve().parents[1] / "models" / BUNDLED_NAME


BUNDLED_MODEL = bundled_model_folder()


@dataclass(frozen=True)
class EncoderOutput:
    rank_features: np.ndarray  # (N, D) float32
    scores: np.ndarray  # (N,) float32


@dataclass(frozen=True)
class HeadOutput:
    logits: np.ndarray  # (N, K) float32
    probs: np.ndarray  # (N, K) float32, softmax of the logits
    dynamic_image: np.ndarray | None  # (N, C, H, W) in [0, 1], when the head graph constructs it


class Engine(Protocol):
    """One backend running one FDP model. Reports what it runs on, so the start-up line can say it."""

    name: str  # 'onnxruntime', 'torch', 'tensorrt'
    device: str  # e.g. 'cpu (2 threads)', 'cuda:0 NVIDIA H100'
    precision: str  # 'fp32', 'fp16', 'int8'
    config: ModelConfig
    training_data: str  # what the model learned from, as its files say ('' when they do not)

    def encode(self, frames: np.ndarray) -> EncoderOutput: ...

    def head(self, pooled: np.ndarray) -> HeadOutput: ...

    def close(self) -> None: ...


def crops_to_input(crops: np.ndarray) -> np.ndarray:
    """uint8 crops (N, H, W) gray or (N, H, W, 3) RGB -> float32 (N, C, H, W) in [0, 1], the graphs' input."""
    scaled = np.asarray(crops, dtype=np.float32) * np.float32(1.0 / 255.0)
    return scaled[:, None] if scaled.ndim == 3 else np.ascontiguousarray(scaled.transpose(0, 3, 1, 2))


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (shifted / shifted.sum(axis=-1, keepdims=True)).astype(np.float32)


@dataclass(frozen=True)
class ModelFiles:
    """Where one model's files are: a folder with encoder.onnx and head.onnx (ONNX engines) and/or
    model.safetensors (torch engine); `--model` may also name a .safetensors file directly."""

    folder: Path
    encoder: Path
    head: Path
    checkpoint: Path

    @classmethod
    def locate(cls, path: str | Path | None) -> ModelFiles:
        path = Path(path) if path is not None else BUNDLED_MODEL
        if path.is_file() and path.suffix == ".safetensors":
            folder, checkpoint = path.parent, path
        elif path.is_dir():
            folder, checkpoint = path, path / CHECKPOINT_FILE
        elif not path.exists():
            raise ModelFileError(f"{path}: no such model folder or file; pass --model with a folder holding "
                                 f"{ENCODER_FILE} and {HEAD_FILE}, or an FDP .safetensors checkpoint")
        else:
            raise ModelFileError(f"{path}: not a model folder or a .safetensors checkpoint; pass --model with a "
                                 f"folder holding {ENCODER_FILE} and {HEAD_FILE} (python -m fdp.export writes them)")
        return cls(folder, folder / ENCODER_FILE, folder / HEAD_FILE, checkpoint)
