"""TensorRT engine (NVIDIA GPUs): the two ONNX graphs built into plans, cached on disk, run with pycuda buffers.

Written against NVIDIA's documented Python API (TensorRT 10 and 11; see ../shared/notes/tensorrt.md):
`Builder` / `OnnxParser` / `build_serialized_network` with one optimization profile over the batch (faces) axis and
a persistent timing cache; `Runtime.deserialize_cuda_engine`; I/O by tensor name with `set_input_shape`,
`set_tensor_address` and `execute_async_v3` on one stream. TensorRT 10 takes precision from builder flags; 11 is
strongly typed, so FP16/BF16 come from an AutoCast graph (nvidia-modelopt) and INT8 from the QDQ graph that
`python -m calibration.int8` writes. Host buffers are page-locked and copies asynchronous, through pycuda, which
can hang beside PyTorch's CUDA context (NVIDIA/TensorRT#4608): this engine refuses to start where torch is loaded.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from engines.base import EncoderOutput, HeadOutput, ModelFiles, softmax
from engines.onnxruntime_engine import is_quantized, read_graph_metadata
from engines.tensorrt_cache import DEFAULT_PRECISION, BuildApi, EngineKey, Profile, default_cache_dir, file_sha256
from fdp.errors import ConfigError, EngineError, ModelFileError, first_line

WORKSPACE_BYTES = 1 << 30
TORCH_LOADED = ("the tensorrt engine uses pycuda, which can hang beside PyTorch's CUDA context, and torch is "
                "already imported in this process; run it from a process that never imports torch (run_live.py "
                "does not), or use --engine torch --device cuda")
NO_TENSORRT = ("the tensorrt engine needs TensorRT and pycuda: pip install 'fdp-live[gpu]' on a machine with an "
               "NVIDIA GPU and driver, or use --engine onnxruntime")


def refuse_beside_torch(modules: dict[str, Any] | None = None) -> None:
    """One line, before pycuda is touched, when torch is in this process (`modules`: sys.modules)."""
    if "torch" in (sys.modules if modules is None else modules):
        raise EngineError(TORCH_LOADED)


def import_tensorrt() -> tuple[Any, Any]:
    """tensorrt and pycuda.driver (initialised), or the one line that says what to install."""
    refuse_beside_torch()
    try:
        import pycuda.driver as cuda
        import tensorrt as trt
    except ImportError as error:
        raise EngineError(f"{NO_TENSORRT} ({error.name} is not installed)") from None
    try:
        cuda.init()
        count = cuda.Device.count()
    except cuda.Error as error:
        raise EngineError(f"the tensorrt engine found no usable NVIDIA GPU ({first_line(error)}); check the "
                          "driver with nvidia-smi, or use --engine onnxruntime") from None
    if count == 0:
        raise EngineError("the tensorrt engine found no NVIDIA GPU; use --engine onnxruntime")
    return trt, cuda


def cuda_index(device: str) -> int:
    """`cuda` or `cuda:N` as a device index; anything else is one line."""
    if device == "cuda":
        return 0
    if device.startswith("cuda:") and device[5:].isdigit():
        return int(device[5:])
    raise ConfigError(f"--device {device}: the tensorrt engine runs on a GPU; use --device cuda or cuda:N")


class _Graph:
    """One built plan with its context, page-locked host and device buffers sized for the profile's max batch."""

    def __init__(self, trt: Any, cuda: Any, plan: Any, max_batch: int):
        self._cuda = cuda
        self.engine = plan
        self.context = plan.create_execution_context()
        self.stream = cuda.Stream()
        self.names = [plan.get_tensor_name(i) for i in range(plan.num_io_tensors)]
        self.inputs = [n for n in self.names if plan.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in self.names if n not in self.inputs]
        self.host: dict[str, np.ndarray] = {}
        self.device: dict[str, Any] = {}
        for name in self.names:
            shape = tuple(max_batch if d < 0 else d for d in plan.get_tensor_shape(name))
            dtype = np.dtype(trt.nptype(plan.get_tensor_dtype(name)))
            self.host[name] = cuda.pagelocked_empty(int(np.prod(shape)), dtype)
            self.device[name] = cuda.mem_alloc(self.host[name].nbytes)
            self.context.set_tensor_address(name, int(self.device[name]))

    def run(self, array: np.ndarray) -> list[np.ndarray]:
        """Copy in, enqueue, copy out, on one stream; outputs in the graph's order, float32."""
        name = self.inputs[0]
        staged = self.host[name][:array.size].reshape(array.shape)
        np.copyto(staged, array, casting="same_kind")
        self.context.set_input_shape(name, array.shape)
        self._cuda.memcpy_htod_async(self.device[name], staged, self.stream)
        if not self.context.execute_async_v3(stream_handle=self.stream.handle):
            raise EngineError("TensorRT could not enqueue the graph; rebuild the engine cache (delete it) or use "
                              "--engine onnxruntime")
        shapes = {out: tuple(self.context.get_tensor_shape(out)) for out in self.outputs}
        views = {out: self.host[out][:int(np.prod(shapes[out]))] for out in self.outputs}
        for out in self.outputs:
            self._cuda.memcpy_dtoh_async(views[out], self.device[out], self.stream)
        self.stream.synchronize()
        return [views[out].reshape(shapes[out]).astype(np.float32) for out in self.outputs]


