"""Ray as the executor of a training run (`--executor ray`): one task per fold, and one per clip to align.

Workers share no filesystem with the driver. The crops go to them once, through Ray's object store (`ray.put`);
a fold's task sends back its checkpoint bytes and metrics record (`FoldResult`), an aligning task the clip's crops,
with the source frames shipped to it as encoded bytes; the driver writes the run folder and the crop cache, the
same files a serial run writes. Only this module imports Ray, and only when that executor is chosen.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from rich.console import Console

from fdp.datasets.folds import Fold
from fdp.errors import ConfigError, FDPError, first_line
from fdp.fold_executors import FoldFailure, FoldTask
from fdp.fold_runner import FoldData, FoldResult, compute_fold
from fdp.preprocess import AlignJob, AlignResult, align_job
from fdp.train_config import TrainConfig

INSTALL_HINT = 'pip install -e ".[ray]"'
# Ray reads this when it is imported: "0" makes a Ray started here use 127.0.0.1 for every server it opens,
# instead of the machine's address on the network (Ray's default on Linux, which any host could reach).
_LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
_IN_FLIGHT_PER_CPU = 2  # aligning tasks queued per cluster CPU: the frames of every clip at once would not fit


def import_ray(local: bool = True) -> ModuleType:
    """Ray, or the one line that says how to install it. `local`: a Ray about to be started on this machine,
    which then binds to loopback only (Ray must not have been imported yet for that to take)."""
    if local:
        os.environ.setdefault(_LOOPBACK_ENV, "0")
    try:
        import ray
    except ImportError:
        raise ConfigError(f"--executor ray needs Ray, which is not installed here: {INSTALL_HINT}") from None
    return ray


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[None]:
    """Join the cluster at `address` ('auto' or HOST:PORT), or start a local Ray on this machine (`num_cpus`:
    default, what Ray detects) without a dashboard; shut down only a Ray started here. A session this process
    already holds is used as it is."""
    ray = import_ray(local=address is None)
    if ray.is_initialized():
        yield
        return
    if address is None:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, logging_level="warning")
    else:
        try:
            ray.init(address=address, log_to_driver=False, logging_level="warning")
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise ConfigError(f"--ray-address {address}: no Ray cluster to join there ({first_line(error)}); start "
                              "one with `ray start --head`, or leave --ray-address out for a local Ray") from None
    try:
        yield
    finally:
        ray.shutdown()


def _train_fold(config: TrainConfig, data: FoldData, fold: Fold, seed: int) -> FoldResult:
    """The fold task, on a worker: quiet (the driver shows one bar and a line per fold), nothing written there."""
    return compute_fold(config, data, fold, seed, Console(quiet=True), progress=False)


def _failure(ray: ModuleType, error: Exception) -> FoldFailure:
    """A Ray error as the fold's failure: the exception the task raised, with Ray's traceback from the worker."""
    cause = error.cause if isinstance(error, ray.exceptions.RayTaskError) and error.cause is not None else error
    return FoldFailure.of(cause, str(error))


class RayFoldExecutor:
    """Each fold as a Ray task reserving `--cpus-per-fold` CPUs and `--gpus-per-fold` GPUs; the shared fold data
    is put in the object store once. Ray's own retries are off: `run_folds` decides what is tried again."""

    def __init__(self, config: TrainConfig, data: FoldData) -> None:
        self._ray = import_ray(local=False)  # imported by ray_session already
        self._config = config
        self._data = self._ray.put(data)
        self._remote = self._ray.remote(_train_fold).options(num_cpus=config.fold_cpus,
                                                             num_gpus=config.gpus_per_fold, max_retries=0)
        self._running: dict[Any, FoldTask] = {}

    def submit(self, task: FoldTask) -> None:
        self._running[self._remote.remote(self._config, self._data, task.fold, task.seed)] = task

    def next_finished(self) -> tuple[FoldTask, FoldResult | FoldFailure]:
        (ref,), _ = self._ray.wait(list(self._running), num_returns=1)
        task = self._running.pop(ref)
        try:
            return task, self._ray.get(ref)
        except self._ray.exceptions.RayError as error:
            return task, _failure(self._ray, error)


def align_on_ray(jobs: Sequence[tuple[int, AlignJob]]) -> Iterator[tuple[int, AlignResult]]:
    """`fdp.preprocess.JobRunner` on Ray: one task per clip (1 CPU, as one aligner keeps one core busy), its frames
    read here and shipped as bytes, a bounded number in flight. A task's expected failure (an `FDPError`, e.g. no
    landmarker on that worker) is raised here as itself."""
    ray = import_ray(local=False)
    remote = ray.remote(align_job).options(num_cpus=1)
    limit = _IN_FLIGHT_PER_CPU * max(1, int(ray.cluster_resources().get("CPU", 1)))
    queue, pending = deque(jobs), {}
    try:
        while queue or pending:
            while queue and len(pending) < limit:
                position, job = queue.popleft()
                pending[remote.remote(job.carrying_bytes())] = position
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            position = pending.pop(ref)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayTaskError as error:
                if isinstance(error.cause, FDPError):
                    raise error.cause from None
                raise
            yield position, result
    finally:  # stopped early (Ctrl-C, an error): the clips still queued on the cluster are not wanted
        for ref in pending:
            ray.cancel(ref)
