"""The package as pip installs it from a wheel (not editable): the bundled model ships inside it as package data,
once, and `engines.base.ModelFiles.locate(None)` finds it there with no source tree in sight."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MODEL_FILES = ("encoder.onnx", "head.onnx", "model.safetensors")
SOURCES = ("pyproject.toml", "README.md", "fdp", "realtime", "engines", "calibration", "models")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the sources (the checkout is left untouched), offline."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "src"
    source.mkdir()
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi",
                                                                               "*.nbc"))
        else:
            shutil.copy2(path, source / name)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                           str(root / "dist"), str(source)], capture_output=True, text=True, timeout=170)
    assert done.returncode == 0, done.stderr
    (built,) = (root / "dist").glob("fdp_live-*.whl")
    return built


@pytest.mark.timeout(200)
def test_wheel_ships_the_bundled_model_once_as_package_data(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        for name in MODEL_FILES:
            inside = f"fdp_models/fdp_live/{name}"
            assert inside in names, f"{inside} not in {wheel.name}"
            assert sha256(archive.read(inside)) == sha256((REPO / "models" / "fdp_live" / name).read_bytes())
        model_files = [n for n in names if n.rsplit("/", 1)[-1] in MODEL_FILES]
        assert sorted(model_files) == sorted(f"fdp_models/fdp_live/{name}" for name in MODEL_FILES)  # once
        assert not any(n.endswith(".png") for n in names)  # the model card's figures stay in the repository
        assert sum(archive.getinfo(n).file_size for n in names) < 20_000_000


@pytest.mark.timeout(200)
def test_unpacked_wheel_finds_the_bundled_model_without_the_source_tree(wheel, tmp_path):
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = ("import engines.base as base\n"
            "files = base.ModelFiles.locate(None)\n"
            "print(base.__file__)\n"
            "print(files.folder)\n"
            "print(all(p.is_file() for p in (files.encoder, files.head, files.checkpoint)))\n")
    # -I: no user site, no PYTHONPATH from outside, no current folder; the unpacked wheel goes first on sys.path,
    # ahead of the editable install of this checkout.
    done = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(site)!r})\n{code}"],
                          cwd=elsewhere, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    module, folder, present = done.stdout.splitlines()
    assert Path(module).is_relative_to(site)
    assert Path(folder) == site / "fdp_models" / "fdp_live"
    assert present == "True"
