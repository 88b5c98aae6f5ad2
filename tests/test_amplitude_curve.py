"""Accuracy against expression size, end to end: a real synthetic set, a real checkpoint evaluated by
`fdp.evaluate`, and the curve joined from its per-clip predictions and the set's manifest (assets fetched first)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from fdp.errors import DatasetLayoutError
from fdp.evaluate import main as evaluate_main
from fdp.synthesis.amplitude_curve import BIN_CENTRES, bin_edges
from fdp.synthesis.amplitude_curve import main as curve_main
from fdp.synthesis.synthetic import MANIFEST, SynthConfig, write_synthetic
from tests.models import make_model_folder


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("curve")
    root = folder / "set"
    write_synthetic(SynthConfig(root, clips=12, seed=5, subjects=("astronaut", "grace_hopper"), workers=1,
                                fields="own"), progress=False)
    make_model_folder(folder / "model")
    assert evaluate_main(["--checkpoint", str(folder / "model" / "model.safetensors"), "--dataset", "synthetic",
                          "--root", str(root), "--out", str(folder / "eval"), "--cache-dir",
                          str(folder / "cache")]) == 0
    return root, folder / "eval" / "evaluation.json"


def test_curve_bins_every_expression_clip_by_its_manifest_size(evaluated, tmp_path, capsys):
    root, evaluation = evaluated
    out = tmp_path / "curve.png"
    assert curve_main(["--evaluation", str(evaluation), "--root", str(root), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = json.loads(out.with_suffix(".json").read_text())
    rows = {r["clip_id"]: r for r in csv.DictReader((root / MANIFEST).open())}
    predictions = json.loads(evaluation.read_text())["predictions"]
    expressive = [p for p in predictions if rows[p["clip_id"]]["label"] != "none"]
    assert table["expression_clips"] == len(expressive) == 9 and table["none_clips"] == 3
    edges = bin_edges()
    for row, lo, hi in zip(table["bins"], edges[:-1], edges[1:]):
        inside = [p for p in expressive if lo <= float(rows[p["clip_id"]]["peak_fw"]) < hi]
        assert row["clips"] == len(inside)
        if inside:
            assert row["accuracy"] == pytest.approx(sum(p["pred"] == p["true"] for p in inside) / len(inside))
            assert row["none_below_half"] == pytest.approx(sum(p["probs"][0] < 0.5 for p in inside) / len(inside))
    assert sum(r["clips"] for r in table["bins"]) == 9 and len(table["bins"]) == len(BIN_CENTRES)
    assert "| 1.0 % (" in capsys.readouterr().out


def test_curve_on_a_set_without_sizes_names_the_fix(evaluated, tmp_path):
    root, evaluation = evaluated
    old = tmp_path / "old"
    old.mkdir()
    lines = (root / MANIFEST).read_text().splitlines()
    header = lines[0].split(",")
    column = header.index("peak_fw")
    (old / MANIFEST).write_text("\n".join(",".join(c for i, c in enumerate(line.split(",")) if i != column)
                                          for line in lines) + "\n")
    with pytest.raises(DatasetLayoutError, match="no peak_fw column: it was written by an older synthesizer"):
        curve_main(["--evaluation", str(evaluation), "--root", str(old), "--out", str(tmp_path / "c.png")])
