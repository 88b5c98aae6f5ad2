"""TensorRT backend: what runs without a GPU (cache keys, version feature detection, the torch guard, the error
lines) runs here; building and running plans is marked `gpu` and also needs TensorRT, and runs in a child process
that never imports torch (pycuda beside torch can hang), asserting parity with ONNX Runtime FP32."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engines.base import ModelFiles
from engines.tensorrt_cache import BuildApi, EngineKey, Profile, default_cache_dir
from engines.tensorrt_engine import NO_TENSORRT, TORCH_LOADED, TensorRTEngine, cuda_index, refuse_beside_torch
from fdp.errors import ConfigError, EngineError
from models import make_model_folder

REPO = Path(__file__).resolve().parents[1]
TRT10_FLAGS = {"FP16", "BF16", "INT8", "TF32", "REFIT", "STRICT_TYPES", "VERSION_COMPATIBLE"}
TRT11_FLAGS = {"TF32", "REFIT", "VERSION_COMPATIBLE"}  # precision flags removed: strongly typed only
KEY = EngineKey("ab" * 32, "10.16.1", "NVIDIA H200", "9.0", "fp16", Profile(1, 1, 16))


def test_engine_key_names_every_field_and_changes_with_each():
    stem = KEY.stem("encoder")
    assert stem.startswith("encoder-fp16-nvidia_h200-sm90-trt10.16.1-") and stem == KEY.stem("encoder")
    changed = [dataclasses.replace(KEY, onnx_sha256="cd" * 32), dataclasses.replace(KEY, tensorrt_version="11.4.0"),
               dataclasses.replace(KEY, gpu_name="NVIDIA L4"), dataclasses.replace(KEY, compute_capability="8.9"),
               dataclasses.replace(KEY, precision="int8"), dataclasses.replace(KEY, profile=Profile(1, 2, 8))]
    assert len({key.stem("encoder") for key in changed} | {stem}) == 7
    assert KEY.stem("head") != stem


def test_engine_key_timing_cache_shared_by_graphs_and_precisions_of_one_gpu_and_version(tmp_path):
    other_graph = dataclasses.replace(KEY, onnx_sha256="cd" * 32, precision="int8", profile=Profile(1, 4, 4))
    assert KEY.timing_cache_path(tmp_path) == other_graph.timing_cache_path(tmp_path)
    assert KEY.timing_cache_path(tmp_path) != dataclasses.replace(KEY, gpu_name="NVIDIA L4").timing_cache_path(tmp_path)
    assert KEY.plan_path(tmp_path, "encoder").parent == tmp_path


def test_profile_shapes_over_the_faces_axis_and_bad_profile_one_line():
    assert Profile(1, 2, 8).shapes((1, 64, 64)) == ((1, 1, 64, 64), (2, 1, 64, 64), (8, 1, 64, 64))
    with pytest.raises(ConfigError) as error:
        Profile(2, 1, 8)
    assert str(error.value) == "TensorRT profile 2/1/8: need 1 <= min <= opt <= max faces"


def test_engine_cache_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("FDP_ENGINE_CACHE", str(tmp_path / "plans"))
    assert default_cache_dir() == tmp_path / "plans"
    monkeypatch.delenv("FDP_ENGINE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "fdp-live" / "engines"


def test_build_api_tensorrt10_uses_builder_flags():
    api = BuildApi.detect("10.16.1", TRT10_FLAGS)
    assert (api.major, api.strongly_typed) == (10, False)
    assert [api.precision_flag(p) for p in ("fp32", "fp16", "bf16", "int8")] == [None, "FP16", "BF16", "INT8"]


def test_build_api_tensorrt11_is_strongly_typed_precision_from_the_graph():
    api = BuildApi.detect("11.4.0.106", TRT11_FLAGS)
    assert (api.major, api.strongly_typed) == (11, True)
    assert {api.precision_flag(p) for p in ("fp32", "fp16", "bf16", "int8")} == {None}
    # feature detection, not the version string: a 10.x without the precision flags builds strongly typed too
    assert BuildApi.detect("10.99.0", TRT11_FLAGS).strongly_typed


def test_build_api_missing_flag_bad_version_and_graph_mismatch_one_line():
    with pytest.raises(ConfigError) as error:
        BuildApi.detect("8.6.1", {"FP16", "INT8"}).precision_flag("bf16")
    assert str(error.value) == "--precision bf16: TensorRT 8 has no BF16 builder flag; use --precision fp16 or fp32"
    with pytest.raises(ConfigError, match="TensorRT version 'dev' is not a version number; reinstall tensorrt"):
        BuildApi.detect("dev", TRT10_FLAGS)
    api = BuildApi.detect("10.16.1", TRT10_FLAGS)
    assert api.graph_requirement("int8", quantized_graph=False) == (
        "tensorrt builds int8 only from a quantized (QDQ) model: run python -m calibration.int8 first, then pass "
        "its folder with --model")
    assert api.graph_requirement("fp16", quantized_graph=True).startswith("--precision fp16: this model folder holds")
    assert api.graph_requirement("int8", quantized_graph=True) is None


def test_tensorrt_refuses_where_torch_is_imported(tmp_path):
    import torch  # noqa: F401  (this process has torch, as a training script would)

    with pytest.raises(EngineError) as error:
        TensorRTEngine(ModelFiles.locate(None), device="cuda")
    assert str(error.value) == TORCH_LOADED and "\n" not in TORCH_LOADED
    refuse_beside_torch({"numpy": object()})  # no torch among these modules: no complaint


def test_tensorrt_device_must_be_a_gpu_one_line():
    assert (cuda_index("cuda"), cuda_index("cuda:1")) == (0, 1)
    with pytest.raises(ConfigError) as error:
        cuda_index("cpu")
    assert str(error.value) == "--device cpu: the tensorrt engine runs on a GPU; use --device cuda or cuda:N"


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_tensorrt_not_installed_one_line_from_run_live():
    """run_live.py never imports torch, so the line it gives is what to install."""
    done = subprocess.run([sys.executable, "run_live.py", "--demo", "--headless", "--engine", "tensorrt",
                           "--zmq", "off"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    missing = "pycuda" if importlib.util.find_spec("pycuda") is None else "tensorrt"
    assert done.stderr == f"EngineError: {NO_TENSORRT} ({missing} is not installed)\n"


GPU_CHECK = textwrap.dedent("""
    import json, pathlib, sys
    import numpy as np
    from engines.base import ModelFiles
    from engines.onnxruntime_engine import OnnxRuntimeEngine
    from engines.tensorrt_engine import TensorRTEngine
    files, cache = ModelFiles.locate(sys.argv[1]), pathlib.Path(sys.argv[2])
    frames = np.random.default_rng(0).random((3, 1, 32, 32), dtype=np.float32)
    reference = OnnxRuntimeEngine(files)
    ref = reference.encode(frames)
    ref_logits = reference.head(ref.rank_features).logits
    report, lines = {}, []
    for precision in ("fp32", "fp16"):
        engine = TensorRTEngine(files, precision=precision, cache_dir=cache, log=lines.append)
        out = engine.encode(frames)
        report[precision] = {"features": float(np.abs(out.rank_features - ref.rank_features).max()),
                             "logits": float(np.abs(engine.head(ref.rank_features).logits - ref_logits).max())}
        engine.close()
    plans = sorted(cache.glob("encoder-fp32-*.plan"))
    plans[0].write_bytes(b"damaged")
    TensorRTEngine(files, precision="fp32", cache_dir=cache, log=lines.append).close()
    report["lines"] = lines
    assert "torch" not in sys.modules
    print(json.dumps(report))
""")


@pytest.mark.gpu
@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is None, reason="TensorRT is not installed on this machine")
def test_tensorrt_matches_onnxruntime_fp32_caches_and_rebuilds_a_damaged_plan(tmp_path):
    make_model_folder(tmp_path / "model")
    done = subprocess.run([sys.executable, "-c", GPU_CHECK, str(tmp_path / "model"), str(tmp_path / "cache")],
                          cwd=REPO, capture_output=True, text=True, timeout=600)  # -c: imports from REPO
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["fp32"]["features"] < 1e-3 and report["fp32"]["logits"] < 1e-3
    assert report["fp16"]["features"] < 5e-2 and report["fp16"]["logits"] < 5e-2
    lines = report["lines"]
    assert sum("building it (once)" in line for line in lines) == 4  # fp32 and fp16, encoder and head: misses
    assert sum("does not deserialize" in line for line in lines) == 1  # the damaged plan, rebuilt
    assert sum(line.startswith("tensorrt: built the") for line in lines) == 5
