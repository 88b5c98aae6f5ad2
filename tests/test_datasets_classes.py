"""Class settings on loaded miniature datasets: native labels map to the expected classes, counts add up, and the
clips a setting leaves out are counted by label."""

from __future__ import annotations

from pathlib import Path

import pytest
from builders import build_casme2, build_casme3, build_casme_sq, build_samm

from fdp.datasets.casme2 import load_casme2
from fdp.datasets.casme3 import load_casme3
from fdp.datasets.casme_sq import load_casme_sq
from fdp.datasets.classes import (
    CLASS_SETTINGS,
    DEFAULT_SETTINGS,
    canonical_label,
    class_setting,
    count_classes,
    labelled_clips,
)
from fdp.datasets.clips import ClipSample
from fdp.datasets.samm import load_samm
from fdp.errors import ConfigError


def clip_with(dataset: str, label: str, subject: str = "s1") -> ClipSample:
    return ClipSample(dataset=dataset, subject=subject, clip_id=f"{label}-clip", frame_paths=(Path("f1.jpg"),),
                      frame_numbers=(1,), onset=1, apex=1, offset=1, fps=30.0, label=label)


def test_canonical_label_sheet_spellings_become_one_label():
    assert canonical_label("Other") == canonical_label("others") == "others"
    assert canonical_label(" Happy ") == canonical_label("happiness") == "happiness"
    assert canonical_label("sad") == "sadness"
    assert canonical_label("Repression") == "repression"


def test_count_classes_casme2_five_classes_leave_out_fear_and_sadness(tmp_path):
    clips = load_casme2(build_casme2(tmp_path).root).clips
    counts = count_classes(clips, "casme2-5")
    assert counts.counts == {"happiness": 2, "disgust": 2, "repression": 1, "surprise": 1, "others": 1}
    assert counts.excluded == {"casme2:fear": 1, "casme2:sadness": 1}
    assert counts.total == 7


def test_count_classes_casme2_native_keeps_all_seven(tmp_path):
    clips = load_casme2(build_casme2(tmp_path).root).clips
    counts = count_classes(clips, "casme2-native")
    assert counts.counts == {"happiness": 2, "disgust": 2, "repression": 1, "surprise": 1, "others": 1, "fear": 1,
                             "sadness": 1}
    assert counts.excluded == {}


def test_count_classes_samm_five_classes_map_other_to_other(tmp_path):
    clips = load_samm(build_samm(tmp_path).root).clips
    counts = count_classes(clips, "samm-5")
    assert counts.counts == {"anger": 2, "contempt": 1, "happiness": 1, "surprise": 1, "other": 1}
    assert counts.excluded == {"samm:disgust": 1, "samm:fear": 1, "samm:sadness": 1}
    other = next(c for c in clips if c.label == "Other")
    assert class_setting("samm-5").index_of(other) == 4


def test_count_classes_megc2019_composite_of_casme2_and_samm(tmp_path):
    clips = (load_casme2(build_casme2(tmp_path / "c").root).clips
             + load_samm(build_samm(tmp_path / "s").root).clips)
    counts = count_classes(clips, "megc2019-3")
    assert counts.counts == {"negative": 9, "positive": 3, "surprise": 2}
    assert counts.excluded == {"casme2:fear": 1, "casme2:others": 1, "casme2:sadness": 1, "samm:others": 1}


def test_count_classes_megc2019_samm_published_label_counts_give_133():
    published = {"Anger": 57, "Contempt": 12, "Disgust": 9, "Fear": 8, "Sadness": 6, "Happiness": 26,
                 "Surprise": 15, "Other": 26}
    clips = [clip_with("samm", label) for label, n in published.items() for _ in range(n)]
    counts = count_classes(clips, "megc2019-3")
    assert counts.counts == {"negative": 92, "positive": 26, "surprise": 15}
    assert counts.total == 133


