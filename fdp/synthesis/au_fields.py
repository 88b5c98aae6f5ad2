"""Action-unit displacement fields on MediaPipe's face mesh, for synthetic micro-expressions.

Each field says how every mesh vertex moves when one AU fires, in a canonical face frame: u to image right (the
subject's left), v down, w away from the viewer, origin between the outer eye corners, unit = the outer-eye-corner
distance (v33 to v263, "IOD"). Fields are 3D where py-feat gives depth motion (our own fields move in the u-v plane)
so a turned face sees them in perspective. Every field is symmetric (a horizontal flip keeps its meaning), zero on
the face outline and on the deep side vertices, and scaled so its largest in-plane vertex motion is 1.

Two sets (see `au_definitions`): `mixed` (py-feat's fitted fields where they are right, ours elsewhere, on
py-feat's mesh: research-only) and `own` (ours for every AU, on MediaPipe's canonical mesh from the landmarker
bundle: no py-feat bytes).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from fdp.errors import ConfigError, ModelFileError
from fdp.synthesis.au_definitions import (
    LIP_LOWER_INNER,
    LIP_UPPER_INNER,
    MIXED_NOTES,
    OWN_FIELDS,
    PYFEAT_REGIONS,
    Handle,
)

FieldSet = Literal["mixed", "own"]
FIELD_SETS: tuple[str, ...] = ("mixed", "own")
_BACKGROUND = 0.05  # weight of the still background in the blend: motion falls to half ~2.4 sigma from a handle
_DEEP, _SHALLOW = -0.19, -0.11  # depth (IOD, toward the viewer, from the eye corners) of masked / full-weight


def _band(x: np.ndarray, lo: float, hi: float, edge: float) -> np.ndarray:
    """1 inside [lo, hi], a cosine fall to 0 over `edge` outside it."""
    out = np.maximum(lo - x, 0.0) + np.maximum(x - hi, 0.0)
    return np.where(out >= edge, 0.0, 0.5 + 0.5 * np.cos(np.pi * np.minimum(out / edge, 1.0)))


@dataclass(frozen=True)
class CanonicalFace:
    """A neutral face mesh in the canonical frame, with what the fields need to know about its shape."""

    points: np.ndarray  # (478, 2) u, v in IOD units
    points3d: np.ndarray  # (478, 3) u, v, w in IOD units (w away from the viewer, as MediaPipe's depth)
    mirror: np.ndarray  # (478,) index of each vertex's mirror image
    feather: np.ndarray  # (478,) 0 on the outline and deep side vertices, 1 inside

    @classmethod
    def from_mesh(cls, mesh: np.ndarray, triangles: np.ndarray) -> CanonicalFace:
        """From (468 or 478, 3) vertices with +y up and +z toward the viewer (py-feat's and MediaPipe's axes)."""
        xyz = np.asarray(mesh, np.float64) * np.array([1.0, -1.0, -1.0])
        if len(xyz) == 468:  # no irises in the canonical model: park them at the eye centres (they never move)
            xyz = np.r_[xyz, np.repeat(xyz[[33, 133]].mean(0, keepdims=True), 5, 0),
                        np.repeat(xyz[[263, 362]].mean(0, keepdims=True), 5, 0)]
        centre = 0.5 * (xyz[33] + xyz[263])
        points3d = (xyz - centre) / float(np.linalg.norm(xyz[263, :2] - xyz[33, :2]))
        points = points3d[:, :2].copy()
        mirror = _mirror_pairs(points)
        feather = _feather(-points3d[:, 2], triangles, len(points))
        return cls(points, points3d, mirror, np.minimum(feather, feather[mirror]))

    def symmetrize(self, field: np.ndarray) -> np.ndarray:
        """Average a field with its mirror image, so a flipped face shows the same AU."""
        flip = np.ones(field.shape[1])
        flip[0] = -1.0
        return 0.5 * (field + field[self.mirror] * flip)

    def mirrored(self, vertices: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(int(self.mirror[v]) for v in vertices)


def _mirror_pairs(points: np.ndarray) -> np.ndarray:
    """Each vertex's mirror image across the midline, as an involution: closest mutual pairs first."""
    distance = np.linalg.norm(points[:, None, :] - (points * np.array([-1.0, 1.0]))[None, :, :], axis=-1)
    mirror = np.full(len(points), -1)
    for flat in np.argsort(distance, axis=None):
        i, j = divmod(int(flat), len(points))
        if mirror[i] < 0 and mirror[j] < 0:
            mirror[i], mirror[j] = j, i
            if (mirror >= 0).all():
                break
    return mirror


