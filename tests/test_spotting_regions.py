"""The rigid motion the spotter takes off every region: fitted where the flow is known, on points inside the crop."""

from __future__ import annotations

import numpy as np
import pytest

from fdp.align import FaceAligner
from fdp.config import AlignerSettings
from fdp.synthesis.face_sources import load_tracks
from realtime.spotting import SpotterSettings
from realtime.spotting.measures import FlowMeter, measure_face, spotting_settings
from realtime.spotting.regions import REGIONS, STABLE, rigid_flow, texture_at

HAIRLINE = 10  # the one STABLE point the spotting crop is not meant to hold


def turn_flow(points: np.ndarray, degrees: float, centre: np.ndarray) -> np.ndarray:
    """(n, 2) displacement of `points` under a rotation about `centre` (what a crop turned by the aligner shows)."""
    angle = np.radians(degrees)
    linear = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return (points - centre) @ linear.T + centre - points


def face_points() -> np.ndarray:
    """(478, 2) a face-like layout: STABLE points where the spotting crop puts them, the rest spread below."""
    rng = np.random.default_rng(0)
    points = np.c_[rng.uniform(30, 90, 478), rng.uniform(50, 110, 478)]
    layout = {168: (60, 36), 6: (60, 40), 197: (60, 44), 195: (60, 48), 5: (60, 52), 127: (19, 44), 356: (101, 44),
              162: (20, 34), 389: (100, 34), 234: (19, 52), 454: (101, 52), HAIRLINE: (60, -10)}
    for index, xy in layout.items():
        points[index] = xy
    return points


def test_rigid_fit_trusts_an_edge_only_across_it():
    # The outline and temples lie on near-vertical edges: their flow shows only the horizontal part of a turn
    # (the aperture problem). Weighted by their texture the fit recovers the turn, and the chin is left at rest;
    # trusting every direction equally leaves the turn's missing part on the chin as motion.
    points = face_points()
    centre = np.array([60.0, 40.0])
    true = turn_flow(points, 1.0, centre)
    edges = [127, 356, 162, 389, 234, 454]
    seen = true.copy()
    seen[edges, 1] = 0.0  # along a vertical edge the flow reads nothing
    texture = np.tile(np.eye(2), (len(STABLE), 1, 1))
    for i, index in enumerate(STABLE):
        if index in edges:
            texture[i] = np.diag([1.0, 0.0])
        elif index == HAIRLINE:
            texture[i] = 0.0  # outside the crop
    chin = list(REGIONS["chin"])

    def chin_motion(weights: np.ndarray) -> float:
        residual = seen - rigid_flow(points, seen, weights)
        return float(np.linalg.norm(residual[chin].mean(axis=0)))

    equal = np.where(texture.any(axis=(1, 2))[:, None, None], np.eye(2), 0.0)
    assert chin_motion(texture) < 0.01
    assert chin_motion(equal) > 0.1  # px: the error the texture weights remove


def test_texture_reads_an_edge_and_leaves_out_points_outside_the_image():
    image = np.zeros((64, 64), np.uint8)
    image[:, 32:] = 200  # one vertical edge
    points = np.full((478, 2), 32.0)
    points[STABLE[0]] = (-5.0, 10.0)  # outside
    tensors = texture_at(image, points, window=9)
    assert np.allclose(tensors[0], 0.0)
    across, along = tensors[1][0, 0], tensors[1][1, 1]
    assert across > 0.9 and along < 1e-6  # the flow is known across the edge only, each point counted once


@pytest.fixture(scope="module")
def still_faces() -> list:
    faces = []
    with FaceAligner(AlignerSettings(), running_mode="image") as aligner:
        for track in load_tracks(("astronaut", "grace_hopper", "canon_man")):
            frame = np.ascontiguousarray(track.frames[0])
            faces.append((frame, aligner.process(frame)[0].face))
    return faces


def test_spotting_crop_margin_keeps_the_rigid_points_inside_and_off_the_edge(still_faces):
    settings = SpotterSettings()
    keep = FlowMeter(settings.crop_size).window // 2  # the flow window must fit inside the crop
    framings = {"margin": spotting_settings(settings.crop_size, settings.margin_px),
                "template": spotting_settings(settings.crop_size, 0)}
    near_edge = {name: 0 for name in framings}
    for frame, face in still_faces:
        for name, framing in framings.items():
            measure = measure_face(frame, face, 0.0, 0, framing)
            side = measure.crop.shape[0]
            stable = measure.points[[i for i in STABLE if i != HAIRLINE]]
            near_edge[name] += int(((stable < keep) | (stable > side - 1 - keep)).any(axis=1).sum())
        unscaled = measure_face(frame, face, 0.0, 0, framings["template"]).width_px
        assert measure_face(frame, face, 0.0, 0, framings["margin"]).width_px == pytest.approx(unscaled, rel=1e-3)
    assert near_edge["margin"] == 0
    assert near_edge["template"] > 0  # at the template's own framing the outline sits on the crop's edge
