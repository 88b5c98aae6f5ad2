"""SAMM as it ships (200 fps, 32 subjects): point --root at the folder that holds the subject folders.

Frames: `006/006_1_2/006_05562.jpg`: subject folder, clip folder (the sheet's Filename), and frames named
`<subject>_<frame number>.jpg`. Sheet: `SAMM_Micro_FACS_Codes_v2.xlsx` beside the subject folders, with a block of
notes above the table; the header row is the one whose first cell is `Subject`. Columns: Subject, Filename,
Inducement Code, Onset Frame, Apex Frame, Offset Frame, Duration, Micro, Action Units, Estimated Emotion,
Objective Classes, Notes. The class string is `Other` (CASME II says `others`); some Apex Frame cells are blank or
-1, and become the middle of onset..offset.
"""

from __future__ import annotations

import re
from pathlib import Path

from fdp.datasets.loading import FrameLister, LoadRecorder, LoadResult, check_root, read_clip_rows
from fdp.datasets.sheets import cell_text, find_file, find_subject_parent, read_table
from fdp.errors import DatasetLayoutError

SHEET_PATTERNS = ("SAMM_*Micro_FACS_Codes*.xlsx",)
SUBJECT_FOLDER = re.compile(r"\d{3}")
FRAME_NAMES = (r"\d+_(\d+)\.jpe?g", "<subject>_<N>.jpg")
COLUMNS = {
    "subject": ("Subject",),
    "clip": ("Filename", "File name"),
    "onset": ("Onset Frame", "OnsetFrame", "Onset"),
    "apex": ("Apex Frame", "ApexFrame", "Apex"),
    "offset": ("Offset Frame", "OffsetFrame", "Offset"),
    "action_units": ("Action Units", "AUs", "AU"),
    "emotion": ("Estimated Emotion", "Emotion"),
}


def subject_folder_name(cell: object) -> str:
    """The sheet's Subject cell (6 or '006') as the folder name '006'."""
    text = cell_text(cell)
    return f"{int(text):03d}" if text.isdigit() else text


def load_samm(root: Path, *, strict: bool = False, verify_frames: bool = True) -> LoadResult:
    """Every clip the SAMM sheet lists, with its frames in order; bad clips are skipped and counted.

    strict: raise on the first bad clip instead of skipping it. verify_frames: check every JPEG for truncation.
    """
    root = check_root(root, "samm")
    sheet = find_file(root, SHEET_PATTERNS, "point --root at the folder that holds the subject folders")
    frames_root = find_subject_parent(root, SUBJECT_FOLDER, max_depth=2)
    if frames_root is None:
        raise DatasetLayoutError(f"{root}: no subject folders named like '006'; "
                                 "point --root at the folder that holds the subject folders")
    table = read_table(sheet, COLUMNS, first_cell="Subject")
    lister = FrameLister(*FRAME_NAMES)
    recorder = LoadRecorder("samm", root, sheet, "frames", strict=strict)
    return read_clip_rows(recorder, table, frames_root, lister, subject_folder_name, verify=verify_frames)
