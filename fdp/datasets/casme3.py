"""CAS(ME)^3 Part A as it ships (30 fps, 1280x720 colour + depth): point --root at the unpacked Part A folder.

Sheet: `cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx`, worksheet `label`: Subject (`spNO.1`), Filename (the task
video, `a`..`m`), Onset, Apex, Offset (numbers of the colour JPEGs), AU, Objective class, emotion. Frames:
`.../spNO.1/a/color/355.jpg`: the whole task video, so a clip is onset..offset plus `context_s` on each side.
One task video holds several micro-expressions, so a clip's id is `<Filename>_<Onset>` (`a_355`), unique per subject.
The sheet writes `spNO` where some folders are named `spNo`: subjects are matched by their number, ignoring case,
and every clip's subject is written the sheet's way, `spNO.<n>`, so one person never becomes two subjects.
Only the colour frames are read; depth is not used.
"""

from __future__ import annotations

import re
from pathlib import Path

from fdp.datasets.loading import (
    DATASETS,
    ClipProblem,
    FrameLister,
    LoadRecorder,
    LoadResult,
    build_clip,
    check_root,
    clip_folder,
    resolve_span,
)
from fdp.datasets.sheets import SheetRow, cell_text, find_file, find_subject_parent, read_table
from fdp.errors import DatasetLayoutError

SHEET_PATTERNS = ("cas(me)*3_part_A_ME_label*.xlsx",)
SUBJECT_FOLDER = re.compile(r"sp\s*no\.?\s*(\d+)", re.IGNORECASE)
FRAME_NAMES = (r"(\d+)\.jpe?g", "<N>.jpg")
COLUMNS = {
    "subject": ("Subject",),
    "clip": ("Filename", "File name"),
    "onset": ("Onset", "Onset Frame", "OnsetFrame"),
    "apex": ("Apex", "Apex Frame", "ApexFrame"),
    "offset": ("Offset", "Offset Frame", "OffsetFrame"),
    "action_units": ("AU", "AUs", "Action Units"),
    "emotion": ("emotion", "Estimated Emotion"),
}


def subject_number(text: str) -> int | None:
    """7 for 'spNO.7', 'spNo.7' or 'SPNO7'; None for anything else."""
    match = SUBJECT_FOLDER.fullmatch(text.strip())
    return int(match.group(1)) if match else None


def load_casme3(root: Path, *, context_s: float = 0.5, strict: bool = False,
                verify_frames: bool = True) -> LoadResult:
    """Every micro-expression of the Part A label sheet, with its frames in order; bad clips skipped and counted.

    context_s: seconds of task video kept on each side of onset..offset. strict: raise on the first bad clip.
    verify_frames: check every JPEG for truncation.
    """
    root = check_root(root, "casme3")
    sheet = find_file(root, SHEET_PATTERNS, "point --root at the CAS(ME)^3 Part A folder that holds the label "
                                            "sheet and the spNO.* folders", max_depth=3)
    frames_root = find_subject_parent(root, SUBJECT_FOLDER, max_depth=4)
    if frames_root is None:
        raise DatasetLayoutError(f"{root}: no subject folders named like 'spNO.1'; "
                                 "point --root at the unpacked CAS(ME)^3 Part A folder")
    subjects = {subject_number(d.name): d for d in frames_root.iterdir() if d.is_dir() and subject_number(d.name)}
    table = read_table(sheet, COLUMNS, first_cell="Subject", sheet="label")
    context = round(context_s * DATASETS["casme3"].fps)
    lister = FrameLister(*FRAME_NAMES)
    recorder = LoadRecorder("casme3", root, sheet, "color", strict=strict)
    for row in table.rows:
        _read_row(row, recorder, subjects, sheet, frames_root, lister, context, verify_frames)
    return recorder.finish()


def _read_row(row: SheetRow, recorder: LoadRecorder, subjects: dict[int | None, Path], sheet: Path,
              frames_root: Path, lister: FrameLister, context: int, verify: bool) -> None:
    written, video = cell_text(row["subject"]), cell_text(row["clip"])
    clip_id = f"{video}_{cell_text(row['onset'])}" if video else ""
    number = subject_number(written)
    subject = f"spNO.{number}" if number is not None else written
    where = f"{sheet}: row {row.number} ({subject or '?'}/{clip_id or '?'})"
    listed = f"{sheet.name} row {row.number}"
    with recorder.attempt(subject, clip_id):
        if number is None or not video:
            raise ClipProblem("bad_row", f"{where}: Subject '{written}' is not like 'spNO.1', or the Filename is "
                                         "blank; fix the cells or remove the row")
        span = resolve_span(row["onset"], row["apex"], row["offset"], where)
        subject_dir = subjects.get(number)
        if subject_dir is None:
            raise ClipProblem("missing_folder", f"{frames_root / written}: no subject folder for the clip in "
                                                f"{listed}; restore it from the dataset archive")
        errata: tuple[tuple[str, str], ...] = ()
        if subject_dir.name != written:
            errata = (("subject_case", f"{subject_dir}: the sheet says '{written}'; matched by subject number"),)
        folder, folder_errata = clip_folder(subject_dir, (video, "color"), listed)
        clip = build_clip(dataset="casme3", subject=subject, clip_id=clip_id, folder=folder, lister=lister,
                          span=span, label=cell_text(row["emotion"]), action_units=cell_text(row["action_units"]),
                          context_frames=context, verify=verify)
        recorder.add(clip, span.errata + errata + folder_errata)
