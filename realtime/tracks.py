"""Stable face ids across frames, so each face keeps its own window.

Detections are matched to tracks by box overlap (greedy, best IoU first; faces move little between frames).
A track not seen for `lost_after_s` is dropped: a face that leaves and returns after that gets a new id and a
fresh window, never a window that mixes two moments (or two people).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

State = TypeVar("State")
Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in frame pixels


@dataclass
class Track(Generic[State]):
    face_id: int
    box: Box
    last_seen_s: float
    state: State  # what the pipeline keeps per face (its window, spotter, ...)


def box_iou(a: Box, b: Box) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class FaceTracker(Generic[State]):
    """Assigns each detection a track; at most `max_faces` tracks live at once."""

    def __init__(self, create_state: Callable[[int], State], max_faces: int = 1, iou_threshold: float = 0.3,
                 lost_after_s: float = 0.5):
        self.create_state = create_state
        self.max_faces = max_faces
        self.iou_threshold = iou_threshold
        self.lost_after_s = lost_after_s
        self.tracks: dict[int, Track[State]] = {}
        self._next_id = 0

    def update(self, t_s: float, boxes: Sequence[Box]) -> list[Track[State] | None]:
        """Match this frame's face boxes to tracks; returns one track per box (None for boxes over the limit)."""
        self._expire(t_s)
        assigned: list[Track[State] | None] = [None] * len(boxes)
        pairs = sorted(((box_iou(track.box, box), face_id, index)
                        for face_id, track in self.tracks.items() for index, box in enumerate(boxes)), reverse=True)
        used_tracks: set[int] = set()
        for iou, face_id, index in pairs:
            if iou < self.iou_threshold:
                break
            if face_id in used_tracks or assigned[index] is not None:
                continue
            used_tracks.add(face_id)
            assigned[index] = self.tracks[face_id]
        # New faces, largest first, while there is room.
        for index in sorted(range(len(boxes)), key=lambda i: -_area(boxes[i])):
            if assigned[index] is None and len(self.tracks) < self.max_faces:
                track = Track(self._next_id, tuple(boxes[index]), t_s, self.create_state(self._next_id))
                self.tracks[self._next_id] = track
                self._next_id += 1
                assigned[index] = track
        for index, track in enumerate(assigned):
            if track is not None:
                track.box = tuple(float(v) for v in boxes[index])
                track.last_seen_s = t_s
        return assigned

    def _expire(self, t_s: float) -> None:
        for face_id in [i for i, track in self.tracks.items() if t_s - track.last_seen_s > self.lost_after_s]:
            del self.tracks[face_id]


def _area(box: Box) -> float:
    return float(np.prod(np.maximum(0.0, np.subtract(box[2:], box[:2]))))
