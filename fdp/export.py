"""Export a checkpoint as the two ONNX graphs the engines run, and check them against torch.

`encoder.onnx`: frames (B, C, H, W) in [0, 1] -> rank_features (B, D), scores (B,); run once per new frame.
`head.onnx`:    pooled (B, D) -> logits (B, K) [, dynamic_image (B, C, H, W)]; run once per window.
The batch axis is dynamic (it counts faces). Each graph carries the model config as metadata, so engines need
no flags. After writing, `onnx.checker` validates each graph and ONNX Runtime is compared with torch at batch 1
and 4 (timm's `utils/onnx.py` habit).

Usage: python -m fdp.export --checkpoint runs/x/folds/all/checkpoint.safetensors --out models/mine
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from fdp.cli import CommandParser, run_main
from fdp.config import ONNX_FORMAT
from fdp.errors import ConfigError, EngineError
from fdp.io import output_folder
from fdp.model import FDP

PARITY_TOLERANCE = 1e-4
CHECK_BATCHES = (1, 4)


class EncoderGraph(nn.Module):
    def __init__(self, model: FDP):
        super().__init__()
        self.model = model

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.encode_frames(frames)


class HeadGraph(nn.Module):
    def __init__(self, model: FDP, with_dynamic_image: bool):
        super().__init__()
        self.model = model
        self.with_dynamic_image = with_dynamic_image

    def forward(self, pooled: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits = self.model.forward_head(pooled)
        if self.with_dynamic_image:
            return logits, self.model.construct_dynamic_image(pooled)
        return (logits,)


@dataclass(frozen=True)
class GraphSpec:
    role: str
    module: nn.Module
    input_name: str
    input_shape: tuple[int, ...]  # without the batch axis
    output_names: tuple[str, ...]


@dataclass(frozen=True)
class ExportReport:
    encoder_path: Path
    head_path: Path
    max_abs_diff: dict[str, float]  # "<graph>/<output>@B<batch>" -> max |ORT - torch|


def graph_specs(model: FDP, head_dynamic_image: bool) -> tuple[GraphSpec, GraphSpec]:
    config = model.config
    # Wrappers are built in eval mode: the legacy exporter restores the wrapper's mode onto the whole model.
    encoder = GraphSpec("encoder", EncoderGraph(model).eval(), "frames", (config.in_chans, config.image_size,
                        config.image_size), ("rank_features", "scores"))
    head_outputs = ("logits", "dynamic_image") if head_dynamic_image else ("logits",)
    head = GraphSpec("head", HeadGraph(model, head_dynamic_image).eval(), "pooled", (config.rank_dim,), head_outputs)
    return encoder, head


def export_onnx(model: FDP, out_dir: str | Path, head_dynamic_image: bool = False, opset: int = 17,
                exporter: str = "legacy", training_data: str | None = None) -> ExportReport:
    """Write encoder.onnx and head.onnx into `out_dir`, validate them and compare ONNX Runtime with torch.

    `exporter="legacy"` (TorchScript-based, opset 17) is the default because it ran fastest under ONNX Runtime
    for these graphs (benchmarks/bench_model.py); `"dynamo"` uses torch.export and needs onnxscript.
    `training_data` (what the model learned from) travels in the graphs so every output can say it.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = model.eval().cpu()
    diffs: dict[str, float] = {}
    paths = []
    for spec in graph_specs(model, head_dynamic_image):
        path = out_dir / f"{spec.role}.onnx"
        _export_graph(spec, path, opset, exporter)
        _embed_metadata(path, model, spec.role, training_data)
        diffs.update(_check_against_torch(spec, path))
        paths.append(path)
    return ExportReport(paths[0], paths[1], diffs)


