"""ONNX Runtime engine: the embedded default, on the CPU. Runs the two exported graphs as they are."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from engines.base import EncoderOutput, HeadOutput, ModelFiles, softmax
from fdp.config import ONNX_FORMAT, ModelConfig
from fdp.errors import ConfigError, ModelFileError, first_line


class OnnxRuntimeEngine:
    """Two ONNX Runtime sessions (encoder, head) on the CPU execution provider."""

    name = "onnxruntime"

    def __init__(self, files: ModelFiles, threads: int | None = None):
        self.config, self.training_data = read_graph_metadata(files.encoder, "encoder")
        head_config, _ = read_graph_metadata(files.head, "head")
        if head_config != self.config:
            raise ModelFileError(f"{files.head}: made from a different model than {files.encoder}; export both "
                                 f"graphs again with python -m fdp.export")
        if threads is not None and threads < 1:
            raise ConfigError(f"--threads {threads}: use 1 or more ONNX Runtime threads")
        threads = threads if threads is not None else min(os.cpu_count() or 1, 4)
        self._encoder = _session(files.encoder, threads)
        self._head = _session(files.head, threads)
        self.has_dynamic_image = len(self._head.get_outputs()) > 1
        self.precision = "int8" if is_quantized(files.encoder) else "fp32"
        self.device = f"cpu ({threads} threads)"
        self.files = files

    def encode(self, frames: np.ndarray) -> EncoderOutput:
        rank_features, scores = self._encoder.run(None, {"frames": np.ascontiguousarray(frames, np.float32)})
        return EncoderOutput(rank_features, scores)

    def head(self, pooled: np.ndarray) -> HeadOutput:
        outputs = self._head.run(None, {"pooled": np.ascontiguousarray(pooled, np.float32)})
        return HeadOutput(outputs[0], softmax(outputs[0]), outputs[1] if len(outputs) > 1 else None)

    def close(self) -> None:
        self._encoder = self._head = None  # sessions free their memory when released


def _session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: ORT's warnings are not the user's business
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # ORT raises its own Fail/InvalidGraph/InvalidArgument/... types
        raise ModelFileError(_load_failure(path, error)) from None


# What ONNX Runtime says when a graph asks for more than this build implements (an IR version, an opset, an op).
_NEWER_THAN_THIS_RUNTIME = re.compile(r"Unsupported model IR version|Opset \d+ is under development|"
                                      r"is not a registered function/op|Could not find an implementation")
_ILL_FORMED = ("InvalidGraph", "InvalidArgument", "InvalidProtobuf")


def _load_failure(path: Path, error: Exception) -> str:
    """Why ONNX Runtime refused a graph that parses as ONNX, as what is wrong and what to do about it."""
    text = str(error)
    if _NEWER_THAN_THIS_RUNTIME.search(text):
        graph = onnx.load(str(path), load_external_data=False)
        opset = max((o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")), default=0)
        return (f"{path}: needs a newer ONNX Runtime than onnxruntime {ort.__version__} (the graph is ONNX IR "
                f"{graph.ir_version}, opset {opset}); upgrade onnxruntime, or export the model again with an older "
                "opset (python -m fdp.export --opset 17)")
    line = first_line(error, 1000)
    detail = (line.partition(" failed:")[2] or line)[:160]  # what follows ORT's '[code] : Load model from X failed:'
    if type(error).__name__ in _ILL_FORMED:
        return (f"{path}: ONNX Runtime finds the graph invalid ({detail}); the file is damaged or was edited: "
                "export the model again with python -m fdp.export")
    return (f"{path}: ONNX Runtime cannot load it ({detail}); run the model's checkpoint instead with --engine "
            "torch, or reinstall onnxruntime")


def read_graph_metadata(path: Path, role: str) -> tuple[ModelConfig, str]:
    """The graph's model config and training-data note, checked to be an FDP export of this role."""
    if not path.is_file():
        raise ModelFileError(f"{path}: missing; export the model with python -m fdp.export --checkpoint "
                             f"MODEL.safetensors --out {path.parent}")
    try:
        graph = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # onnx raises DecodeError and friends for files that are not ONNX
        raise ModelFileError(f"{path}: not an ONNX file ({type(error).__name__}); export the model again with "
                             f"python -m fdp.export") from None
    meta = {prop.key: prop.value for prop in graph.metadata_props}
    if meta.get("format") != ONNX_FORMAT or meta.get("role") != role or "fdp_config" not in meta:
        raise ModelFileError(f"{path}: an ONNX graph without FDP {role} metadata (not an FDP export); export the "
                             f"model with python -m fdp.export")
    try:
        return ModelConfig.from_json(meta["fdp_config"]), meta.get("training_data", "")
    except (ConfigError, ValueError, TypeError) as error:
        raise ModelFileError(f"{path}: its model config cannot be read ({error}); export the model again with "
                             f"python -m fdp.export") from None


def is_quantized(path: Path) -> bool:
    """Whether the graph carries Q/DQ (or integer) operators: an INT8 model from calibration.int8. A file that
    does not parse counts as not quantized; reading its metadata then reports it in one line."""
    try:
        graph = onnx.load(str(path), load_external_data=False)
    except Exception:  # onnx raises DecodeError and friends for files that are not ONNX
        return False
    return any(node.op_type in ("QuantizeLinear", "DequantizeLinear", "MatMulInteger", "ConvInteger")
               for node in graph.graph.node)
