"""Accuracy against expression size: how small a micro-expression the model still recognizes.

    python -m fdp.evaluate --checkpoint models/fdp_live/model.safetensors --dataset synthetic --root data/heldout \\
        --out runs/eval_heldout
    python -m fdp.synthesis.amplitude_curve --evaluation runs/eval_heldout/evaluation.json --root data/heldout \\
        --out models/accuracy_vs_amplitude.png

Joins each clip's prediction (from `fdp.evaluate`) with the size the synthesizer gave its expression (`peak_fw` in
the set's manifest: the largest landmark motion as a share of the face width), bins the expression clips by size
on a log scale, and reports per bin: accuracy, and the share whose `none` probability stays below 0.5 (the
model registers that something happened). `none` clips have no size and are reported once, as their own recall.
Prints a Markdown table, writes it as JSON beside the plot.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fdp.cli import CommandParser, add_config_options, config_from_args, option, run_main
from fdp.errors import ConfigError, DatasetLayoutError
from fdp.io import output_folder, write_bytes, write_json
from fdp.synthesis.synthetic import MANIFEST

BIN_CENTRES = (0.005, 0.007, 0.01, 0.014, 0.02, 0.028)  # shares of the face width: barely visible .. clear


@dataclass(frozen=True)
class CurveConfig:
    evaluation: Path = field(metadata=option("evaluation.json written by python -m fdp.evaluate --checkpoint"))
    root: Path = field(metadata=option("the synthetic set it evaluated (its manifest.csv has each clip's size)"))
    out: Path = field(default=Path("accuracy_vs_amplitude.png"), metadata=option("plot to write (.png)"))


def bin_edges(centres: tuple[float, ...] = BIN_CENTRES) -> np.ndarray:
    """Edges at the geometric means between neighbouring centres, open at both ends."""
    inner = [math.sqrt(a * b) for a, b in zip(centres, centres[1:])]
    return np.array([0.0, *inner, math.inf])


def amplitude_table(predictions: list[dict[str, Any]], sizes: dict[tuple[str, str], float],
                    class_names: list[str]) -> dict[str, Any]:
    """Per size bin: clips, accuracy and the share with P(none) < 0.5; and the `none` clips' recall."""
    none = class_names.index("none") if "none" in class_names else None
    rows, edges = [], bin_edges()
    expressive = [p for p in predictions if p["true"] != none]
    missing = [p for p in expressive if (p["subject"], p["clip_id"]) not in sizes]
    if missing:
        raise DatasetLayoutError(f"{len(missing)} evaluated clips (e.g. {missing[0]['subject']}/"
                                 f"{missing[0]['clip_id']}) are not in the manifest: pass the --root it evaluated")
    size = np.array([sizes[(p["subject"], p["clip_id"])] for p in expressive])
    right = np.array([p["pred"] == p["true"] for p in expressive])
    seen = np.array([none is None or p["probs"][none] < 0.5 for p in expressive])
    for centre, lo, hi in zip(BIN_CENTRES, edges[:-1], edges[1:]):
        mask = (size >= lo) & (size < hi)
        n = int(mask.sum())
        rows.append({"centre_fw": centre, "low_fw": float(lo), "high_fw": None if math.isinf(hi) else float(hi),
                     "clips": n,
                     "accuracy": float(right[mask].mean()) if n else None,
                     "accuracy_se": float(math.sqrt(right[mask].mean() * (1 - right[mask].mean()) / n)) if n else None,
                     "none_below_half": float(seen[mask].mean()) if n else None})
    nones = [p for p in predictions if p["true"] == none]
    none_recall = float(np.mean([p["pred"] == none for p in nones])) if nones else None
    return {"bins": rows, "none_clips": len(nones), "none_recall": none_recall,
            "expression_clips": len(expressive), "accuracy": float(right.mean()) if len(right) else None}


def table_markdown(table: dict[str, Any]) -> str:
    lines = ["| peak size (face width) | clips | accuracy | P(none) < 0.5 |", "|---|---|---|---|"]
    for row in table["bins"]:
        acc = "n/a" if row["accuracy"] is None else f"{row['accuracy']:.2f} ± {row['accuracy_se']:.2f}"
        seen = "n/a" if row["none_below_half"] is None else f"{row['none_below_half']:.2f}"
        high = "∞" if row["high_fw"] is None else f"{100 * row['high_fw']:.2f}"
        lines.append(f"| {100 * row['centre_fw']:.1f} % ({100 * row['low_fw']:.2f}–{high}) | {row['clips']} | {acc} "
                     f"| {seen} |")
    if table["none_recall"] is not None:
        lines.append(f"| `none` clips (no motion) | {table['none_clips']} | recall {table['none_recall']:.2f} | – |")
    return "\n".join(lines) + "\n"


def plot_curve(table: dict[str, Any], title: str, path: Path) -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in table["bins"] if r["clips"]]
    x = [100 * r["centre_fw"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    ax.errorbar(x, [r["accuracy"] for r in rows], yerr=[r["accuracy_se"] for r in rows], marker="o", capsize=3,
                label="accuracy on expression clips")
    ax.plot(x, [r["none_below_half"] for r in rows], marker="s", linestyle="--", label="P(none) < 0.5")
    if table["none_recall"] is not None:
        ax.axhline(table["none_recall"], color="grey", linewidth=0.8, label="`none` clips called none")
    ax.set_xscale("log")
    ax.set_xticks(x, [f"{v:g}" for v in x])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("peak landmark motion, % of the face width")
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("share of clips")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    write_bytes(path, buffer.getvalue())


def read_sizes(root: Path) -> dict[tuple[str, str], float]:
    manifest = Path(root) / MANIFEST
    if not manifest.is_file():
        raise DatasetLayoutError(f"{root}: no {MANIFEST}; pass the synthetic set the evaluation ran on")
    with manifest.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if rows and "peak_fw" not in rows[0]:
        raise DatasetLayoutError(f"{manifest} has no peak_fw column: it was written by an older synthesizer; "
                                 "write the set again")
    return {(r["subject"], r["clip_id"]): float(r["peak_fw"]) for r in rows if r["label"] != "none"}


def main(argv: list[str] | None = None) -> int:
    parser = CommandParser(prog="python -m fdp.synthesis.amplitude_curve", description=__doc__.splitlines()[0])
    add_config_options(parser, CurveConfig)
    config = config_from_args(CurveConfig, parser.parse_args(argv))
    if not config.evaluation.is_file():
        raise ConfigError(f"--evaluation {config.evaluation}: no such file; run python -m fdp.evaluate --checkpoint")
    evaluation = json.loads(config.evaluation.read_text())
    if "predictions" not in evaluation:
        raise ConfigError(f"--evaluation {config.evaluation} has no per-clip predictions; evaluate again")
    table = amplitude_table(evaluation["predictions"], read_sizes(config.root), evaluation["class_names"])
    output_folder(config.out.parent, "--out")
    title = f"{Path(evaluation.get('checkpoint', '')).name} on {config.root.name}: accuracy against size"
    plot_curve(table, title, config.out)
    write_json(config.out.with_suffix(".json"), table)
    print(table_markdown(table), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
