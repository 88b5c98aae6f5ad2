"""The data that crosses threads in the live system: one frozen dataclass per kind of thing handed over.

Capture hands `Frame`s to the pipeline; the pipeline hands `Prediction`, `MEEvent`, `StatusReport`,
`AnnotatedFrame` and finally `EndOfStream` to the publishers. Frozen, and with read-only images and mappings,
so a value handed to another thread can never change under it. `realtime.schema` turns them into messages.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

if TYPE_CHECKING:
    from fdp.align import AlignedFace

LATENCY_STAGES: tuple[str, ...] = ("align", "spot", "encode", "pool", "head", "e2e")
"""The pipeline stages timed per window, in order; `e2e` runs from the frame's grab to its result."""
QUEUE_STAGES: tuple[str, ...] = ("wait_align", "wait_model")
"""Time a frame waited for a stage: from its grab to the start of alignment (the capture hand-over), and from the
end of alignment to the start of the model stage (the align -> model queue). Published beside LATENCY_STAGES."""
MONITORED_STAGES: tuple[str, ...] = LATENCY_STAGES + QUEUE_STAGES
DROP_STAGES: tuple[str, ...] = ("capture", "align")
"""Where a live run may lose frames: replaced unread in the capture buffer, or aligned and replaced unread in the
align -> model queue (newest frame wins). A file, paced or not, loses none."""


class ReadOnlyDict(dict):
    """A dict that refuses changes, so a frozen dataclass's mappings stay frozen while json and asdict still work."""

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError(f"{type(self).__name__} is read-only; build a new one instead")

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _refuse  # type: ignore

    def __reduce__(self) -> tuple[type, tuple[dict]]:
        return (type(self), (dict(self),))


