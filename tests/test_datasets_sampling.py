"""Frame sampling: T indices inside the clip, in order, covering onset..offset, spanning the window's duration at
30 and 200 fps, centred for evaluation and placed at random (by seed) for training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from builders import build_casme2, build_casme3, build_casme_sq, build_samm

from fdp.datasets.clips import ClipSample
from fdp.datasets.loading import load_dataset
from fdp.datasets.sampling import sample_indices, window_frame_indices
from fdp.errors import ConfigError


def window_span(clip: ClipSample, indices: np.ndarray) -> tuple[int, int]:
    """The dataset frame numbers of the first and last sampled frame."""
    return clip.frame_numbers[int(indices[0])], clip.frame_numbers[int(indices[-1])]


def covers_expression(clip: ClipSample, indices: np.ndarray) -> bool:
    """Whether the sampled frames start at or before the onset and end at or after the offset."""
    first, last = window_span(clip, indices)
    return first <= clip.onset and last >= clip.offset


def clip_at(fps: float, numbers: range | tuple[int, ...], onset: int, offset: int) -> ClipSample:
    numbers = tuple(numbers)
    return ClipSample(dataset="casme2", subject="sub01", clip_id="EP01_01", frame_numbers=numbers,
                      frame_paths=tuple(Path(f"img{n}.jpg") for n in numbers), onset=onset,
                      apex=(onset + offset) // 2, offset=offset, fps=fps, label="happiness")


def assert_valid(clip: ClipSample, indices: np.ndarray, frames: int = 8) -> None:
    assert indices.shape == (frames,) and indices.dtype == np.int64
    assert indices.min() >= 0 and indices.max() < len(clip.frame_paths)
    assert np.all(np.diff(indices) >= 0)
    assert covers_expression(clip, indices)


def test_sample_indices_eval_short_folder_at_200fps_spans_whole_folder():
    clip = clip_at(200.0, range(46, 121), onset=50, offset=110)  # 0.37 s of frames, under the 0.5 s window
    indices = sample_indices(clip)
    assert_valid(clip, indices)
    assert window_span(clip, indices) == (46, 120)


def test_sample_indices_eval_long_video_at_30fps_is_half_a_second_centred():
    clip = clip_at(30.0, range(1, 301), onset=100, offset=108)
    indices = sample_indices(clip)
    assert_valid(clip, indices)
    assert window_span(clip, indices) == (96, 111)  # 15 frame intervals = 0.5 s, centred on 104


def test_sample_indices_eval_long_video_at_200fps_is_half_a_second():
    clip = clip_at(200.0, range(1, 2001), onset=1000, offset=1060)
    first, last = window_span(clip, sample_indices(clip))
    assert last - first == 100  # 0.5 s at 200 fps


@pytest.mark.parametrize("fps", [30.0, 200.0])
def test_sample_indices_train_random_placement_always_covers_expression(fps):
    clip = clip_at(fps, range(1, 2001), onset=1000, offset=1000 + int(0.2 * fps))
    starts = set()
    for seed in range(200):
        indices = sample_indices(clip, rng=np.random.default_rng(seed))
        assert_valid(clip, indices)
        first, last = window_span(clip, indices)
        assert 0.4 * fps - 1 <= last - first <= 0.6 * fps + 1  # 0.5 s with the default 20 % length jitter
        starts.add(first)
    assert len(starts) > 5


def test_sample_indices_train_same_seed_same_indices():
    clip = clip_at(30.0, range(1, 301), onset=100, offset=106)
    first = sample_indices(clip, rng=np.random.default_rng(7))
    again = sample_indices(clip, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(first, again)
    others = [sample_indices(clip, rng=np.random.default_rng(s)) for s in range(8, 14)]
    assert any(not np.array_equal(first, o) for o in others)


@pytest.mark.parametrize("rng", [None, np.random.default_rng(0)])
def test_sample_indices_expression_longer_than_window_is_covered_whole(rng):
    clip = clip_at(30.0, range(1, 301), onset=100, offset=130)  # 1 s, twice the window
    indices = sample_indices(clip, rng=rng)
    assert_valid(clip, indices)
    assert window_span(clip, indices) == (100, 130)


def test_sample_indices_fewer_frames_than_t_repeats_frames_in_order():
    clip = clip_at(200.0, range(10, 14), onset=10, offset=13)
    indices = sample_indices(clip, frames=8)
    assert_valid(clip, indices)
    assert sorted(set(indices.tolist())) == [0, 1, 2, 3]


def test_sample_indices_gap_outside_expression_maps_to_existing_frames():
    numbers = (*range(1, 90), *range(95, 200))  # frames 90..94 missing, before the expression
    clip = clip_at(30.0, numbers, onset=100, offset=104)
    for rng in (None, np.random.default_rng(1), np.random.default_rng(2)):
        assert_valid(clip, sample_indices(clip, frames=16, rng=rng), frames=16)


def test_window_frame_indices_bad_arguments_raise_config_error():
    with pytest.raises(ConfigError) as info:
        window_frame_indices(range(10), 2, 5, 30.0, frames=0)
    assert str(info.value) == "frames per window must be 1 or more, got 0"
    with pytest.raises(ConfigError) as info:
        window_frame_indices(range(10), 2, 5, 30.0, window_s=0.0)
    assert str(info.value) == "window_s and fps must be positive, got window_s=0.0, fps=30.0"
    with pytest.raises(ConfigError) as info:
        window_frame_indices(range(10), 2, 5, 30.0, length_jitter=1.0)
    assert str(info.value) == "length_jitter must be in 0..1 (exclusive of 1), got 1.0"


@pytest.mark.parametrize(("dataset", "build"), [("casme2", build_casme2), ("samm", build_samm),
                                                ("casme_sq", build_casme_sq), ("casme3", build_casme3)])
def test_sample_indices_every_loaded_clip_is_covered_in_both_modes(tmp_path, dataset, build):
    rng = np.random.default_rng(0)
    for clip in load_dataset(dataset, build(tmp_path).root).clips:
        assert_valid(clip, sample_indices(clip))
        assert_valid(clip, sample_indices(clip, rng=rng))
