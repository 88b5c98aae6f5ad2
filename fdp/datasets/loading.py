"""What a dataset load gives back: the clips, and every clip skipped or corrected and why, counted.

A load never dies on one bad clip. A clip whose folder or frames are missing or broken is skipped with a one-line
reason; a known erratum in a sheet (an apex of `/`, an offset of 0) is corrected and noted. Both are counted, so
nothing disappears silently. `strict=True` turns the first skip into a `DatasetLayoutError` instead.
"""

from __future__ import annotations

import importlib
import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fdp.datasets.clips import ClipSample
from fdp.datasets.sheets import Table, cell_int, cell_text, find_child_dir, natural_key
from fdp.errors import ConfigError, DatasetLayoutError, first_line


@dataclass(frozen=True)
class DatasetInfo:
    """The one table of dataset ids, display titles, frame rates and frame layouts."""

    id: str
    title: str
    fps: float
    layouts: tuple[str, ...]  # frame layouts the loader reads, in the order layout='auto' prefers them


DATASETS: dict[str, DatasetInfo] = {
    "casme2": DatasetInfo("casme2", "CASME II", 200.0, ("raw", "cropped")),
    "samm": DatasetInfo("samm", "SAMM", 200.0, ("frames",)),
    "casme_sq": DatasetInfo("casme_sq", "CAS(ME)^2", 30.0, ("rawpic", "selectedpic", "cropped")),
    "casme3": DatasetInfo("casme3", "CAS(ME)^3 Part A", 30.0, ("color",)),
}


def dataset_info(dataset_id: str) -> DatasetInfo:
    if dataset_id not in DATASETS:
        raise ConfigError(f"unknown dataset {dataset_id!r}; choose one of {', '.join(DATASETS)}")
    return DATASETS[dataset_id]


def load_dataset(dataset_id: str, root: Path, **options: Any) -> LoadResult:
    """Load by id (`load_dataset('samm', root)`); the loader module is named after the id."""
    dataset_info(dataset_id)
    module = importlib.import_module(f"fdp.datasets.{dataset_id}")
    return getattr(module, f"load_{dataset_id}")(Path(root), **options)


@dataclass(frozen=True)
class SkippedClip:
    """A sheet row that gave no clip: `reason` is a short kind to count by, `message` the one line to show."""

    subject: str
    clip_id: str
    reason: str
    message: str


@dataclass(frozen=True)
class Erratum:
    """A known mistake in a sheet, corrected in a clip that was loaded."""

    subject: str
    clip_id: str
    kind: str
    message: str


@dataclass(frozen=True)
class LoadResult:
    """Everything a load found: the clips, and what was skipped, corrected or left out by design."""

    dataset: str
    root: Path
    sheet: Path
    layout: str
    clips: tuple[ClipSample, ...]
    skipped: tuple[SkippedClip, ...] = ()
    errata: tuple[Erratum, ...] = ()
    excluded: dict[str, int] = field(default_factory=dict)  # rows left out on purpose, e.g. macro-expressions

    def skip_counts(self) -> dict[str, int]:
        return dict(Counter(s.reason for s in self.skipped))

    def errata_counts(self) -> dict[str, int]:
        return dict(Counter(e.kind for e in self.errata))

    def subjects(self) -> list[str]:
        return sorted({c.subject for c in self.clips}, key=natural_key)

    def summary(self) -> str:
        """One line for logs: clips, subjects, skips and errata by kind."""
        title = DATASETS[self.dataset].title

        def counted(counts: dict[str, int]) -> str:
            return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))

        line = f"{title} ({self.layout}): {len(self.clips)} clips from {len(self.subjects())} subjects"
        line += f"; {len(self.skipped)} skipped" + (f" ({counted(self.skip_counts())})" if self.skipped else "")
        line += f"; {len(self.errata)} errata corrected" + (f" ({counted(self.errata_counts())})"
                                                           if self.errata else "")
        if self.excluded:
            line += f"; left out by design: {counted(self.excluded)}"
        return line


