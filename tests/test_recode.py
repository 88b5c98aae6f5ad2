"""Re-encoding a long-video set as real footage is stored: real H.264 (libx264) and MPEG-4 files read back by
OpenCV frame for frame, keyframes where asked (read from ffmpeg's own frame types), the same face in every frame,
the ground truth copied with the new file and codec, and one-line errors."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from fdp.errors import ConfigError
from fdp.synthesis.long_videos import INDEX_FORMAT, VideoRenderer, load_faces, load_truth
from fdp.synthesis.recode import RecodeConfig, _parse, ffmpeg_exe, recode_set
from fdp.synthesis.video_script import preset_script
from tests.test_long_videos import read_frames


@pytest.fixture(scope="module")
def source_set(fetched_assets, tmp_path_factory) -> Path:
    """A two-video set (30 and 200 fps) in the generator's own layout."""
    cv2.setNumThreads(1)
    folder = tmp_path_factory.mktemp("set")
    renderer = VideoRenderer([t for t in load_faces("tune") if not t.is_video])
    videos = []
    for fps, seconds in ((30.0, 2.0), (200.0, 1.5)):
        script = dataclasses.replace(preset_script("one_me", 5, "astronaut", fps, seconds), face_width_px=100.0)
        video, truth = renderer.write(script, folder / f"one_{fps:g}fps.avi", "still")
        videos.append({"video": video.name, "truth": truth.name, "kind": "still", "fps": fps,
                       "n_frames": script.n_frames})
    (folder / "index.json").write_text(json.dumps({"format": INDEX_FORMAT, "split": "tune", "videos": videos}))
    return folder


def keyframes(path: Path) -> list[int]:
    """Indices of the I-frames, as ffmpeg's decoder reports them."""
    log = subprocess.run([ffmpeg_exe(), "-i", str(path), "-vf", "showinfo", "-f", "null", "-"],
                         capture_output=True, text=True, timeout=60).stderr
    return [int(m.group(1)) for m in re.finditer(r"n: *(\d+) .*?type:I", log)]


@pytest.mark.parametrize("codec", ["h264", "mp4v"])
def test_recode_every_video_reads_back_frame_for_frame_with_its_truth(source_set, tmp_path, codec):
    out = tmp_path / codec
    recode_set(RecodeConfig(source=source_set, out=out, codec=codec, crf=23, keyframe_s=0.5), log=lambda line: None)
    index = json.loads((out / "index.json").read_text())
    assert index["recoded"]["from"] == str(source_set)
    assert ("H.264" if codec == "h264" else "mp4v") in index["recoded"]["codec"]
    for entry in index["videos"]:
        truth = load_truth(out / entry["truth"])
        original = load_truth(source_set / entry["truth"])
        assert truth.video == out / entry["video"] and truth.video.suffix == ".mp4"
        assert (truth.n_frames, truth.fps, truth.mes, truth.script) == (original.n_frames, original.fps,
                                                                       original.mes, original.script)
        (recoded, _, _), (before, _, _) = read_frames(truth.video), read_frames(original.video)
        assert len(recoded) == len(before) == truth.n_frames
        error = np.mean([np.abs(a.astype(np.float32) - b).mean() for a, b in zip(recoded, before)])
        assert error < 4.0  # gray levels: the same face in every frame, only coded differently
        fourcc = int(cv2.VideoCapture(str(truth.video)).get(cv2.CAP_PROP_FOURCC))
        tags = {"avc1", "h264"} if codec == "h264" else {"mp4v", "fmp4"}  # (FMP4: ffmpeg's tag for MPEG-4 Part 2)
        assert fourcc.to_bytes(4, "little").decode().lower() in tags
        if codec == "h264":  # a keyframe every 0.5 s: every 15th frame at 30 fps, every 100th at 200 fps
            step = round(0.5 * truth.fps)
            assert keyframes(truth.video) == list(range(0, truth.n_frames, step))


def test_recode_bad_source_existing_out_and_bad_numbers_are_one_line_errors(source_set, tmp_path):
    with pytest.raises(ConfigError, match=r"^--source .*: not a long-video set \(.*\); point it at a folder"):
        recode_set(RecodeConfig(source=tmp_path, out=tmp_path / "x"))
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "index.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"already holds a long-video set"):
        recode_set(RecodeConfig(source=source_set, out=tmp_path / "taken"))
    with pytest.raises(ConfigError, match=r"^--crf 60: use 0 \(lossless\) to 51$"):
        _parse(["--source", "a", "--out", "b", "--crf", "60"])
    with pytest.raises(ConfigError, match=r"^--keyframe-s 0: use a positive number of seconds$"):
        _parse(["--source", "a", "--out", "b", "--keyframe-s", "0"])
