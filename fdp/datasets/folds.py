"""Leave-one-subject-out folds, with a validation split drawn from each fold's training subjects only.

LOSO is the protocol every micro-expression paper reports: each subject in turn is the test set, the others train.
Choosing the epoch or the hyper-parameters on the test subject (the published habit) leaks the test set into the
model, so every fold here also names validation subjects, taken from its training subjects and never from its test
subject. The split is by subject, not by clip, for the same reason: clips of one person look alike.

Subjects are keyed `dataset/subject` (`casme2/sub01`, `samm/006`) so composite settings never merge two people.
Pass the clips you will train on (after the class setting has left some out): a subject with no such clip gets no
fold. A fixed split (`holdout_fold`) and a subset of the LOSO folds (`fold_subjects` with `only=`) are planned
here too, from subjects named by the user as keys or bare names (`match_subjects`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from fdp.datasets.clips import ClipSample
from fdp.datasets.sheets import natural_key
from fdp.errors import ConfigError

Item = TypeVar("Item")


def subject_key(clip: ClipSample) -> str:
    """'casme2/sub01': unique across datasets, so one person is one subject everywhere."""
    return f"{clip.dataset}/{clip.subject}"


def subjects_of(clips: Iterable[ClipSample]) -> list[str]:
    """The distinct subject keys, in natural order (sub2 before sub10)."""
    return sorted({subject_key(c) for c in clips}, key=natural_key)


@dataclass(frozen=True)
class Fold:
    """One LOSO fold: its test subjects, the training subjects, and the validation subjects set apart from them."""

    index: int
    test: tuple[str, ...]
    train: tuple[str, ...]  # training subjects, validation subjects removed
    val: tuple[str, ...]

    @property
    def name(self) -> str:
        return "+".join(self.test) or "all subjects"

    def split(self, items: Sequence[Item], subject: Callable[[Item], str]) -> tuple[list[Item], list[Item], list[Item]]:
        """(train, val, test) items of this fold, each in the order given; `subject` gives an item's subject key
        (`subject_key` for clips), so items that carry a clip with other data split the same way."""
        test, val = set(self.test), set(self.val)
        parts: tuple[list[Item], list[Item], list[Item]] = ([], [], [])
        for item in items:
            key = subject(item)
            parts[2 if key in test else 1 if key in val else 0].append(item)
        return parts


def validation_subjects(train: Sequence[str], fraction: float, seed: int, fold_index: int) -> tuple[str, ...]:
    """A deterministic sample of round(fraction * len(train)) training subjects (at least 1, and 1 left to train).

    The generator is seeded by (seed, fold index), so a fold's split does not change when other folds are added.
    """
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(f"validation fraction {fraction} is outside 0..1 (exclusive of 1)")
    if fraction == 0.0 or len(train) < 2:
        return ()
    count = min(max(1, round(fraction * len(train))), len(train) - 1)
    rng = np.random.default_rng([seed, fold_index])
    chosen = rng.choice(len(train), size=count, replace=False)
    return tuple(sorted((train[i] for i in chosen), key=natural_key))


def leave_one_subject_out(clips: Iterable[ClipSample], *, val_fraction: float = 0.2, seed: int = 0,
                          only: Iterable[str] | None = None) -> list[Fold]:
    """One fold per subject (in natural order): that subject tests, the others train or validate.

    val_fraction: share of each fold's training subjects set apart for validation (0 for none).
    only: subject keys to make folds for (all by default), e.g. to run a few folds of a long protocol.
    """
    subjects = subjects_of(clips)
    wanted = subjects if only is None else [s for s in subjects if s in set(only)]
    if only is not None:
        unknown = sorted(set(only) - set(subjects), key=natural_key)
        if unknown:
            raise ConfigError(f"no clips for subject {', '.join(unknown)}; "
                              f"subjects are keyed like '{subjects[0] if subjects else 'casme2/sub01'}'")
    if len(subjects) < 2:
        raise ConfigError(f"leave-one-subject-out needs 2 or more subjects, got {len(subjects)}")
    folds = []
    for test in wanted:
        index = subjects.index(test)  # the fold's place in the full protocol, so `only` never changes a split
        rest = [s for s in subjects if s != test]
        val = validation_subjects(rest, val_fraction, seed, index)
        folds.append(Fold(index, (test,), tuple(s for s in rest if s not in val), val))
    return folds


def match_subjects(names: Iterable[str], keys: Sequence[str]) -> tuple[str, ...]:
    """Subject keys for names given as keys ('casme2/sub01') or bare subjects ('sub01') that name one key."""
    found = []
    for name in names:
        matches = [k for k in keys if k == name or k.split("/", 1)[1] == name]
        if len(matches) != 1:
            shown = ", ".join(keys[:6]) + (", ..." if len(keys) > 6 else "")
            why = "names several subjects; use dataset/subject" if matches else "has no usable clips"
            raise ConfigError(f"subject {name!r} {why}; subjects are {shown}")
        found.append(matches[0])
    return tuple(found)


def fold_subjects(tokens: Iterable[str], keys: Sequence[str]) -> tuple[str, ...]:
    """The test subjects of the LOSO folds named by fold index ('3') or subject ('sub04'), for `only=`."""
    chosen = []
    for token in tokens:
        if token.isdigit():
            if int(token) >= len(keys):
                raise ConfigError(f"--folds {token}: this protocol has folds 0..{len(keys) - 1}")
            chosen.append(keys[int(token)])  # fold i tests the i-th subject in natural order
        else:
            chosen.extend(match_subjects((token,), keys))
    return tuple(chosen)


def holdout_fold(keys: Sequence[str], test: Sequence[str], *, val_fraction: float, seed: int,
                 val: Sequence[str] = ()) -> Fold:
    """Fold 0 of a fixed split: `test` subjects test (none: a model of every subject), the rest train or validate
    (the `val` subjects if given, else a random `val_fraction` of them)."""
    rest = [k for k in keys if k not in set(test)]
    if not rest:
        raise ConfigError("--holdout-subjects leaves no subject to train on")
    if set(val) & set(test):
        raise ConfigError(f"--val-subjects and --holdout-subjects share {', '.join(sorted(set(val) & set(test)))}")
    if val and not [k for k in rest if k not in set(val)]:
        raise ConfigError("--val-subjects leaves no subject to train on")
    val = tuple(val) if val else validation_subjects(rest, val_fraction, seed, 0)
    return Fold(0, tuple(test), tuple(k for k in rest if k not in val), val)