class ClipProblem(Exception):
    """Raised inside a loader for one row that cannot give a clip; the recorder turns it into a `SkippedClip`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Span:
    """Onset, apex and offset after the errata rules, with the corrections that were needed."""

    onset: int
    apex: int
    offset: int
    errata: tuple[tuple[str, str], ...] = ()


def resolve_span(onset_cell: object, apex_cell: object, offset_cell: object, where: str) -> Span:
    """Apply the errata rules to a row's three frame cells (`where` starts every message: 'sheet: row N (clip)').

    A missing or `/` apex becomes the middle of onset..offset; an offset of 0 or a missing one becomes the apex
    (CAS(ME)^2 writes 0 for 'the expression ends at its apex'); an apex outside onset..offset is clamped into it.
    A row without a usable onset, or with neither offset nor apex, or with onset after offset, is a `ClipProblem`.
    """
    onset, apex, offset = cell_int(onset_cell), cell_int(apex_cell), cell_int(offset_cell)
    errata: list[tuple[str, str]] = []
    if onset is None or onset < 0:
        raise ClipProblem("bad_row", f"{where}: onset '{cell_text(onset_cell)}' is not a frame number; "
                                     "fix the cell or remove the row")
    # 0 and -1 stand for 'not coded' in the sheets, unless the clip really starts at frame 0
    if apex is not None and (apex < 0 or apex == 0 < onset):
        apex = None
    if offset is None or offset < 0 or offset == 0 < onset:
        if apex is None:
            raise ClipProblem("bad_row", f"{where}: neither offset '{cell_text(offset_cell)}' nor apex "
                                         f"'{cell_text(apex_cell)}' is a frame number; fix the cells or remove the row")
        kind = "offset_zero" if offset == 0 else "offset_missing"
        errata.append((kind, f"{where}: offset '{cell_text(offset_cell)}' taken as the apex, {apex}"))
        offset = apex
    if onset > offset:
        raise ClipProblem("bad_row", f"{where}: onset {onset} is after offset {offset}; "
                                     "fix the cells or remove the row")
    if apex is None:
        apex = (onset + offset) // 2
        errata.append(("apex_missing", f"{where}: apex '{cell_text(apex_cell)}' is not a frame number; "
                                       f"used the middle of onset..offset, {apex}"))
    elif not onset <= apex <= offset:
        clamped = min(max(apex, onset), offset)
        errata.append(("apex_outside", f"{where}: apex {apex} lies outside onset..offset {onset}..{offset}; "
                                       f"clamped to {clamped}"))
        apex = clamped
    return Span(onset, apex, offset, tuple(errata))


class FrameLister:
    """Lists a folder's frames once (long videos hold many clips), numbered by the dataset's own frame number."""

    def __init__(self, pattern: str, like: str) -> None:
        self.pattern = re.compile(pattern, re.IGNORECASE)  # one group: the frame number
        self.like = like  # how the names look, for messages: "img<N>.jpg"
        self._cache: dict[Path, tuple[tuple[int, Path], ...]] = {}

    def frames(self, folder: Path) -> tuple[tuple[int, Path], ...]:
        if folder not in self._cache:
            found = []
            for path in folder.iterdir():
                match = self.pattern.fullmatch(path.name)
                if match and path.is_file():
                    found.append((int(match.group(1)), path))
            self._cache[folder] = tuple(sorted(found))
        return self._cache[folder]


def jpeg_problem(path: Path) -> str | None:
    """Why a JPEG cannot be used, or None; cheap (two small reads), so every frame can be checked at load time.

    Entropy-coded JPEG data escapes every 0xFF byte, so an end-of-image marker near the tail means the file ends
    where its encoder ended it; a cut-off download or copy has none.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(2)
            handle.seek(max(0, size - 1024))  # some encoders pad after the end-of-image marker
            tail = handle.read()
    except OSError as err:
        return f"unreadable frame ({first_line(err)})"
    if head != b"\xff\xd8":
        return "not a JPEG (no start-of-image marker)"
    if b"\xff\xd9" not in tail:
        return "truncated JPEG (no end-of-image marker)"
    return None


