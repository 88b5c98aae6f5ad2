"""The installed commands (`[project.scripts]`): each one `pip install -e .` put beside this Python runs, its help
and usage lines carry its own name, the README's table lists every one, and `python run_live.py` still works."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SCRIPTS = tomllib.loads((REPO / "pyproject.toml").read_text())["project"].get("scripts", {})
pytestmark = pytest.mark.timeout(120)

EXPECTED = {"fdp-live", "fdp-calibrate", "fdp-train", "fdp-evaluate", "fdp-export", "fdp-preprocess",
            "fdp-synthesize", "fdp-heldout", "fdp-long-videos", "fdp-recode", "fdp-assets", "fdp-subscribe",
            "fdp-json-schema", "fdp-timeline", "fdp-quantize", "fdp-proxy"}


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), cwd=REPO, capture_output=True, text=True, timeout=110)


def test_entry_points_declared_for_every_command():
    assert set(SCRIPTS) == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_entry_point_installed_help_exit_0_under_its_own_name(name):
    script = BIN / name
    assert script.is_file(), f"{script} missing: run pip install -e . --no-deps"
    result = run(str(script), "--help")
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    assert result.stdout.startswith(f"usage: {name} ")


@pytest.mark.parametrize("argv, expected", [
    (("fdp-train", "--epochs", "1.5"), "fdp-train: --epochs: expected an integer, got '1.5'"),
    (("fdp-live", "--max-faces", "x"), "fdp-live: --max-faces: expected an integer, got 'x'"),
    (("fdp-calibrate", "--camera", "0", "--user", "ada"),
     "fdp-calibrate: missing --calibrate SECONDS; see fdp-calibrate --help"),
    (("fdp-subscribe", "--count", "many"), "fdp-subscribe: --count: expected an integer, got 'many'"),
], ids=lambda value: value[0] if isinstance(value, tuple) else None)
def test_entry_point_usage_error_one_line_exit_2_names_the_command(argv, expected):
    result = run(str(BIN / argv[0]), *argv[1:])
    assert (result.returncode, result.stdout, result.stderr) == (2, "", expected + "\n")


def test_entry_point_live_range_error_one_line_exit_1():
    result = run(str(BIN / "fdp-live"), "--camera", "0", "--threads", "-3")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == ("ConfigError: --threads -3: use 1 to 256 ONNX Runtime threads (default 1: the live "
                             "loop's stages already keep the cores busy)\n")


def test_entry_point_json_schema_prints_the_schema():
    import json

    from realtime.json_schema import build_schema

    result = run(str(BIN / "fdp-json-schema"))
    assert (result.returncode, result.stderr) == (0, "")
    assert json.loads(result.stdout) == build_schema()


def test_run_live_py_is_still_the_same_command():
    result = run(sys.executable, "run_live.py", "--help")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("usage: run_live.py ")
    assert "--reconnect-s" in result.stdout


def test_readme_lists_every_entry_point():
    readme = (REPO / "README.md").read_text()
    listed = set(re.findall(r"^\| `(fdp-[a-z-]+)` \|", readme, re.MULTILINE))
    assert listed == set(SCRIPTS)
