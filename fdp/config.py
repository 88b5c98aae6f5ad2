"""The model's configuration: one frozen `ModelConfig`, named presets, and the aligner settings it was trained with.

The config travels inside every checkpoint and ONNX export (as JSON metadata), so loading a model needs no flags
and a model never sees crops made differently from the ones it learned on.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from fdp.errors import ConfigError

SYNTHETIC_CLASSES: tuple[str, ...] = ("none", "negative", "positive", "surprise")
CHECKPOINT_FORMAT = "fdp-live/checkpoint/1"  # safetensors metadata 'format' of an FDP checkpoint
ONNX_FORMAT = "fdp-live/onnx/1"  # ONNX metadata 'format' of an exported FDP graph

ALIGNER_VERSION = "fdp-align/1"
"""The aligner this code implements; bumped whenever the crop geometry or pixel pipeline changes. A model records
the version it was trained with (`AlignerSettings.version`) and only runs on crops of that aligner."""


@dataclass(frozen=True)
class AlignerSettings:
    """How `fdp.align` cuts a face out of a frame. Part of the model's input definition."""

    crop_size: int = 64  # side of the square aligned crop, pixels
    gray: bool = True  # one gray channel (the paper's input) or three (RGB)
    eye_distance: float = 0.4  # distance between the eye centres as a fraction of the crop side
    version: str = ALIGNER_VERSION  # the aligner the crops come from: a model's stays what it was trained with

    def __post_init__(self) -> None:
        if self.crop_size < 16:
            raise ConfigError(f"aligner crop_size {self.crop_size} is too small; use 16 or more pixels")
        if not 0.1 <= self.eye_distance <= 0.8:
            raise ConfigError(f"aligner eye_distance {self.eye_distance} is outside 0.1..0.8 of the crop side")


@dataclass(frozen=True)
class ModelConfig:
    """Every hyper-parameter that shapes an FDP model (ARCHITECTURE.md §2)."""

    name: str = "live"
    aligner: AlignerSettings = field(default_factory=AlignerSettings)
    frames: int = 8  # T: frames per window, resampled evenly over window_s
    window_s: float = 0.5  # the duration a window spans when serving (the longest micro-expression)
    stem_channels: tuple[int, int, int] = (16, 16, 24)  # conv stem; it downsamples by 4
    stage_dims: tuple[int, ...] = (32, 48, 64, 96)  # width of each local-global stage
    local_blocks: tuple[int, ...] = (1, 1, 1, 1)  # N_L: local relational aggregators per stage
    global_blocks: tuple[int, ...] = (0, 1, 1, 1)  # N_G: global relational aggregators per stage
    sr_ratios: tuple[int, ...] = (4, 2, 1, 1)  # spatial reduction of keys/values in each stage's attention
    head_dim: int = 8  # channels per head, for both the local split and the self-attention
    mlp_ratio: float = 2.0
    rank_dim: int = 64  # D: the rank feature r_t
    head_hidden: int = 64  # hidden width of the MER head
    dropout: float = 0.1
    decoder_channels: tuple[int, ...] = (64, 32, 16, 16)  # dynamic-image decoder, coarse to fine, x2 each
    class_names: tuple[str, ...] = SYNTHETIC_CLASSES

    def __post_init__(self) -> None:
        stages = len(self.stage_dims)
        for label, values in (("local_blocks", self.local_blocks), ("global_blocks", self.global_blocks),
                              ("sr_ratios", self.sr_ratios)):
            if len(values) != stages:
                raise ConfigError(f"model config {self.name!r}: {label} has {len(values)} entries for {stages} stages")
        if self.frames < 2:
            raise ConfigError(f"model config {self.name!r}: frames={self.frames}; rank pooling needs 2 or more")
        if self.window_s <= 0:
            raise ConfigError(f"model config {self.name!r}: window_s must be positive, got {self.window_s}")
        if len(self.class_names) < 2 or len(set(self.class_names)) != len(self.class_names):
            raise ConfigError(f"model config {self.name!r}: class_names must be 2 or more distinct names")
        for width in (*self.stage_dims, self.stem_channels[-1]):
            if width % self.head_dim:
                raise ConfigError(f"model config {self.name!r}: width {width} is not a multiple of head_dim "
                                  f"{self.head_dim}")
        if self.image_size % self.total_stride:
            raise ConfigError(f"model config {self.name!r}: crop size {self.image_size} is not a multiple of the "
                              f"encoder's stride {self.total_stride}")
        if self.image_size % (2 ** len(self.decoder_channels)):
            raise ConfigError(f"model config {self.name!r}: crop size {self.image_size} is not a multiple of "
                              f"2**{len(self.decoder_channels)} (the decoder's upsampling)")

    @property
    def image_size(self) -> int:
        return self.aligner.crop_size

    @property
    def in_chans(self) -> int:
        return 1 if self.aligner.gray else 3

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def total_stride(self) -> int:
        """The stem halves twice; every stage after the first halves once."""
        return 4 * 2 ** (len(self.stage_dims) - 1)

    def replace(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Rebuild a config from `to_dict` output; unknown keys are a ConfigError, lists become tuples."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"model config has unknown fields {unknown}; it was written by a newer FDP Live")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        if isinstance(values.get("aligner"), dict):
            values["aligner"] = AlignerSettings(**values["aligner"])
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        return cls.from_dict(json.loads(text))


PRESETS: dict[str, ModelConfig] = {
    # The published scale: 8 frames of 64x64 gray, stage widths 96/192/384/768, NextViT-S depths [3, 4, 10, 3]
    # as local blocks plus one global block per stage (the released code never builds its global blocks).
    "paper": ModelConfig(
        name="paper", stem_channels=(64, 32, 64), stage_dims=(96, 192, 384, 768), local_blocks=(3, 4, 10, 3),
        global_blocks=(1, 1, 1, 1), sr_ratios=(4, 2, 1, 1), head_dim=32, mlp_ratio=3.0, rank_dim=512,
        head_hidden=256, decoder_channels=(256, 128, 64, 32)),
    # Small enough that one new frame costs a few ms on two CPU cores (docs/STATUS.md has the measurement).
    "live": ModelConfig(name="live"),
    # For tests: a forward pass in milliseconds.
    "tiny": ModelConfig(
        name="tiny", aligner=AlignerSettings(crop_size=32), frames=4, stem_channels=(8, 8, 8), stage_dims=(8, 16),
        local_blocks=(1, 1), global_blocks=(1, 1), sr_ratios=(2, 1), head_dim=4, mlp_ratio=2.0, rank_dim=16,
        head_hidden=16, dropout=0.0, decoder_channels=(16, 8)),
}


def preset(name: str, **changes: Any) -> ModelConfig:
    """A named preset, optionally with fields changed (e.g. `class_names` for a dataset's class setting)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown model preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name].replace(**changes) if changes else PRESETS[name]