@pytest.mark.parametrize(("setting", "expected", "excluded"), [
    ("casme3-7", {"happiness": 2, "disgust": 2, "fear": 1, "anger": 1, "sadness": 1, "surprise": 1, "others": 1},
     {}),
    ("casme3-4", {"negative": 5, "positive": 2, "surprise": 1, "others": 1}, {}),
    ("casme3-3", {"negative": 5, "positive": 2, "surprise": 1}, {"casme3:others": 1}),
])
def test_count_classes_casme3_settings_give_expected_counts(tmp_path, setting, expected, excluded):
    clips = load_casme3(build_casme3(tmp_path).root).clips
    counts = count_classes(clips, setting)
    assert counts.counts == expected
    assert counts.excluded == excluded


def test_count_classes_casme_sq_native_and_three_classes(tmp_path):
    clips = load_casme_sq(build_casme_sq(tmp_path).root).clips
    assert count_classes(clips, "casme_sq-native").counts == {"negative": 3, "positive": 2, "surprise": 2,
                                                              "others": 2}
    three = count_classes(clips, "casme_sq-3")
    assert three.counts == {"negative": 3, "positive": 2, "surprise": 2}
    assert three.excluded == {"casme_sq:others": 2}


def test_index_of_clip_of_another_dataset_is_none():
    assert class_setting("casme2-5").index_of(clip_with("samm", "Happiness")) is None
    assert class_setting("megc2019-3").index_of(clip_with("synthetic", "positive")) is None
    assert class_setting("megc2019-3").index_of(clip_with("casme2", "happiness")) == 1


def test_index_of_unknown_label_is_none_and_counted():
    clip = clip_with("casme2", "tense")
    assert class_setting("casme2-native").index_of(clip) is None
    assert count_classes([clip], "casme2-native").excluded == {"casme2:tense": 1}


def test_labelled_clips_keeps_order_and_drops_left_out(tmp_path):
    clips = load_casme2(build_casme2(tmp_path).root).clips
    pairs = labelled_clips(clips, "casme2-5")
    assert [c for c, _ in pairs] == [c for c in clips if class_setting("casme2-5").index_of(c) is not None]
    assert all(class_setting("casme2-5").class_names[i] == c.label for c, i in pairs)


def test_class_setting_unknown_name_raises_config_error():
    with pytest.raises(ConfigError) as info:
        class_setting("casme2-3")
    assert str(info.value) == ("unknown class setting 'casme2-3'; choose one of casme2-native, casme2-5, "
                               "samm-native, samm-5, casme_sq-native, casme_sq-3, casme3-7, casme3-4, casme3-3, "
                               "megc2019-3, synthetic-4")


def test_class_settings_every_default_exists_and_names_are_distinct():
    for dataset, name in DEFAULT_SETTINGS.items():
        assert dataset in class_setting(name).datasets
    for setting in CLASS_SETTINGS.values():
        assert len(set(setting.class_names)) == setting.num_classes >= 3
        assert set().union(*(set(m.values()) for m in setting.mapping.values())) == set(setting.class_names)


def test_training_data_statement_synthetic_only_says_it_never_saw_real_data():
    from fdp.datasets.sources import training_data_statement

    synthetic = training_data_statement(["synthetic/astronaut", "synthetic/grace_hopper"])
    assert synthetic == ("trained on synthetic micro-expressions (action-unit motions warped onto real faces: "
                         "astronaut, grace_hopper); it has never seen a real micro-expression dataset and is not a "
                         "validated emotion reading")
    derived = training_data_statement(["synthetic/astronaut", "synthetic/morph_astronaut_canon_man",
                                       "synthetic/canon_man", "synthetic/canon_man_reshape1"])
    assert derived.startswith("trained on synthetic micro-expressions (action-unit motions warped onto real faces: "
                              "astronaut, canon_man; and 2 faces morphed or reshaped from them); it has never seen")
    real = training_data_statement(["casme2/sub01", "casme2/sub02", "samm/006"])
    assert real == "trained on CASME II (2 subjects) and SAMM (1 subject)"
