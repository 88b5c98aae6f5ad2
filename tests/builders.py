"""Miniature dataset trees in each distribution's exact layout, for the loader tests and, later, for preprocessing
and an end-to-end training run.

Frames are real faces: crops of scikit-image's public-domain astronaut photo, moved a few pixels from frame to
frame so consecutive frames differ. Folder and file names are the datasets' own, and the sheets are real .xlsx
workbooks written with openpyxl in the real column layouts (blank columns, the SAMM notes block, the headerless
CAS(ME)^2 sheet with its naming rules), errata included: an apex of `/`, a missing apex, an offset of 0, a
`spNo` folder for a `spNO` subject.

Each builder returns a `BuiltDataset`: the root to give the loader and, for every clip the loader should return,
what it should find there (subject, clip id, label, onset/apex/offset after the errata rules, frame numbers).
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import openpyxl
import skimage.data

FRAME_VARIANTS = 8  # distinct frames per size; frame n shows variant n % 8
CASME2_LABELS = ("happiness", "disgust", "repression", "surprise", "others", "fear", "sadness")
SAMM_LABELS = ("Anger", "Contempt", "Happiness", "Surprise", "Other", "Disgust", "Fear", "Sadness")
CASME_SQ_LABELS = ("negative", "positive", "surprise", "others")
CASME3_LABELS = ("happy", "disgust", "fear", "anger", "sad", "surprise", "others")
ACTION_UNITS = ("12", "4+7", "1+2", "14", "9+10", "R12")
SAMM_SUBJECTS = (6, 7, 9, 10, 11, 12)
CASME_SQ_FOLDERS = (15, 16, 19, 20, 21, 22)  # participant 1 is s15, 2 is s16, ...
CASME_SQ_STIMULI = ((101, "disgust1", "disgustingteeth"), (401, "anger1", "angrywoman"),
                    (502, "happy1", "funnydog"))
LONG_VIDEO_FRAMES = 45  # frames of each CAS(ME)^2 long video / CAS(ME)^3 task video written
CONTEXT_FRAMES = 15  # the loaders' default context (0.5 s at 30 fps)


@dataclass(frozen=True)
class BuiltClip:
    """What the loader should return for one clip."""

    subject: str
    clip_id: str
    label: str
    onset: int
    apex: int
    offset: int
    frame_numbers: tuple[int, ...]
    folder: Path  # the folder holding the clip's frames
    row: int  # the clip's Excel row in the sheet


@dataclass(frozen=True)
class BuiltDataset:
    """A tree written by a builder: its root, sheet and layout, the clips to expect, and the errata planted."""

    root: Path
    sheet: Path
    layout: str
    clips: tuple[BuiltClip, ...]
    errata: dict[str, int] = field(default_factory=dict)
    excluded: dict[str, int] = field(default_factory=dict)

    def clip(self, subject: str, clip_id: str) -> BuiltClip:
        return next(c for c in self.clips if c.subject == subject and c.clip_id == clip_id)


@functools.cache
def face_jpegs(width: int, height: int, tight: bool) -> tuple[bytes, ...]:
    """Encoded JPEG frames of a real face: head and shoulders like a camera frame, or the face alone (tight)."""
    photo = skimage.data.astronaut()  # (512, 512, 3) RGB, public domain
    x0, y0, w, h = (150, 50, 150, 150) if tight else (100, 20, 256, 192)
    frames = []
    for i in range(FRAME_VARIANTS):
        dx, dy = 2 * (i % 4), 2 * (i // 4)
        crop = photo[y0 + dy:y0 + dy + h, x0 + dx:x0 + dx + w]
        image = cv2.cvtColor(cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2BGR)
        _, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        frames.append(buffer.tobytes())
    return tuple(frames)


def write_frames(folder: Path, names: Iterable[tuple[str, int]], size: tuple[int, int], tight: bool) -> None:
    """Write (file name, frame number) pairs as face JPEGs."""
    folder.mkdir(parents=True, exist_ok=True)
    jpegs = face_jpegs(size[0], size[1], tight)
    for name, number in names:
        (folder / name).write_bytes(jpegs[number % FRAME_VARIANTS])


def write_workbook(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    """An .xlsx with the given worksheets, rows written as given (None leaves a cell blank)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(list(row))
    book.save(path)
    return path