def _feather(toward: np.ndarray, triangles: np.ndarray, n: int) -> np.ndarray:
    """Weight 0 on the outline (the mesh boundary) and deep side vertices, 1/2 one edge in, 1 beyond.

    `toward`: depth toward the viewer relative to the eye corners, IOD units (the side of the face is negative).
    """
    toward = toward - toward[[33, 263]].mean()
    edges = np.sort(np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]]), axis=1)
    unique, counts = np.unique(edges, axis=0, return_counts=True)
    masked = np.zeros(n, bool)
    masked[np.unique(unique[counts == 1])] = True  # boundary edges belong to one triangle: the face outline
    masked |= toward < _DEEP
    near = np.zeros(n, bool)
    near[unique[masked[unique[:, 0]], 1]] = True
    near[unique[masked[unique[:, 1]], 0]] = True
    weight = np.ones(n)
    weight[near] = 0.5
    weight[masked] = 0.0
    return weight * np.clip((toward - _DEEP) / (_SHALLOW - _DEEP), 0.0, 1.0)


def _blend_field(face: CanonicalFace, handles: tuple[Handle, ...], anchors: tuple[int, ...],
                 sigma: float) -> np.ndarray:
    """Spread handle motions over the mesh: a Gaussian-weighted average of the handles, the still anchors and a
    still background, so the field never overshoots a handle and fades to zero a few sigma away."""
    values: dict[int, np.ndarray] = {}
    for vertices, (du, dv) in handles:
        for v in vertices:
            values[v] = np.array([du, dv])
            values.setdefault(int(face.mirror[v]), np.array([-du, dv]))
    for v in anchors + face.mirrored(anchors):
        values.setdefault(v, np.zeros(2))
    for v in list(values):
        if face.mirror[v] == v:  # on the midline: no sideways motion
            values[v] = values[v] * np.array([0.0, 1.0])
    ids = np.fromiter(values, dtype=int)
    targets = np.stack([values[v] for v in ids])
    distance2 = ((face.points[:, None, :] - face.points[ids][None, :, :]) ** 2).sum(-1)
    weights = np.exp(-distance2 / (2.0 * sigma**2))
    return weights @ targets / (weights.sum(1) + _BACKGROUND)[:, None]


def _lip_side_mask(face: CanonicalFace, side: str) -> np.ndarray:
    """1 on one side of the lip line (between the inner lips, out to the corners), 0 on the other."""
    upper, lower = face.points[list(LIP_UPPER_INNER)], face.points[list(LIP_LOWER_INNER)]
    line_u = np.r_[np.abs(face.points[78, 0]), np.abs(0.5 * (upper[:, 0] + lower[:, 0]))]
    line_v = np.r_[face.points[78, 1], 0.5 * (upper[:, 1] + lower[:, 1])]
    order = np.argsort(line_u)
    u, v = np.abs(face.points[:, 0]), face.points[:, 1]
    below = v - np.interp(u, line_u[order], line_v[order])  # > 0 under the lip line
    inside = _band(u, 0.0, float(line_u.max()), 0.06)
    keep = _band(below, -9.0, 0.0, 0.03) if side == "upper" else _band(below, 0.0, 9.0, 0.03)
    return 1.0 - inside * (1.0 - keep)


def _own_field(face: CanonicalFace, au: str) -> np.ndarray:
    handles, anchors, sigma, side = OWN_FIELDS[au]
    planar = _blend_field(face, handles, anchors, sigma)
    if side:
        planar *= _lip_side_mask(face, side)[:, None]
    return np.c_[planar, np.zeros(len(planar))]


class AUFieldBank:
    """One unit displacement field per AU on a canonical face; `combine` mixes them for an expression."""

    def __init__(self, face: CanonicalFace, fields: dict[str, np.ndarray], field_set: str) -> None:
        self.face = face
        self.field_set = field_set
        fields = {au: face.symmetrize(f) * face.feather[:, None] for au, f in fields.items()}
        # AU name -> (478, 3), symmetric, feathered, largest in-plane vertex motion 1
        self.fields = {au: fields[au] / np.linalg.norm(fields[au][:, :2], axis=1).max() for au in sorted(fields)}

    @classmethod
    def mixed(cls, npz_path: Path, triangles: np.ndarray) -> AUFieldBank:
        """py-feat's fitted fields, cut to their FACS regions, plus our own for the AUs py-feat gets wrong."""
        try:
            with np.load(npz_path) as data:
                coef, intercept, columns = data["coef"], data["intercept"], [str(c) for c in data["au_columns"]]
        except (OSError, KeyError, ValueError) as err:
            raise ModelFileError(f"{npz_path}: not py-feat's AU-to-mesh model ({err}); "
                                 "run `python -m fdp.assets fetch`") from None
        face = CanonicalFace.from_mesh(intercept.reshape(3, -1).T, triangles)  # axis-major x|y|z
        u, v = np.abs(face.points[:, 0]), face.points[:, 1]
        fields = {au: _own_field(face, au) for au in OWN_FIELDS if au not in PYFEAT_REGIONS}
        for au, (u_range, v_range, edge) in PYFEAT_REGIONS.items():
            raw = coef[columns.index(au)].reshape(3, -1).T.astype(np.float64) * np.array([1.0, -1.0, -1.0])
            fields[au] = raw * (_band(u, *u_range, edge) * _band(v, *v_range, edge))[:, None]
        return cls(face, fields, "mixed")

    @classmethod
    def own(cls, vertices: np.ndarray, triangles: np.ndarray) -> AUFieldBank:
        """Our own field for every AU on MediaPipe's canonical mesh (`mediapipe_canonical_mesh`)."""
        face = CanonicalFace.from_mesh(vertices, triangles)
        return cls(face, {au: _own_field(face, au) for au in OWN_FIELDS}, "own")

    def combine(self, weights: dict[str, float]) -> np.ndarray:
        """Σ weight·field over the given AUs: (478, 3) in canonical IOD units per unit weight."""
        total = np.zeros_like(self.face.points3d)
        for au, weight in weights.items():
            total += weight * self.fields[au]
        return total

    def provenance(self) -> dict[str, dict[str, str]]:
        """The model card's table: per AU, where its field comes from and under which terms."""
        return field_provenance(self.field_set)


