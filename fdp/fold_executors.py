"""What runs the folds of a training run, and the one loop that drives any of them.

An executor trains folds and hands each one back, finished or failed, as it ends; `run_folds` is the driver's
side and is the same for every executor: it writes each finished fold into the run folder (`write_fold`), gives
a failed fold one more try, then reports it in one line (its traceback kept in the fold's error.txt) while the
others go on. So a serial run and a Ray run (`fdp.ray_executor`) leave the same files, and fail the same way.
"""

from __future__ import annotations

import traceback
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from fdp.datasets.folds import Fold
from fdp.errors import first_line
from fdp.fold_runner import (
    STATE_NAME,
    FoldData,
    FoldResult,
    compute_fold,
    fold_line,
    write_fold,
    write_fold_error,
)
from fdp.train_config import TrainConfig

ATTEMPTS = 2  # a failed fold is tried once more: a lost worker or a full GPU may not fail twice


@dataclass(frozen=True)
class FoldTask:
    """One fold to train: which, where its outputs go on the driver, and its training seed."""

    fold: Fold
    folder: Path
    seed: int

    @property
    def title(self) -> str:
        return f"fold {self.fold.index} ({self.fold.name})"


@dataclass(frozen=True)
class FoldFailure:
    """How a fold failed: one line for the console, the whole traceback for its error.txt."""

    line: str
    traceback: str

    @classmethod
    def of(cls, error: BaseException, traceback_text: str | None = None) -> FoldFailure:
        text = traceback_text or "".join(traceback.format_exception(type(error), error, error.__traceback__))
        return cls(f"{type(error).__name__}: {first_line(error)}", text)


class FoldExecutor(Protocol):
    """Trains submitted folds; `next_finished` blocks until one ends and returns it, in whatever order they end."""

    def submit(self, task: FoldTask) -> None: ...

    def next_finished(self) -> tuple[FoldTask, FoldResult | FoldFailure]: ...


class SerialFoldExecutor:
    """Each fold in this process, in the order submitted, with its per-epoch lines and step bar; a fold cut off
    mid-way resumes after its last finished epoch (its state is kept in the fold's folder)."""

    def __init__(self, config: TrainConfig, data: FoldData, console: Console, progress: bool) -> None:
        self._config, self._data, self._console, self._progress = config, data, console, progress
        self._queue: deque[FoldTask] = deque()

    def submit(self, task: FoldTask) -> None:
        self._queue.append(task)

    def next_finished(self) -> tuple[FoldTask, FoldResult | FoldFailure]:
        task = self._queue.popleft()
        try:
            return task, compute_fold(self._config, self._data, task.fold, task.seed, self._console, self._progress,
                                      state_path=task.folder / STATE_NAME)
        except Exception as error:  # reported as the fold's failure; Ctrl-C (not an Exception) still stops the run
            return task, FoldFailure.of(error)


def run_folds(executor: FoldExecutor, tasks: list[FoldTask], console: Console, progress: bool) -> list[FoldTask]:
    """Run every task on `executor`, writing each finished fold as it arrives; returns the folds that failed."""
    attempts: Counter[int] = Counter()
    failed: list[FoldTask] = []
    for task in tasks:
        executor.submit(task)
    columns = (TextColumn("folds"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, disable=not progress, transient=True) as bar:
        overall = bar.add_task("folds", total=len(tasks))
        ended = 0
        while ended < len(tasks):
            task, outcome = executor.next_finished()
            if isinstance(outcome, FoldResult):
                write_fold(task.folder, outcome)
                console.print(fold_line(outcome.record))
            else:
                attempts[task.fold.index] += 1
                if attempts[task.fold.index] < ATTEMPTS:
                    console.print(f"{task.title} failed ({outcome.line}); trying it once more")
                    executor.submit(task)
                    continue
                error_file = write_fold_error(task.folder, outcome.traceback)
                console.print(f"{task.title} failed twice: {outcome.line} (traceback: {error_file})")
                failed.append(task)
            ended += 1
            bar.advance(overall)
    return failed
