"""The upper and the lower face on timelines of their own: a group's detector opens only on its regions, a long
nuisance is named as such, and the merger joins the groups' intervals into events and lets a macro-expression in
one group veto the other (feature vectors and detector steps given directly; real video is in test_spotting)."""

from __future__ import annotations

import numpy as np
import pytest

from fdp.errors import ConfigError
from realtime.spotting import SpotterSettings
from realtime.spotting.detector import DetectorStep, IntervalDetector, Refusal, SpottedInterval
from realtime.spotting.groups import EventMerger
from realtime.spotting.regions import REGION_GROUPS, REGION_NAMES
from tests.test_window_tracks_spotting import features, run_detector

FPS = 30.0


def talking_with_a_brow_raise() -> list[np.ndarray]:
    """1.5 s of talking (jaw and mouth moving all along) with a 0.3 s brow raise in its middle, which drags the
    lids along: every region of the upper face moves, as the whole face does in a turn, but the talking mouth is no
    part of the question whether the face moved as one."""
    t = np.arange(45) / FPS
    syllables = np.abs(np.sin(2 * np.pi * 2.5 * t))
    brows = np.zeros(45)
    brows[18:27] = np.sin(np.linspace(0, np.pi, 9)) ** 2
    return [features({"mouth_l": 0.001 + 0.012 * s, "mouth_r": 0.001 + 0.012 * s, "lips": 0.001 + 0.01 * s,
                      "brow_l": 0.001 + 0.01 * b, "brow_r": 0.001 + 0.01 * b, "eye_l": 0.001 + 0.007 * b,
                      "eye_r": 0.001 + 0.007 * b}, jaw=0.2 * s, lip_gap=0.02 * s)
            for s, b in zip(syllables, brows)]


def test_every_region_is_in_exactly_one_group():
    names = [r for regions in REGION_GROUPS.values() for r in regions]
    assert sorted(names) == sorted(REGION_NAMES)


def test_a_brow_raise_during_talking_is_found_by_the_upper_face_alone():
    """Followed as one, the face moves for the whole 1.5 s and the brow raise is lost in a refused movement; the
    upper face's own timeline sees it come and go, and the lower face names the talking."""
    frames = talking_with_a_brow_raise()
    whole, _, _ = run_detector(frames)
    assert not whole
    upper, upper_refusals, start = run_detector(frames, regions=REGION_GROUPS["upper"])
    assert len(upper) == 1 and set(upper[0].regions[:2]) == {"brow_l", "brow_r"} and not upper_refusals
    assert start + 16 <= upper[0].onset_frame and upper[0].offset_frame <= start + 28
    lower, lower_refusals, _ = run_detector(frames, regions=REGION_GROUPS["lower"])
    assert not lower and lower_refusals and all(r.cause == "talking" for r in lower_refusals)


def test_a_long_movement_with_no_nuisance_is_still_a_macro():
    shape = np.sin(np.linspace(0, np.pi, 60)) ** 2
    smile = [features({"mouth_l": 0.001 + 0.02 * a, "mouth_r": 0.001 + 0.02 * a}) for a in shape]
    intervals, refusals, _ = run_detector(smile, regions=REGION_GROUPS["lower"])
    assert not intervals and refusals[0].cause == "macro"


def test_the_lower_face_settling_after_a_blink_is_that_blink():
    """A blink nudges the landmarks the crop is aligned on, and the lower face reads a small motion that outlasts
    the lids: the lower face's interval opens as the lids reopen, and the blink just before explains it."""
    blink = np.sin(np.linspace(0, np.pi, 6)) ** 2
    frames = [features({"eye_l": 0.001 + 0.03 * a, "eye_r": 0.001 + 0.03 * a}, blink=0.8 * a) for a in blink]
    frames += [features({"mouth_r": 0.001 + 0.004 * a}) for a in np.sin(np.linspace(0, np.pi, 12)) ** 2]
    intervals, refusals, _ = run_detector(frames, regions=REGION_GROUPS["lower"])
    assert not intervals and [r.cause for r in refusals] == ["blink"]


def blink_and_mouth(mouth_start: int, mouth_peak: float) -> list[np.ndarray]:
    """A 0.2 s blink (lids 3 % of the face width), and a 0.4 s motion of one mouth corner starting `mouth_start`
    frames after it."""
    lids = np.sin(np.linspace(0, np.pi, 6)) ** 2
    mouth = np.zeros(mouth_start + 12)
    mouth[mouth_start:] = np.sin(np.linspace(0, np.pi, 12)) ** 2
    lids = np.r_[lids, np.zeros(len(mouth) - len(lids))]
    return [features({"eye_l": 0.001 + 0.03 * a, "eye_r": 0.001 + 0.03 * a, "mouth_r": 0.001 + mouth_peak * m},
                     blink=0.8 * a) for a, m in zip(lids, mouth)]