def _frozen_image(owner: object, name: str, image: np.ndarray, copy: bool = False) -> None:
    """Make a frame's pixels read-only (copied first when the sender may keep drawing into its array)."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", type(image).__name__)
        raise ValueError(f"{type(owner).__name__}.{name}: expected a BGR uint8 (H, W, 3) array, got {dtype} {shape}")
    if image.flags.writeable or copy:
        image = image.copy() if copy else image.view()
        image.flags.writeable = False
        object.__setattr__(owner, name, image)


def _frozen_mapping(owner: object, name: str, values: Mapping[str, float]) -> None:
    """Copy a {name: number} mapping into a read-only one, so the sender keeps no handle that could change it."""
    object.__setattr__(owner, name, ReadOnlyDict((str(k), float(v)) for k, v in values.items()))


@dataclass(frozen=True, eq=False)
class Frame:
    """One grabbed video frame, stamped when it was grabbed."""

    index: int  # ordinal of the grab in this source, from 0; gaps seen downstream are dropped frames
    t_capture_ns: int  # time.monotonic_ns() right after the grab
    media_s: float  # position in the source: the file's own timestamp, or seconds since start for a live source
    image: np.ndarray  # (H, W, 3) BGR uint8, read-only; the capture thread hands its own array over, uncopied
    source: str  # the source's display name (camera 0, a path, a URL without credentials)

    def __post_init__(self) -> None:
        _frozen_image(self, "image", self.image)

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


@dataclass(frozen=True, eq=False)
class AlignedFrame:
    """A frame and the faces the alignment stage found in it, handed to the model stage in grab order."""

    frame: Frame
    faces: tuple[AlignedFace, ...]  # left to right, as the aligner returns them
    wait_align_ms: float  # from the grab to the start of alignment
    align_ms: float
    t_aligned_ns: int  # time.monotonic_ns() when alignment finished: the model stage's wait starts here


@dataclass(frozen=True)
class Prediction:
    """The model's reading of one face's window, published every window (topic `fdp/prediction`)."""

    face_id: int
    frame_index: int  # the newest frame of the window
    media_s: float
    t_capture_ns: int
    time_unix: float  # wall-clock time of the newest frame's grab, for other machines
    window_s: float  # the duration the window spans
    label: str
    probs: Mapping[str, float]  # {label: probability}, in the model's class order
    motion: float  # the spotter's score this frame: largest region motion, in resting deviations
    me_active: bool  # the spotter has an interval open (a micro-expression may be under way)
    latency_ms: Mapping[str, float]  # one entry per LATENCY_STAGES

    def __post_init__(self) -> None:
        _frozen_mapping(self, "probs", self.probs)
        _frozen_mapping(self, "latency_ms", self.latency_ms)
        missing = [stage for stage in LATENCY_STAGES if stage not in self.latency_ms]
        if missing:
            raise ValueError(f"Prediction.latency_ms lacks stage(s) {', '.join(missing)}; give all of {LATENCY_STAGES}")


@dataclass(frozen=True)
class MEEvent:
    """A micro-expression spotted from onset to offset, then classified on that interval (topic `fdp/event`)."""

    face_id: int
    onset_frame: int
    apex_frame: int
    offset_frame: int
    onset_media_s: float
    apex_media_s: float
    offset_media_s: float
    onset_time_unix: float
    offset_time_unix: float
    duration_s: float
    label: str  # the most probable expression class (a model's `none` class is never an event's label)
    probs: Mapping[str, float]  # the classifier's probabilities over the interval, every class
    peak_motion: float  # the spotter's peak score: largest region motion, resting deviations
    regions: tuple[str, ...]  # facial regions that moved, strongest first
    spotter: str  # what spotted it (name and version)

    def __post_init__(self) -> None:
        _frozen_mapping(self, "probs", self.probs)
        object.__setattr__(self, "regions", tuple(str(region) for region in self.regions))


@dataclass(frozen=True)
class StatusReport:
    """How the live system is doing, published first and then every second (topic `fdp/status`)."""

    labels: tuple[str, ...]  # the model's class order: late joiners learn it here
    model: str
    engine: str
    device: str
    fps: float
    e2e_ms_p50: float | None  # None until the first window has been timed
    e2e_ms_p99: float | None
    dropped_frames: int  # the sum of dropped_by_stage
    faces: int
    spotter: str  # what spots events
    baseline: str  # whose resting noise the spotter's thresholds are in: a user's profile, or a running baseline
    source_state: str = "running"  # the input's capture state: running, reconnecting (a live source was lost), ...
    outage_s: float = 0.0  # seconds since the input's last frame while it is lost; 0 while frames come
    reconnects: int = 0  # times a lost live input came back
    # Recent p50 and p99 in ms of every MONITORED_STAGES stage timed so far, and frames lost per DROP_STAGES stage.
    stage_ms_p50: Mapping[str, float] = field(default_factory=ReadOnlyDict)
    stage_ms_p99: Mapping[str, float] = field(default_factory=ReadOnlyDict)
    dropped_by_stage: Mapping[str, int] = field(default_factory=ReadOnlyDict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", tuple(str(label) for label in self.labels))
        _frozen_mapping(self, "stage_ms_p50", self.stage_ms_p50)
        _frozen_mapping(self, "stage_ms_p99", self.stage_ms_p99)
        object.__setattr__(self, "dropped_by_stage", ReadOnlyDict((str(k), int(v))
                                                                  for k, v in self.dropped_by_stage.items()))


class EndCause(enum.Enum):
    """Why a run ended, as data: the exit status and what happens after the end read this, never the wording of
    the end record's `reason` (which is for people, and says more)."""

    END_OF_STREAM = "end of stream"  # the input ran out, broke off, or was lost for good
    MAX_FRAMES = "max frames"  # --max-frames reached
    INTERRUPTED = "interrupted"  # Ctrl-C (SIGINT): the command exits 130
    TERMINATED = "terminated"  # SIGTERM
    STOPPED = "stopped"  # stopped by the program that runs the pipeline
    FAILED = "failed"  # a stage raised: the reason names it and the error; the command exits 1


@dataclass(frozen=True)
class EndOfStream:
    """The last message of a run: why it ended and what it saw (topic `fdp/end`; `cause` stays in-process)."""

    reason: str
    frames: int
    events: int
    cause: EndCause = EndCause.END_OF_STREAM


@dataclass(frozen=True, eq=False)
class AnnotatedFrame:
    """A frame with the results drawn on it, for a preview on another machine (topic `fdp/frame`)."""

    frame_index: int
    t_capture_ns: int
    image: np.ndarray  # (H, W, 3) BGR uint8, a read-only copy: the pipeline may reuse its drawing buffer

    def __post_init__(self) -> None:
        _frozen_image(self, "image", self.image, copy=True)


Publishable = Prediction | MEEvent | StatusReport | EndOfStream | AnnotatedFrame
"""Everything a publisher can be handed."""
