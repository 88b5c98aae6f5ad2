"""The live window resamples like training does (windows and spotted intervals), tracks keep ids, and the interval
detector times and refuses motion by its rules (feature vectors given directly; real video is in test_spotting)."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.neutral import RestingNoise
from fdp.datasets.sampling import window_frame_indices
from fdp.errors import ConfigError
from fdp.rank_pooling import rank_pool_reference
from realtime.spotting import FEATURE_NAMES, SpotterSettings
from realtime.spotting.detector import IntervalDetector
from realtime.spotting.measures import FaceMeasure, FlowMeter, compare
from realtime.spotting.regions import REGION_NAMES
from realtime.spotting.spotter import choose_reference
from realtime.tracks import FaceTracker, box_iou
from realtime.window import FaceWindow


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
    assert frames[-1] == newest
    assert window.times_s[slots[-1]] - window.times_s[slots[0]] == pytest.approx(0.5, abs=1 / fps)


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


def test_window_interval_slots_sample_like_evaluation_of_a_dataset_clip():
    fps = 200.0
    window = filled_window(fps, seconds=2.0)
    onset, offset = 250, 290  # frames: an ME of 0.2 s
    assert window.interval_ready(onset / fps, offset / fps)
    slots = window.interval_slots(onset / fps, offset / fps)
    expected = window_frame_indices(np.arange(400), onset, offset, fps, frames=8, window_s=0.5)
    assert list(window.frame_indices[slots]) == list(expected)
    assert not window.interval_ready(1.9, 1.95)  # its centred window reaches past the newest frame


def features(regions: dict[str, float] | None = None, **nuisances: float) -> np.ndarray:
    """A feature vector: resting level 0.001 face widths everywhere, plus the given values."""
    values = np.full(len(FEATURE_NAMES), 0.001)
    for name, value in {**(regions or {}), **nuisances}.items():
        values[FEATURE_NAMES.index(name)] = value
    return values


def run_detector(frames: list[np.ndarray], fps: float = 30.0, settings: SpotterSettings | None = None,
                 regions: tuple[str, ...] = REGION_NAMES):
    """Push a sequence after 1.5 still seconds into a detector of `regions`; return (intervals, refusals, index of
    the sequence's first frame)."""
    rng = np.random.default_rng(0)
    rest = [features() + rng.normal(0, 0.0002, len(FEATURE_NAMES)) for _ in range(int(1.5 * fps))]
    detector = IntervalDetector(settings or SpotterSettings(), regions=regions)
    intervals, refusals = [], []
    for i, values in enumerate(rest + frames + rest):
        step = detector.push(i / fps, i, np.abs(values))
        intervals += [step.interval] if step.interval else []
        refusals += [step.refusal] if step.refusal else []
    return intervals, refusals, len(rest)


def bump(frames: int, peak: float, **nuisances: float) -> list[np.ndarray]:
    """A raised-cosine rise and fall of the mouth corners over `frames` frames, nuisances held throughout."""
    shape = np.sin(np.linspace(0, np.pi, frames)) ** 2
    return [features({"mouth_l": 0.001 + peak * a, "mouth_r": 0.001 + peak * a}, **nuisances) for a in shape]


def test_detector_short_motion_is_one_interval_with_onset_apex_offset():
    intervals, refusals, start = run_detector(bump(9, 0.01))  # 0.3 s at 30 fps
    assert len(intervals) == 1 and not refusals
    interval = intervals[0]
    assert start - 1 <= interval.onset_frame <= start + 2 and interval.apex_frame == start + 4
    assert start + 6 <= interval.offset_frame <= start + 9
    assert interval.regions[:2] in (("mouth_l", "mouth_r"), ("mouth_r", "mouth_l"))
    assert interval.peak_fw == pytest.approx(0.011, rel=0.05)


def test_detector_motion_longer_than_micro_is_refused_as_macro():
    intervals, refusals, _ = run_detector(bump(60, 0.02))  # 2 s
    assert not intervals and refusals and refusals[0].cause == "macro"


def test_detector_motion_of_a_single_frame_is_brief_not_micro():
    """A block the codec re-draws for a frame (or flicker it turns into texture) moves as much as an ME but
    comes and goes at once (onset to offset 0.067 s at 30 fps); the same peak over 0.3 s is an ME."""
    spike = [features({"cheek_l": 0.006})]
    intervals, refusals, _ = run_detector(spike)
    assert not intervals and [r.cause for r in refusals] == ["brief"]
    intervals, refusals, _ = run_detector(bump(9, 0.006))
    assert len(intervals) == 1 and not refusals


def test_detector_me_whose_return_the_codec_left_part_coded_is_an_me_not_a_macro():
    """After a clear ME, H.264 may hold a tenth of its motion until the next keyframe: above close_z, so the
    interval never closes against its frozen reference and times out. Back under return_share of its peak for
    lag_s, it is the ME it was; the same motion held near its peak is still a macro-expression."""
    residual = [features({"mouth_l": 0.0023, "mouth_r": 0.0023})] * 30  # 0.13 % above rest: z 2.6
    intervals, refusals, start = run_detector(bump(9, 0.01) + residual)
    assert len(intervals) == 1 and not refusals
    assert start + 6 <= intervals[0].offset_frame <= start + 9
    intervals, refusals, _ = run_detector(bump(9, 0.01) + residual, settings=SpotterSettings(return_share=0.0))
    assert not intervals and [r.cause for r in refusals] == ["macro"]
    held = [features({"mouth_l": 0.008, "mouth_r": 0.008})] * 30
    intervals, refusals, _ = run_detector(bump(9, 0.01)[:5] + held)
    assert not intervals and refusals[0].cause == "macro"


def test_detector_a_step_held_flat_is_a_keyframe_re_draw_not_an_expression():
    """A keyframe re-draws the texture at once and holds it against a reference from before it: every region jumps
    in one frame and stays. That is refused as a re-draw once it has stayed flat for step_s (and the spotter then
    compares with a frame after it, so the step is gone); the same level reached over frames, or a jump of a few
    regions (a quick smile held a moment), is motion."""
    step = [features({name: 0.004 for name in FEATURE_NAMES[:10]})] * 4  # then the re-based reference: at rest
    intervals, refusals, start = run_detector(step)
    assert not intervals and [r.cause for r in refusals] == ["re-draw"]
    assert refusals[0].onset_s == pytest.approx(start / 30) and refusals[0].offset_s == pytest.approx((start + 3) / 30)
    rise = [features({name: 0.001 + 0.003 * share for name in FEATURE_NAMES[:10]}) for share in (0.5, 0.75, 0.9)]
    assert "re-draw" not in [r.cause for r in run_detector(rise + step)[1]]
    mouth = [features({"mouth_l": 0.004, "mouth_r": 0.004, "cheek_l": 0.004})] * 4  # a quick smile held a moment
    assert "re-draw" not in [r.cause for r in run_detector(mouth)[1]]
    intervals, refusals, _ = run_detector(step, settings=SpotterSettings(step_s=0.0))
    assert "re-draw" not in [r.cause for r in refusals]


@pytest.mark.parametrize("nuisance, cause", [({"pose_deg": 4.0}, "head motion"), ({"light": 0.2}, "light change")])
def test_detector_head_turn_or_light_change_refuses_the_interval(nuisance, cause):
    intervals, refusals, _ = run_detector(bump(9, 0.01, **nuisance))
    assert not intervals and [r.cause for r in refusals] == [cause]


def test_detector_blink_explains_lid_and_brow_motion_and_its_shake_but_not_a_smile():
    shape = np.sin(np.linspace(0, np.pi, 6)) ** 2
    lids = [features({"eye_l": 0.001 + 0.03 * a, "eye_r": 0.001 + 0.03 * a, "brow_l": 0.001 + 0.01 * a,
                      "mouth_l": 0.001 + 0.003 * a}, blink=0.8 * a) for a in shape]  # the shake: 0.3 % at the mouth
    intervals, refusals, _ = run_detector(lids)
    assert not intervals and [r.cause for r in refusals] == ["blink"]
    smile = [v + features({"mouth_l": 0.012 * a, "mouth_r": 0.012 * a}) - features() for v, a in zip(lids, shape)]
    intervals, _, _ = run_detector(smile)
    assert len(intervals) == 1 and set(intervals[0].regions) == {"mouth_l", "mouth_r"}


def test_detector_talking_explains_mouth_motion():
    intervals, refusals, _ = run_detector(bump(9, 0.02, jaw=0.3))
    assert not intervals and [r.cause for r in refusals] == ["talking"]


def test_detector_whole_face_moving_at_once_is_global_not_micro():
    rise = np.sin(np.linspace(0, np.pi, 6)) ** 2  # a turn's rigid residual, even across the face, over 0.2 s
    intervals, refusals, _ = run_detector([features({name: 0.001 + 0.02 * a for name in FEATURE_NAMES[:10]})
                                           for a in rise])
    assert not intervals and [r.cause for r in refusals] == ["global motion"]


def test_detector_head_turn_during_an_open_interval_ends_it_at_once():
    """A turn cuts the open interval at the frame the head has turned (not 0.8 s later), so a micro-expression
    right after the turn is not swallowed by an interval waiting for a face that will never come back."""
    turn = [features({name: 0.004 * a for name in FEATURE_NAMES[:10]}, pose_deg=4.0 * a)
            for a in np.sin(np.linspace(0, np.pi / 2, 6)) ** 2]
    intervals, refusals, start = run_detector(turn + [features(pose_deg=4.0)] * 30)
    assert not intervals and refusals[0].cause == "head motion"
    assert refusals[0].offset_s <= (start + 6) / 30.0


def test_detector_motion_as_a_movement_begun_with_a_turn_comes_to_rest_is_its_tail():
    """A smile that starts with a head turn is refused as head motion at the turn, and the rest of its rise is
    waited out (no interval opens until the face is still): the duration rule never sees it as a macro. The mouth
    moving again as it comes to rest is the tail of the movement that began with the turn, not a micro-expression;
    the same motion later is one."""
    ramp = np.sin(np.linspace(0, np.pi / 2, 6)) ** 2
    rise = [features({"mouth_l": 0.02 * a, "mouth_r": 0.02 * a}, pose_deg=4.0 * a) for a in ramp]
    rising = [features({"mouth_l": 0.02, "mouth_r": 0.02})] * 24  # 0.8 s more, against the lagged reference
    for gap_frames, events in ((2, 0), (20, 1)):
        intervals, refusals, _ = run_detector(rise + rising + [features()] * gap_frames + bump(9, 0.006))
        assert len(intervals) == events
        assert [r.cause for r in refusals] == ["head motion"] * (2 - events)


def test_detector_many_regions_with_a_clear_peak_are_an_expression_not_global_motion():
    """A brow raise drags the lids and cheeks along, so every region may pass the threshold; what it moves most
    still stands out, unlike a turn's rigid residual, which is even across the face."""
    dragged = {name: 0.003 for name in FEATURE_NAMES[:10]} | {"brow_l": 0.015, "brow_r": 0.015, "eye_l": 0.012,
                                                             "eye_r": 0.012}
    rise = np.sin(np.linspace(0, np.pi, 6)) ** 2
    intervals, refusals, _ = run_detector([features({name: 0.001 + (v - 0.001) * a for name, v in dragged.items()})
                                           for a in rise])
    assert len(intervals) == 1 and not refusals and set(intervals[0].regions[:2]) == {"brow_l", "brow_r"}


def test_detector_profile_noise_sets_the_threshold():
    """The same motion is an interval for a still person and noise for one whose face rests far busier."""
    quiet = RestingNoise.from_samples(FEATURE_NAMES, np.full((20, len(FEATURE_NAMES)), 0.001)
                                      + np.random.default_rng(1).normal(0, 0.0002, (20, len(FEATURE_NAMES))))
    busy = RestingNoise(FEATURE_NAMES, quiet.median, quiet.scale * 20, quiet.samples)
    for noise, expected in ((quiet, 1), (busy, 0)):
        detector = IntervalDetector(SpotterSettings(), noise)
        frames = [features()] * 5 + bump(9, 0.01) + [features()] * 10
        found = [detector.push(i / 30, i, v).interval for i, v in enumerate(frames)]
        assert sum(x is not None for x in found) == expected


def test_detector_profile_is_never_tighter_than_the_streams_own_rest():
    """A profile recorded in a quieter session than today's: at rest, this stream's mouth flow sits 3 resting
    deviations of the profile above the profile's median. In the profile's units alone, a smile would never come
    back to rest and would be refused as a macro; with the running baseline as a floor it is one interval."""
    rng = np.random.default_rng(1)
    quiet = RestingNoise.from_samples(FEATURE_NAMES, np.full((20, len(FEATURE_NAMES)), 0.001)
                                      + rng.normal(0, 0.0002, (20, len(FEATURE_NAMES))))
    today = {"mouth_l": 0.0025, "mouth_r": 0.0025, "lips": 0.0025}
    rest = [features(today) + rng.normal(0, 0.0002, len(FEATURE_NAMES)) for _ in range(60)]
    smile = [features({name: 0.0025 + 0.012 * a for name in ("mouth_l", "mouth_r")} | {"lips": 0.0025})
             for a in np.sin(np.linspace(0, np.pi, 9)) ** 2]
    detector = IntervalDetector(SpotterSettings(), quiet)
    steps = [detector.push(i / 30, i, np.abs(v)) for i, v in enumerate(rest + smile + rest)]
    intervals = [step.interval for step in steps if step.interval is not None]
    assert len(intervals) == 1 and 60 <= intervals[0].apex_frame <= 68
    assert not [step.refusal for step in steps[60:] if step.refusal is not None]
    assert detector.noise.median[FEATURE_NAMES.index("mouth_l")] == pytest.approx(0.0025, abs=0.0002)


def still_measure(t_s: float, aperture: float, blink_score: float = 0.0) -> FaceMeasure:
    """One spotting frame of a still face (the same textured crop every time) with the given lid gap."""
    crop = np.random.default_rng(3).integers(60, 200, (96, 96), dtype=np.uint8)
    points = np.tile(np.array([[48.0, 48.0]], np.float32), (478, 1)) + np.arange(478)[:, None] % 40
    return FaceMeasure(t_s=t_s, frame_index=int(round(t_s * 30)), crop=crop, points=points, width_px=60.0,
                       apertures=np.array([aperture, aperture]), gaze=np.zeros((2, 2)),
                       blink_scores=np.array([blink_score, blink_score]), jaw_open=0.0, lip_gap=0.01,
                       rotation=np.eye(3), brightness=120.0)


def test_blink_feature_counts_lids_opening_from_a_closed_reference_as_much_as_closing():
    meter = FlowMeter(96)
    blink = FEATURE_NAMES.index("blink")
    closing = compare(still_measure(0.0, 0.3), still_measure(0.1, 0.1, 0.8), meter)[blink]
    opening = compare(still_measure(0.0, 0.1, 0.8), still_measure(0.1, 0.3), meter)[blink]
    assert closing >= 0.6 and opening == pytest.approx(closing)


def test_reference_is_never_a_frame_caught_mid_blink():
    recent = [still_measure(i / 30, 0.3) for i in range(20)]
    recent[10:14] = [still_measure(i / 30, 0.08) for i in range(10, 14)]  # lids shut from frame 10 to 13
    assert choose_reference(recent[:12], 11 / 30, 0.0).frame_index == 9  # eyes shut: the last open frame
    assert choose_reference(recent, 19 / 30, 0.2).frame_index == 9  # 0.2 s back lands in the blink: before it
    assert choose_reference(recent, 19 / 30, 0.1).frame_index == 16  # 0.1 s back the eyes are open again
    assert choose_reference(recent, 5 / 30, 0.5) is None


def push_all(frames: list[np.ndarray], fps: float = 30.0):
    """Push frames from the stream's first frame (no rest before); return (intervals, refusals)."""
    detector = IntervalDetector(SpotterSettings())
    intervals, refusals = [], []
    for i, values in enumerate(frames):
        step = detector.push(i / fps, i, np.abs(values))
        intervals += [step.interval] if step.interval else []
        refusals += [step.refusal] if step.refusal else []
    return intervals, refusals


def test_running_baseline_warms_up_on_rest_not_on_a_head_turn_in_the_first_second():
    """A turn filling half of the first second would set the resting spread of pose itself (median about 2
    degrees, MAD about 1), and a later 4-degree turn that drags the mouth along would pass for an expression."""
    rng = np.random.default_rng(0)
    rest = [features() + rng.normal(0, 0.0002, len(FEATURE_NAMES)) for _ in range(40)]
    turn = [features(pose_deg=p) for p in np.linspace(1.6, 3.6, 20)]
    intervals, refusals = push_all(rest[:12] + turn + rest[12:20] + bump(9, 0.01, pose_deg=4.0) + rest[20:])
    assert not intervals and [r.cause for r in refusals] == ["head motion"]


def test_interval_closes_when_the_regions_that_moved_are_back_though_another_region_creeps():
    """A brow raise comes back while slow drift holds the mouth 3 resting deviations off its reference (over
    close_z, never open_z): the micro-expression is one interval, not an open one timed out as a macro."""
    shape = np.sin(np.linspace(0, np.pi, 9)) ** 2
    brows = [features({"brow_l": 0.001 + 0.01 * a, "brow_r": 0.001 + 0.01 * a, "mouth_l": 0.0025}) for a in shape]
    creep = [features({"mouth_l": 0.0025})] * 30
    intervals, refusals, start = run_detector(brows + creep)
    assert not refusals and len(intervals) == 1
    assert set(intervals[0].regions) == {"brow_l", "brow_r"} and intervals[0].offset_frame <= start + 9


def test_lids_settling_just_after_a_blink_are_that_blink_not_an_expression():
    """A blink's interval is refused and closed while the lids and brows have yet to settle, and they move again
    with the closure share already under blink_min: a blink up to lid_tail_s before the onset explains them."""
    blink = [features({"eye_l": 0.03, "eye_r": 0.03, "brow_l": 0.01}, blink=0.3)] * 4
    tail = [features({"eye_l": v, "brow_l": v / 3}, blink=0.05) for v in (0.02, 0.02, 0.012, 0.006)]
    lids = blink + [features(blink=0.05)] * 3 + tail
    intervals, refusals, _ = run_detector(lids)
    assert not intervals and [r.cause for r in refusals] == ["blink", "blink"]
    intervals, _, _ = run_detector(lids, settings=SpotterSettings(lid_tail_s=0.0))
    assert len(intervals) == 1  # without the rule, the settling lids are an expression


def test_a_movement_under_way_when_the_warm_up_ends_is_waited_out_not_an_event():
    """The running baseline's first estimate lands mid-movement (the mouth still settling after a blink, a smile
    begun during the warm-up): its onset was never seen, so nothing opens until the face has been at rest. The
    same movement once the spotter is ready is an event."""
    rng = np.random.default_rng(0)
    rest = [features() + rng.normal(0, 0.0002, len(FEATURE_NAMES)) for _ in range(60)]
    for start, events in ((27, 0), (45, 1)):  # the first estimate exists from frame 30 (1.0 s at 30 fps)
        intervals, refusals = push_all(rest[:start] + bump(9, 0.01) + rest[start:])
        assert len(intervals) == events and not refusals


@pytest.mark.parametrize("field, value", [("min_duration_s", 0.5), ("min_duration_s", -0.1), ("return_share", 1.0),
                                          ("close_z", 5.0)])
def test_spotter_settings_out_of_range_are_one_line_errors(field, value):
    with pytest.raises(ConfigError, match=f"^spotter .*{field}") as error:
        SpotterSettings(**{field: value})
    assert "\n" not in str(error.value)
