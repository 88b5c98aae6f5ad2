"""Pool a run's folds into one report, or evaluate a checkpoint on a dataset.

    python -m fdp.evaluate --run runs/casme2
    python -m fdp.evaluate --checkpoint runs/default/folds/holdout/checkpoint.safetensors \\
        --dataset synthetic --root data/synth --subjects astronaut --out runs/default/eval

Reports accuracy, UF1, UAR and weighted F1 (`fdp.metrics`) per fold (or per subject) and pooled: pooled metrics
are computed on the concatenation of every fold's test predictions (MEGC's composite scores), and the mean over
folds is shown beside them. Writes summary.json, summary.md and confusion.png (pooled) into the run folder, or
evaluation.json (with every clip's prediction), evaluation.md and confusion.png into --out. Every report names its
model-selection rule in its title, and a run that selected epochs on its test subjects says SELECT-ON-TEST in the
JSON, the Markdown and the plot, because its numbers are optimistic.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fdp.cli import CommandParser, add_config_options, config_from_args, option, run_main
from fdp.datasets.sources import DATASET_IDS, check_sources
from fdp.errors import ConfigError, ModelFileError
from fdp.io import output_folder, write_json
from fdp.reporting import aggregate_run, summarize, write_summary


@dataclass(frozen=True)
class EvaluateConfig:
    """`python -m fdp.evaluate`: pool a run (--run), or evaluate a checkpoint on data (--checkpoint)."""

    run: Path | None = field(default=None, metadata=option("a training run folder to pool"))
    checkpoint: Path | None = field(default=None, metadata=option("an FDP .safetensors checkpoint to evaluate"))
    datasets: tuple[str, ...] = field(default=(), metadata=option(
        "dataset id to evaluate the checkpoint on; repeat for several, each with its --root", flag="--dataset",
        choices=DATASET_IDS, many="repeat"))
    roots: tuple[Path, ...] = field(default=(), metadata=option("the unpacked dataset folder", flag="--root",
                                                                 many="repeat"))
    classes: str = field(default="", metadata=option("class setting (default: the checkpoint's)",
                                                      metavar="SETTING"))
    subjects: tuple[str, ...] = field(default=(), metadata=option(
        "comma-separated subjects to evaluate, as keys or bare names (default: all)", many="comma"))
    out: Path | None = field(default=None, metadata=option(
        "output folder (default: eval_<datasets> beside the checkpoint)"))
    device: str = field(default="auto", metadata=option("auto, cpu or cuda (cuda:N)"))
    cache_dir: Path | None = field(default=None, metadata=option(
        "crop cache (default $FDP_CACHE_DIR or ~/.cache/fdp-live/crops)"))
    landmarker: Path | None = field(default=None, metadata=option("face_landmarker.task (default: the fetched)"))

    def __post_init__(self) -> None:
        if (self.run is None) == (self.checkpoint is None):
            raise ConfigError("pass either --run DIR (pool a training run) or --checkpoint FILE with --dataset/--root")
        if self.checkpoint is not None:
            check_sources(self.datasets, self.roots)


def evaluate_checkpoint(config: EvaluateConfig) -> dict[str, Any]:
    """Predict every labelled clip (centred windows) with the checkpoint; per-subject and pooled metrics."""
    from fdp.checkpoint import load_checkpoint, read_checkpoint_metadata
    from fdp.clip_batches import ClipItem
    from fdp.datasets.classes import labelled_clips
    from fdp.datasets.folds import match_subjects, subject_key, subjects_of
    from fdp.datasets.sources import load_sources, resolve_setting
    from fdp.preprocess import clip_key, preprocess_clips
    from fdp.training_loop import SELECTION_RULES, predict, resolve_device

    checkpoint = config.checkpoint
    if checkpoint is None:
        raise ConfigError("pass --checkpoint FILE to evaluate a checkpoint")
    device = resolve_device(config.device)
    metadata = read_checkpoint_metadata(checkpoint)
    out = output_folder(config.out if config.out is not None else
                        checkpoint.parent / f"eval_{'+'.join(config.datasets)}", "--out")
    model = load_checkpoint(checkpoint, device)
    setting = resolve_setting(config.classes or metadata.get("class_setting", ""), config.datasets)
    if tuple(setting.class_names) != tuple(model.config.class_names):
        raise ModelFileError(f"{checkpoint}: the model's classes {list(model.config.class_names)} are not "
                             f"those of class setting {setting.name} {list(setting.class_names)}; pass --classes")
    pairs = labelled_clips(load_sources(config.datasets, config.roots).clips, setting)
    if config.subjects:
        wanted = set(match_subjects(config.subjects, subjects_of([c for c, _ in pairs])))
        pairs = [(c, label) for c, label in pairs if subject_key(c) in wanted]
    _, crops = preprocess_clips([c for c, _ in pairs], model.config.aligner, cache_dir=config.cache_dir,
                                landmarker=config.landmarker, window_s=model.config.window_s)
    items = [ClipItem(c, crops[clip_key(c)], label) for c, label in pairs if clip_key(c) in crops]
    found = predict(model, items, model.config.window_s, device)
    groups = []
    for subject in subjects_of([i.clip for i in items]):
        mask = np.array([subject_key(i.clip) == subject for i in items])
        groups.append({"name": subject, "test_subjects": [subject], "clips": int(mask.sum()),
                       "y_true": found.y_true[mask], "y_pred": found.y_pred[mask]})
    rule = metadata.get("selection_rule", "")
    trained_on = set(json.loads(metadata.get("train_subjects", "[]"))) | set(json.loads(metadata.get("val_subjects",
                                                                                                     "[]")))
    overlap = sorted(trained_on & {g["name"] for g in groups})
    notes = [f"subjects {', '.join(overlap)} were in this checkpoint's training or validation set"] if overlap else []
    selection = {"rules": [rule] if rule else [], "labels": [SELECTION_RULES.get(rule, rule or "unknown")],
                 "select_on_test": metadata.get("select_on_test") == "true"}
    summary = summarize(groups, setting.class_names, title=f"FDP checkpoint {checkpoint.name} on "
                        f"{' + '.join(config.datasets)}, {setting.name}", protocol_line=f"checkpoint evaluation, "
                        f"{len(groups)} subjects", group_label="subject", selection=selection, notes=notes)
    summary["checkpoint"] = str(checkpoint)
    summary["predictions"] = [  # per clip, so a report can slice them (e.g. by expression size)
        {"dataset": i.clip.dataset, "subject": i.clip.subject, "clip_id": i.clip.clip_id, "true": int(t),
         "pred": int(p), "probs": [round(float(x), 5) for x in probs]}
        for i, t, p, probs in zip(items, found.y_true, found.y_pred, found.probs)]
    write_json(out / "evaluate_config.json", dataclasses.asdict(config))
    return write_summary(summary, out, "evaluation")


def parse_args(argv: list[str] | None) -> EvaluateConfig:
    parser = CommandParser(prog="python -m fdp.evaluate", description=__doc__.splitlines()[0])
    add_config_options(parser, EvaluateConfig)
    return config_from_args(EvaluateConfig, parser.parse_args(argv))


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    summary = aggregate_run(config.run) if config.run is not None else evaluate_checkpoint(config)
    if config.run is not None:
        write_json(config.run / "evaluate_config.json", dataclasses.asdict(config))
    print(summary["markdown"], end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
