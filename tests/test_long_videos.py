"""Long synthetic test videos: real files read back by OpenCV, ground truth that matches the script, MEs that move
only their own frames and face region by exactly their stated size, nuisance presets without MEs, 200 fps, and
one-line errors. Real faces (scikit-image's astronaut, matplotlib's Grace Hopper) and short videos at small size.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from fdp.align import face_width
from fdp.errors import ConfigError, DatasetLayoutError
from fdp.synthesis.long_videos import (
    KINDS,
    LongVideoConfig,
    VideoRenderer,
    load_faces,
    load_truth,
    plan_set,
    write_video_set,
)
from fdp.synthesis.video_script import (
    NUISANCES,
    HeadMove,
    MicroExpression,
    VideoScript,
    draw_script,
    item_frames,
    preset_script,
)

FACE_PX = 100.0  # small frames: fast tests
BROWS = (105, 334, 66, 296, 70, 300, 63, 293)


@pytest.fixture(scope="module")
def renderer(fetched_assets) -> VideoRenderer:
    cv2.setNumThreads(1)
    return VideoRenderer([t for t in load_faces("tune") if not t.is_video])


def small(script: VideoScript) -> VideoScript:
    """The script at a small output size, so tests run fast."""
    return dataclasses.replace(script, face_width_px=FACE_PX)


def read_frames(path: Path) -> tuple[list[np.ndarray], int, float]:
    capture = cv2.VideoCapture(str(path))
    count, fps = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), float(capture.get(cv2.CAP_PROP_FPS))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames, count, fps


def me(label: str, aus: tuple[tuple[str, float], ...], onset_s: float, peak_fw: float = 0.03) -> MicroExpression:
    return MicroExpression(label, aus, onset_s, onset_s + 0.12, onset_s + 0.3, peak_fw, "left", 0.8)


@pytest.mark.parametrize("fps", [30.0, 200.0])
def test_video_at_30_and_200_fps_reads_back_with_its_frame_count_fps_and_truth(renderer, tmp_path, fps):
    script = small(preset_script("one_me", 5, "astronaut", fps, 2.0))
    video, truth_path = renderer.write(script, tmp_path / "one.avi", "still")
    frames, count, read_fps = read_frames(video)
    assert (count, read_fps, len(frames)) == (script.n_frames, fps, script.n_frames)
    truth = load_truth(truth_path)
    assert (truth.video, truth.fps, truth.n_frames, truth.kind, truth.script) == (video, fps, script.n_frames,
                                                                                 "still", script)
    assert frames[0].shape[0] == frames[0].shape[1]


def test_truth_frames_and_seconds_match_the_script(renderer, tmp_path):
    script = small(draw_script(7, "grace_hopper", 30.0, 4.0, set(NUISANCES), n_me=1))
    _, truth_path = renderer.write(script, tmp_path / "all.avi", "nuisance")
    truth = load_truth(truth_path)
    items = [i for i in script.items if isinstance(i, MicroExpression)]
    assert [(e.start, e.peak, e.end, e.label) for e in truth.mes] == [
        (*item_frames(i, 30.0, script.n_frames), i.label) for i in items]
    others = [i for i in script.items if not isinstance(i, MicroExpression)]
    assert [(e.kind, e.start, e.peak, e.end) for e in truth.nuisances] == [
        (i.kind, *item_frames(i, 30.0, script.n_frames)) for i in others]
    record = json.loads(truth_path.read_text())
    for entry in record["mes"]:
        assert entry["onset_s"] == entry["onset"] / 30.0 and entry["offset_s"] == entry["offset"] / 30.0
        assert entry["peak_px"] == pytest.approx(entry["peak_fw"] * FACE_PX, abs=1e-3)
        assert len(set(entry["aus"].values())) == len(entry["aus"])  # unequal weights
    assert {n["kind"] for n in record["nuisances"]} >= {"blink", "drift", "exposure", "flicker", "step"}


@pytest.mark.parametrize("label, aus, upper", [("negative", (("AU15", 1.0), ("AU17", 0.6)), False),
                                               ("surprise", (("AU01", 1.0), ("AU02", 0.7)), True)])
def test_me_changes_the_file_only_from_onset_to_offset_and_only_in_its_aus_region(renderer, tmp_path, label, aus,
                                                                                  upper):
    from fdp.align import FaceAligner
    from fdp.config import AlignerSettings

    item = me(label, aus, 0.8)
    bare = VideoScript("astronaut", 30.0, 2.0, 3, 2.0, 92, face_width_px=FACE_PX)
    with_me = dataclasses.replace(bare, items=(item,))
    a, _, _ = read_frames(renderer.write(with_me, tmp_path / "me.avi")[0])
    b, _, _ = read_frames(renderer.write(bare, tmp_path / "bare.avi")[0])
    onset, _, offset = item_frames(item, 30.0, bare.n_frames)
    changed = [i for i in range(bare.n_frames) if not np.array_equal(a[i], b[i])]
    assert changed and min(changed) > onset and max(changed) < offset
    with FaceAligner(AlignerSettings(), running_mode="image") as aligner:
        points = aligner.detect(b[0], 0)[0].points
    apex = item_frames(item, 30.0, bare.n_frames)[1]  # before JPEG, whose 16-px blocks would spread the change
    raw = [next(f.image for i, f in enumerate(renderer.frames(s)) if i == apex) for s in (with_me, bare)]
    rows = np.flatnonzero(np.abs(raw[0].astype(int) - raw[1]).max(axis=(1, 2)) > 0)
    if upper:  # brows: nothing changes at or below the nose tip
        assert points[list(BROWS), 1].min() - 20 < rows.min() and rows.max() < points[1, 1]
    else:  # lip corners and chin: nothing changes at or above the eyes
        assert points[[145, 374], 1].max() < rows.min() and rows.max() < points[152, 1] + 10


@pytest.mark.parametrize("face, aus", [("astronaut", (("AU12", 1.0),)),
                                       ("grace_hopper", (("AU04", 1.0), ("AU07", 0.6))),
                                       ("grace_hopper", (("AU01", 0.5), ("AU02", 0.8), ("AU05", 1.0)))])
def test_peak_me_motion_is_peak_fw_times_face_width(renderer, face, aus):
    item = me("negative", aus, 0.4, peak_fw=0.012)
    script = VideoScript(face, 30.0, 1.2, 0, 0.0, 90, (item,), face_width_px=FACE_PX)
    frames = list(renderer.frames(script))
    peak = max(float(np.linalg.norm(f.me_delta, axis=1).max()) for f in frames)
    width = face_width(renderer.track(face).points[0])
    assert peak == pytest.approx(0.012 * width, rel=2e-3)
    apex = item_frames(item, 30.0, script.n_frames)[1]
    assert float(np.linalg.norm(frames[apex].me_delta, axis=1).max()) == pytest.approx(peak)


@pytest.mark.parametrize("preset, kinds", [("blinks", {"blink"}), ("talk", {"talk"}), ("macro", {"macro"}),
                                           ("nothing", set())])
def test_nuisance_presets_hold_no_me_in_truth_or_motion(renderer, tmp_path, preset, kinds):
    script = small(preset_script(preset, 2, "grace_hopper", 30.0, 2.6))
    rendered = list(renderer.frames(script))
    assert all(not f.me_delta.any() for f in rendered)
    assert any(f.total_delta.any() for f in rendered) == bool(kinds)
    truth = load_truth(renderer.write(script, tmp_path / f"{preset}.avi", "control")[1])
    assert truth.mes == () and {e.kind for e in truth.nuisances} == kinds


def test_blink_preset_closes_one_eye_at_a_time_and_both(renderer):
    script = small(preset_script("blinks", 2, "astronaut", 30.0, 2.6))
    frames = list(renderer.frames(script))
    for blink in script.items:
        _, peak, _ = item_frames(blink, 30.0, script.n_frames)
        lids = frames[peak].total_delta[[159, 386], 1]  # image-left, image-right mid upper lid, down is +
        expected = {"both": (True, True), "left": (True, False), "right": (False, True)}[blink.eyes]
        assert tuple(bool(v > 0.5) for v in lids) == expected


def test_head_turn_moves_nose_against_a_still_face_outline(renderer):
    turn = HeadMove("turn", 0.1, 0.6, 8.0)
    script = VideoScript("grace_hopper", 30.0, 1.0, 0, 0.0, 90, (turn,), face_width_px=FACE_PX)
    frames = list(renderer.frames(script))
    peak = max(frames, key=lambda f: abs(f.total_delta[1, 0]))
    assert peak.total_delta[1, 0] > 0.05 * face_width(renderer.track("grace_hopper").points[0])
    assert np.abs(peak.total_delta[[234, 454, 10, 152]]).max() < 1e-9  # the outline moves with the whole view


def test_drawn_scripts_keep_mes_apart_and_off_talk_head_moves_and_macros():
    for seed in range(40):
        script = draw_script(seed, "astronaut", 30.0, 20.0, set(NUISANCES), n_me=4)
        mes = sorted((i for i in script.items if isinstance(i, MicroExpression)), key=lambda m: m.onset_s)
        assert len(mes) == 4
        assert all(b.onset_s - a.offset_s >= 1.0 for a, b in zip(mes, mes[1:]))
        for m in mes:
            assert 0.15 <= m.offset_s - m.onset_s <= 0.5 and 0.005 <= m.peak_fw <= 0.03
            assert 0.3 <= (m.apex_s - m.onset_s) / (m.offset_s - m.onset_s) <= 0.6 + 1e-3
            for other in script.items:
                if other.kind in ("talk", "nod", "turn", "macro"):
                    assert m.offset_s <= other.start_s or m.onset_s >= other.end_s
                if other.kind == "blink":
                    assert m.offset_s + 0.2 <= other.start_s or m.onset_s >= other.end_s + 0.2


def test_set_plan_covers_every_kind_on_every_face_and_short_200_fps_videos(fetched_assets):
    plans = plan_set(LongVideoConfig(Path("unused"), "tune"), load_faces("tune"))
    full = {(s.face, kind) for _, kind, s in plans if s.fps == 30.0}
    assert full == {(f, k) for f in ("astronaut", "grace_hopper") for k in KINDS}
    assert {kind for _, kind, s in plans if s.fps == 200.0} == {"still", "nuisance", "control"}
    assert all(s.duration_s == 8.0 for _, _, s in plans if s.fps == 200.0)
    real = [s for _, kind, s in plans if kind == "real_talk"]
    assert len(real) == 1 and real[0].face == "pexels_talker"
    assert not any(item.kind == "me" for item in real[0].items)
    assert all(item.kind != "me" for _, kind, s in plans if kind in ("control", "macro") for item in s.items)


def test_set_plan_on_three_named_tune_faces_covers_every_kind_on_every_face(fetched_assets):
    faces = ("canon_man", "couple_woman", "boning_boy")
    config = LongVideoConfig(Path("unused"), "tune", faces=faces, fps=(30.0,))
    plans = plan_set(config, load_faces("tune", faces))
    synthetic = [(s.face, kind) for _, kind, s in plans if kind != "real_talk"]
    assert sorted(synthetic) == sorted((f, k) for f in faces for k in KINDS)
    assert [s.face for _, kind, s in plans if kind == "real_talk"] == ["pexels_talker"]


def test_kinds_option_makes_only_those_kinds_on_every_face(fetched_assets):
    faces = ("canon_man", "astronaut")
    config = LongVideoConfig(Path("unused"), "tune", faces=faces, kinds=("macro", "nuisance"))
    plans = plan_set(config, load_faces("tune", faces))
    assert sorted((s.face, kind) for _, kind, s in plans if s.fps == 30.0 and kind != "real_talk") == \
        sorted((f, k) for f in faces for k in ("macro", "nuisance"))
    assert {kind for _, kind, s in plans if s.fps == 200.0} == {"nuisance"}  # the short kinds among them


def test_a_shrunk_tune_face_is_that_still_as_a_small_recompressed_photo_found_again(renderer, tmp_path):
    plain, shrunk = (t for t in load_faces("tune", ("grace_hopper", "grace_hopper_80px")) if not t.is_video)
    assert shrunk.info.subject == "grace_hopper_80px" and shrunk.info.parents == ("grace_hopper",)
    assert "80 px wide face" in shrunk.info.source
    assert face_width(shrunk.points[0]) == pytest.approx(80, abs=6)  # the aligner's own fit on the small photo
    assert face_width(plain.points[0]) > 150
    script = small(preset_script("one_me", 3, "grace_hopper_80px", 30.0, 1.5))
    video, truth_path = VideoRenderer([shrunk]).write(script, tmp_path / "shrunk.avi")
    _, count, _ = read_frames(video)
    assert count == script.n_frames and load_truth(truth_path).face == "grace_hopper_80px"
    with pytest.raises(ConfigError, match=r"^shrinking grace_hopper to a 9 px face: use a still, and a width from 24"):
        load_faces("tune", ("grace_hopper_9px",))


def test_a_posed_tune_face_rests_in_its_expression_and_keeps_its_identity(fetched_assets):
    names = ("boning_boy", "boning_boy_smiling", "boning_boy_frowning", "boning_boy_surprised", "boning_boy_turned",
             "boning_boy_smiling_90px")
    tracks = {t.info.subject: t for t in load_faces("tune", names) if not t.is_video}
    assert set(tracks) == set(names)
    assert all(tracks[name].info.parents == ("boning_boy",) for name in names[1:])

    def shape(name: str) -> tuple[float, float, float]:  # the aligner's own fit on the posed photo, in face widths
        points = tracks[name].points[0].astype(np.float64)
        fw = face_width(points)
        brow = (points[[159, 386], 1] - points[[105, 334], 1]).mean() / fw  # upper lids below the brows
        return brow, float(np.linalg.norm(points[61] - points[291])) / fw, (points[14, 1] - points[13, 1]) / fw

    def nose_aside(name: str) -> float:  # nose tip from the middle of the face outline, face widths: the yaw
        points = tracks[name].points[0].astype(np.float64)
        return (points[4, 0] - (points[234, 0] + points[454, 0]) / 2) / face_width(points)

    (brow, mouth, gap), smiling, frowning, surprised = (shape(name) for name in names[:4])
    assert nose_aside("boning_boy_turned") > nose_aside("boning_boy") + 0.08  # turned toward image right
    assert smiling[1] > mouth + 0.02  # wider mouth
    assert frowning[0] < brow - 0.02  # brows down
    assert surprised[0] > brow + 0.01 and surprised[2] > gap + 0.04  # brows up, jaw dropped
    assert face_width(tracks["boning_boy_smiling_90px"].points[0]) == pytest.approx(90, abs=6)
    with pytest.raises(ConfigError, match=r"^--faces boning_boy_sleepy: name distinct faces .* NAME_<pose> "
                                          r"\(smiling, frowning, surprised, turned\)"):
        load_faces("tune", ("boning_boy_sleepy",))


def test_faces_option_names_tune_stills_only_with_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"^--faces canon_man,nobody: name distinct faces from astronaut, "):
        LongVideoConfig(tmp_path, "tune", faces=("canon_man", "nobody"))
    with pytest.raises(ConfigError, match=r"^--faces pexels_talker: name distinct faces"):
        LongVideoConfig(tmp_path, "tune", faces=("pexels_talker",))
    with pytest.raises(ConfigError, match=r"^--faces chooses tune faces only; drop it for --split heldout"):
        LongVideoConfig(tmp_path, "heldout", faces=("canon_man",))
    with pytest.raises(ConfigError, match=r"^--kinds chooses tune videos only"):
        LongVideoConfig(tmp_path, "heldout", kinds=("macro",))
    with pytest.raises(ConfigError, match=r"^--kinds macro,bogus: name distinct kinds from still, nuisance"):
        LongVideoConfig(tmp_path, "tune", kinds=("macro", "bogus"))


def test_bad_arguments_give_one_line_config_errors(tmp_path):
    with pytest.raises(ConfigError) as unknown:
        draw_script(0, "astronaut", nuisances={"blink", "sneeze"})
    assert str(unknown.value) == "unknown nuisance(s) sneeze; choose from blink, talk, head, light, macro"
    with pytest.raises(ConfigError) as short:
        draw_script(0, "astronaut", duration_s=3.0, n_me=3)
    assert str(short.value) == ("duration_s 3 with n_me 3: 3 micro-expressions need at least 5.5 s; lengthen the "
                                "video or lower n_me")
    with pytest.raises(ConfigError, match=r"^fps 29.97: use a whole frame rate of 15 or more$"):
        VideoScript("astronaut", 29.97, 2.0, 0, 1.0, 90)
    with pytest.raises(ConfigError, match=r"^--split 'test': choose one of tune, heldout$"):
        LongVideoConfig(tmp_path, "test")
    (tmp_path / "index.json").write_text("{}")
    with pytest.raises(ConfigError, match="already holds a long-video set"):
        write_video_set(LongVideoConfig(tmp_path))
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(DatasetLayoutError, match=r"bad.json: not a long-video ground truth"):
        load_truth(tmp_path / "bad.json")
