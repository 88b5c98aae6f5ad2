"""Writing outputs: output folders checked before any work, and files that appear whole or not at all.

Every file a run leaves behind (fold metrics, summaries, crop-cache entries, fetched assets, decoded face
frames) is written to a temporary file in its folder and renamed over its name when complete, so a reader, a
resumed run or a crash never sees half of one. JSON goes out strict: NaN becomes null.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from fdp.errors import ConfigError


def output_folder(path: Path, flag: str) -> Path:
    """Create a command's output folder (parents included), or fail in one line before any work starts."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{path}: a file, not a folder; choose another {flag}")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"{path}: cannot create this folder ({error.strerror}); choose another {flag}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"{path}: this folder is not writable; choose another {flag}")
    return path


@contextlib.contextmanager
def atomic_write(path: Path) -> Iterator[IO[bytes]]:
    """A binary handle on a temporary file beside `path`, renamed to `path` when the block ends without error
    (and removed when it fails)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.partial")  # one per writer
    try:
        with partial.open("xb") as handle:
            yield handle
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _json_ready(value: Any) -> Any:
    """NaN becomes None, NumPy scalars and arrays plain Python, paths strings, so the JSON is strict."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_ready(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: Path, data: Any) -> Path:
    """Write strict, indented JSON atomically."""
    text = json.dumps(_json_ready(data), indent=2, allow_nan=False) + "\n"
    with atomic_write(path) as handle:
        handle.write(text.encode("utf-8"))
    return Path(path)


def write_bytes(path: Path, data: bytes) -> Path:
    """Write `data` atomically."""
    with atomic_write(path) as handle:
        handle.write(data)
    return Path(path)
