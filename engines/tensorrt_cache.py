"""What a TensorRT engine is built for, and where its serialized plan and timing cache live on disk.

A plan is valid only for the exact graph, TensorRT version, GPU model and compute capability, precision and
optimization profile it was built with (NVIDIA's support matrix: plans are not portable across versions or
architectures), so all of these go into the file name. A plan built elsewhere is simply a miss; a file that
exists but does not deserialize is rebuilt and replaced. The timing cache is shared by every graph built with
one TensorRT version on one GPU model, which is what its entries depend on.

Nothing here imports TensorRT: keys and feature detection are plain data, tested on any machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from fdp.errors import ConfigError

ENV_ENGINE_CACHE = "FDP_ENGINE_CACHE"
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
DEFAULT_PRECISION = "fp16"  # ARCHITECTURE.md section 4: FP16 by default on TensorRT
_FLAG_FOR = {"fp16": "FP16", "bf16": "BF16", "int8": "INT8"}


def default_cache_dir() -> Path:
    """`$FDP_ENGINE_CACHE`, else `$XDG_CACHE_HOME/fdp-live/engines`, else `~/.cache/fdp-live/engines`."""
    if os.environ.get(ENV_ENGINE_CACHE):
        return Path(os.environ[ENV_ENGINE_CACHE]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "fdp-live" / "engines"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Profile:
    """The one optimization profile: the batch (faces) axis from `min` to `max`, tuned for `opt`."""

    min: int = 1
    opt: int = 1
    max: int = 16

    def __post_init__(self) -> None:
        if not 1 <= self.min <= self.opt <= self.max:
            raise ConfigError(f"TensorRT profile {self.min}/{self.opt}/{self.max}: need 1 <= min <= opt <= max faces")

    def shapes(self, sample_shape: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """(min, opt, max) full shapes for an input whose per-item shape is `sample_shape`."""
        return tuple((batch, *sample_shape) for batch in (self.min, self.opt, self.max))  # type: ignore[return-value]


@dataclass(frozen=True)
class EngineKey:
    """Everything a serialized plan depends on."""

    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str  # "8.9"
    precision: str
    profile: Profile

    def stem(self, role: str) -> str:
        """A file name readable by a person (role, precision, GPU, version) and exact by its hash of every field."""
        digest = hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]
        return f"{role}-{self.precision}-{_slug(self.gpu_name)}-sm{self.compute_capability.replace('.', '')}-" \
               f"trt{self.tensorrt_version}-{digest}"

    def plan_path(self, folder: Path, role: str) -> Path:
        return folder / f"{self.stem(role)}.plan"

    def timing_cache_path(self, folder: Path) -> Path:
        """Shared by all graphs of one TensorRT version on one GPU model (its entries are per layer, not per graph)."""
        return folder / f"timing-{_slug(self.gpu_name)}-sm{self.compute_capability.replace('.', '')}-" \
                        f"trt{self.tensorrt_version}.cache"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower() or "gpu"


@dataclass(frozen=True)
class BuildApi:
    """How this TensorRT takes a precision. TensorRT 10 has builder flags (FP16, BF16, INT8); TensorRT 11 is
    always strongly typed (the flags are gone: precision comes from the graph's own types, so FP16 needs an
    autocast graph and INT8 a Q/DQ one)."""

    major: int
    strongly_typed: bool
    flags: frozenset[str]  # the BuilderFlag members this TensorRT has

    @classmethod
    def detect(cls, version: str, builder_flags: set[str] | frozenset[str]) -> BuildApi:
        """From `tensorrt.__version__` and the names in `tensorrt.BuilderFlag.__members__`: strongly typed when
        the precision flags are absent (TensorRT 11), whatever the version string says."""
        try:
            major = int(version.split(".")[0])
        except ValueError:
            raise ConfigError(f"TensorRT version {version!r} is not a version number; reinstall tensorrt") from None
        has_precision_flags = "FP16" in builder_flags
        return cls(major, major >= 11 or not has_precision_flags, frozenset(builder_flags))

    def precision_flag(self, precision: str) -> str | None:
        """The BuilderFlag to set for `precision` (None: fp32, or a strongly typed build that takes it from the
        graph). A flag this TensorRT lacks (BF16 before 9.x) is one line."""
        if precision not in PRECISIONS:
            raise ConfigError(f"--precision {precision}: choose one of {', '.join(PRECISIONS)}")
        if self.strongly_typed or precision == "fp32":
            return None
        flag = _FLAG_FOR[precision]
        if flag not in self.flags:
            raise ConfigError(f"--precision {precision}: TensorRT {self.major} has no {flag} builder flag; use "
                              "--precision fp16 or fp32")
        return flag

    def graph_requirement(self, precision: str, quantized_graph: bool) -> str | None:
        """Why this graph cannot be built at this precision, as the user's one line (None when it can)."""
        if precision == "int8" and not quantized_graph:
            return ("tensorrt builds int8 only from a quantized (QDQ) model: run python -m calibration.int8 first, "
                    "then pass its folder with --model")
        if precision != "int8" and quantized_graph:
            return (f"--precision {precision}: this model folder holds a quantized (QDQ) graph, which TensorRT "
                    "runs as int8; pass --precision int8, or the FP32 model folder")
        return None
