"""The metrics micro-expression papers report, from a confusion matrix, in NumPy (tests/test_metrics.py holds
them equal to scikit-learn's on random labels).

- accuracy: correct / all.
- UF1 (unweighted F1, macro F1): the mean over classes of F1_c = 2 TP_c / (2 TP_c + FP_c + FN_c). A class with no
  true clip and no prediction (possible in one LOSO fold) has no F1 and is left out of the mean, as scikit-learn
  does when it infers the labels from the data.
- UAR (unweighted average recall): the mean over classes with true clips of TP_c / (TP_c + FN_c).
- weighted F1: F1_c weighted by each class's share of the true clips.
MEGC's "composite" UF1/UAR are these metrics on the concatenation of every fold's predictions; that is what the
reports call pooled.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> np.ndarray:
    """(K, K) int64 counts: rows are the true class, columns the predicted one."""
    true = np.asarray(y_true, np.int64)
    pred = np.asarray(y_pred, np.int64)
    if true.shape != pred.shape:
        raise ValueError(f"{true.size} true labels but {pred.size} predictions")
    if true.size and (min(true.min(), pred.min()) < 0 or max(true.max(), pred.max()) >= num_classes):
        raise ValueError(f"labels must lie in 0..{num_classes - 1}")
    return np.bincount(true * num_classes + pred, minlength=num_classes ** 2).reshape(num_classes, num_classes)


@dataclass(frozen=True)
class ClassScores:
    """Per-class precision, recall and F1 (NaN where undefined) and support (true clips)."""

    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray


def class_scores(matrix: np.ndarray) -> ClassScores:
    cm = np.asarray(matrix, np.float64)
    tp = np.diag(cm)
    predicted = cm.sum(axis=0)
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, tp / predicted, np.nan)
        recall = np.where(support > 0, tp / support, np.nan)
        denominator = 2 * tp + (predicted - tp) + (support - tp)
        f1 = np.where(denominator > 0, 2 * tp / denominator, np.nan)
    return ClassScores(precision, recall, f1, support.astype(np.int64))


@dataclass(frozen=True)
class Scores:
    """The four reported metrics of one set of predictions (NaN when there are none)."""

    accuracy: float
    uf1: float
    uar: float
    weighted_f1: float
    clips: int

    def to_dict(self) -> dict[str, float | int | None]:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


def scores_from_confusion(matrix: np.ndarray) -> Scores:
    cm = np.asarray(matrix)
    total = int(cm.sum())
    if total == 0:
        return Scores(math.nan, math.nan, math.nan, math.nan, 0)
    per_class = class_scores(cm)
    defined = ~np.isnan(per_class.f1)
    weighted = float(np.sum(np.where(defined, per_class.f1, 0.0) * per_class.support) / total)
    return Scores(accuracy=float(np.trace(cm) / total), uf1=float(np.mean(per_class.f1[defined])),
                  uar=float(np.nanmean(per_class.recall)), weighted_f1=weighted, clips=total)


def score(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> Scores:
    """Accuracy, UF1, UAR and weighted F1 of these predictions."""
    return scores_from_confusion(confusion_matrix(y_true, y_pred, num_classes))