def rename_header(sheet_path: Path, old: str, new: str) -> None:
    """Rename a column header in place (for the malformed-sheet tests)."""
    book = openpyxl.load_workbook(sheet_path)
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if cell.value == old:
                    cell.value = new
    book.save(sheet_path)


def truncate_file(path: Path) -> None:
    """Cut a file to half its length, as an interrupted copy would."""
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def _write_depth(folder: Path, size: tuple[int, int]) -> None:
    """A few 16-bit depth PNGs beside the colour frames, as Part A ships them; the loader must ignore them."""
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(1, 4):
        gray = cv2.imdecode(np.frombuffer(face_jpegs(size[0], size[1], False)[n], np.uint8), cv2.IMREAD_GRAYSCALE)
        cv2.imwrite(str(folder / f"{n}.png"), gray.astype(np.uint16) * 16)


def _numbers(subjects: int | Sequence[int], defaults: Sequence[int]) -> list[int]:
    return list(defaults[:subjects]) if isinstance(subjects, int) else list(subjects)


def build_casme2(tmp_path: Path, *, layout: str = "cropped", sheet: str = "2019", subjects: int | Sequence[int] = 3,
                 clips_per_subject: int = 3, frames_per_clip: int = 10, errata: bool = True,
                 frame_size: tuple[int, int] | None = None) -> BuiltDataset:
    """CASME II: `Cropped/sub01/EP02_01f/reg_img5.jpg` or `CASME2_RAW_selected/sub01/EP02_01f/img5.jpg`.

    sheet '2019' writes `CASME2-coding-20190701.xlsx` (Subject as text '01'); 'updated' writes the older
    `CASME2-coding-updated.xlsx` (Subject as a number, blank columns between columns). Labels cycle through the
    7 native labels. With errata, the second subject's first clip has an apex of `/`. The first clip of each
    subject has frames 5..14, so sorting names as text (img10 before img5) would show.
    """
    if layout not in ("cropped", "raw") or sheet not in ("2019", "updated"):
        raise ValueError(f"build_casme2: layout {layout!r} / sheet {sheet!r}; use cropped|raw and 2019|updated")
    cropped = layout == "cropped"
    root = tmp_path / "CASME2"
    frames_root = root / ("Cropped" if cropped else "CASME2_RAW_selected")
    prefix = "reg_img" if cropped else "img"
    size = frame_size or ((64, 64) if cropped else (160, 120))
    rows, clips, planted = [], [], Counter()
    for si, number in enumerate(_numbers(subjects, range(1, 27))):
        subject = f"sub{number:02d}"
        for k in range(clips_per_subject):
            clip_id, first = f"EP{k + 2:02d}_{k + 1:02d}f", 5 + 9 * k
            frames = tuple(range(first, first + frames_per_clip))
            onset, offset = frames[1], frames[-2]
            apex = apex_cell = onset + 2
            if errata and si == 1 and k == 0:
                apex_cell, apex = "/", (onset + offset) // 2
                planted["apex_missing"] += 1
            label = CASME2_LABELS[(si * clips_per_subject + k) % len(CASME2_LABELS)]
            aus = ACTION_UNITS[k % len(ACTION_UNITS)]
            folder = frames_root / subject / clip_id
            write_frames(folder, ((f"{prefix}{n}.jpg", n) for n in frames), size, tight=cropped)
            if sheet == "2019":
                rows.append([f"{number:02d}", clip_id, onset, apex_cell, offset, aus, label])
            else:
                rows.append([number, None, clip_id, None, onset, apex_cell, offset, None, aus, None, label])
            clips.append(BuiltClip(subject, clip_id, label, onset, apex, offset, frames, folder, len(rows) + 1))
    if sheet == "2019":
        name = "CASME2-coding-20190701.xlsx"
        header = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Estimated Emotion"]
    else:
        name = "CASME2-coding-updated.xlsx"
        header = ["Subject", None, "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None, "Action Units",
                  None, "Estimated Emotion"]
    path = write_workbook(root / name, {"Sheet1": [header, *rows]})
    return BuiltDataset(root, path, "cropped" if cropped else "raw", tuple(clips), dict(planted))


