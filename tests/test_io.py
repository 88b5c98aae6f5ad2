"""fdp.io on real files: strict JSON (NaN becomes null), writes that appear whole or not at all, and output folders
that fail in one line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from fdp.errors import ConfigError
from fdp.io import atomic_write, output_folder, write_json


def test_write_json_nan_numpy_and_paths_become_strict_json(tmp_path: Path):
    path = write_json(tmp_path / "deep" / "summary.json", {"uf1": math.nan, "clips": np.int64(3),
                                                           "probs": np.array([0.5, 0.25]), "run": tmp_path})
    assert json.loads(path.read_text()) == {"uf1": None, "clips": 3, "probs": [0.5, 0.25], "run": str(tmp_path)}
    assert sorted(p.name for p in path.parent.iterdir()) == ["summary.json"]


def test_atomic_write_failure_leaves_the_old_file_and_no_partial(tmp_path: Path):
    path = tmp_path / "metrics.json"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(path) as handle:
            handle.write(b"half of the new")
            raise RuntimeError("killed mid-write")
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_output_folder_under_a_file_one_line_config_error(tmp_path: Path):
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(ConfigError) as error:
        output_folder(tmp_path / "a_file" / "run", "--out")
    assert str(error.value) == (f"{tmp_path / 'a_file' / 'run'}: cannot create this folder (Not a directory); "
                                "choose another --out")
    assert output_folder(tmp_path / "new" / "run", "--out").is_dir()
