"""The live window resamples like training does, tracks keep ids, and the spotter finds short motion only."""

from __future__ import annotations

import numpy as np
import pytest

from fdp.data.sampling import window_frame_indices
from fdp.rank_pooling import rank_pool_reference
from realtime.spotting import NeutralBaseline, Spotter, SpotterSettings, motion_span, window_motion
from realtime.tracks import FaceTracker, box_iou
from realtime.window import FaceWindow

LABELS = ("none", "negative", "positive", "surprise")


def filled_window(fps: float, seconds: float, steps: int = 8, window_s: float = 0.5) -> FaceWindow:
    window = FaceWindow(steps, window_s, rank_dim=3, crop_shape=(4, 4))
    rng = np.random.default_rng(0)
    for i in range(int(seconds * fps)):
        window.push(i / fps, i, rng.integers(0, 256, (4, 4), dtype=np.uint8), np.full(3, i, np.float32), float(i))
    return window


@pytest.mark.parametrize("fps", [30.0, 200.0])
def test_window_resample_matches_training_sampler(fps):
    window = filled_window(fps, seconds=2.0)
    slots = window.resample()
    frames = window.frame_indices[slots]
    newest = int(2.0 * fps) - 1
    # Training picks the same frames from a clip whose frames are numbered like the stream's.
    expected = window_frame_indices(np.arange(newest + 1), newest - int(0.5 * fps), newest, fps, frames=8,
                                    window_s=0.5)
    assert list(frames) == list(expected)
    assert frames[-1] == newest and window.times_s[slots[-1]] - window.times_s[slots[0]] == pytest.approx(0.5, abs=1 / fps)


def test_window_pooled_equals_reference_over_resampled_steps():
    window = filled_window(30.0, seconds=3.0)
    slots = window.resample()
    np.testing.assert_allclose(window.pooled(slots), rank_pool_reference(window.rank_features[slots]), rtol=1e-5)
    np.testing.assert_allclose(window.dynamic_image(slots), rank_pool_reference(window.crops[slots]), atol=1e-3)


def test_window_not_ready_until_it_spans_the_duration():
    window = filled_window(30.0, seconds=0.3)
    assert not window.ready
    assert filled_window(30.0, seconds=0.6).ready


def test_window_ignores_frames_going_back_in_time():
    window = filled_window(30.0, seconds=1.0)
    count = window.count
    window.push(0.2, 999, np.zeros((4, 4), np.uint8), np.zeros(3, np.float32), 0.0)
    assert window.count == count


def test_tracker_stable_ids_and_new_id_after_absence():
    tracker = FaceTracker(lambda face_id: f"state{face_id}", max_faces=2, lost_after_s=0.5)
    first = tracker.update(0.0, [(0, 0, 10, 10), (50, 50, 60, 60)])
    moved = tracker.update(0.1, [(51, 50, 61, 60), (1, 0, 11, 10)])  # order swapped, moved a pixel
    assert [t.face_id for t in moved] == [first[1].face_id, first[0].face_id]
    assert tracker.update(0.2, [(0, 0, 10, 10), (50, 50, 60, 60), (100, 100, 110, 110)])[2] is None  # max 2
    tracker.update(0.3, [(0, 0, 10, 10)])
    back = tracker.update(1.5, [(50, 50, 60, 60)])  # the second face was gone > 0.5 s: a new id
    assert back[0].face_id not in (first[0].face_id, first[1].face_id)
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(1 / 3)


def test_window_motion_still_is_zero_and_grows_with_change():
    still = np.repeat(np.full((1, 8, 8), 100, np.uint8), 8, axis=0)
    moving = still.copy()
    moving[4:] += 10
    assert window_motion(rank_pool_reference(still), 8) < 1e-9  # zero up to float rounding
    assert window_motion(rank_pool_reference(moving), 8) > 1.0


def run_spotter(spotter: Spotter, active_from: float, active_to: float, fps: float = 30.0, until: float = 4.0):
    events = []
    expressive = np.array([0.1, 0.8, 0.05, 0.05])
    quiet = np.array([0.9, 0.05, 0.03, 0.02])
    for i in range(int(until * fps)):
        t = i / fps
        on = active_from <= t < active_to
        _, event = spotter.update(t, i, 1000.0 + t, expressive if on else quiet, 2.0 if on else 0.01)
        events.append(event)
    events.append(spotter.close())
    return [e for e in events if e is not None]


def test_spotter_short_run_gives_one_event_with_label_and_timing():
    spotter = Spotter(0, LABELS, window_s=0.5, settings=SpotterSettings())
    # An ME of 0.2 s starting at 1.0 s keeps sliding windows active from ~1.0 s to ~1.7 s.
    events = run_spotter(spotter, 1.0, 1.7)
    assert len(events) == 1
    event = events[0]
    assert event.label == "negative" and event.onset_media_s == pytest.approx(1.0)
    assert event.duration_s == pytest.approx(0.2, abs=0.05)
    assert event.onset_frame == 30 and event.offset_frame == pytest.approx(36, abs=2)


