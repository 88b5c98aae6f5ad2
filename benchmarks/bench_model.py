"""Model cost: per-frame encoder and per-window head, torch eager vs ONNX Runtime (two exporters), presets `live`
and `paper`, batch 1 and 4, with parameters and GFLOPs; and one new window done the streaming way (one encoder
call + pooling of cached features + head) against re-encoding all T frames.

Usage: python -m benchmarks.bench_model [--presets live paper] [--rounds 20]
       python -m benchmarks.bench_model --crop-sizes 64 96 128   (the `live` encoder per frame at each crop side,
                                                                 ONNX Runtime, interleaved in one run)
Random weights: speed does not depend on what the weights are.
"""

from __future__ import annotations

import argparse
import os
import tempfile

os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")  # a cold compile worker would skew every timing

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from benchmarks.timing import interleaved, machine_line  # noqa: E402
from engines.base import ModelFiles  # noqa: E402
from engines.onnxruntime_engine import OnnxRuntimeEngine  # noqa: E402
from engines.torch_engine import TorchEngine  # noqa: E402
from fdp.checkpoint import save_checkpoint  # noqa: E402
from fdp.config import preset  # noqa: E402
from fdp.export import export_onnx  # noqa: E402
from fdp.layers import SpatialReductionAttention  # noqa: E402
from fdp.model import FDP, count_parameters  # noqa: E402
from fdp.rank_pooling import rank_pool_gather, warm_up  # noqa: E402


def encoder_gflops(model: FDP) -> float:
    """GFLOPs (2 x MACs) of one frame through the encoder. torch's counter sees no FLOPs in CPU
    scaled_dot_product_attention, so each attention adds 4 * N * M * C analytically (QK^T and AV)."""
    attention_flops = []

    def count(module: SpatialReductionAttention, inputs: tuple[torch.Tensor], _output: torch.Tensor) -> None:
        _, chans, height, width = inputs[0].shape
        context = module.reduce(inputs[0]).shape
        attention_flops.append(4 * height * width * context[2] * context[3] * chans)

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, SpatialReductionAttention)]
    config = model.config
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.encode_frames(torch.rand(1, config.in_chans, config.image_size, config.image_size))
    for hook in hooks:
        hook.remove()
    return (counter.get_total_flops() + sum(attention_flops)) / 1e9