class TensorRTEngine:
    """The encoder and head graphs as TensorRT plans on one GPU."""

    name = "tensorrt"

    def __init__(self, files: ModelFiles, device: str = "cuda", precision: str | None = None,
                 cache_dir: Path | None = None, profile: Profile | None = None, log: Callable[[str], object] = print):
        index = cuda_index(device)
        trt, cuda = import_tensorrt()
        self.config, self.training_data = read_graph_metadata(files.encoder, "encoder")
        self.precision = precision or ("int8" if is_quantized(files.encoder) else DEFAULT_PRECISION)
        self.api = BuildApi.detect(trt.__version__, set(trt.BuilderFlag.__members__))
        problem = self.api.graph_requirement(self.precision, is_quantized(files.encoder))
        if problem:
            raise ConfigError(problem)
        self.api.precision_flag(self.precision)  # a flag this TensorRT lacks is one line before any build
        gpu = cuda.Device(index)
        self._cuda_context = gpu.retain_primary_context()  # the context TensorRT's runtime API uses too
        self._cuda_context.push()
        try:
            capability = ".".join(map(str, gpu.compute_capability()))
            self.profile = profile or Profile()
            folder = cache_dir or default_cache_dir()
            folder.mkdir(parents=True, exist_ok=True)
            logger = trt.Logger(trt.Logger.WARNING)
            graphs = {}
            for role, path in (("encoder", files.encoder), ("head", files.head)):
                key = EngineKey(file_sha256(path), trt.__version__, gpu.name(), capability, self.precision,
                                self.profile)
                plan = _cached_plan(trt, logger, key, folder, role, log) or \
                    _deserialize(trt, logger, _build(trt, logger, self.api, path, key, folder, role, log))
                if plan is None:
                    raise EngineError(f"TensorRT built a {role} plan it cannot load; delete {folder} and retry, or "
                                      "use --engine onnxruntime")
                graphs[role] = _Graph(trt, cuda, plan, self.profile.max)
        finally:
            self._cuda_context.pop()
        self._encoder, self._head = graphs["encoder"], graphs["head"]
        self.has_dynamic_image = len(self._head.outputs) > 1
        self.device = f"cuda:{index} ({gpu.name()}, sm {capability}, TensorRT {trt.__version__}" \
                      f"{', strongly typed' if self.api.strongly_typed else ''})"
        self.files = files

    def _run(self, graph: _Graph, array: np.ndarray) -> list[np.ndarray]:
        if not 1 <= len(array) <= self.profile.max:
            raise ConfigError(f"tensorrt engine: {len(array)} faces at once, but its profile holds 1 to "
                              f"{self.profile.max}; track fewer faces (--max-faces)")
        self._cuda_context.push()  # the caller may be another thread than the one that built the engine
        try:
            return graph.run(np.ascontiguousarray(array, np.float32))
        finally:
            self._cuda_context.pop()

    def encode(self, frames: np.ndarray) -> EncoderOutput:
        rank_features, scores = self._run(self._encoder, frames)
        return EncoderOutput(rank_features, scores)

    def head(self, pooled: np.ndarray) -> HeadOutput:
        outputs = self._run(self._head, pooled)
        return HeadOutput(outputs[0], softmax(outputs[0]), outputs[1] if len(outputs) > 1 else None)

    def close(self) -> None:
        self._encoder = self._head = None
        if self._cuda_context is not None:
            self._cuda_context.detach()
            self._cuda_context = None