def test_spotter_long_run_is_not_micro():
    spotter = Spotter(0, LABELS, window_s=0.5, settings=SpotterSettings())
    assert run_spotter(spotter, 1.0, 2.5) == []


def test_spotter_calibrated_baseline_raises_threshold():
    # A user whose neutral face moves as much as the test's ME windows (2.0): their baseline absorbs it.
    baseline = NeutralBaseline.from_motions(np.array([1.5, 2.5, 1.8, 2.2, 2.0]))
    spotter = Spotter(0, LABELS, window_s=0.5, settings=SpotterSettings(), baseline=baseline)
    assert spotter.threshold == pytest.approx(2.0 + 4.0 * 1.4826 * 0.2)
    assert run_spotter(spotter, 1.0, 1.7) == []


def me_crops(fps: float, seconds: float, onset_s: float, offset_s: float, shift_px: float = 2.0,
             seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(times, crops) of a textured 32x32 face at rest with sensor noise, whose texture slides `shift_px` down
    between onset and offset and back: up over the first third, held, back over the last third (ME-like)."""
    import cv2

    rng = np.random.default_rng(seed)
    texture = cv2.GaussianBlur(rng.uniform(0, 255, (48, 48)).astype(np.float32), (0, 0), 2.0)
    times = np.arange(int(seconds * fps)) / fps
    third = (offset_s - onset_s) / 3
    ramp = np.clip(np.minimum((times - onset_s) / third, (offset_s - times) / third), 0.0, 1.0)
    crops = []
    for amount in ramp:
        moved = cv2.warpAffine(texture, np.float32([[1, 0, 0], [0, 1, shift_px * amount]]), (48, 48))
        crops.append(np.clip(moved[8:40, 8:40] + rng.normal(0, 0.8, (32, 32)), 0, 255).astype(np.uint8))
    return times, np.stack(crops)


@pytest.mark.parametrize("fps", [30.0, 200.0])
def test_spotter_frame_timing_finds_onset_and_offset_of_the_motion(fps):
    window_s = 0.5
    times, crops = me_crops(fps, 2.5, onset_s=1.0, offset_s=1.3)
    window = FaceWindow(8, window_s, rank_dim=3, crop_shape=(32, 32), max_fps=fps)
    spotter = Spotter(0, LABELS, window_s, SpotterSettings(), history=window.between)
    expressive, quiet = np.array([0.1, 0.1, 0.7, 0.1]), np.array([0.9, 0.05, 0.03, 0.02])
    events = []
    for i, (t, crop) in enumerate(zip(times, crops)):
        window.push(t, i, crop, np.zeros(3, np.float32), 0.0)
        on = 1.35 <= t < 1.6  # the model fires for a while after the motion, as it does live: shorter than a window
        _, event = spotter.update(t, i, 1000.0 + t, expressive if on else quiet, 2.0 if on else 0.01)
        events.append(event)
    (event,) = [e for e in events if e is not None]
    frame_s = 1.0 / fps
    assert event.label == "positive"
    assert event.onset_media_s == pytest.approx(1.0, abs=0.05 + frame_s)
    assert event.offset_media_s == pytest.approx(1.3, abs=0.05 + frame_s)
    assert event.duration_s == pytest.approx(0.3, abs=0.1)
    assert times[event.onset_frame] == event.onset_media_s and times[event.offset_frame] == event.offset_media_s
    assert event.onset_time_unix == pytest.approx(1000.0 + event.onset_media_s)


def test_spotter_frame_timing_motion_longer_than_micro_is_dropped():
    times, crops = me_crops(30.0, 3.0, onset_s=0.9, offset_s=1.7)  # 0.8 s: a macro-expression
    window = FaceWindow(8, 0.5, rank_dim=3, crop_shape=(32, 32), max_fps=30.0)
    spotter = Spotter(0, LABELS, 0.5, SpotterSettings(), history=window.between)
    events = []
    for i, (t, crop) in enumerate(zip(times, crops)):
        window.push(t, i, crop, np.zeros(3, np.float32), 0.0)
        on = 1.5 <= t < 1.9  # a run of active windows short enough to pass; the frames show 0.8 s of motion
        probs = np.array([0.1, 0.7, 0.1, 0.1]) if on else np.array([0.9, 0.04, 0.03, 0.03])
        events.append(spotter.update(t, i, t, probs, 2.0 if on else 0.01)[1])
    assert [e for e in events if e is not None] == []


def test_motion_span_still_face_is_none_and_window_between_returns_held_frames():
    times, crops = me_crops(30.0, 1.0, onset_s=5.0, offset_s=6.0)  # nothing moves within the clip
    assert motion_span(np.repeat(crops[:1], 10, axis=0)) is None
    window = FaceWindow(8, 0.5, rank_dim=3, crop_shape=(32, 32), max_fps=30.0)
    for i, (t, crop) in enumerate(zip(times, crops)):
        window.push(t, i, crop, np.zeros(3, np.float32), 0.0)
    held_times, frames, held = window.between(0.2, 0.5)
    assert list(frames) == list(range(6, 16)) and np.array_equal(held, crops[6:16])
    assert np.array_equal(held_times, times[6:16])