def build_clip(*, dataset: str, subject: str, clip_id: str, folder: Path, lister: FrameLister, span: Span,
               label: str, action_units: str = "", context_frames: int | None = None,
               verify: bool = True) -> ClipSample:
    """A `ClipSample` from a frame folder, or a `ClipProblem` when frames are absent, missing or broken.

    `context_frames` cuts a clip out of a long video: onset..offset plus that many frames on each side.
    """
    frames = lister.frames(folder)
    if not frames:
        raise ClipProblem("no_frames", f"{folder}: no frames named like '{lister.like}'; "
                                       "restore the clip's frames from the dataset archive")
    if context_frames is not None:
        low, high = span.onset - context_frames, span.offset + context_frames
        frames = tuple((n, p) for n, p in frames if low <= n <= high)
    present = {n for n, _ in frames}
    missing = [n for n in range(span.onset, span.offset + 1) if n not in present]
    if missing:
        shown = ", ".join(str(n) for n in missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise ClipProblem("missing_frames", f"{folder}: frames {shown} missing between onset {span.onset} and "
                                            f"offset {span.offset}; restore them from the dataset archive")
    if verify:
        for _, path in frames:
            problem = jpeg_problem(path)
            if problem:
                raise ClipProblem("bad_jpeg", f"{path}: {problem}; restore it from the dataset archive")
    return ClipSample(dataset=dataset, subject=subject, clip_id=clip_id,
                      frame_paths=tuple(p for _, p in frames), frame_numbers=tuple(n for n, _ in frames),
                      onset=span.onset, apex=span.apex, offset=span.offset, fps=DATASETS[dataset].fps,
                      label=label, action_units=action_units)


def clip_folder(base: Path, parts: tuple[str, ...], listed: str) -> tuple[Path, tuple[tuple[str, str], ...]]:
    """The folder `base/part/part...`, each part matched exactly or else ignoring case (which is noted).

    `listed` says where the clip was listed ("CASME2-coding-20190701.xlsx row 5"), for the missing-folder line.
    """
    folder, errata = base, []
    for part in parts:
        child, exact = find_child_dir(folder, part)
        if child is None:
            raise ClipProblem("missing_folder", f"{base.joinpath(*parts)}: no frame folder for the clip in {listed}; "
                                                "restore it from the dataset archive")
        if not exact:
            errata.append(("folder_case", f"{child}: the sheet says '{part}'; matched ignoring case"))
        folder = child
    return folder, tuple(errata)


class LoadRecorder:
    """Collects a load's clips, skips and errata, and makes the `LoadResult`."""

    def __init__(self, dataset: str, root: Path, sheet: Path, layout: str, *, strict: bool = False) -> None:
        self.dataset, self.root, self.sheet, self.layout, self.strict = dataset, root, sheet, layout, strict
        self.clips: list[ClipSample] = []
        self.skipped: list[SkippedClip] = []
        self.errata: list[Erratum] = []
        self.excluded: Counter[str] = Counter()
        self._keys: set[tuple[str, str]] = set()

    def add(self, clip: ClipSample, errata: tuple[tuple[str, str], ...] = ()) -> None:
        """Keep a clip (call inside `attempt`: a clip listed twice raises a `ClipProblem`)."""
        key = (clip.subject, clip.clip_id)
        if key in self._keys:
            raise ClipProblem("duplicate_row", f"{self.sheet}: {clip.subject}/{clip.clip_id} is listed twice; "
                                               "remove the duplicate row")
        self._keys.add(key)
        self.clips.append(clip)
        self.errata.extend(Erratum(clip.subject, clip.clip_id, kind, message) for kind, message in errata)

    @contextmanager
    def attempt(self, subject: str, clip_id: str) -> Iterator[None]:
        """One row's work: a `ClipProblem` raised inside becomes a counted skip, and the load goes on."""
        try:
            yield
        except ClipProblem as problem:
            self.skip(subject, clip_id, problem)

    def skip(self, subject: str, clip_id: str, problem: ClipProblem) -> None:
        if self.strict:
            raise DatasetLayoutError(problem.message)
        self.skipped.append(SkippedClip(subject, clip_id, problem.reason, problem.message))

    def exclude(self, why: str) -> None:
        self.excluded[why] += 1

    def finish(self) -> LoadResult:
        """The result; a DatasetLayoutError when the sheet lists clips and not one of them could be loaded."""
        title = DATASETS[self.dataset].title
        if not self.clips and self.skipped:
            raise DatasetLayoutError(
                f"{self.root}: none of the {len(self.skipped)} clips in {self.sheet.name} could be loaded "
                f"(first: {self.skipped[0].message}); point --root at the unpacked {title} folder")
        if not self.clips:
            raise DatasetLayoutError(f"{self.sheet}: no {title} clips listed; use the sheet as the dataset ships it")
        clips = sorted(self.clips, key=lambda c: (natural_key(c.subject), natural_key(c.clip_id)))
        return LoadResult(self.dataset, self.root, self.sheet, self.layout, tuple(clips), tuple(self.skipped),
                          tuple(self.errata), dict(self.excluded))


def read_clip_rows(recorder: LoadRecorder, table: Table, frames_root: Path, lister: FrameLister,
                   subject_name: Callable[[object], str], *, verify: bool = True) -> LoadResult:
    """The row loop shared by the datasets whose clips sit in `<subject>/<Filename>/` (CASME II and SAMM).

    The table must have the columns subject, clip, onset, apex, offset, action_units and emotion.
    """
    for row in table.rows:
        subject, clip_id = subject_name(row["subject"]), cell_text(row["clip"])
        where = f"{table.path}: row {row.number} ({subject or '?'}/{clip_id or '?'})"
        with recorder.attempt(subject, clip_id):
            if not subject or not clip_id:
                raise ClipProblem("bad_row", f"{where}: no Subject or Filename; fix the cells or remove the row")
            span = resolve_span(row["onset"], row["apex"], row["offset"], where)
            folder, folder_errata = clip_folder(frames_root, (subject, clip_id), f"{table.path.name} row {row.number}")
            clip = build_clip(dataset=recorder.dataset, subject=subject, clip_id=clip_id, folder=folder,
                              lister=lister, span=span, label=cell_text(row["emotion"]),
                              action_units=cell_text(row["action_units"]), verify=verify)
            recorder.add(clip, span.errata + folder_errata)
    return recorder.finish()


def check_root(root: Path, dataset_id: str) -> Path:
    """The root as a Path, or a DatasetLayoutError when it is not a folder."""
    root = Path(root).expanduser()
    if not root.is_dir():
        title = DATASETS[dataset_id].title
        raise DatasetLayoutError(f"{root}: no such folder; point --root at the unpacked {title} folder")
    return root


def choose_layout(dataset_id: str, layout: str, found: dict[str, Path | None], root: Path,
                  folders: dict[str, str]) -> tuple[str, Path]:
    """The frame layout to read: the one asked for, or with 'auto' the first present in the preferred order."""
    info = DATASETS[dataset_id]
    if layout != "auto" and layout not in info.layouts:
        raise ConfigError(f"unknown {info.title} layout {layout!r}; choose auto, {', '.join(info.layouts)}")
    names = [layout] if layout != "auto" else list(info.layouts)
    for name in names:
        if (path := found.get(name)) is not None:
            return name, path
    wanted = " or ".join(f"'{folders[n]}'" for n in names)
    raise DatasetLayoutError(f"{root}: no {wanted} folder holding subject folders; "
                             f"point --root at the unpacked {info.title} folder")