SAMM_NOTES = [
    ["SAMM - Spontaneous Micro-Facial Movement Dataset: FACS codes of the micro-movements"],
    [],
    ["Subject: participant number; the folder of that participant's frames, zero-padded to three digits"],
    ["Filename: the folder of the movement's frames"],
    ["Inducement Code: the stimulus video that induced the movement"],
    ["Onset Frame, Apex Frame, Offset Frame: frame numbers; -1 where a frame could not be coded"],
    ["Micro: whether the movement is a micro-movement, and its duration class"],
    ["Estimated Emotion: the emotion estimated from the action units and the stimulus"],
    ["Objective Classes: Davison et al., objective classes I-VII"],
    [],
    ["Version 2"],
    [],
]


def build_samm(tmp_path: Path, *, subjects: int | Sequence[int] = 3, clips_per_subject: int = 3,
               frames_per_clip: int = 10, errata: bool = True,
               frame_size: tuple[int, int] = (160, 120)) -> BuiltDataset:
    """SAMM: `SAMM/006/006_1_2/006_05562.jpg` and `SAMM_Micro_FACS_Codes_v2.xlsx` with its notes block.

    Labels cycle through the 8 native labels (`Other`, not `Others`). With errata, the second subject's first
    clip has a blank apex cell and the first subject's second clip an apex of -1.
    """
    root = tmp_path / "SAMM"
    rows, clips, planted = [], [], Counter()
    for si, number in enumerate(_numbers(subjects, SAMM_SUBJECTS)):
        subject = f"{number:03d}"
        for k in range(clips_per_subject):
            clip_id, first = f"{subject}_{k + 1}_2", 5562 + 40 * k
            frames = tuple(range(first, first + frames_per_clip))
            onset, offset = frames[1], frames[-2]
            apex = apex_cell = onset + 3
            if errata and (si, k) in ((1, 0), (0, 1)):
                apex_cell, apex = (None if si == 1 else -1), (onset + offset) // 2
                planted["apex_missing"] += 1
            label = SAMM_LABELS[(si * clips_per_subject + k) % len(SAMM_LABELS)]
            folder = root / subject / clip_id
            write_frames(folder, ((f"{subject}_{n:05d}.jpg", n) for n in frames), frame_size, tight=False)
            rows.append([number, clip_id, k % 4 + 1, onset, apex_cell, offset, offset - onset + 1, "Micro - 1/2",
                         ACTION_UNITS[k % len(ACTION_UNITS)], label, "I" if k % 2 else "III", None])
            clips.append(BuiltClip(subject, clip_id, label, onset, apex, offset, frames, folder,
                                   len(SAMM_NOTES) + 1 + len(rows)))
    header = ["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame", "Duration",
              "Micro", "Action Units", "Estimated Emotion", "Objective Classes", "Notes"]
    path = write_workbook(root / "SAMM_Micro_FACS_Codes_v2.xlsx", {"MICRO_ONLY": [*SAMM_NOTES, header, *rows]})
    return BuiltDataset(root, path, "frames", tuple(clips), dict(planted))