def _deserialize(trt: Any, logger: Any, data: bytes) -> Any:
    runtime = trt.Runtime(logger)
    try:
        return runtime.deserialize_cuda_engine(data)
    except (RuntimeError, TypeError):  # some releases raise instead of returning None
        return None


def _cached_plan(trt: Any, logger: Any, key: EngineKey, folder: Path, role: str,
                 log: Callable[[str], object]) -> Any:
    """The cached plan for exactly this key, or None (a miss, or a file that does not deserialize: rebuilt)."""
    path = key.plan_path(folder, role)
    if not path.is_file():
        others = sorted(p.name for p in folder.glob(f"{role}-*.plan"))
        log(f"tensorrt: no {role} plan cached for this graph, GPU, TensorRT {key.tensorrt_version}, {key.precision} "
            f"and profile {key.profile.min}-{key.profile.max}{' (cached plans are for others)' if others else ''}; "
            f"building it (once)")
        return None
    plan = _deserialize(trt, logger, path.read_bytes())
    if plan is None:
        log(f"tensorrt: cached plan {path} does not deserialize (damaged, or built by another TensorRT or GPU); "
            "rebuilding it")
    return plan


def _build(trt: Any, logger: Any, api: BuildApi, onnx_path: Path, key: EngineKey, folder: Path, role: str,
           log: Callable[[str], object]) -> bytes:
    """Parse, build and cache one plan (and the timing cache); the progress line says how long it took."""
    start = time.monotonic()
    log(f"tensorrt: building the {role} plan ({key.precision}, faces {key.profile.min}-{key.profile.max}) ...")
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in 10; 11 is always strongly typed
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(_graph_bytes(api, onnx_path, key.precision)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ModelFileError(f"{onnx_path}: TensorRT cannot parse it ({errors[:200]}); export the model again with "
                             "python -m fdp.export, or use --engine onnxruntime")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    flag = api.precision_flag(key.precision)
    if flag is not None:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    timing_path = key.timing_cache_path(folder)
    timing = config.create_timing_cache(timing_path.read_bytes() if timing_path.is_file() else b"")
    config.set_timing_cache(timing, ignore_mismatch=False)
    profile = builder.create_optimization_profile()
    tensor = network.get_input(0)
    profile.set_shape(tensor.name, *key.profile.shapes(tuple(tensor.shape)[1:]))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineError(f"TensorRT could not build the {role} plan at {key.precision}; try --precision fp32, or "
                          "--engine onnxruntime")
    data = bytes(serialized)
    key.plan_path(folder, role).write_bytes(data)
    timing_path.write_bytes(bytes(config.get_timing_cache().serialize()))
    log(f"tensorrt: built the {role} plan in {time.monotonic() - start:.1f} s; cached as "
        f"{key.plan_path(folder, role)}")
    return data


def _graph_bytes(api: BuildApi, onnx_path: Path, precision: str) -> bytes:
    """The graph to parse. Strongly typed TensorRT (11) builds the types it is given, so FP16/BF16 first go
    through ModelOpt's AutoCast (sensitive nodes kept FP32, I/O kept float32 for the host buffers)."""
    if not (api.strongly_typed and precision in ("fp16", "bf16")):
        return onnx_path.read_bytes()
    try:
        from modelopt.onnx.autocast import convert_to_mixed_precision
    except ImportError:
        raise EngineError(f"TensorRT {api.major} is strongly typed: {precision} comes from the graph, which needs "
                          "nvidia-modelopt's AutoCast: pip install nvidia-modelopt, or use --precision fp32") from None
    converted = convert_to_mixed_precision(onnx_path=str(onnx_path), low_precision_type=precision,
                                           keep_io_types=True)
    return converted.SerializeToString()
