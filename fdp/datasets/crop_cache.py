"""Aligned crops on disk: one compressed .npz per clip, under a folder named after the aligner's settings.

Aligning is the slow part of reading a dataset (MediaPipe, ~10 ms a frame) and its output only changes when the
aligner does, so every clip is aligned once and its crops are kept:
`<cache>/<aligner key>/<dataset>/<subject>/<clip>.npz`. The aligner key is its version plus a hash of every
`AlignerSettings` field, so crops of another aligner or crop size are never mixed in. Each file also records a
fingerprint of the source frames it was cut from (file names and sizes), so a different copy or layout of a
dataset (CASME II raw vs cropped) is aligned afresh instead of read from a stale entry. Writes go to a temporary
file that is renamed into place, so an interrupted run leaves either a whole entry or none.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fdp.config import AlignerSettings
from fdp.datasets.clips import ClipSample
from fdp.io import atomic_write

CACHE_FORMAT = "fdp-live/crops/1"
ENV_CACHE_DIR = "FDP_CACHE_DIR"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def default_cache_dir() -> Path:
    """`$FDP_CACHE_DIR`, else `~/.cache/fdp-live/crops`."""
    configured = os.environ.get(ENV_CACHE_DIR)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "fdp-live" / "crops"


def aligner_key(settings: AlignerSettings) -> str:
    """'fdp-align-1_3f9c0a1b2c4d': the version, readable, and a hash of all settings (version included)."""
    text = json.dumps(dataclasses.asdict(settings), sort_keys=True)
    return f"{_UNSAFE.sub('-', settings.version)}_{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def clip_cache_path(cache_dir: Path, settings: AlignerSettings, clip: ClipSample) -> Path:
    """Where a clip's crops live for these aligner settings."""
    return Path(cache_dir) / aligner_key(settings) / _safe(clip.dataset) / _safe(clip.subject) / \
        f"{_safe(clip.clip_id)}.npz"


def source_fingerprint(clip: ClipSample, indices: Sequence[int]) -> str:
    """A hash of the frames a cache entry is cut from: folder and file name, and byte size, of each one."""
    digest = hashlib.sha256()
    for index in indices:
        path = clip.frame_paths[int(index)]
        try:
            size = path.stat().st_size
        except OSError:
            size = -1
        digest.update(f"{path.parent.name}/{path.name}:{size};".encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True, eq=False)
class CachedCrops:
    """A clip's aligned crops. `found[i]` says whether MediaPipe saw a face in frame i; frames where it did not
    were cut with the nearest aligned frame's transform. No face in any frame gives an empty `crops`."""

    crops: np.ndarray  # (N, S, S) uint8 gray or (N, S, S, 3) uint8 RGB; (0, ...) when no frame had a face
    frame_numbers: np.ndarray  # (N,) int64: the dataset's frame numbers, ascending
    found: np.ndarray  # (N,) bool
    fingerprint: str
    settings_key: str

    @property
    def has_face(self) -> bool:
        return bool(self.found.any()) and len(self.crops) == len(self.frame_numbers)

    @property
    def filled(self) -> int:
        """Frames without a face of their own (cut with a neighbour's transform)."""
        return int((~self.found).sum()) if self.has_face else 0

    def covers(self, numbers: Sequence[int]) -> bool:
        return bool(np.isin(np.asarray(numbers, np.int64), self.frame_numbers).all())

    def take(self, numbers: Sequence[int]) -> np.ndarray:
        """The crops of these dataset frame numbers (nearest cached frame where one is absent)."""
        wanted = np.asarray(numbers, np.int64)
        right = np.clip(np.searchsorted(self.frame_numbers, wanted), 0, len(self.frame_numbers) - 1)
        left = np.clip(right - 1, 0, len(self.frame_numbers) - 1)
        nearer_left = np.abs(wanted - self.frame_numbers[left]) <= np.abs(self.frame_numbers[right] - wanted)
        return self.crops[np.where(nearer_left, left, right)]


def write_crops(path: Path, entry: CachedCrops) -> Path:
    """Write an entry atomically (`fdp.io.atomic_write`), so an interrupted run leaves it whole or absent."""
    with atomic_write(path) as handle:
        np.savez_compressed(handle, crops=entry.crops, frame_numbers=entry.frame_numbers, found=entry.found,
                            meta=np.array(json.dumps({"format": CACHE_FORMAT, "fingerprint": entry.fingerprint,
                                                      "settings_key": entry.settings_key})))
    return path


def read_crops(path: Path) -> CachedCrops | None:
    """The entry at `path`, or None when there is none or it cannot be read (then the clip is aligned again)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("format") != CACHE_FORMAT:
                return None
            entry = CachedCrops(data["crops"], data["frame_numbers"].astype(np.int64), data["found"].astype(bool),
                                str(meta["fingerprint"]), str(meta["settings_key"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, json.JSONDecodeError):
        return None
    if len(entry.found) != len(entry.frame_numbers):
        return None
    return entry


def _safe(name: str) -> str:
    """A file-system-safe name; a hash suffix keeps two names that differ only in unsafe characters apart."""
    cleaned = _UNSAFE.sub("_", name)
    if cleaned == name and cleaned not in ("", ".", ".."):
        return cleaned
    return f"{cleaned}~{hashlib.sha256(name.encode()).hexdigest()[:8]}"
