"""ONNX Runtime static quantization of one FDP graph to a QDQ graph, which ONNX Runtime and TensorRT both run.

Two choices are worth measuring on a CPU (ARCHITECTURE.md section 6): which operators carry Q/DQ pairs (only the
attention and MLP MatMul/Gemm, or also the convolutions) and whether weights get one scale per output channel or
one per tensor. `calibration.int8` quantizes with each and keeps the faster one that still agrees with FP32.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quant_pre_process,
    quantize_static,
)

from fdp.errors import ModelFileError, first_line

MATMUL_OPS = ("MatMul", "Gemm")
CONV_OPS = ("Conv",)
QUANTIZATION_KEY = "quantization"  # metadata entry naming the choice a quantized graph was made with


@dataclass(frozen=True)
class QuantChoice:
    """What gets INT8: the operator families, and per-channel or per-tensor weight scales."""

    conv: bool  # also quantize convolutions (else only MatMul/Gemm)
    per_channel: bool

    @property
    def name(self) -> str:
        return f"{'matmul+conv' if self.conv else 'matmul'}-{'per-channel' if self.per_channel else 'per-tensor'}"

    @property
    def op_types(self) -> list[str]:
        return [*MATMUL_OPS, *(CONV_OPS if self.conv else ())]


QUANT_CHOICES: tuple[QuantChoice, ...] = tuple(QuantChoice(conv, per_channel)
                                               for conv in (False, True) for per_channel in (True, False))


def choice_named(name: str) -> QuantChoice:
    """The choice called `name` (as `QuantChoice.name` spells it)."""
    for choice in QUANT_CHOICES:
        if choice.name == name:
            return choice
    raise ValueError(name)


class _Batches(CalibrationDataReader):
    """Feeds ONNX Runtime's calibrator the real inputs, one batch at a time."""

    def __init__(self, input_name: str, batches: list[np.ndarray]):
        self._items: Iterator[np.ndarray] = iter(batches)
        self._input_name = input_name

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._items, None)
        return None if batch is None else {self._input_name: np.ascontiguousarray(batch, np.float32)}


def quantize_graph(source: Path, target: Path, inputs: np.ndarray, choice: QuantChoice,
                   batch_size: int = 32) -> None:
    """Write `source` quantized to QDQ at `target`, calibrated (min-max) on `inputs` (N, ...) float32.

    The graph is pre-processed first (shape inference, Conv+BatchNorm folding), so convolutions quantize as the
    fused operator ONNX Runtime runs. Activations are uint8 and weights int8 (U8S8), the fast form on x86 VNNI.
    The FDP metadata (config, role, training data) is carried over and the choice is recorded beside it.
    """
    graph = onnx.load(str(source))
    input_name = graph.graph.input[0].name
    with tempfile.TemporaryDirectory(prefix="fdp-quant-") as folder:
        prepared = Path(folder) / "prepared.onnx"
        try:
            quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
            quantize_static(str(prepared), str(target), _Batches(input_name, _split(inputs, batch_size)),
                            quant_format=QuantFormat.QDQ, op_types_to_quantize=choice.op_types,
                            per_channel=choice.per_channel, activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
                            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
        except Exception as error:  # ORT's quantizer raises plain Exception/RuntimeError/onnx errors alike
            raise ModelFileError(f"{source}: ONNX Runtime cannot quantize it ({first_line(error)}); export the "
                                 "model again with python -m fdp.export and retry") from None
    quantized = onnx.load(str(target))
    del quantized.metadata_props[:]
    for prop in graph.metadata_props:
        quantized.metadata_props.add(key=prop.key, value=prop.value)
    quantized.metadata_props.add(key=QUANTIZATION_KEY, value=f"int8 QDQ {choice.name} (U8S8, min-max)")
    onnx.save(quantized, str(target))


def _split(inputs: np.ndarray, batch_size: int) -> list[np.ndarray]:
    return [inputs[start:start + batch_size] for start in range(0, len(inputs), batch_size)]