def test_the_lower_face_moving_with_the_lids_is_the_blinks_nudge_to_the_alignment():
    """A blink nudges the eye corners the crop is aligned on, and the lower face reads that at the very frames the
    lids move: a mouth corner moving 30 % as far as the lids, from the blink's first frame, is that blink; the same
    motion starting 0.2 s after the blink began (its own timing, still beside it) is a micro-expression."""
    with_the_lids, refusals, _ = run_detector(blink_and_mouth(0, 0.009), regions=REGION_GROUPS["lower"])
    assert not with_the_lids and [r.cause for r in refusals] == ["blink"]
    after, _, start = run_detector(blink_and_mouth(6, 0.009), regions=REGION_GROUPS["lower"])
    assert len(after) == 1 and after[0].regions == ("mouth_r",) and after[0].onset_frame >= start + 5


def test_a_detector_of_unknown_regions_is_refused_in_one_line():
    with pytest.raises(ConfigError, match="spotter regions"):
        IntervalDetector(SpotterSettings(), regions=("brow_l", "nose"))


def interval(onset_s: float, offset_s: float, peak_z: float, regions: tuple[str, ...]) -> SpottedInterval:
    apex_s = (onset_s + offset_s) / 2
    return SpottedInterval(int(onset_s * FPS), int(apex_s * FPS), int(offset_s * FPS), onset_s, apex_s, offset_s,
                           peak_z, peak_z / 1000, regions)


def test_merger_joins_overlapping_intervals_of_both_groups_once_neither_is_busy():
    merger = EventMerger(max_duration_s=0.5)
    brows = interval(1.0, 1.3, 9.0, ("brow_l", "brow_r"))
    events, _ = merger.push(1.5, [DetectorStep(0.0, False, brows), DetectorStep(5.0, True)], [None, 1.1])
    assert not events  # the lower face is still deciding about a movement that began before the brows came back
    mouth = interval(1.1, 1.4, 6.0, ("mouth_l",))
    events, _ = merger.push(1.6, [DetectorStep(0.0, False), DetectorStep(0.0, False, mouth)], [None, None])
    assert len(events) == 1
    event = events[0]
    assert (event.onset_s, event.offset_s, event.apex_s) == (1.0, 1.4, brows.apex_s)
    assert event.regions == ("brow_l", "brow_r", "mouth_l") and event.peak_z == 9.0


def test_merger_keeps_the_stronger_interval_when_their_union_outlasts_a_micro_expression():
    merger = EventMerger(max_duration_s=0.5)
    a, b = interval(1.0, 1.4, 9.0, ("brow_l",)), interval(1.3, 1.7, 5.0, ("mouth_l",))
    events, _ = merger.push(2.0, [DetectorStep(0.0, False, a), DetectorStep(0.0, False, b)], [None, None])
    assert events == [a]


@pytest.mark.parametrize("cause, vetoed", [("macro", True), ("talking", False)])
def test_a_macro_in_one_group_vetoes_what_the_other_spotted_during_it(cause, vetoed):
    """A held frown makes the lids' twitch during it part of it; a stretch of talking does not (the brow raise
    beside it is the point of following the groups apart)."""
    merger = EventMerger(max_duration_s=0.5)
    lids = interval(2.0, 2.3, 8.0, ("eye_l",))
    events, refusals = merger.push(2.5, [DetectorStep(0.0, False, lids), DetectorStep(6.0, True)], [None, 1.8])
    assert not events and not refusals
    long = Refusal(cause, 1.8, 2.6)
    events, refusals = merger.push(2.6, [DetectorStep(0.0, False), DetectorStep(6.0, False, None, long)],
                                   [None, None])
    assert (events, refusals) == (([], [long, Refusal("macro", 2.0, 2.3)]) if vetoed else ([lids], [long]))


def test_merger_vetoes_an_interval_confirmed_after_the_macro_it_overlaps():
    merger = EventMerger(max_duration_s=0.5)
    merger.push(2.6, [DetectorStep(0.0, False), DetectorStep(6.0, False, None, Refusal("macro", 1.8, 2.6))],
                [None, None])
    events, refusals = merger.push(2.8, [DetectorStep(0.0, False, interval(2.3, 2.6, 7.0, ("brow_l",))),
                                         DetectorStep(0.0, False)], [None, None])
    assert not events and [r.cause for r in refusals] == ["macro"]
    assert merger.flush([interval(9.0, 9.3, 7.0, ("brow_l",))])[0].onset_s == 9.0
