"""Preprocessing: real faces through the real aligner into the crop cache, reuse on a second pass, faceless frames
and clips counted, the cache keyed by the aligner's settings, and the command's one-line errors."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from builders import build_casme2

from fdp.assets import missing_assets
from fdp.config import AlignerSettings, preset
from fdp.datasets.clips import ClipSample
from fdp.datasets.crop_cache import CachedCrops, aligner_key, clip_cache_path, read_crops, write_crops
from fdp.datasets.loading import load_dataset
from fdp.datasets.sampling import sample_indices
from fdp.preprocess import clip_key, needed_indices, preprocess_clips

REPO = Path(__file__).resolve().parents[1]
SETTINGS = preset("tiny").aligner
needs_landmarker = pytest.mark.skipif("face_landmarker.task" in missing_assets(),
                                      reason="face_landmarker.task not fetched: run `python -m fdp.assets fetch`")


def _blank(path: Path) -> None:
    """Overwrite a frame with a faceless one of the same size (a flat wall)."""
    height, width = cv2.imread(str(path)).shape[:2]
    cv2.imwrite(str(path), np.full((height, width, 3), 128, np.uint8))


@pytest.fixture()
def casme2_clips(tmp_path: Path) -> list[ClipSample]:
    built = build_casme2(tmp_path, layout="raw", subjects=2, clips_per_subject=2, frames_per_clip=8)
    return list(load_dataset("casme2", built.root).clips)


@needs_landmarker
def test_preprocess_second_pass_reads_cache_without_aligning(casme2_clips: list[ClipSample], tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    first, crops = preprocess_clips(casme2_clips, SETTINGS, cache_dir=cache, progress=False)
    assert (first.aligned_clips, first.cache_hits, first.aligned_frames) == (4, 0, 32)
    assert first.frames_per_s > 0 and first.no_face == [] and first.filled_frames == 0
    for clip in casme2_clips:
        entry = crops[clip_key(clip)]
        assert entry.crops.shape == (8, 32, 32) and entry.crops.dtype == np.uint8 and entry.found.all()
        assert list(entry.frame_numbers) == list(clip.frame_numbers)
        assert clip_cache_path(cache, SETTINGS, clip).is_file()

    import fdp.align

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the aligner ran on a cached clip")

    monkeypatch.setattr(fdp.align, "FaceAligner", refuse)
    second, again = preprocess_clips(casme2_clips, SETTINGS, cache_dir=cache, progress=False)
    assert (second.aligned_clips, second.cache_hits, second.aligned_frames) == (0, 4, 0)
    for key, entry in crops.items():
        assert np.array_equal(again[key].crops, entry.crops)


@needs_landmarker
def test_preprocess_two_workers_same_crops_as_one(casme2_clips: list[ClipSample], tmp_path: Path) -> None:
    one, serial = preprocess_clips(casme2_clips, SETTINGS, cache_dir=tmp_path / "one", progress=False)
    two, parallel = preprocess_clips(casme2_clips, SETTINGS, cache_dir=tmp_path / "two", workers=2, progress=False)
    assert (two.aligned_clips, two.aligned_frames) == (one.aligned_clips, one.aligned_frames) == (4, 32)
    assert serial.keys() == parallel.keys()
    assert all(np.array_equal(serial[k].crops, parallel[k].crops) for k in serial)  # VIDEO mode is per clip


@needs_landmarker
def test_preprocess_faceless_frames_filled_from_neighbour_and_counted(casme2_clips: list[ClipSample],
                                                                      tmp_path: Path) -> None:
    clip = casme2_clips[0]
    for path in clip.frame_paths[3:5]:
        _blank(path)
    report, crops = preprocess_clips([clip], SETTINGS, cache_dir=tmp_path / "cache", progress=False)
    entry = crops[clip_key(clip)]
    assert report.filled_frames == 2 and report.no_face == []
    assert list(entry.found) == [True, True, True, False, False, True, True, True]
    assert entry.crops.shape == (8, 32, 32)
    assert entry.crops[3].std() < 1.0  # the wall, cut where the face was: flat, not a copy of a neighbour's crop


@needs_landmarker
def test_preprocess_clip_without_face_skipped_and_counted(casme2_clips: list[ClipSample], tmp_path: Path) -> None:
    faceless = casme2_clips[1]
    for path in faceless.frame_paths:
        _blank(path)
    report, crops = preprocess_clips(casme2_clips[:2], SETTINGS, cache_dir=tmp_path / "cache", progress=False,
                                     log=lambda line: None)
    name = "/".join(clip_key(faceless))
    assert report.no_face == [name] and clip_key(faceless) not in crops and len(crops) == 1
    again, _ = preprocess_clips(casme2_clips[:2], SETTINGS, cache_dir=tmp_path / "cache", progress=False,
                                log=lambda line: None)
    assert again.cache_hits == 2 and again.no_face == [name]  # the verdict is cached too


@needs_landmarker
def test_preprocess_interrupted_run_resumes_from_finished_clips(casme2_clips: list[ClipSample], tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import fdp.preprocess

    real, calls = fdp.preprocess.align_clip, []

    def interrupted(*args: object, **kwargs: object) -> CachedCrops:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C while the third clip is being aligned
        return real(*args, **kwargs)

    monkeypatch.setattr(fdp.preprocess, "align_clip", interrupted)
    with pytest.raises(KeyboardInterrupt):
        preprocess_clips(casme2_clips, SETTINGS, cache_dir=tmp_path / "cache", progress=False)
    monkeypatch.setattr(fdp.preprocess, "align_clip", real)
    report, crops = preprocess_clips(casme2_clips, SETTINGS, cache_dir=tmp_path / "cache", progress=False)
    assert (report.cache_hits, report.aligned_clips, len(crops)) == (2, 2, 4)
    assert not list((tmp_path / "cache").rglob("*.partial"))


@needs_landmarker
def test_preprocess_changed_frames_realigned(casme2_clips: list[ClipSample], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    preprocess_clips(casme2_clips[:1], SETTINGS, cache_dir=cache, progress=False)
    _blank(casme2_clips[0].frame_paths[0])  # another copy of the data set: the source fingerprint changes
    report, _ = preprocess_clips(casme2_clips[:1], SETTINGS, cache_dir=cache, progress=False)
    assert (report.cache_hits, report.aligned_clips) == (0, 1)


def test_aligner_key_changed_settings_new_key() -> None:
    base = AlignerSettings()
    changed = [dataclasses.replace(base, crop_size=32), dataclasses.replace(base, version="fdp-align/2"),
               dataclasses.replace(base, gray=False)]
    keys = {aligner_key(s) for s in (base, *changed)}
    assert len(keys) == 4
    assert aligner_key(base) == aligner_key(AlignerSettings()) and aligner_key(base).startswith("fdp-align-1_")


def test_crop_cache_truncated_entry_reads_as_missing(tmp_path: Path) -> None:
    entry = CachedCrops(np.arange(2 * 16 * 16, dtype=np.uint8).reshape(2, 16, 16), np.array([3, 4]),
                        np.array([True, False]), "abc", "key")
    path = write_crops(tmp_path / "a" / "clip.npz", entry)
    back = read_crops(path)
    assert back is not None and np.array_equal(back.crops, entry.crops) and back.filled == 1
    assert [p.name for p in path.parent.iterdir()] == ["clip.npz"]  # no temporary file left behind
    path.write_bytes(path.read_bytes()[:100])  # as a kill during a non-atomic write would leave it
    assert read_crops(path) is None and read_crops(tmp_path / "absent.npz") is None


def test_needed_indices_long_clip_covers_every_window() -> None:
    numbers = tuple(range(100, 400))
    clip = ClipSample("casme2", "sub01", "EP01", tuple(Path(f"img{n}.jpg") for n in numbers), numbers,
                      onset=240, apex=250, offset=260, fps=200.0, label="happiness")
    needed = set(needed_indices(clip, 0.5, 0.2).tolist())
    assert len(needed) < len(numbers)  # frames no window reaches are left out
    rng = np.random.default_rng(0)
    for _ in range(300):
        assert set(sample_indices(clip, 8, 0.5, rng=rng, length_jitter=0.2).tolist()) <= needed
    assert set(sample_indices(clip, 8, 0.5).tolist()) <= needed


@needs_landmarker
def test_preprocess_cli_builders_tree_prints_frames_per_s(tmp_path: Path) -> None:
    built = build_casme2(tmp_path, layout="raw", subjects=1, clips_per_subject=1, frames_per_clip=8)
    done = subprocess.run([sys.executable, "-m", "fdp.preprocess", "--dataset", "casme2", "--root", str(built.root),
                           "--preset", "tiny", "--cache-dir", str(tmp_path / "cache")],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "1 aligned (8 frames, " in done.stdout and "frames/s" in done.stdout
    folder = tmp_path / "cache" / aligner_key(SETTINGS)
    assert (folder / "preprocess_casme2.json").is_file() and (folder / "aligner_settings.json").is_file()


def test_preprocess_cli_malformed_root_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "CASME2").mkdir()
    done = subprocess.run([sys.executable, "-m", "fdp.preprocess", "--dataset", "casme2", "--root",
                           str(tmp_path / "CASME2")], capture_output=True, text=True, cwd=REPO, timeout=120,
                          env=os.environ | {"FDP_CACHE_DIR": str(tmp_path / "cache")})
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("DatasetLayoutError: ") and done.stderr.count("\n") == 1
