"""torch engine: the reference backend, and the GPU path where TensorRT is absent (CPU or CUDA, eager or
compiled, fp32 or half precision on CUDA)."""

from __future__ import annotations

import numpy as np

from engines.base import EncoderOutput, HeadOutput, ModelFiles, softmax
from fdp.errors import ConfigError, EngineError


class TorchEngine:
    """Runs the checkpoint's FDP model directly. Same inputs and outputs as the ONNX graphs."""

    name = "torch"

    def __init__(self, files: ModelFiles, device: str = "cpu", precision: str = "fp32", compile: bool = False,
                 dynamic_image: bool = False):
        import torch

        from fdp.checkpoint import load_checkpoint, read_checkpoint_metadata

        if device.startswith("cuda") and not torch.cuda.is_available():
            raise EngineError(f"torch engine: device {device!r} asked for, but torch sees no CUDA device; "
                              f"use --device cpu or --engine onnxruntime")
        dtypes = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
        if precision not in dtypes:
            raise ConfigError(f"torch engine: unknown precision {precision!r}; choose one of {', '.join(dtypes)}")
        if precision != "fp32" and not device.startswith("cuda"):
            raise ConfigError(f"torch engine: {precision} runs on CUDA only; run fp32 on the CPU, or pick a GPU with "
                              "--device cuda")
        self._torch = torch
        self._dtype = dtypes[precision]
        self._device = torch.device(device)
        self.model = load_checkpoint(files.checkpoint, device=self._device, flag="--model").to(self._dtype)
        self.config = self.model.config
        self.training_data = read_checkpoint_metadata(files.checkpoint, "--model").get("training_data", "")
        self.precision = precision
        self.has_dynamic_image = dynamic_image
        self._encode = self.model.encode_frames
        self._head = self.model.forward_head
        if compile:
            self._encode = torch.compile(self._encode, dynamic=True)
            self._head = torch.compile(self._head, dynamic=True)
        name = torch.cuda.get_device_name(self._device) if self._device.type == "cuda" else \
            f"{torch.get_num_threads()} threads"
        self.device = f"{self._device} ({name}){' compiled' if compile else ''}"

    def _to_device(self, array: np.ndarray):
        return self._torch.from_numpy(np.ascontiguousarray(array, np.float32)).to(self._device, self._dtype)

    def encode(self, frames: np.ndarray) -> EncoderOutput:
        with self._torch.inference_mode():
            rank_features, scores = self._encode(self._to_device(frames))
        return EncoderOutput(rank_features.float().cpu().numpy(), scores.float().cpu().numpy())

    def head(self, pooled: np.ndarray) -> HeadOutput:
        with self._torch.inference_mode():
            pooled_tensor = self._to_device(pooled)
            logits = self._head(pooled_tensor).float().cpu().numpy()
            image = (self.model.construct_dynamic_image(pooled_tensor).float().cpu().numpy()
                     if self.has_dynamic_image else None)
        return HeadOutput(logits, softmax(logits), image)

    def close(self) -> None:
        if self._device.type == "cuda":
            self._torch.cuda.empty_cache()