def bench_preset(name: str, rounds: int) -> None:
    torch.manual_seed(0)
    config = preset(name)
    model = FDP(config).eval()
    steps = config.frames
    with tempfile.TemporaryDirectory() as legacy_dir, tempfile.TemporaryDirectory() as dynamo_dir:
        save_checkpoint(model, f"{legacy_dir}/model.safetensors")
        export_onnx(model, legacy_dir, exporter="legacy", opset=17)
        export_onnx(model, dynamo_dir, exporter="dynamo", opset=18)
        engines = {
            "torch": TorchEngine(ModelFiles.locate(legacy_dir)),
            "ort-legacy17": OnnxRuntimeEngine(ModelFiles.locate(legacy_dir)),
            "ort-dynamo18": OnnxRuntimeEngine(ModelFiles.locate(dynamo_dir)),
        }
        print(f"\n== preset {name}: {count_parameters(model):,} parameters "
              f"(encoder {count_parameters(model.encoder) + count_parameters(model.rank_scorer):,}), "
              f"encoder {encoder_gflops(model):.3f} GFLOPs/frame, {config.frames} frames of "
              f"{config.image_size}x{config.image_size}x{config.in_chans}")
        rng = np.random.default_rng(0)
        print(f"{'graph':>8} {'batch':>5} | " + " ".join(f"{k + ' ms':>15}" for k in engines) +
              " | ort-legacy/torch  ort-dynamo/torch")
        for graph, width in (("encoder", None), ("head", config.rank_dim)):
            for batch in (1, 4):
                if graph == "encoder":
                    data = rng.random((batch, config.in_chans, config.image_size, config.image_size), np.float32)
                    cases = {k: (lambda e=e, data=data: e.encode(data)) for k, e in engines.items()}
                else:
                    data = rng.standard_normal((batch, width)).astype(np.float32)
                    cases = {k: (lambda e=e, data=data: e.head(data)) for k, e in engines.items()}
                t = {k: v.median_ms for k, v in interleaved(cases, rounds=rounds).items()}
                print(f"{graph:>8} {batch:>5} | " + " ".join(f"{t[k]:15.3f}" for k in engines) +
                      f" | {t['ort-legacy17'] / t['torch']:16.2f} {t['ort-dynamo18'] / t['torch']:17.2f}")

        # One new window: streaming (encode the new frame, pool T cached features, head) vs re-encoding T frames.
        ring = rng.standard_normal((4 * steps, config.rank_dim)).astype(np.float32)
        indices = np.arange(steps)
        frame = rng.random((1, config.in_chans, config.image_size, config.image_size), np.float32)
        window = np.repeat(frame, steps, axis=0)
        print(f"one new window at T={steps} (batch 1 face):")
        for key in ("torch", "ort-legacy17"):
            engine = engines[key]

            def streaming(engine=engine) -> None:
                engine.encode(frame)
                engine.head(rank_pool_gather(ring, indices)[None])

            def re_encoding(engine=engine) -> None:
                features = engine.encode(window).rank_features
                engine.head(rank_pool_gather(features, indices)[None])

            t = interleaved({"streaming": streaming, "re-encoding": re_encoding}, rounds=rounds)
            streaming_ms, re_encoding_ms = t["streaming"].median_ms, t["re-encoding"].median_ms
            print(f"  {key:>13}: streaming {streaming_ms:.3f} ms, re-encoding {re_encoding_ms:.3f} ms, "
                  f"ratio {re_encoding_ms / streaming_ms:.1f}x")


def bench_crop_sizes(sizes: list[int], rounds: int) -> None:
    """The `live` encoder's cost per frame at several crop sides, interleaved so the ratios share the machine's
    load: the price of showing the model sub-pixel motion with more pixels."""
    from fdp.config import AlignerSettings

    torch.manual_seed(0)
    engines, gflops, folders = {}, {}, []
    for size in sizes:
        model = FDP(preset("live", aligner=AlignerSettings(crop_size=size))).eval()
        folder = tempfile.TemporaryDirectory()
        folders.append(folder)
        save_checkpoint(model, f"{folder.name}/model.safetensors")
        export_onnx(model, folder.name, exporter="legacy", opset=17)
        engines[size], gflops[size] = OnnxRuntimeEngine(ModelFiles.locate(folder.name)), encoder_gflops(model)
    frame = {s: np.random.default_rng(0).random((1, 1, s, s), np.float32) for s in sizes}
    t = interleaved({s: (lambda e=engines[s], x=frame[s]: e.encode(x)) for s in sizes}, rounds=rounds)
    base = sizes[0]
    print(f"`live` encoder per frame, ONNX Runtime, batch 1 ({rounds} interleaved rounds):")
    for size in sizes:
        print(f"  {size:4d} px: {t[size].median_ms:7.3f} ms (p90 {t[size].p90_ms:7.3f}), {gflops[size]:.3f} GFLOPs, "
              f"{t[size].median_ms / t[base].median_ms:5.2f}x the {base} px encoder")
    for folder in folders:
        folder.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["live", "paper"])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--crop-sizes", nargs="+", type=int, help="compare the live encoder at these crop sides")
    args = parser.parse_args()
    warm_up()
    print(f"machine: {machine_line()}; torch {torch.__version__} ({torch.get_num_threads()} threads)")
    if args.crop_sizes:
        bench_crop_sizes(args.crop_sizes, args.rounds)
        return
    for name in args.presets:
        bench_preset(name, args.rounds)


if __name__ == "__main__":
    main()
