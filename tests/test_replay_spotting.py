"""The spotting replay's measure store: written whole or not at all, and a store cut off by an earlier run (killed
mid-write) is measured again instead of failing every later replay. A real rendered video and the real aligner."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from benchmarks.replay_spotting import measure_video, readable_store, store_path
from fdp.synthesis.long_videos import VideoRenderer, load_faces, load_truth
from fdp.synthesis.video_script import preset_script
from realtime.spotting import SpotterSettings

pytestmark = pytest.mark.timeout(300)


def test_replay_store_cut_off_mid_write_is_measured_again(fetched_assets, tmp_path):
    cv2.setNumThreads(1)
    renderer = VideoRenderer([t for t in load_faces("tune") if not t.is_video])
    script = dataclasses.replace(preset_script("one_me", 5, "astronaut", 30.0, 1.5), face_width_px=100.0)
    _, truth_path = renderer.write(script, tmp_path / "one.avi", "still")
    truth, settings = load_truth(truth_path), SpotterSettings()
    first = measure_video(truth, settings)
    path = store_path(truth, settings)
    assert len(first) == script.n_frames and readable_store(path)
    assert list(path.parent.iterdir()) == [path]  # no partial file left beside it
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # as a run killed while writing leaves it
    assert not readable_store(path)
    again = measure_video(truth, settings)
    assert readable_store(path) and len(again) == len(first)
    assert all(np.array_equal(a.crop, b.crop) and a.frame_index == b.frame_index for a, b in zip(first, again))
