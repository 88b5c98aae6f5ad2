"""A fold's training state after each epoch, so a run that is cut off resumes at the next epoch, not from zero.

Training the bundled model takes about an hour on two CPU cores; a fold of the paper preset takes hours on a GPU.
After every epoch the loop writes everything that decides what comes next: the model, the optimizer's moments,
the learning-rate schedule's step, the best epoch's weights so far, the random generators (numpy's and torch's)
and the epoch history. A resumed CPU run therefore continues exactly as the uninterrupted run would have (the tests
check equal weights); a CUDA device's own generator is not kept, so a resumed GPU run is a faithful continuation
but not bit-identical. Tensors go to safetensors and the rest to JSON inside the same file's metadata: never pickle.
The state is keyed by a fingerprint of the run's settings and data, and a state written for anything else is
ignored (and replaced), never half-used.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

STATE_FORMAT = "fdp-live/training-state/1"


@dataclass
class ResumePoint:
    """What a resumed loop needs; tensors are on the CPU."""

    epoch: int  # the last finished epoch
    model: dict[str, torch.Tensor]
    best: dict[str, torch.Tensor] | None
    optimizer: dict[str, Any]
    schedule: dict[str, Any]
    numpy_rng: dict[str, Any]
    torch_rng: torch.Tensor
    history: list[dict[str, Any]]
    best_key: tuple[float, float] | None
    best_epoch: int


def fingerprint(*parts: Any) -> str:
    """A short hash of the settings and data identity a state belongs to (anything JSON can write)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def _flat_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The optimizer's per-parameter tensors as flat names, and the rest (groups, scalar steps) as JSON."""
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{index}.{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _nested_optimizer(tensors: dict[str, torch.Tensor], plain: dict[str, Any]) -> dict[str, Any]:
    """Undo `_flat_optimizer`: `tensors` keyed 'index.name', as `load_state` strips the 'optimizer.' prefix."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    for key, value in plain["scalars"].items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": plain["param_groups"]}


def save_state(path: Path, key: str, point: ResumePoint) -> None:
    """Write the state atomically: a cut during the write leaves the previous epoch's state whole."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in point.model.items()}
    if point.best is not None:
        tensors |= {f"best.{k}": v.detach().cpu().contiguous() for k, v in point.best.items()}
    optimizer_tensors, optimizer_plain = _flat_optimizer(point.optimizer)
    tensors |= optimizer_tensors
    tensors["torch_rng"] = point.torch_rng.cpu().contiguous()
    plain = {"format": STATE_FORMAT, "key": key, "epoch": point.epoch, "optimizer": optimizer_plain,
             "schedule": point.schedule, "numpy_rng": point.numpy_rng, "history": point.history,
             "best_key": point.best_key, "best_epoch": point.best_epoch, "has_best": point.best is not None}
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(path.name + ".writing")
    save_file(tensors, str(scratch), metadata={"state": json.dumps(plain)})
    os.replace(scratch, path)


def load_state(path: Path, key: str) -> ResumePoint | None:
    """The saved state if it exists, is whole and belongs to `key`; None otherwise (then training starts over)."""
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as handle:
            plain = json.loads((handle.metadata() or {}).get("state", "{}"))
            if plain.get("format") != STATE_FORMAT or plain.get("key") != key:
                return None
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except Exception:  # safetensors' own errors, OSError: a truncated or foreign file is no state to resume
        return None

    def part(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

    best_key = plain["best_key"]
    return ResumePoint(
        epoch=int(plain["epoch"]), model=part("model."), best=part("best.") if plain["has_best"] else None,
        optimizer=_nested_optimizer(part("optimizer."), plain["optimizer"]),
        schedule=plain["schedule"], numpy_rng=plain["numpy_rng"], torch_rng=tensors["torch_rng"],
        history=plain["history"], best_key=tuple(best_key) if best_key is not None else None,
        best_epoch=int(plain["best_epoch"]))


