"""fdp.metrics against scikit-learn on random labels: the same confusion matrix, accuracy, UF1, UAR, weighted F1
and per-class scores, including folds where a class is never true, never predicted, or both."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk

from fdp.metrics import class_scores, confusion_matrix, score


def random_labels(seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """1-40 labels of 2-6 classes; a few classes may be left out of the truth, the predictions, or both."""
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 7))
    n = int(rng.integers(1, 41))
    true_classes = rng.choice(k, size=int(rng.integers(1, k + 1)), replace=False)
    pred_classes = rng.choice(k, size=int(rng.integers(1, k + 1)), replace=False)
    return rng.choice(true_classes, n), rng.choice(pred_classes, n), k


@pytest.mark.parametrize("seed", range(200))
def test_metrics_match_scikit_learn_on_random_labels(seed):
    y_true, y_pred, k = random_labels(seed)
    labels = list(range(k))
    matrix = confusion_matrix(y_true, y_pred, k)
    assert np.array_equal(matrix, sk.confusion_matrix(y_true, y_pred, labels=labels))
    got = score(y_true, y_pred, k)
    assert got.clips == len(y_true)
    assert got.accuracy == pytest.approx(sk.accuracy_score(y_true, y_pred))
    # UF1 over the classes that occur (true or predicted): scikit-learn's default when it infers the labels.
    assert got.uf1 == pytest.approx(sk.f1_score(y_true, y_pred, average="macro", zero_division=0))
    # UAR over the classes that have true clips.
    assert got.uar == pytest.approx(sk.recall_score(y_true, y_pred, labels=np.unique(y_true), average="macro"))
    assert got.weighted_f1 == pytest.approx(sk.f1_score(y_true, y_pred, labels=labels, average="weighted",
                                                        zero_division=0))
    precision, recall, f1, support = sk.precision_recall_fscore_support(y_true, y_pred, labels=labels,
                                                                        zero_division=np.nan)
    ours = class_scores(matrix)
    assert np.array_equal(ours.support, support)
    assert np.allclose(ours.precision, precision, equal_nan=True)
    assert np.allclose(ours.recall, recall, equal_nan=True)
    # scikit-learn calls F1 undefined only when its precision or recall is; ours only when nothing was true or
    # predicted (2 TP + FP + FN = 0), and 0 where the class was predicted but never true, or true but missed.
    defined = ~np.isnan(ours.f1)
    assert np.array_equal(defined, (support > 0) | (matrix.sum(axis=0) > 0))
    assert np.allclose(ours.f1[defined], np.nan_to_num(f1)[defined])
