"""Choose and build an engine: `--engine auto|onnxruntime|torch`, and say which one was chosen and why."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from engines.base import Engine, ModelFiles
from fdp.errors import ConfigError, EngineError

ENGINE_CHOICES = ("auto", "onnxruntime", "torch")


def choose_engine_kind(requested: str) -> tuple[str, str]:
    """The backend to use and a short reason. `auto` takes ONNX Runtime on the CPU; the TensorRT backend is not
    built yet, so a GPU is used only through `--engine torch --device cuda`."""
    if requested not in ENGINE_CHOICES:
        raise ConfigError(f"unknown engine {requested!r}; choose one of {', '.join(ENGINE_CHOICES)}")
    if requested != "auto":
        return requested, "asked for"
    return "onnxruntime", "auto: ONNX Runtime is the CPU default (TensorRT backend not built yet)"


def load_engine(model: str | Path | None = None, kind: str = "auto", device: str = "cpu",
                precision: str = "fp32", threads: int | None = None, compile: bool = False,
                dynamic_image: bool = False) -> tuple[Engine, str]:
    """Build the engine for the model at `model` (None: the bundled model). Returns it and why it was chosen."""
    chosen, reason = choose_engine_kind(kind)
    files = ModelFiles.locate(model)
    if chosen == "onnxruntime":
        if device != "cpu":
            raise ConfigError(f"the onnxruntime engine runs on the CPU; for {device} use --engine torch")
        from engines.onnxruntime_engine import OnnxRuntimeEngine

        return OnnxRuntimeEngine(files, threads=threads), reason
    if importlib.util.find_spec("torch") is None:
        raise EngineError("the torch engine needs PyTorch: pip install torch==2.13.0 (or use --engine onnxruntime)")
    from engines.torch_engine import TorchEngine

    return TorchEngine(files, device=device, precision=precision, compile=compile,
                       dynamic_image=dynamic_image), reason
