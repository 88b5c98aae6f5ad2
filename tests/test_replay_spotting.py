"""The spotting replay's measure store: written whole or not at all, and a store cut off by an earlier run (killed
mid-write) is measured again instead of failing every later replay. A real rendered video and the real aligner."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from benchmarks.replay_spotting import (
    RememberedFlows,
    measure_video,
    readable_store,
    replay,
    store_path,
    variant_settings,
)
from fdp.synthesis.long_videos import VideoRenderer, load_faces, load_truth
from fdp.synthesis.video_script import preset_script
from realtime.spotting import SpotterSettings

pytestmark = pytest.mark.timeout(300)


def _one_me_video(folder):
    cv2.setNumThreads(1)
    renderer = VideoRenderer([t for t in load_faces("tune") if not t.is_video])
    script = dataclasses.replace(preset_script("one_me", 5, "astronaut", 30.0, 3.0), face_width_px=100.0)
    _, truth_path = renderer.write(script, folder / "one.avi", "still")
    return script, load_truth(truth_path)


def test_replay_store_cut_off_mid_write_is_measured_again(fetched_assets, tmp_path):
    script, truth = _one_me_video(tmp_path)
    settings = SpotterSettings()
    first = measure_video(truth, settings)
    path = store_path(truth, settings)
    assert len(first) == script.n_frames and readable_store(path)
    assert list(path.parent.iterdir()) == [path]  # no partial file left beside it
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # as a run killed while writing leaves it
    assert not readable_store(path)
    again = measure_video(truth, settings)
    assert readable_store(path) and len(again) == len(first)
    assert all(np.array_equal(a.crop, b.crop) and a.frame_index == b.frame_index for a, b in zip(first, again))


def test_variants_share_each_flow_and_spot_as_alone(fetched_assets, tmp_path):
    """Several settings replayed on one video with one RememberedFlows: each spots exactly what it spots alone,
    and a variant that compares the same crops computes no flow of its own."""
    _, truth = _one_me_video(tmp_path)
    base = SpotterSettings()
    measures = measure_video(truth, base)
    variants = variant_settings(["base", "open_z=6,close_z=3", "confirm_s=0.1"], base)
    meter = RememberedFlows(base.crop_size)
    shared = {name: replay(measures, settings, meter) for name, settings in variants.items()}
    flows = meter.computed
    assert flows > 0 and replay(measures, base, meter) == shared["base"] and meter.computed == flows
    for name, settings in variants.items():
        assert replay(measures, settings) == shared[name], name
    assert any(spotted or refusals for spotted, refusals in shared.values())  # they decided something
    with pytest.raises(SystemExit, match="crop_size and margin_px"):
        variant_settings(["crop_size=64"], base)
    with pytest.raises(SystemExit, match="takes a float"):
        variant_settings(["open_z=high"], base)
