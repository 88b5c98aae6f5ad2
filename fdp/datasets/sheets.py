"""Annotation sheets and folders as the distributions ship them: find the workbook, its header row, its columns.

The four datasets disagree on almost everything (a notes block above SAMM's table, blank columns between CASME II's,
no header at all in CAS(ME)^2's first sheet, `/` in number cells, `spNO` beside `spNo`), so the loaders share these
forgiving readers instead of each growing its own. Everything a user can fix raises `DatasetLayoutError` in one line.
"""

from __future__ import annotations

import fnmatch
import math
import re
import zipfile
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from fdp.errors import DatasetLayoutError, first_line

_DIGITS = re.compile(r"(\d+)")


def natural_key(text: str) -> tuple[Any, ...]:
    """Sort key that puts img2 before img10: digit runs compare as numbers, the rest case-insensitively."""
    parts = _DIGITS.split(text)
    return tuple(int(p) if i % 2 else p.casefold() for i, p in enumerate(parts))


def normalize_name(text: object) -> str:
    """'Onset Frame', 'OnsetFrame' and 'onset_frame' all become 'onsetframe', for forgiving matches."""
    return re.sub(r"[^0-9a-z]", "", str(text).casefold())


def is_blank(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def cell_text(value: object) -> str:
    """A cell as stripped text; numbers written as floats by Excel lose their '.0'."""
    if is_blank(value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def cell_int(value: object) -> int | None:
    """A frame-number cell as an int, or None for the blanks, `/` and other text the sheets use for 'unknown'."""
    if is_blank(value) or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    text = str(value).strip()
    if re.fullmatch(r"[+-]?\d+(\.0+)?", text):
        return int(float(text))
    return None


def find_file(root: Path, patterns: Iterable[str], hint: str, *, what: str = "sheet", max_depth: int = 2) -> Path:
    """The first file under root (root itself first, then deeper) whose name matches a pattern, case-insensitively.

    Patterns are tried in order, so the first one names the preferred version (e.g. the 2019 CASME II sheet).
    """
    patterns = tuple(patterns)
    files = [p for p in _files(root, max_depth) if not p.name.startswith("~$")]
    for pattern in patterns:
        hits = [p for p in files if fnmatch.fnmatch(p.name.casefold(), pattern.casefold())]
        if hits:
            return min(hits, key=lambda p: (len(p.relative_to(root).parts), natural_key(p.name)))
    raise DatasetLayoutError(f"{root}: no {what} named like '{patterns[-1]}'; {hint}")


def find_subject_parent(root: Path, subject: re.Pattern[str], *, named: re.Pattern[str] | None = None,
                        max_depth: int = 3) -> Path | None:
    """The first folder (root included, breadth first) that holds subject folders, optionally with a given name.

    Archives unpack with or without an extra level (`Cropped/sub01` or `Cropped/Cropped/sub01`), so the frames'
    root is found, not assumed.
    """
    queue: deque[tuple[Path, int]] = deque([(root, 0)])
    while queue:
        folder, depth = queue.popleft()
        children = _subdirs(folder)
        if (named is None or named.fullmatch(folder.name)) and any(subject.fullmatch(c.name) for c in children):
            return folder
        if depth < max_depth:
            queue.extend((c, depth + 1) for c in children if not subject.fullmatch(c.name))
    return None


def find_child_dir(parent: Path, name: str) -> tuple[Path | None, bool]:
    """The folder `parent/name`, matched exactly or else case-insensitively; the flag says whether it was exact."""
    exact = parent / name
    if exact.is_dir():
        return exact, True
    folded = name.casefold()
    for child in _subdirs(parent):
        if child.name.casefold() == folded:
            return child, False
    return None, False


def read_workbook(path: Path) -> dict[str, pd.DataFrame]:
    """Every worksheet of an .xlsx as raw cells (no header, no type guessing): row i is Excel row i + 1."""
    try:
        book = pd.read_excel(path, sheet_name=None, header=None, dtype=object, engine="openpyxl")
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, TypeError) as err:
        raise DatasetLayoutError(f"{path}: not a readable .xlsx workbook ({first_line(err)}); "
                                 "restore it from the dataset archive") from err
    return {str(name): frame for name, frame in book.items()}


def pick_worksheet(book: Mapping[str, pd.DataFrame], path: Path, name: str) -> pd.DataFrame:
    """The worksheet called `name`, ignoring case, spaces and punctuation ('naming rule1' = 'Naming_Rule1')."""
    wanted = normalize_name(name)
    for sheet, frame in book.items():
        if normalize_name(sheet) == wanted:
            return frame
    found = ", ".join(f"'{s}'" for s in book) or "none"
    raise DatasetLayoutError(f"{path}: no worksheet named '{name}' (found {found}); "
                             "use the sheet as the dataset ships it")


@dataclass(frozen=True)
class SheetRow:
    """One data row: its Excel row number (for messages a person can find) and its cells by column key."""

    number: int
    cells: dict[str, object]

    def __getitem__(self, key: str) -> object:
        return self.cells.get(key)


@dataclass(frozen=True)
class Table:
    """A sheet's data rows under named columns, wherever its header row and columns happen to sit."""

    path: Path
    sheet: str
    rows: tuple[SheetRow, ...]


def header_row(frame: pd.DataFrame, first_cell: str, *, search_rows: int = 60) -> int | None:
    """Index of the first row whose first non-blank cell is `first_cell` (SAMM puts notes above its table)."""
    wanted = normalize_name(first_cell)
    for index in range(min(search_rows, len(frame))):
        cells = [c for c in frame.iloc[index].tolist() if not is_blank(c)]
        if cells and normalize_name(cells[0]) == wanted:
            return index
    return None


def match_columns(header: list[object], wanted: Mapping[str, tuple[str, ...]], path: Path,
                  sheet: str, optional: Iterable[str] = ()) -> dict[str, int]:
    """Column index for each wanted key, trying its aliases in order; blank header cells are never matched."""
    names = {i: normalize_name(h) for i, h in enumerate(header) if not is_blank(h)}
    columns: dict[str, int] = {}
    optional = set(optional)
    for key, aliases in wanted.items():
        for alias in aliases:
            hit = next((i for i, n in names.items() if n == normalize_name(alias)), None)
            if hit is not None:
                columns[key] = hit
                break
        else:
            if key in optional:
                continue
            found = ", ".join(cell_text(header[i]) for i in names) or "nothing"
            raise DatasetLayoutError(f"{path}: no column named like '{aliases[0]}' in the header row of sheet "
                                     f"'{sheet}' (found {found}); use the sheet as the dataset ships it")
    return columns


def read_table(path: Path, wanted: Mapping[str, tuple[str, ...]], *, first_cell: str = "Subject",
               sheet: str | None = None, optional: Iterable[str] = ()) -> Table:
    """Rows of the named (or first suitable) worksheet under the header row that starts with `first_cell`."""
    book = read_workbook(path)
    candidates = {sheet: pick_worksheet(book, path, sheet)} if sheet else book
    for name, frame in candidates.items():
        start = header_row(frame, first_cell)
        if start is None:
            continue
        columns = match_columns(frame.iloc[start].tolist(), wanted, path, name, optional)
        return Table(path, name, tuple(_rows_below(frame, start, columns)))
    where = f"sheet '{sheet}'" if sheet else "any sheet"
    raise DatasetLayoutError(f"{path}: no header row starting with '{first_cell}' in {where}; "
                             "use the sheet as the dataset ships it")


def positional_rows(frame: pd.DataFrame, names: tuple[str, ...], path: Path, sheet: str,
                    min_columns: int) -> tuple[SheetRow, ...]:
    """Rows of a headerless sheet, cells keyed by position (CAS(ME)^2's first sheet has no header row)."""
    if frame.shape[1] < min_columns:
        raise DatasetLayoutError(f"{path}: sheet '{sheet}' has {frame.shape[1]} columns, expected {len(names)} "
                                 f"({', '.join(names)}); use the sheet as the dataset ships it")
    columns = {name: i for i, name in enumerate(names) if i < frame.shape[1]}
    return tuple(_rows_below(frame, -1, columns))


def _rows_below(frame: pd.DataFrame, start: int, columns: Mapping[str, int]) -> Iterable[SheetRow]:
    for index in range(start + 1, len(frame)):
        values = frame.iloc[index].tolist()
        cells = {key: values[col] if col < len(values) else None for key, col in columns.items()}
        if all(is_blank(v) for v in cells.values()):
            continue
        yield SheetRow(index + 1, cells)


def _subdirs(folder: Path) -> list[Path]:
    try:
        return sorted((p for p in folder.iterdir() if p.is_dir()), key=lambda p: natural_key(p.name))
    except OSError:
        return []


def _files(root: Path, max_depth: int) -> list[Path]:
    """Files to `max_depth` levels, breadth first; it never lists the big frame folders below that."""
    out: list[Path] = []
    queue: deque[tuple[Path, int]] = deque([(root, 0)])
    while queue:
        folder, depth = queue.popleft()
        try:
            children = sorted(folder.iterdir(), key=lambda p: natural_key(p.name))
        except OSError:
            continue
        for child in children:
            if not child.is_dir():
                out.append(child)
            elif depth + 1 < max_depth:
                queue.append((child, depth + 1))
    return out
