"""Leave-one-subject-out folds: every subject tests exactly once, never trains in its own fold, and validation
subjects come from the training subjects only, the same way for the same seed."""

from __future__ import annotations

import pytest
from builders import build_casme2, build_samm

from fdp.datasets.casme2 import load_casme2
from fdp.datasets.folds import (
    fold_subjects,
    holdout_fold,
    leave_one_subject_out,
    match_subjects,
    subject_key,
    subjects_of,
    validation_subjects,
)
from fdp.datasets.samm import load_samm
from fdp.errors import ConfigError


@pytest.fixture(scope="module")
def casme2_clips(tmp_path_factory):
    built = build_casme2(tmp_path_factory.mktemp("loso"), subjects=[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
                         clips_per_subject=2, frames_per_clip=6, errata=False)
    return load_casme2(built.root).clips


def test_leave_one_subject_out_test_subjects_partition_all_subjects(casme2_clips):
    folds = leave_one_subject_out(casme2_clips)
    assert [f.test for f in folds] == [(f"casme2/sub{n:02d}",) for n in range(1, 12)]
    assert sorted(s for f in folds for s in f.test) == sorted(subjects_of(casme2_clips))


def test_leave_one_subject_out_no_subject_in_two_parts_of_a_fold(casme2_clips):
    everyone = set(subjects_of(casme2_clips))
    for fold in leave_one_subject_out(casme2_clips, val_fraction=0.2):
        train, val, test = set(fold.train), set(fold.val), set(fold.test)
        assert not train & test and not val & test and not train & val
        assert train | val | test == everyone
        assert len(val) == 2  # round(0.2 * 10 training subjects)


def test_leave_one_subject_out_split_partitions_clips_by_subject(casme2_clips):
    fold = leave_one_subject_out(casme2_clips)[4]
    train, val, test = fold.split(casme2_clips, subject_key)
    assert len(train) + len(val) + len(test) == len(casme2_clips)
    assert {subject_key(c) for c in test} == {"casme2/sub05"}
    assert {subject_key(c) for c in val} == set(fold.val)
    assert {subject_key(c) for c in train} == set(fold.train)


def test_leave_one_subject_out_same_seed_same_validation_subjects(casme2_clips):
    first = leave_one_subject_out(casme2_clips, seed=3)
    again = leave_one_subject_out(casme2_clips, seed=3)
    assert first == again
    others = [leave_one_subject_out(casme2_clips, seed=s) for s in range(4, 8)]
    assert any(f.val != o.val for folds in others for f, o in zip(first, folds, strict=True))


def test_leave_one_subject_out_only_keeps_each_folds_split(casme2_clips):
    full = leave_one_subject_out(casme2_clips, seed=1)
    [fold] = leave_one_subject_out(casme2_clips, seed=1, only=["casme2/sub07"])
    assert fold == full[6]


def test_leave_one_subject_out_zero_fraction_has_no_validation(casme2_clips):
    assert all(f.val == () for f in leave_one_subject_out(casme2_clips, val_fraction=0.0))


def test_leave_one_subject_out_composite_keys_subjects_by_dataset(tmp_path, casme2_clips):
    samm = load_samm(build_samm(tmp_path, subjects=2).root).clips
    folds = leave_one_subject_out(list(casme2_clips) + list(samm))
    assert [f.test[0] for f in folds][-2:] == ["samm/006", "samm/007"]
    assert len(folds) == 13


def test_leave_one_subject_out_unknown_subject_raises_config_error(casme2_clips):
    with pytest.raises(ConfigError) as info:
        leave_one_subject_out(casme2_clips, only=["sub01"])
    assert str(info.value) == "no clips for subject sub01; subjects are keyed like 'casme2/sub01'"


def test_leave_one_subject_out_one_subject_raises_config_error(casme2_clips):
    with pytest.raises(ConfigError) as info:
        leave_one_subject_out([c for c in casme2_clips if c.subject == "sub01"])
    assert str(info.value) == "leave-one-subject-out needs 2 or more subjects, got 1"


def test_validation_subjects_bad_fraction_raises_config_error():
    with pytest.raises(ConfigError) as info:
        validation_subjects(["a", "b"], 1.0, 0, 0)
    assert str(info.value) == "validation fraction 1.0 is outside 0..1 (exclusive of 1)"


def test_validation_subjects_leave_at_least_one_to_train():
    assert validation_subjects(["a"], 0.5, 0, 0) == ()
    assert len(validation_subjects(["a", "b"], 0.9, 0, 0)) == 1


def test_fold_split_with_a_subject_function_keeps_items_whole(casme2_clips):
    fold = leave_one_subject_out(casme2_clips)[2]
    pairs = [(clip, i) for i, clip in enumerate(casme2_clips)]
    parts = fold.split(pairs, subject=lambda pair: subject_key(pair[0]))
    by_clip = fold.split(casme2_clips, subject_key)
    assert [[clip for clip, _ in part] for part in parts] == [list(part) for part in by_clip]
    assert sorted(i for part in parts for _, i in part) == list(range(len(casme2_clips)))


def test_match_subjects_bare_names_and_keys(casme2_clips):
    keys = subjects_of(casme2_clips)
    assert match_subjects(["sub02", "casme2/sub10"], keys) == ("casme2/sub02", "casme2/sub10")
    with pytest.raises(ConfigError) as info:
        match_subjects(["sub99"], keys)
    assert str(info.value) == ("subject 'sub99' has no usable clips; subjects are casme2/sub01, casme2/sub02, "
                               "casme2/sub03, casme2/sub04, casme2/sub05, casme2/sub06, ...")


def test_fold_subjects_indices_and_names_select_the_same_folds_as_only(casme2_clips):
    keys = subjects_of(casme2_clips)
    chosen = leave_one_subject_out(casme2_clips, only=fold_subjects(["1", "sub04", "3"], keys))
    full = leave_one_subject_out(casme2_clips)
    assert chosen == [full[1], full[3]]
    with pytest.raises(ConfigError) as info:
        fold_subjects(["11"], keys)
    assert str(info.value) == "--folds 11: this protocol has folds 0..10"


def test_holdout_fold_tests_the_named_subjects_and_validates_on_the_rest(casme2_clips):
    keys = subjects_of(casme2_clips)
    fold = holdout_fold(keys, ("casme2/sub03",), val_fraction=0.2, seed=0)
    assert fold.index == 0 and fold.test == ("casme2/sub03",) and len(fold.val) == 2
    assert sorted(fold.train + fold.val, key=keys.index) == [k for k in keys if k != "casme2/sub03"]
    everyone = holdout_fold(keys, (), val_fraction=0.0, seed=0)
    assert everyone.test == () and everyone.train == tuple(keys)
    with pytest.raises(ConfigError, match="leaves no subject to train on"):
        holdout_fold(keys, tuple(keys), val_fraction=0.2, seed=0)