def field_provenance(field_set: str = "mixed") -> dict[str, dict[str, str]]:
    """Per AU: 'py-feat' or 'own', the terms that follow, and why (for the lead to print into the model card)."""
    terms = {"py-feat": "py-feat au_to_mesh_pls_v4.npz, fitted on CelebV-HQ (noncommercial terms): research-only",
             "own": "FDP Live's own FACS-based definition (MIT, with this code)"}
    table = {}
    for au in sorted(OWN_FIELDS):
        source = "py-feat" if field_set == "mixed" and au in PYFEAT_REGIONS else "own"
        note = MIXED_NOTES[au] if field_set == "mixed" else "own definition on MediaPipe's canonical mesh"
        table[au] = {"source": source, "terms": terms[source], "note": note}
    return table


def _protobuf_fields(data: bytes):
    """(field number, wire type, value) of one protobuf message, enough to read MediaPipe's geometry metadata."""
    i = 0

    def varint() -> int:
        nonlocal i
        value = shift = 0
        while True:
            byte = data[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    while i < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            yield number, wire, varint()
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            yield number, wire, data[i:i + size]
            i += size
        elif wire == 2:
            size = varint()
            yield number, wire, data[i:i + size]
            i += size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def mediapipe_canonical_mesh(task_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(468, 3) canonical vertices (cm, +y up, +z toward the viewer) and (898, 3) triangles from the landmarker
    bundle's geometry metadata (Apache-2.0, Google), so the `own` field set needs nothing from py-feat."""
    try:
        with zipfile.ZipFile(task_path) as bundle:
            metadata = bundle.read("geometry_pipeline_metadata_landmarks.binarypb")
        mesh = next(value for number, _, value in _protobuf_fields(metadata) if number == 1)
        floats, indices = [], []
        for number, wire, value in _protobuf_fields(mesh):
            if number == 3:  # vertex_buffer: x, y, z, u, v per vertex (packed or not)
                floats.append(np.frombuffer(value, "<f4"))
            elif number == 4:  # index_buffer
                indices.extend(_varints(value) if wire == 2 else [value])
        vertices = np.concatenate(floats).reshape(-1, 5)[:, :3].astype(np.float64)
        triangles = np.asarray(indices, np.int32).reshape(-1, 3)
    except (OSError, KeyError, StopIteration, ValueError, zipfile.BadZipFile) as err:
        raise ModelFileError(f"{task_path}: no canonical face mesh in the landmarker bundle ({err}); "
                             "run `python -m fdp.assets fetch`") from None
    if vertices.shape != (468, 3) or triangles.shape != (898, 3):
        raise ModelFileError(f"{task_path}: canonical mesh has {len(vertices)} vertices and {len(triangles)} "
                             "triangles, not 468 and 898; run `python -m fdp.assets fetch`")
    return vertices, triangles


def _varints(packed: bytes) -> list[int]:
    """Decode a packed run of varints."""
    out, value, shift = [], 0, 0
    for byte in packed:
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            out.append(value)
            value, shift = 0, 0
    return out


def load_field_bank(field_set: str = "mixed") -> tuple[AUFieldBank, np.ndarray]:
    """The bank and its triangles from the fetched assets: `mixed` needs py-feat's files, `own` only the landmarker."""
    from fdp.align import resolve_landmarker
    from fdp.assets import asset_path

    if field_set == "own":
        vertices, triangles = mediapipe_canonical_mesh(resolve_landmarker())
        return AUFieldBank.own(vertices, triangles), triangles
    if field_set != "mixed":
        raise ConfigError(f"--fields {field_set!r}: choose one of {', '.join(FIELD_SETS)}")
    triangles = np.asarray(json.loads(asset_path("canonical_face_tessellation.json").read_text())["triangles"],
                           np.int32)
    return AUFieldBank.mixed(asset_path("au_to_mesh_pls_v4.npz"), triangles), triangles
