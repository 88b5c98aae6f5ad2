"""Which clips a run reads: one or more datasets, each with its own root, and the class setting over them.

Training, preprocessing and evaluation all start here, so a composite (MEGC2019 over CASME II + SAMM) and the
synthetic set are read the same way as a single dataset, and every skipped clip is reported in the same place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fdp.datasets.classes import CLASS_SETTINGS, DEFAULT_SETTINGS, ClassSetting, class_setting
from fdp.datasets.clips import ClipSample
from fdp.datasets.loading import DATASETS, load_dataset
from fdp.errors import ConfigError

SYNTHETIC = "synthetic"
DATASET_IDS: tuple[str, ...] = (*DATASETS, SYNTHETIC)


@dataclass(frozen=True)
class SourceLoad:
    """The clips of every dataset asked for, and one summary line per dataset (skips and errata counted)."""

    clips: tuple[ClipSample, ...]
    summaries: tuple[str, ...]
    skipped: int


def check_sources(datasets: Sequence[str], roots: Sequence[Path]) -> None:
    """One root per dataset, every id known, no dataset twice: a ConfigError naming the fix otherwise."""
    if not datasets:
        raise ConfigError(f"no --dataset given; choose one or more of {', '.join(DATASET_IDS)}")
    unknown = [d for d in datasets if d not in DATASET_IDS]
    if unknown:
        raise ConfigError(f"unknown dataset {unknown[0]!r}; choose one of {', '.join(DATASET_IDS)}")
    if len(set(datasets)) != len(datasets):
        raise ConfigError(f"--dataset lists {', '.join(datasets)}: each dataset once, with its own --root")
    if len(roots) != len(datasets):
        raise ConfigError(f"{len(datasets)} --dataset but {len(roots)} --root; give one --root per --dataset, "
                          "in the same order")


def load_sources(datasets: Sequence[str], roots: Sequence[Path]) -> SourceLoad:
    """Load every dataset from its root; a dataset that cannot be read at all raises its one-line error."""
    check_sources(datasets, roots)
    clips: list[ClipSample] = []
    summaries: list[str] = []
    skipped = 0
    for dataset, root in zip(datasets, roots):
        if dataset == SYNTHETIC:
            from fdp.synthesis.synthetic import load_synthetic

            found = load_synthetic(Path(root).expanduser())
            clips.extend(found)
            subjects = len({c.subject for c in found})
            summaries.append(f"synthetic: {len(found)} clips from {subjects} subjects; 0 skipped")
        else:
            result = load_dataset(dataset, Path(root).expanduser())
            clips.extend(result.clips)
            summaries.append(result.summary())
            skipped += len(result.skipped)
    return SourceLoad(tuple(clips), tuple(summaries), skipped)


def training_data_statement(subject_keys: Sequence[str]) -> str:
    """What a model trained on these subjects ('dataset/subject') learned from, in words every output can show.

    A model trained only on the synthetic set says plainly that it never saw a real micro-expression."""
    by_dataset: dict[str, list[str]] = {}
    for key in subject_keys:
        dataset, subject = key.split("/", 1)
        by_dataset.setdefault(dataset, []).append(subject)
    parts = []
    for dataset, subjects in by_dataset.items():
        if dataset == SYNTHETIC:
            real = [s for s in subjects if not (s.startswith("morph_") or "_reshape" in s)]
            derived = len(subjects) - len(real)
            parts.append(f"synthetic micro-expressions (action-unit motions warped onto real faces: {', '.join(real)}"
                         + (f"; and {derived} faces morphed or reshaped from them" if derived else "") + ")")
        else:
            parts.append(f"{DATASETS[dataset].title} ({len(subjects)} subject{'s' * (len(subjects) != 1)})")
    statement = "trained on " + " and ".join(parts)
    if set(by_dataset) == {SYNTHETIC}:
        statement += "; it has never seen a real micro-expression dataset and is not a validated emotion reading"
    return statement


def resolve_setting(name: str, datasets: Sequence[str]) -> ClassSetting:
    """The class setting by name, or the datasets' default when `name` is empty; it must cover every dataset."""
    if not name:
        chosen = set(datasets)
        if chosen == {"casme2", "samm"}:
            return class_setting("megc2019-3")
        if len(chosen) == 1:
            return class_setting(DEFAULT_SETTINGS[datasets[0]])
        raise ConfigError(f"no default class setting for {' + '.join(datasets)}; pass --classes naming one "
                          "that covers them all")
    setting = class_setting(name)
    uncovered = [d for d in datasets if d not in setting.datasets]
    if uncovered:
        raise ConfigError(f"class setting {setting.name!r} has no classes for {', '.join(uncovered)}; "
                          f"it covers {', '.join(setting.datasets)}")
    return setting


def setting_names() -> tuple[str, ...]:
    """Every class setting a run may name, for --help."""
    return tuple(CLASS_SETTINGS)
