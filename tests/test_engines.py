"""Engines: every backend present agrees with the torch model; wrong model files give one line."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from engines.base import ModelFiles, crops_to_input
from engines.factory import GpuProbe, choose_engine_kind, load_engine
from fdp.errors import ConfigError, ModelFileError
from fdp.model import FDP
from models import make_model_folder


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    return folder, make_model_folder(folder, head_dynamic_image=True)


def reference(model: FDP, frames: np.ndarray):
    with torch.no_grad():
        features, scores = model.encode_frames(torch.from_numpy(frames))
        logits = model.forward_head(features)
        image = model.construct_dynamic_image(features)
    return features.numpy(), scores.numpy(), logits.numpy(), image.numpy()


@pytest.mark.parametrize("kind", ["onnxruntime", "torch"])
def test_engine_cpu_matches_torch_model(model_folder, kind):
    folder, model = model_folder
    engine, _ = load_engine(folder, kind, dynamic_image=True)
    frames = np.random.default_rng(0).random((3, 1, 32, 32), dtype=np.float32)
    features, scores, logits, image = reference(model, frames)
    encoded = engine.encode(frames)
    head = engine.head(encoded.rank_features)
    np.testing.assert_allclose(encoded.rank_features, features, atol=1e-4)
    np.testing.assert_allclose(encoded.scores, scores, atol=1e-4)
    np.testing.assert_allclose(head.logits, logits, atol=1e-4)
    np.testing.assert_allclose(head.probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(head.dynamic_image, image, atol=1e-4)
    assert engine.config == model.config and engine.precision == "fp32" and engine.device.startswith("cpu")
    assert engine.training_data == "random weights (a test model)"


@pytest.mark.gpu
def test_engine_torch_cuda_matches_cpu(model_folder):
    folder, model = model_folder
    engine, _ = load_engine(folder, "torch", device="cuda")
    frames = np.random.default_rng(1).random((4, 1, 32, 32), dtype=np.float32)
    features, scores, logits, _ = reference(model, frames)
    encoded = engine.encode(frames)
    np.testing.assert_allclose(encoded.rank_features, features, atol=1e-3)
    np.testing.assert_allclose(engine.head(encoded.rank_features).logits, logits, atol=1e-3)
    assert "cuda" in engine.device


@pytest.mark.gpu
@pytest.mark.parametrize("precision, compile, atol", [("fp32", False, 1e-3), ("fp16", False, 3e-2),
                                                      ("bf16", False, 1e-1), ("fp16", True, 3e-2)])
def test_engine_torch_cuda_autocast_graphs_and_compile_match_onnxruntime_fp32(model_folder, precision, compile, atol):
    """CUDA graphs (eager) or torch.compile (reduce-overhead), each batch size captured once and replayed: every
    call, including a batch size seen before, matches ONNX Runtime FP32 on the CPU."""
    folder, _ = model_folder
    reference, _ = load_engine(folder, "onnxruntime")
    engine, reason = load_engine(folder, "torch", device="cuda", precision=precision, compile=compile)
    assert engine.precision == precision and ("compiled" if compile else "CUDA graphs") in engine.device
    assert reason.startswith("asked for; warm-up ") and reason.endswith(" s")
    rng = np.random.default_rng(2)
    for batch in (1, 3, 1, 3):
        frames = rng.random((batch, 1, 32, 32), dtype=np.float32)
        expected, encoded = reference.encode(frames), engine.encode(frames)
        np.testing.assert_allclose(encoded.rank_features, expected.rank_features, atol=atol)
        np.testing.assert_allclose(engine.head(expected.rank_features).logits,
                                   reference.head(expected.rank_features).logits, atol=atol)


def test_engine_auto_picks_onnxruntime_on_cpu():
    assert choose_engine_kind("auto")[0] == "onnxruntime"
    with pytest.raises(ConfigError, match="unknown engine 'tensorflow'"):
        choose_engine_kind("tensorflow")


def test_engine_auto_on_this_machine_says_why_in_its_start_line(model_folder):
    probe = GpuProbe.detect()
    _, reason = load_engine(model_folder[0])
    assert reason == choose_engine_kind("auto", probe)[1] and reason.startswith("auto: ")
    if not probe.tensorrt:
        assert reason == ("auto: no TensorRT (pip install 'fdp-live[gpu]' on an NVIDIA machine), "
                          "so ONNX Runtime on the CPU")


@pytest.mark.parametrize("probe, kind, why", [
    (GpuProbe(tensorrt=True, gpu=True, torch_loaded=False), "tensorrt", "auto: TensorRT and an NVIDIA GPU found"),
    (GpuProbe(tensorrt=True, gpu=True, torch_loaded=True), "onnxruntime", "torch is loaded in this process"),
    (GpuProbe(tensorrt=True, gpu=False, torch_loaded=False), "onnxruntime", "TensorRT installed but no NVIDIA GPU"),
    (GpuProbe(tensorrt=False, gpu=True, torch_loaded=False), "onnxruntime", "auto: no TensorRT"),
])
def test_engine_auto_picks_tensorrt_only_with_tensorrt_a_gpu_and_no_torch(probe, kind, why):
    chosen, reason = choose_engine_kind("auto", probe)
    assert chosen == kind and why in reason and "\n" not in reason
    assert choose_engine_kind("onnxruntime", probe) == ("onnxruntime", "asked for")


@pytest.mark.parametrize("kind, options, line", [
    ("onnxruntime", {"precision": "int8"}, "onnxruntime runs int8 only from a quantized model: run python -m "
                                           "calibration.int8 first, then pass its folder with --model"),
    ("onnxruntime", {"precision": "fp16"}, "onnxruntime (CPU) runs fp32, or int8 from a quantized model; for fp16 "
                                           "use --engine tensorrt, or --engine torch --device cuda"),
    ("onnxruntime", {"compile": True}, "--compile applies to --engine torch; onnxruntime optimizes its graphs itself"),
    ("onnxruntime", {"device": "cuda"}, "the onnxruntime engine runs on the CPU; for cuda use --engine tensorrt or "
                                        "--engine torch"),
    ("torch", {"precision": "int8"}, "torch engine: int8 runs on --engine onnxruntime or tensorrt from a quantized "
                                     "model (python -m calibration.int8); the torch engine runs fp32, fp16 or bf16"),
    ("torch", {"precision": "bf16"}, "torch engine: bf16 runs on CUDA only; run fp32 on the CPU, or pick a GPU with "
                                     "--device cuda"),
    ("onnxruntime", {"precision": "fp8"}, "--precision fp8: choose one of fp32, fp16, bf16, int8"),
])
def test_engine_unsupported_option_is_one_line(model_folder, kind, options, line):
    with pytest.raises(ConfigError) as error:
        load_engine(model_folder[0], kind, **options)
    assert str(error.value) == line


def test_engine_options_reach_the_engine_from_the_command_line():
    from realtime.live_config import LiveConfig, parse_config

    config = parse_config(["--demo", "--engine", "torch", "--precision", "bf16", "--compile"])
    assert (config.engine, config.precision, config.compile) == ("torch", "bf16", True)
    assert parse_config(["--demo"]).precision is None
    with pytest.raises(ConfigError, match="^--precision fp64: choose one of fp32, fp16, bf16, int8$"):
        LiveConfig(demo=True, precision="fp64")


def test_crops_to_input_gray_and_rgb():
    gray = np.full((2, 8, 8), 255, np.uint8)
    rgb = np.zeros((2, 8, 8, 3), np.uint8)
    rgb[..., 2] = 51
    assert crops_to_input(gray).shape == (2, 1, 8, 8) and crops_to_input(gray).max() == 1.0
    converted = crops_to_input(rgb)
    assert converted.shape == (2, 3, 8, 8) and np.allclose(converted[:, 2], 0.2)


def test_model_missing_folder_one_line(tmp_path):
    with pytest.raises(ModelFileError) as error:
        load_engine(tmp_path / "nowhere")
    assert str(error.value) == (f"{tmp_path / 'nowhere'}: no such model folder or file; pass --model with a folder "
                                f"holding encoder.onnx and head.onnx, or an FDP .safetensors checkpoint")


def test_model_folder_without_graphs_one_line(tmp_path):
    with pytest.raises(ModelFileError) as error:
        load_engine(tmp_path, "onnxruntime")
    assert str(error.value) == (f"{tmp_path / 'encoder.onnx'}: missing; export the model with python -m fdp.export "
                                f"--checkpoint MODEL.safetensors --out {tmp_path}")


def test_model_garbage_onnx_one_line(tmp_path, model_folder):
    (tmp_path / "encoder.onnx").write_bytes(b"GIF89a not a model")
    (tmp_path / "head.onnx").write_bytes((model_folder[0] / "head.onnx").read_bytes())
    with pytest.raises(ModelFileError) as error:
        load_engine(tmp_path, "onnxruntime")
    message = str(error.value)
    assert message.startswith(f"{tmp_path / 'encoder.onnx'}: ") and "\n" not in message
    assert message.endswith("export the model again with python -m fdp.export")


def test_model_foreign_onnx_one_line(tmp_path, model_folder):
    graph = onnx.load(str(model_folder[0] / "encoder.onnx"))
    del graph.metadata_props[:]
    onnx.save(graph, str(tmp_path / "encoder.onnx"))
    (tmp_path / "head.onnx").write_bytes((model_folder[0] / "head.onnx").read_bytes())
    with pytest.raises(ModelFileError) as error:
        load_engine(tmp_path, "onnxruntime")
    assert str(error.value) == (f"{tmp_path / 'encoder.onnx'}: an ONNX graph without FDP encoder metadata (not an "
                                f"FDP export); export the model with python -m fdp.export")


def test_model_files_locate_safetensors_path(model_folder):
    folder, _ = model_folder
    files = ModelFiles.locate(folder / "model.safetensors")
    assert files.encoder == folder / "encoder.onnx" and files.checkpoint == folder / "model.safetensors"


def _copy_with_encoder(folder, graph: onnx.ModelProto, model_folder) -> None:
    onnx.save(graph, str(folder / "encoder.onnx"))
    (folder / "head.onnx").write_bytes((model_folder[0] / "head.onnx").read_bytes())


def test_model_graph_newer_than_onnxruntime_names_the_upgrade_or_opset(tmp_path, model_folder):
    import onnxruntime as ort

    graph = onnx.load(str(model_folder[0] / "encoder.onnx"))
    graph.opset_import[0].version = 99
    _copy_with_encoder(tmp_path, graph, model_folder)
    with pytest.raises(ModelFileError) as error:
        load_engine(tmp_path, "onnxruntime")
    assert str(error.value) == (f"{tmp_path / 'encoder.onnx'}: needs a newer ONNX Runtime than onnxruntime "
                                f"{ort.__version__} (the graph is ONNX IR {graph.ir_version}, opset 99); upgrade "
                                "onnxruntime, or export the model again with an older opset (python -m fdp.export "
                                "--opset 17)")


def test_model_graph_ill_formed_says_export_again(tmp_path, model_folder):
    graph = onnx.load(str(model_folder[0] / "encoder.onnx"))
    graph.graph.node[0].input[0] = "nothing_here"
    _copy_with_encoder(tmp_path, graph, model_folder)
    with pytest.raises(ModelFileError) as error:
        load_engine(tmp_path, "onnxruntime")
    assert str(error.value) == (f"{tmp_path / 'encoder.onnx'}: ONNX Runtime finds the graph invalid (Invalid model. "
                                "Node input 'nothing_here' is not a graph input, initializer, or output of a previous "
                                "node.); the file is damaged or was edited: export the model again with python -m "
                                "fdp.export")


def test_torch_engine_half_precision_on_cpu_names_a_flag_that_exists(model_folder):
    from engines.torch_engine import TorchEngine

    with pytest.raises(ConfigError) as error:
        TorchEngine(ModelFiles.locate(model_folder[0]), device="cpu", precision="fp16")
    assert str(error.value) == ("torch engine: fp16 runs on CUDA only; run fp32 on the CPU, "
                                "or pick a GPU with --device cuda")
