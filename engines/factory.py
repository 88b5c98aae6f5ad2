"""Choose and build an engine: `--engine auto|tensorrt|onnxruntime|torch`, `--precision`, `--compile`, and say
which engine was chosen and why. A combination an engine cannot run is one line naming what to do instead."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

from engines.base import Engine, ModelFiles
from fdp.errors import ConfigError, EngineError

ENGINE_CHOICES = ("auto", "tensorrt", "onnxruntime", "torch")
PRECISION_CHOICES = ("fp32", "fp16", "bf16", "int8")
NVIDIA_DEVICE = Path("/dev/nvidia0")  # the driver's first GPU node: present where an NVIDIA GPU is usable


@dataclass(frozen=True)
class GpuProbe:
    """What `auto` looks at, found without importing TensorRT, pycuda or torch (importing them costs seconds and
    would load a CUDA context into a process that may not use one)."""

    tensorrt: bool  # the tensorrt and pycuda packages are installed
    gpu: bool  # an NVIDIA GPU device node exists
    torch_loaded: bool  # torch is already imported here (pycuda must not run beside it)

    @classmethod
    def detect(cls) -> GpuProbe:
        installed = all(importlib.util.find_spec(name) is not None for name in ("tensorrt", "pycuda"))
        return cls(installed, NVIDIA_DEVICE.exists(), "torch" in sys.modules)


def choose_engine_kind(requested: str, probe: GpuProbe | None = None) -> tuple[str, str]:
    """The backend to use and why: `auto` takes TensorRT where it and a GPU are present, else ONNX Runtime."""
    if requested not in ENGINE_CHOICES:
        raise ConfigError(f"unknown engine {requested!r}; choose one of {', '.join(ENGINE_CHOICES)}")
    if requested != "auto":
        return requested, "asked for"
    probe = probe or GpuProbe.detect()
    if probe.tensorrt and probe.gpu and not probe.torch_loaded:
        return "tensorrt", "auto: TensorRT and an NVIDIA GPU found"
    if probe.tensorrt and probe.gpu:
        return "onnxruntime", ("auto: TensorRT and a GPU found, but torch is loaded in this process (pycuda can hang "
                               "beside it), so ONNX Runtime on the CPU")
    if probe.tensorrt:
        return "onnxruntime", "auto: TensorRT installed but no NVIDIA GPU found, so ONNX Runtime on the CPU"
    return "onnxruntime", ("auto: no TensorRT (pip install 'fdp-live[gpu]' on an NVIDIA machine), so ONNX Runtime "
                           "on the CPU")


def check_options(kind: str, device: str, precision: str | None, compile: bool, quantized: bool) -> None:
    """One line for a combination `kind` cannot run, before anything is loaded."""
    if precision is not None and precision not in PRECISION_CHOICES:
        raise ConfigError(f"--precision {precision}: choose one of {', '.join(PRECISION_CHOICES)}")
    if compile and kind != "torch":
        raise ConfigError(f"--compile applies to --engine torch; {kind} optimizes its graphs itself")
    if kind == "onnxruntime":
        if device != "cpu":
            raise ConfigError(f"the onnxruntime engine runs on the CPU; for {device} use --engine tensorrt or "
                              "--engine torch")
        if precision == "int8" and not quantized:
            raise ConfigError("onnxruntime runs int8 only from a quantized model: run python -m calibration.int8 "
                              "first, then pass its folder with --model")
        if precision in ("fp16", "bf16"):
            raise ConfigError(f"onnxruntime (CPU) runs fp32, or int8 from a quantized model; for {precision} use "
                              "--engine tensorrt, or --engine torch --device cuda")
        if precision == "fp32" and quantized:
            raise ConfigError("--precision fp32: this model folder holds a quantized (int8) graph; drop --precision, "
                              "or pass the FP32 model folder")


def load_engine(model: str | Path | None = None, kind: str = "auto", device: str = "cpu",
                precision: str | None = None, threads: int | None = None, compile: bool = False,
                dynamic_image: bool = False) -> tuple[Engine, str]:
    """Build the engine for the model at `model` (None: the bundled model). Returns it and why it was chosen.
    `precision` None is each engine's own default: the graph's (fp32, or int8 when quantized) on ONNX Runtime,
    fp16 on TensorRT (int8 for a quantized folder), fp32 on torch."""
    chosen, reason = choose_engine_kind(kind)
    files = ModelFiles.locate(model)
    from engines.onnxruntime_engine import is_quantized

    quantized = chosen != "torch" and files.encoder.is_file() and is_quantized(files.encoder)
    if chosen == "tensorrt" and device == "cpu":
        device = "cuda"  # the default device; TensorRT runs on the first GPU
    check_options(chosen, device, precision, compile, quantized)
    if chosen == "onnxruntime":
        from engines.onnxruntime_engine import OnnxRuntimeEngine

        return OnnxRuntimeEngine(files, threads=threads), reason
    if chosen == "tensorrt":
        from engines.tensorrt_engine import TensorRTEngine

        return TensorRTEngine(files, device=device, precision=precision), reason
    if importlib.util.find_spec("torch") is None:
        raise EngineError("the torch engine needs PyTorch: pip install torch==2.13.0 (or use --engine onnxruntime)")
    from engines.torch_engine import TorchEngine

    engine = TorchEngine(files, device=device, precision=precision, compile=compile, dynamic_image=dynamic_image)
    return engine, f"{reason}; warm-up {engine.warmup_s:.2f} s"

