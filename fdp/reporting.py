"""A run's or an evaluation's report: metrics per fold or subject and pooled, the model-selection rule in every
title, summary.json / summary.md / confusion.png. `fdp.evaluate` is the command; `fdp.train` pools a finished run
through `aggregate_run`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fdp.errors import ConfigError
from fdp.io import write_bytes, write_json
from fdp.metrics import class_scores, confusion_matrix, score

METRIC_COLUMNS = (("accuracy", "accuracy"), ("uf1", "UF1"), ("uar", "UAR"), ("weighted_f1", "weighted F1"))
SELECT_ON_TEST_NOTE = ("SELECT-ON-TEST: each fold's epoch was chosen on its test subjects (the published habit); "
                       "these numbers are optimistic, not a fair estimate")


def _cell(value: float | int | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def selection_title(summary: dict[str, Any]) -> str:
    """'selection: val-uf1' or 'selection: test-uf1 [SELECT-ON-TEST, optimistic]'."""
    selection = summary["selection"]
    rules = "/".join(selection["rules"]) or "n/a"
    return f"selection: {rules}" + (" [SELECT-ON-TEST, optimistic]" if selection["select_on_test"] else "")


def results_markdown(summary: dict[str, Any]) -> str:
    """The per-group table (folds, or subjects for a checkpoint evaluation), pooled and mean rows, and the
    pooled confusion matrix."""
    group = summary["group_label"]
    lines = [f"# {summary['title']}", "", f"{summary['protocol_line']}; {selection_title(summary)}.", ""]
    lines += [f"Model selection: {label}." for label in summary["selection"]["labels"]]
    if summary["selection"]["select_on_test"]:
        lines += ["", f"> **{SELECT_ON_TEST_NOTE}.**"]
    for note in summary.get("notes", []):
        lines += ["", f"> {note}"]
    extra = summary.get("extra_columns", [])
    header = [group, "test subjects", "clips", *(title for _, title in METRIC_COLUMNS), *(t for _, t in extra)]
    lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in summary["groups"]:
        cells = [str(row["name"]), ", ".join(row["test_subjects"]), str(row["clips"]),
                 *(_cell(row[key]) for key, _ in METRIC_COLUMNS), *(_cell(row.get(key)) for key, _ in extra)]
        lines.append("| " + " | ".join(cells) + " |")
    pooled, mean = summary["pooled"], summary["group_mean"]
    lines.append("| **pooled** | all, predictions concatenated | " + str(pooled["clips"]) + " | "
                 + " | ".join(f"**{_cell(pooled[k])}**" for k, _ in METRIC_COLUMNS) + " |" + " |" * len(extra))
    lines.append(f"| mean of {group}s | | | " + " | ".join(_cell(mean[k]) for k, _ in METRIC_COLUMNS)
                 + " |" + " |" * len(extra))
    names = summary["class_names"]
    lines += ["", "Pooled confusion matrix (rows: true class, columns: predicted):", "",
              "| true \\ predicted | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 1)]
    for name, row in zip(names, summary["confusion_matrix"]):
        lines.append(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def plot_confusion(matrix: np.ndarray, class_names: list[str], title: str, path: Path) -> Path:
    """Row-normalized colours with the counts written in; Agg canvas, no display needed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    counts = np.asarray(matrix, np.int64)
    rows = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
    size = 2.2 + 0.7 * len(class_names)
    figure = Figure(figsize=(size + 1.2, size))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of the true class")
    ticks = range(len(class_names))
    axes.set_xticks(ticks, class_names, rotation=45, ha="right")
    axes.set_yticks(ticks, class_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    for i in ticks:
        for j in ticks:
            axes.text(j, i, str(counts[i, j]), ha="center", va="center",
                      color="white" if shares[i, j] > 0.6 else "black", fontsize=9)
    axes.set_title(title, fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120, metadata={"Title": " ".join(title.split())})  # the title, searchable
    return path


SUMMARY_FORMAT = "fdp-live/summary/1"
POOLED_DEFINITION = "metrics of the concatenation of every group's test predictions (not a mean of group metrics)"


def summarize(groups: Sequence[dict[str, Any]], class_names: Sequence[str], *, title: str, protocol_line: str,
              group_label: str, selection: dict[str, Any], extra_columns: Sequence[tuple[str, str]] = (),
              notes: Sequence[str] = ()) -> dict[str, Any]:
    """Per-group, pooled and mean-of-groups metrics; each group has name, test_subjects, y_true, y_pred."""
    k = len(class_names)
    rows = []
    for group in groups:
        scores = score(group["y_true"], group["y_pred"], k).to_dict()
        rows.append({key: value for key, value in group.items() if key not in ("y_true", "y_pred")} | scores)
    y_true = np.concatenate([np.asarray(g["y_true"], np.int64) for g in groups]) if groups else np.zeros(0, int)
    y_pred = np.concatenate([np.asarray(g["y_pred"], np.int64) for g in groups]) if groups else np.zeros(0, int)
    matrix = confusion_matrix(y_true, y_pred, k)
    per_class = class_scores(matrix)
    mean = {key: _nanmean([r[key] for r in rows]) for key, _ in METRIC_COLUMNS}
    flagged = " [SELECT-ON-TEST]" if selection["select_on_test"] else ""
    return {"format": SUMMARY_FORMAT, "title": title + flagged, "protocol_line": protocol_line,
            "group_label": group_label, "class_names": list(class_names), "selection": selection,
            "groups": rows, "extra_columns": [list(c) for c in extra_columns], "notes": list(notes),
            "pooled": score(y_true, y_pred, k).to_dict() | {"definition": POOLED_DEFINITION},
            "group_mean": mean, "confusion_matrix": matrix.tolist(),
            "per_class": {name: {"precision": per_class.precision[i], "recall": per_class.recall[i],
                                 "f1": per_class.f1[i], "support": per_class.support[i]}
                          for i, name in enumerate(class_names)}}


def write_summary(summary: dict[str, Any], folder: Path, stem: str) -> dict[str, Any]:
    """<stem>.json, <stem>.md and confusion.png; returns the summary with its Markdown under 'markdown'."""
    markdown = results_markdown(summary)
    write_json(folder / f"{stem}.json", summary)
    write_bytes(folder / f"{stem}.md", markdown.encode("utf-8"))
    pooled = summary["pooled"]
    title = (f"{summary['title']}\npooled over {len(summary['groups'])} {summary['group_label']}s, "
             f"{pooled['clips']} clips: UF1 {_num(pooled['uf1'])}, UAR {_num(pooled['uar'])}\n"
             f"{selection_title(summary)}")
    plot_confusion(np.asarray(summary["confusion_matrix"]), summary["class_names"], title, folder / "confusion.png")
    return summary | {"markdown": markdown}


def aggregate_run(run: Path) -> dict[str, Any]:
    """Pool every finished fold (folds/*/metrics.json) of a training run and write its summary files."""
    run = Path(run)
    records = [json.loads(p.read_text()) for p in sorted(run.glob("folds/*/metrics.json"))]
    if not records:
        raise ConfigError(f"{run}: no finished fold (folds/*/metrics.json); train one with "
                          f"`python -m fdp.train --out {run} ...`")
    records.sort(key=lambda r: r["fold"])
    names = records[0]["class_names"]
    if any(r["class_names"] != names for r in records):
        raise ConfigError(f"{run}: folds were trained on different class settings; keep one run per folder")
    protocol_path = run / "protocol.json"
    protocol = json.loads(protocol_path.read_text()) if protocol_path.is_file() else {}
    total = len(protocol.get("folds", [])) or len(records)
    kind = protocol.get("protocol", "leave-one-subject-out")
    select_on_test = any(r["selection"]["select_on_test"] for r in records)
    selection = {"rules": sorted({r["selection"]["rule"] for r in records}),
                 "labels": sorted({r["selection"]["label"] for r in records}), "select_on_test": select_on_test}
    groups = [{"name": r["fold"], "test_subjects": r["test_subjects"], "clips": len(r["predictions"]),
               "y_true": [p["true"] for p in r["predictions"]], "y_pred": [p["pred"] for p in r["predictions"]],
               "selected_epoch": r["selection"]["epoch"], "train_seconds": r["train_seconds"]} for r in records]
    summary = summarize(groups, names, title=f"FDP ({records[0]['model']} preset), {records[0]['class_setting']}",
                        protocol_line=f"{kind}, {len(records)} of {total} folds finished", group_label="fold",
                        selection=selection, extra_columns=(("selected_epoch", "epoch"), ("train_seconds", "train s")))
    summary["run"] = str(run)
    summary["folds_finished"], summary["folds_total"] = len(records), total
    return write_summary(summary, run, "summary")


def _nanmean(values: Sequence[float | None]) -> float | None:
    defined = [v for v in values if v is not None]
    return float(np.mean(defined)) if defined else None


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"