def build_casme_sq(tmp_path: Path, *, layout: str = "rawpic", subjects: int | Sequence[int] = 3,
                   clips_per_subject: int = 4, errata: bool = True,
                   frame_size: tuple[int, int] = (160, 120)) -> BuiltDataset:
    """CAS(ME)^2: `CAS(ME)^2code_final.xlsx` (headerless first sheet, 'naming rule1', 'naming rule2') and frames
    as `rawpic/s15/15_0101disgustingteeth/img1.jpg`, `selectedpic/s15/disgust1_1/img7.jpg` or
    `cropped/15/disgust1_1/img7.jpg`.

    `subjects` are participant numbers (1 is folder s15, 2 is s16, ...). Every third row of a subject (k % 4 == 2)
    is a macro-expression, left out by the loader. With errata, the second subject's first clip has offset 0.
    """
    if layout not in ("rawpic", "selectedpic", "cropped"):
        raise ValueError(f"build_casme_sq: layout {layout!r}; use rawpic, selectedpic or cropped")
    root = tmp_path / "CAS(ME)^2"
    participants = _numbers(subjects, range(1, len(CASME_SQ_FOLDERS) + 1))
    codes, clips, planted, excluded, micro = [], [], Counter(), Counter(), 0
    for si, participant in enumerate(participants):
        folder_number = CASME_SQ_FOLDERS[participant - 1]
        subject = f"s{folder_number}"
        for k in range(clips_per_subject):
            code, stimulus, description = CASME_SQ_STIMULI[k % len(CASME_SQ_STIMULI)]
            video = f"{stimulus}_{k // len(CASME_SQ_STIMULI) + 1}"
            onset = 10 + 4 * (k // len(CASME_SQ_STIMULI))
            apex, offset = onset + 2, onset + 5
            offset_cell = offset
            if errata and si == 1 and k == 0:
                offset_cell, offset = 0, apex
                planted["offset_zero"] += 1
            is_micro = k % 4 != 2
            label = CASME_SQ_LABELS[micro % len(CASME_SQ_LABELS)] if is_micro else "negative"
            kind = "micro-expression" if is_micro else "macro-expression"
            codes.append([participant, video, onset, apex, offset_cell, "4+7", label, kind, "disgust"])
            if layout == "rawpic":
                folder = root / "rawpic" / subject / f"{folder_number}_{code:04d}{description}"
                written = range(1, LONG_VIDEO_FRAMES + 1)
                frames = tuple(n for n in written if onset - CONTEXT_FRAMES <= n <= offset + CONTEXT_FRAMES)
            else:
                parent = "selectedpic" if layout == "selectedpic" else "cropped"
                folder = root / parent / (subject if layout == "selectedpic" else str(folder_number)) / video
                written = frames = tuple(range(onset - 3, offset + 4))
            write_frames(folder, ((f"img{n}.jpg", n) for n in written), frame_size, tight=layout == "cropped")
            if is_micro:
                micro += 1
                clips.append(BuiltClip(subject, video, label, onset, apex, offset, tuple(frames), folder, len(codes)))
            else:
                excluded["macro-expression"] += 1
    rule1 = [[f"s{CASME_SQ_FOLDERS[p - 1]}", str(CASME_SQ_FOLDERS[p - 1]), p] for p in participants]
    rule2 = [[code, stimulus, description] for code, stimulus, description in CASME_SQ_STIMULI]
    path = write_workbook(root / "CAS(ME)^2code_final.xlsx",
                          {"CASFEcode_final": codes, "naming rule1": rule1, "naming rule2": rule2})
    return BuiltDataset(root, path, layout, tuple(clips), dict(planted), dict(excluded))


def build_casme3(tmp_path: Path, *, subjects: int | Sequence[int] = 3, clips_per_subject: int = 3,
                 errata: bool = True, frame_size: tuple[int, int] = (160, 120)) -> BuiltDataset:
    """CAS(ME)^3 Part A: `part_A/data/part_A/spNO.1/a/color/8.jpg` (+ depth PNGs) and
    `part_A/annotation/cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx`, worksheet `label`.

    Clips alternate between task videos a and b, so video a holds two micro-expressions. With errata, the
    second subject's folder is spelled `spNo.2` while the sheet says `spNO.2`.
    """
    root = tmp_path / "part_A"
    rows, clips, planted = [], [], Counter()
    for si, number in enumerate(_numbers(subjects, range(1, 101))):
        written_subject = f"spNO.{number}"
        folder_subject = f"spNo.{number}" if errata and si == 1 else written_subject
        for k in range(clips_per_subject):
            video = "ab"[k % 2]
            onset = 8 + 20 * (k // 2)
            apex, offset = onset + 3, onset + 6
            label = CASME3_LABELS[(si * clips_per_subject + k) % len(CASME3_LABELS)]
            video_dir = root / "data" / "part_A" / folder_subject / video
            folder = video_dir / "color"
            if not folder.exists():
                write_frames(folder, ((f"{n}.jpg", n) for n in range(1, LONG_VIDEO_FRAMES + 1)), frame_size, False)
                _write_depth(video_dir / "depth", frame_size)
            frames = tuple(n for n in range(1, LONG_VIDEO_FRAMES + 1)
                           if onset - CONTEXT_FRAMES <= n <= offset + CONTEXT_FRAMES)
            rows.append([written_subject, video, onset, apex, offset, "L12", "I", label])
            clips.append(BuiltClip(written_subject, f"{video}_{onset}", label, onset, apex, offset, frames, folder,
                                   len(rows) + 1))
            if folder_subject != written_subject:
                planted["subject_case"] += 1
    header = ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion"]
    path = write_workbook(root / "annotation" / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx",
                          {"label": [header, *rows]})
    return BuiltDataset(root, path, "color", tuple(clips), dict(planted))