def _export_graph(spec: GraphSpec, path: Path, opset: int, exporter: str) -> None:
    example = torch.rand(2, *spec.input_shape)
    names = dict(input_names=[spec.input_name], output_names=list(spec.output_names))
    # The exporters print progress to stdout and warn about their own deprecations: keep both out of our output.
    with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if exporter == "legacy":
            axes = {name: {0: "batch"} for name in (spec.input_name, *spec.output_names)}
            torch.onnx.export(spec.module, (example,), str(path), opset_version=opset, dynamo=False,
                              dynamic_axes=axes, do_constant_folding=True, **names)
        elif exporter == "dynamo":
            # it warns once per torchvision operator it cannot register when torchvision is absent (irrelevant here)
            logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
            batch = torch.export.Dim("batch", min=1, max=1024)
            program = torch.onnx.export(spec.module, (example,), dynamo=True, opset_version=opset,
                                        dynamic_shapes={"frames" if spec.role == "encoder" else "pooled": {0: batch}},
                                        **names)
            program.optimize()
            program.save(str(path))
        else:
            raise ValueError(f"unknown exporter {exporter!r}")


def _embed_metadata(path: Path, model: FDP, role: str, training_data: str | None) -> None:
    graph = onnx.load(str(path))
    values = {"format": ONNX_FORMAT, "role": role, "fdp_config": model.config.to_json()}
    if training_data:
        values["training_data"] = training_data
    del graph.metadata_props[:]
    for key, value in values.items():
        graph.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(graph, full_check=True)
    onnx.save(graph, str(path))


def _check_against_torch(spec: GraphSpec, path: Path) -> dict[str, float]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(0)
    diffs = {}
    for batch in CHECK_BATCHES:
        example = torch.rand(batch, *spec.input_shape, generator=generator)
        with torch.no_grad():
            expected = spec.module(example)
        got = session.run(list(spec.output_names), {spec.input_name: example.numpy()})
        for name, want, have in zip(spec.output_names, expected, got):
            diff = float(np.max(np.abs(want.numpy() - have)))
            diffs[f"{spec.role}/{name}@B{batch}"] = diff
            if not diff <= PARITY_TOLERANCE:
                raise EngineError(f"{path}: ONNX Runtime output '{name}' differs from torch by {diff:.2e} at batch "
                                  f"{batch} (tolerance {PARITY_TOLERANCE}); export with the other --exporter")
    return diffs


def main(argv: list[str] | None = None) -> int:
    from fdp.checkpoint import load_checkpoint, read_checkpoint_metadata

    parser = CommandParser(prog="python -m fdp.export", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, type=Path, help="FDP .safetensors checkpoint")
    parser.add_argument("--out", required=True, type=Path, help="folder for encoder.onnx and head.onnx")
    parser.add_argument("--head-dynamic-image", action="store_true",
                        help="make the head graph also construct the dynamic image (costs a few ms per window)")
    parser.add_argument("--exporter", choices=("legacy", "dynamo"), default="legacy")
    parser.add_argument("--opset", type=int, default=17)
    args = parser.parse_args(argv)
    if args.opset < 7:
        raise ConfigError(f"--opset {args.opset}: the exporters write opset 7 and later; use the default 17 unless a "
                          "runtime needs another")
    training_data = read_checkpoint_metadata(args.checkpoint).get("training_data")
    output_folder(args.out, "--out")
    report = export_onnx(load_checkpoint(args.checkpoint), args.out, args.head_dynamic_image, args.opset,
                         args.exporter, training_data)
    # The folder is then a whole model: the ONNX engine reads the graphs, the torch engine this checkpoint.
    checkpoint = args.out / "model.safetensors"
    if not checkpoint.exists() or not checkpoint.samefile(args.checkpoint):
        shutil.copyfile(args.checkpoint, checkpoint)
    worst = max(report.max_abs_diff.values())
    print(f"wrote {report.encoder_path}, {report.head_path} and {checkpoint}; ONNX Runtime matches torch "
          f"(max |diff| {worst:.1e} over {len(report.max_abs_diff)} outputs at batch 1 and 4)")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
