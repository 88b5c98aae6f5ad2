"""`ClipSample`: one annotated clip, whatever dataset it came from.

Every loader (`load_casme2`, `load_samm`, `load_casme_sq`, `load_casme3`, the synthetic set) returns these, so
preprocessing, sampling, training and evaluation never need to know which distribution a clip came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ClipSample:
    """A clip's frames in temporal order and its annotation, as the dataset's sheet gives it."""

    dataset: str  # ASCII id: 'casme2', 'samm', 'casme_sq', 'casme3', 'synthetic'
    subject: str  # as the dataset names it: 'sub01', '006', 's15', 'spNO.1', ...
    clip_id: str  # the sheet's clip name (its 'Filename' column or equivalent)
    frame_paths: tuple[Path, ...]  # every frame file of the clip, in natural (temporal) order
    frame_numbers: tuple[int, ...]  # the dataset's own number for each frame (the N in img<N>.jpg)
    onset: int  # dataset frame numbers, as in the sheet (after errata are resolved)
    apex: int
    offset: int
    fps: float
    label: str  # the native label string from the sheet, e.g. 'happiness', 'Other'
    action_units: str = ""
    aligned: bool = False  # True when the frames are already aligned crops (the synthetic set)

    def index_of(self, frame_number: int) -> int:
        """Position in `frame_paths` of the frame with this dataset number (nearest one if it is absent)."""
        numbers = self.frame_numbers
        return min(range(len(numbers)), key=lambda i: abs(numbers[i] - frame_number))

    @property
    def duration_s(self) -> float:
        """Onset to offset, in seconds."""
        return (self.offset - self.onset) / self.fps
