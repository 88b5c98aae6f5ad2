"""torch engine: the reference backend, and the GPU path where TensorRT is absent (CPU or CUDA, eager or
compiled; fp32, or fp16/bf16 autocast on CUDA; the per-frame encoder call replayed from CUDA graphs)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from engines.base import EncoderOutput, HeadOutput, ModelFiles, softmax
from fdp.errors import ConfigError, EngineError

PRECISIONS = ("fp32", "fp16", "bf16")


class EncoderGraphs:
    """The encoder captured as one CUDA graph per batch size (faces at once), replayed per frame.

    The live loop calls the encoder with the same shape frame after frame, so launching its few hundred small
    kernels one by one costs more than the work; a replayed graph launches them at once. Each batch size is
    captured the first time it is seen (after warm-up runs on a side stream, as torch.cuda.graphs requires)."""

    def __init__(self, torch: Any, encode: Callable, autocast: Callable):
        self._torch, self._encode, self._autocast = torch, encode, autocast
        self._graphs: dict[tuple[int, ...], tuple[Any, Any, tuple[Any, Any]]] = {}

    def __call__(self, frames: Any) -> tuple[Any, Any]:
        torch = self._torch
        shape = tuple(frames.shape)
        if shape not in self._graphs:
            static = frames.clone()
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side), self._autocast():
                for _ in range(3):
                    self._encode(static)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph), self._autocast():
                outputs = self._encode(static)
            self._graphs[shape] = (graph, static, outputs)
        graph, static, outputs = self._graphs[shape]
        static.copy_(frames)
        graph.replay()
        return outputs[0].clone(), outputs[1].clone()


class TorchEngine:
    """Runs the checkpoint's FDP model directly. Same inputs and outputs as the ONNX graphs."""

    name = "torch"

    def __init__(self, files: ModelFiles, device: str = "cpu", precision: str | None = None, compile: bool = False,
                 dynamic_image: bool = False, cuda_graphs: bool = True):
        import torch

        from fdp.checkpoint import load_checkpoint, read_checkpoint_metadata

        precision = precision or "fp32"
        if precision == "int8":
            raise ConfigError("torch engine: int8 runs on --engine onnxruntime or tensorrt from a quantized model "
                              "(python -m calibration.int8); the torch engine runs fp32, fp16 or bf16")
        if precision not in PRECISIONS:
            raise ConfigError(f"torch engine: unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise EngineError(f"torch engine: device {device!r} asked for, but torch sees no CUDA device; "
                              f"use --device cpu or --engine onnxruntime")
        if precision != "fp32" and not device.startswith("cuda"):
            raise ConfigError(f"torch engine: {precision} runs on CUDA only; run fp32 on the CPU, or pick a GPU with "
                              "--device cuda")
        self._torch = torch
        self._device = torch.device(device)
        cuda = self._device.type == "cuda"
        dtype = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
        # Autocast keeps fp32 weights and runs matmuls/convs in half precision, reductions and norms in fp32.
        self._autocast = (lambda: torch.autocast("cuda", dtype=dtype)) if dtype is not None else \
            (lambda: torch.autocast(self._device.type, enabled=False))
        self.model = load_checkpoint(files.checkpoint, device=self._device, flag="--model")
        self.config = self.model.config
        self.training_data = read_checkpoint_metadata(files.checkpoint, "--model").get("training_data", "")
        self.precision = precision
        self.has_dynamic_image = dynamic_image
        self._encode: Callable = self.model.encode_frames
        self._head: Callable = self.model.forward_head
        if compile:  # on CUDA, reduce-overhead mode replays CUDA graphs itself
            mode = "reduce-overhead" if cuda else None
            self._encode = torch.compile(self._encode, mode=mode)
            self._head = torch.compile(self._head, mode=mode)
        elif cuda and cuda_graphs:
            self._encode = EncoderGraphs(torch, self._encode, self._autocast)
        how = "compiled" if compile else "CUDA graphs" if cuda and cuda_graphs else "eager"
        name = torch.cuda.get_device_name(self._device) if cuda else f"{torch.get_num_threads()} threads"
        self.device = f"{self._device} ({name}) {how}"
        self.warmup_s = self._warm_up()

    def _warm_up(self) -> float:
        """One call of each graph at one face, so compilation and graph capture happen before the first frame."""
        start = time.perf_counter()
        config = self.config
        features = self.encode(np.zeros((1, config.in_chans, config.image_size, config.image_size), np.float32))
        self.head(features.rank_features)
        return time.perf_counter() - start

    def _to_device(self, array: np.ndarray) -> Any:
        return self._torch.from_numpy(np.ascontiguousarray(array, np.float32)).to(self._device)

    def encode(self, frames: np.ndarray) -> EncoderOutput:
        with self._torch.inference_mode(), self._autocast():
            rank_features, scores = self._encode(self._to_device(frames))
        return EncoderOutput(rank_features.float().cpu().numpy(), scores.float().cpu().numpy())

    def head(self, pooled: np.ndarray) -> HeadOutput:
        with self._torch.inference_mode(), self._autocast():
            pooled_tensor = self._to_device(pooled)
            logits = self._head(pooled_tensor).float().cpu().numpy()
            image = (self.model.construct_dynamic_image(pooled_tensor).float().cpu().numpy()
                     if self.has_dynamic_image else None)
        return HeadOutput(logits, softmax(logits), image)

    def close(self) -> None:
        if self._device.type == "cuda":
            self._torch.cuda.empty_cache()
