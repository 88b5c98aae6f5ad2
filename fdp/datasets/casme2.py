"""CASME II as it ships (200 fps, 26 subjects): point --root at the unpacked CASME II folder, nothing renamed.

Frames: `CASME2_RAW_selected/sub01/EP02_01f/img46.jpg` (layout 'raw', the full 640x480 frames) or
`Cropped/sub01/EP02_01f/reg_img46.jpg` (layout 'cropped', the distributed face crops). The frame number is the N
in `img<N>` / `reg_img<N>`, and the sheet's OnsetFrame, ApexFrame and OffsetFrame use the same numbers.
Sheet: `CASME2-coding-20190701.xlsx`, or the older `CASME2-coding-updated.xlsx` (blank columns between its
columns): Subject, Filename, OnsetFrame, ApexFrame, OffsetFrame, Action Units, Estimated Emotion. Some ApexFrame
cells are `/`.

Layout 'auto' prefers the raw frames when both are present: the live system aligns full camera frames, and
training should see faces aligned by the same code from the same kind of frame.
"""

from __future__ import annotations

import re
from pathlib import Path

from fdp.datasets.loading import FrameLister, LoadRecorder, LoadResult, check_root, choose_layout, read_clip_rows
from fdp.datasets.sheets import cell_text, find_file, find_subject_parent, read_table

SHEET_PATTERNS = ("CASME2-coding-2*.xlsx", "CASME2-coding-*.xlsx")  # the dated (2019) sheet first, then the older
FRAME_FOLDERS = {"raw": "CASME2_RAW_selected", "cropped": "Cropped"}
FRAME_NAMES = {"raw": (r"img(\d+)\.jpe?g", "img<N>.jpg"), "cropped": (r"reg_img(\d+)\.jpe?g", "reg_img<N>.jpg")}
SUBJECT_FOLDER = re.compile(r"sub\d+", re.IGNORECASE)
COLUMNS = {
    "subject": ("Subject",),
    "clip": ("Filename", "File name"),
    "onset": ("OnsetFrame", "Onset Frame", "Onset"),
    "apex": ("ApexFrame", "Apex Frame", "Apex"),
    "offset": ("OffsetFrame", "Offset Frame", "Offset"),
    "action_units": ("Action Units", "AUs", "AU"),
    "emotion": ("Estimated Emotion", "Emotion"),
}


def subject_folder_name(cell: object) -> str:
    """The sheet's Subject cell (1, '01' or 'sub01') as the folder name 'sub01'."""
    text = cell_text(cell)
    return f"sub{int(text):02d}" if text.isdigit() else text


def find_frames_roots(root: Path) -> dict[str, Path | None]:
    """For each layout, the folder that holds `sub01`, `sub02`, ... (None where that layout is absent)."""
    return {layout: find_subject_parent(root, SUBJECT_FOLDER, named=re.compile(re.escape(name), re.IGNORECASE))
            for layout, name in FRAME_FOLDERS.items()}


def load_casme2(root: Path, *, layout: str = "auto", strict: bool = False, verify_frames: bool = True) -> LoadResult:
    """Every clip the CASME II sheet lists, with its frames in order; bad clips are skipped and counted.

    layout: 'auto', 'raw' or 'cropped'. strict: raise on the first bad clip instead of skipping it.
    verify_frames: check every JPEG for truncation (two small reads per frame).
    """
    root = check_root(root, "casme2")
    sheet = find_file(root, SHEET_PATTERNS, "point --root at the CASME II folder that holds the coding sheet "
                                            "and CASME2_RAW_selected or Cropped")
    layout, frames_root = choose_layout("casme2", layout, find_frames_roots(root), root, FRAME_FOLDERS)
    table = read_table(sheet, COLUMNS, first_cell="Subject")
    lister = FrameLister(*FRAME_NAMES[layout])
    recorder = LoadRecorder("casme2", root, sheet, layout, strict=strict)
    return read_clip_rows(recorder, table, frames_root, lister, subject_folder_name, verify=verify_frames)
