"""Class settings: which classes a model learns, and how each dataset's native label maps to one of them.

The loaders keep each sheet's own label string (`Other`, `others`, `happy`, `negative`); a setting maps those,
compared after `canonical_label` (case, spacing and the synonyms the sheets use: happy/happiness, sad/sadness,
other/others), to its class names. A label a setting does not take gives None: the clip is left out, and counted.

The MEGC2019 composite (See et al., "MEGC 2019 - the second facial micro-expressions grand challenge", FG 2019)
groups the labels into negative / positive / surprise:
- CASME II: negative = disgust, repression; positive = happiness; surprise = surprise. Fear, sadness and others
  are left out: the published CASME II part (88 / 32 / 25 = 145 clips) has 88 negatives, about what disgust and
  repression alone give, so fear and sadness are not in it. The exact count depends on the sheet version you
  load; `count_classes` reports the clips you actually have.
- SAMM: negative = anger, contempt, disgust, fear, sadness; positive = happiness; surprise = surprise; `Other` is
  left out. With SAMM's commonly reported label counts (anger 57, contempt 12, disgust 9, fear 8, sadness 6,
  happiness 26, surprise 15) this is the published 92 / 26 / 15 = 133.
- SMIC, the composite's third part, is not one of our datasets: `megc2019-3` is its CASME II + SAMM part.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from fdp.config import SYNTHETIC_CLASSES
from fdp.datasets.clips import ClipSample
from fdp.errors import ConfigError

SYNONYMS = {"happy": "happiness", "sad": "sadness", "angry": "anger", "disgusted": "disgust",
            "fearful": "fear", "surprised": "surprise", "other": "others"}


def canonical_label(label: str) -> str:
    """'Happy ', 'happiness' -> 'happiness'; 'Other', 'others' -> 'others'. Sheets spell the same class differently."""
    text = " ".join(label.casefold().replace("_", " ").split())
    return SYNONYMS.get(text, text)


@dataclass(frozen=True, eq=False)
class ClassSetting:
    """A named list of classes and, per dataset, which canonical native labels fall into each class."""

    name: str
    title: str
    class_names: tuple[str, ...]
    mapping: Mapping[str, Mapping[str, str]]  # dataset id -> canonical native label -> class name

    @property
    def datasets(self) -> tuple[str, ...]:
        return tuple(self.mapping)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def class_of(self, clip: ClipSample) -> str | None:
        """The class name for this clip, or None when this setting leaves it out."""
        labels = self.mapping.get(clip.dataset)
        return None if labels is None else labels.get(canonical_label(clip.label))

    def index_of(self, clip: ClipSample) -> int | None:
        name = self.class_of(clip)
        return None if name is None else self.class_names.index(name)


def _setting(name: str, title: str, classes: dict[str, dict[str, tuple[str, ...]]]) -> ClassSetting:
    """Build a setting from {dataset: {class: native labels}}; the class order is first-seen order."""
    class_names: list[str] = []
    mapping: dict[str, Mapping[str, str]] = {}
    for dataset, groups in classes.items():
        labels: dict[str, str] = {}
        for class_name, natives in groups.items():
            if class_name not in class_names:
                class_names.append(class_name)
            labels.update({canonical_label(n): class_name for n in natives})
        mapping[dataset] = MappingProxyType(labels)
    return ClassSetting(name, title, tuple(class_names), MappingProxyType(mapping))


def _native(labels: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    return {label: (label,) for label in labels}


_CASME3_NEGATIVE = ("anger", "disgust", "fear", "sadness")
_SETTINGS = (
    _setting("casme2-native", "CASME II, its 7 labels", {"casme2": _native(
        ("happiness", "disgust", "repression", "surprise", "others", "fear", "sadness"))}),
    _setting("casme2-5", "CASME II, 5 classes", {"casme2": _native(
        ("happiness", "disgust", "repression", "surprise", "others"))}),
    _setting("samm-native", "SAMM, its 8 labels", {"samm": {
        "anger": ("anger",), "contempt": ("contempt",), "disgust": ("disgust",), "fear": ("fear",),
        "happiness": ("happiness",), "sadness": ("sadness",), "surprise": ("surprise",), "other": ("other",)}}),
    _setting("samm-5", "SAMM, 5 classes", {"samm": {
        "anger": ("anger",), "contempt": ("contempt",), "happiness": ("happiness",), "surprise": ("surprise",),
        "other": ("other",)}}),
    _setting("casme_sq-native", "CAS(ME)^2, its 4 labels", {"casme_sq": _native(
        ("negative", "positive", "surprise", "others"))}),
    _setting("casme_sq-3", "CAS(ME)^2, 3 classes", {"casme_sq": _native(("negative", "positive", "surprise"))}),
    _setting("casme3-7", "CAS(ME)^3, its 7 labels", {"casme3": _native(
        ("happiness", "disgust", "fear", "anger", "sadness", "surprise", "others"))}),
    _setting("casme3-4", "CAS(ME)^3, 4 classes", {"casme3": {
        "negative": _CASME3_NEGATIVE, "positive": ("happiness",), "surprise": ("surprise",), "others": ("others",)}}),
    _setting("casme3-3", "CAS(ME)^3, 3 classes", {"casme3": {
        "negative": _CASME3_NEGATIVE, "positive": ("happiness",), "surprise": ("surprise",)}}),
    _setting("megc2019-3", "MEGC2019 composite (CASME II + SAMM), 3 classes", {
        "casme2": {"negative": ("disgust", "repression"), "positive": ("happiness",), "surprise": ("surprise",)},
        "samm": {"negative": ("anger", "contempt", "disgust", "fear", "sadness"), "positive": ("happiness",),
                 "surprise": ("surprise",)}}),
    _setting("synthetic-4", "Synthetic MEs on real faces, 4 classes", {"synthetic": _native(SYNTHETIC_CLASSES)}),
)
CLASS_SETTINGS: Mapping[str, ClassSetting] = MappingProxyType({s.name: s for s in _SETTINGS})
DEFAULT_SETTINGS: Mapping[str, str] = MappingProxyType(
    {"casme2": "casme2-5", "samm": "samm-5", "casme_sq": "casme_sq-3", "casme3": "casme3-3",
     "synthetic": "synthetic-4"})


def class_setting(name: str | ClassSetting) -> ClassSetting:
    """A setting by name (a ClassSetting passes through), or a ConfigError naming the choices."""
    if isinstance(name, ClassSetting):
        return name
    if name not in CLASS_SETTINGS:
        raise ConfigError(f"unknown class setting {name!r}; choose one of {', '.join(CLASS_SETTINGS)}")
    return CLASS_SETTINGS[name]


def labelled_clips(clips: Iterable[ClipSample], setting: str | ClassSetting) -> list[tuple[ClipSample, int]]:
    """The clips the setting takes, each with its class index, in the order given."""
    chosen = class_setting(setting)
    pairs = ((clip, chosen.index_of(clip)) for clip in clips)
    return [(clip, index) for clip, index in pairs if index is not None]


@dataclass(frozen=True)
class ClassCounts:
    """Clips per class (every class listed, in class order) and the clips left out, by 'dataset:label'."""

    counts: dict[str, int]
    excluded: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def count_classes(clips: Iterable[ClipSample], setting: str | ClassSetting) -> ClassCounts:
    """How many clips fall in each class, and which native labels were left out (so nothing vanishes unseen)."""
    chosen = class_setting(setting)
    counts = dict.fromkeys(chosen.class_names, 0)
    excluded: Counter[str] = Counter()
    for clip in clips:
        name = chosen.class_of(clip)
        if name is None:
            excluded[f"{clip.dataset}:{canonical_label(clip.label)}"] += 1
        else:
            counts[name] += 1
    return ClassCounts(counts, dict(sorted(excluded.items())))
