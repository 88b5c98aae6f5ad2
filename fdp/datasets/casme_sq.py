"""CAS(ME)^2 as it ships (30 fps, 22 subjects): point --root at the unpacked CAS(ME)^2 folder, nothing renamed.

Sheet: `CAS(ME)^2code_final.xlsx` (or `...(Updated).xlsx`). Its first worksheet has NO header row; by position:
participant, video name (`anger1_1`: stimulus video and expression number), onset, apex, offset, AUs, estimated
emotion, expression type, self-reported emotion. Only rows whose expression type is `micro-expression` become clips
(the macro-expressions are counted as left out by design). Worksheet `naming rule1` maps the participant number to
its folder (`s15`), `naming rule2` maps the stimulus video (`disgust1`) to its code (`0101`). An offset of 0 means
the expression is coded up to its apex.

Frames, three layouts:
- 'rawpic': the long videos, `rawpic/s15/15_0101disgustingteeth/img1.jpg`; a clip is onset..offset of its long
  video plus `context_s` on each side, so training windows can be placed around the expression as the live
  window would be. Preferred by layout='auto' for that reason.
- 'selectedpic': one folder per expression, `selectedpic/s15/anger1_1/img557.jpg` (long-video frame numbers).
- 'cropped': face crops, `cropped/15/anger1_1/img557.jpg` (subject folders with or without the `s`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fdp.datasets.loading import (
    DATASETS,
    ClipProblem,
    FrameLister,
    LoadRecorder,
    LoadResult,
    build_clip,
    check_root,
    choose_layout,
    clip_folder,
    resolve_span,
)
from fdp.datasets.sheets import (
    SheetRow,
    cell_int,
    cell_text,
    find_child_dir,
    find_file,
    find_subject_parent,
    normalize_name,
    pick_worksheet,
    positional_rows,
    read_workbook,
)
from fdp.errors import DatasetLayoutError

SHEET_PATTERNS = ("CAS(ME)*code_final(Updated).xlsx", "CAS(ME)*code_final*.xlsx")  # the corrected copy first
FRAME_FOLDERS = {"rawpic": "rawpic", "selectedpic": "selectedpic", "cropped": "cropped"}
SUBJECT_FOLDER = re.compile(r"s?\d+", re.IGNORECASE)  # 's15' (rawpic, selectedpic) or '15' (cropped)
FRAME_NAMES = (r"img(\d+)\.jpe?g", "img<N>.jpg")
CODE_COLUMNS = ("participant", "video name", "onset", "apex", "offset", "AUs", "estimated emotion",
                "expression type", "self-reported emotion")
MICRO, MACRO = "microexpression", "macroexpression"  # expression types, as normalize_name writes them


@dataclass(frozen=True)
class NamingRules:
    """The two naming-rule worksheets: participant number -> subject folder, stimulus video -> video code."""

    folders: dict[int, str]  # 1 -> 's15'
    videos: dict[str, str]  # 'disgust1' (casefolded) -> '0101'


def read_naming_rules(book: dict[str, pd.DataFrame], path: Path, *, need_videos: bool) -> NamingRules:
    """Both rules, read by what the cells look like rather than by position, which differs between copies."""
    folders: dict[int, str] = {}
    for values in pick_worksheet(book, path, "naming rule1").itertuples(index=False):
        texts = [cell_text(v) for v in values]
        folder = next((t.lower() for t in texts if re.fullmatch(r"s\d+", t, re.IGNORECASE)), None)
        numbers = [n for n in (cell_int(v) for v in values) if n is not None]
        if folder and numbers:
            folders[numbers[-1]] = folder  # the participant number is the row's last number
    if not folders:
        raise DatasetLayoutError(f"{path}: sheet 'naming rule1' maps no participant to a folder like 's15'; "
                                 "use the sheet as the dataset ships it")
    videos: dict[str, str] = {}
    if need_videos:
        for values in pick_worksheet(book, path, "naming rule2").itertuples(index=False):
            texts = [cell_text(v) for v in values]
            code = next((t for t in texts if re.fullmatch(r"\d{1,4}", t)), None)
            name = next((t for t in texts if re.fullmatch(r"[a-z]+\d*", t, re.IGNORECASE)), None)
            if code and name:
                videos[name.casefold()] = code.zfill(4)
        if not videos:
            raise DatasetLayoutError(f"{path}: sheet 'naming rule2' maps no video name to a code like '0101'; "
                                     "use the sheet as the dataset ships it")
    return NamingRules(folders, videos)


def _code_sheet(book: dict[str, pd.DataFrame], path: Path) -> tuple[str, pd.DataFrame]:
    """The first worksheet that is not a naming rule: the codes (named 'CASFEcode_final' in one copy)."""
    for name, frame in book.items():
        if not normalize_name(name).startswith("namingrule"):
            return name, frame
    raise DatasetLayoutError(f"{path}: no worksheet of codes before the naming rules; "
                             "use the sheet as the dataset ships it")


def _subject_dir(frames_root: Path, folder: str, listed: str) -> Path:
    """`s15`, or `15` as the cropped frames name it."""
    for name in (folder, folder.lstrip("sS")):
        found, _ = find_child_dir(frames_root, name)
        if found is not None:
            return found
    raise ClipProblem("missing_folder", f"{frames_root / folder}: no subject folder for the clip in {listed}; "
                                        "restore it from the dataset archive")


def _long_video_dir(subject_dir: Path, video: str, rules: NamingRules, where: str, listed: str) -> Path:
    """`rawpic/s15/15_0101disgustingteeth` for video `disgust1_2` of participant folder `s15`."""
    stimulus = video.rsplit("_", 1)[0]
    code = rules.videos.get(stimulus.casefold())
    if code is None:
        raise ClipProblem("bad_row", f"{where}: video '{stimulus}' is not in sheet 'naming rule2'; "
                                     "fix the cell or the naming rule")
    prefix = f"{subject_dir.name.lstrip('sS')}_{code}".casefold()
    for child in sorted(p for p in subject_dir.iterdir() if p.is_dir()):
        if child.name.casefold().startswith(prefix):
            return child
    raise ClipProblem("missing_folder", f"{subject_dir / prefix}*: no long-video folder for the clip in {listed}; "
                                        "restore it from the dataset archive")


def load_casme_sq(root: Path, *, layout: str = "auto", context_s: float = 0.5, strict: bool = False,
                  verify_frames: bool = True) -> LoadResult:
    """Every micro-expression the CAS(ME)^2 sheet lists, with its frames in order; bad clips skipped and counted.

    layout: 'auto', 'rawpic', 'selectedpic' or 'cropped'. context_s: seconds of long video kept on each side of
    onset..offset (rawpic only). strict: raise on the first bad clip. verify_frames: check every JPEG.
    """
    root = check_root(root, "casme_sq")
    sheet = find_file(root, SHEET_PATTERNS, "point --root at the CAS(ME)^2 folder that holds the code sheet "
                                            "and rawpic, selectedpic or cropped")
    found = {layout_name: find_subject_parent(root, SUBJECT_FOLDER, named=re.compile(name, re.IGNORECASE))
             for layout_name, name in FRAME_FOLDERS.items()}
    layout, frames_root = choose_layout("casme_sq", layout, found, root, FRAME_FOLDERS)
    book = read_workbook(sheet)
    code_name, code_frame = _code_sheet(book, sheet)
    rows = positional_rows(code_frame, CODE_COLUMNS, sheet, code_name, min_columns=8)
    rules = read_naming_rules(book, sheet, need_videos=layout == "rawpic")
    context = round(context_s * DATASETS["casme_sq"].fps) if layout == "rawpic" else None
    lister = FrameLister(*FRAME_NAMES)
    recorder = LoadRecorder("casme_sq", root, sheet, layout, strict=strict)
    for row in rows:
        _read_row(row, recorder, rules, sheet, frames_root, layout, lister, context, verify_frames)
    return recorder.finish()


def _read_row(row: SheetRow, recorder: LoadRecorder, rules: NamingRules, sheet: Path, frames_root: Path,
              layout: str, lister: FrameLister, context: int | None, verify: bool) -> None:
    participant, video = cell_int(row["participant"]), cell_text(row["video name"])
    kind = normalize_name(cell_text(row["expression type"]))
    if participant is None and row.number == 1:
        return  # a header row, which some copies add above the codes
    if kind == MACRO:
        recorder.exclude("macro-expression")
        return
    subject = rules.folders.get(participant, "") if participant is not None else ""
    where = f"{sheet}: row {row.number} ({subject or cell_text(row['participant']) or '?'}/{video or '?'})"
    listed = f"{sheet.name} row {row.number}"
    with recorder.attempt(subject, video):
        if kind != MICRO:
            raise ClipProblem("bad_row", f"{where}: expression type '{cell_text(row['expression type'])}' is "
                                         "neither micro- nor macro-expression; fix the cell or remove the row")
        if not subject or not video:
            raise ClipProblem("bad_row", f"{where}: participant '{cell_text(row['participant'])}' is not in "
                                         "sheet 'naming rule1', or the video name is blank; fix the cells")
        span = resolve_span(row["onset"], row["apex"], row["offset"], where)
        subject_dir = _subject_dir(frames_root, subject, listed)
        errata: tuple[tuple[str, str], ...] = ()
        if layout == "rawpic":
            folder = _long_video_dir(subject_dir, video, rules, where, listed)
        else:
            folder, errata = clip_folder(subject_dir, (video,), listed)
        clip = build_clip(dataset="casme_sq", subject=subject, clip_id=video, folder=folder, lister=lister,
                          span=span, label=cell_text(row["estimated emotion"]),
                          action_units=cell_text(row["AUs"]), context_frames=context, verify=verify)
        recorder.add(clip, span.errata + errata)
