"""Frames from a camera index, a device path, a stream URL or a video file, grabbed on their own thread.

One code path (cv2.VideoCapture); only the hand-over differs. A live source keeps the newest frame (an unread one is
replaced and counted as dropped), so a slow pipeline never holds capture back. A file delivers every frame through a
small bounded buffer (the thread waits for room before it grabs), as fast as the consumer goes or at the file's own
rate, once or (`loop`, the demo standing in for a camera) over and over with its media time running on. A lost live
source is reopened with exponential backoff while the consumer's reads just time out, and given up once it has sent
no frame for `ReconnectPolicy.give_up_s`; a stream's open and reads time out after `STREAM_TIMEOUT_S`, so a stalled
one is noticed and the end comes within about give_up_s + STREAM_TIMEOUT_S of the last frame.
"""

from __future__ import annotations

import enum
import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from fdp.errors import CameraError, ConfigError, VideoError
from realtime.frames import Frame

log = logging.getLogger(__name__)

# FFmpeg prints its own lines ("moov atom not found") straight to stderr; our one-line errors already say what is
# wrong and what to do. Quiet by default (OpenCV reads this at the first open); set the variable to see them.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


class SourceKind(enum.Enum):
    CAMERA = "camera"  # an integer index
    DEVICE = "device"  # a device path such as /dev/video0
    STREAM = "stream"  # a URL (rtsp://, http://, file://, ...)
    FILE = "file"  # a video file on disk


class CaptureState(enum.Enum):
    CREATED = "created"
    RUNNING = "running"
    RECONNECTING = "reconnecting"  # a live source was lost; the consumer keeps running
    ENDED = "ended"  # the source ran out, broke, or could not be reopened (see end_reason)
    STOPPED = "stopped"  # the consumer called stop()


_S = CaptureState
_TRANSITIONS: dict[CaptureState, set[CaptureState]] = {
    _S.CREATED: {_S.RUNNING, _S.ENDED, _S.STOPPED}, _S.RUNNING: {_S.RECONNECTING, _S.ENDED, _S.STOPPED},
    _S.RECONNECTING: {_S.RUNNING, _S.ENDED, _S.STOPPED}, _S.ENDED: {_S.STOPPED}, _S.STOPPED: set(),
}
_FINISHED = (CaptureState.ENDED, CaptureState.STOPPED)
_CAMERA_PROPS = {"width": cv2.CAP_PROP_FRAME_WIDTH, "height": cv2.CAP_PROP_FRAME_HEIGHT, "fps": cv2.CAP_PROP_FPS}
STREAM_TIMEOUT_S = 5.0  # a stream URL's open and each read give up after this (FFmpeg's own default is 30 s)


@dataclass(frozen=True)
class ReconnectPolicy:
    """How a lost live source is reopened: waits of initial_s, doubling up to max_s, until it has sent no frame for
    give_up_s (0: it is not reopened at all). A time, not a number of attempts, so the end comes when it is said to
    whatever each attempt costs."""

    initial_s: float = 0.5
    max_s: float = 8.0
    give_up_s: float = 60.0

    def __post_init__(self) -> None:
        if not (0 < self.initial_s <= self.max_s < math.inf and 0 <= self.give_up_s < math.inf):
            raise ConfigError(f"reconnect policy {self}: need 0 < initial_s <= max_s and give_up_s >= 0")

    def delay_s(self, attempt: int) -> float:
        """The wait before reopen attempt `attempt` (1, 2, ...)."""
        return min(self.initial_s * 2.0 ** min(attempt - 1, 60), self.max_s)


@runtime_checkable
class FrameSource(Protocol):
    """What the pipeline needs from a source of frames."""

    @property
    def name(self) -> str: ...
    @property
    def state(self) -> CaptureState: ...
    @property
    def ended(self) -> bool: ...
    @property
    def end_reason(self) -> str | None: ...
    @property
    def failed(self) -> bool: ...
    @property
    def dropped_frames(self) -> int: ...
    @property
    def outage_s(self) -> float: ...
    @property
    def reconnects(self) -> int: ...
    def start(self) -> None: ...
    def read(self, timeout_s: float | None = None) -> Frame | None: ...
    def stop(self) -> None: ...
    def __iter__(self) -> Iterator[Frame]: ...


def classify_source(spec: int | str | Path) -> SourceKind:
    """Tell what kind of source a --camera / --video value names."""
    text = str(spec).strip()
    if isinstance(spec, int) or text.isdigit():
        return SourceKind.CAMERA
    return SourceKind.STREAM if "://" in text else SourceKind.DEVICE if text.startswith("/dev/") else SourceKind.FILE


def describe_source(spec: int | str | Path, kind: SourceKind) -> str:
    """The name a source is shown and published under; a URL's user and password are left out."""
    if kind is SourceKind.CAMERA:
        return f"camera {int(str(spec))}"
    parts = urlsplit(str(spec))
    if kind is SourceKind.STREAM and "@" in parts.netloc:
        return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))
    return str(spec)


class VideoSource:
    """A capture thread over any cv2.VideoCapture source; read frames with `read(timeout_s)` or by iterating.

    `kind` overrides what `spec` looks like (a file read as a live stream, say); `realtime` paces a file at its own
    rate; `loop` reads a file again from its start when it ends; width, height, fps and fourcc are asked of a
    camera; `buffer_frames` bounds a file's hand-over buffer.
    """

    def __init__(self, spec: int | str | Path, *, kind: SourceKind | None = None, realtime: bool = False,
                 loop: bool = False, width: int | None = None, height: int | None = None, fps: float | None = None,
                 fourcc: str | None = None, buffer_frames: int = 2,
                 reconnect: ReconnectPolicy = ReconnectPolicy()) -> None:
        self.kind = classify_source(spec) if kind is None else kind
        self.live = self.kind is not SourceKind.FILE
        self.realtime, self._fourcc, self._name = realtime, fourcc, describe_source(spec, self.kind)
        if loop and self.live:
            raise ConfigError(f"{self._name}: only a video file can be looped; a {self.kind.value} goes on by itself")
        self.loop = loop
        self._target: int | str = int(str(spec)) if self.kind is SourceKind.CAMERA else str(spec)
        self._asked = {key: value for key, value in (("width", width), ("height", height), ("fps", fps))
                       if value is not None}
        given = (["fourcc"] if fourcc is not None else []) + list(self._asked)
        if given and self.kind not in (SourceKind.CAMERA, SourceKind.DEVICE):
            raise ConfigError(f"{self._name}: camera settings ({', '.join(given)}) apply only to cameras; a "
                              f"{self.kind.value} keeps its own size and rate")
        for key, value in self._asked.items():
            if not 0 < value < math.inf:
                raise ConfigError(f"{self._name}: {key} {value} must be a positive number")
        if fourcc is not None and len(fourcc) != 4:
            raise ConfigError(f"{self._name}: FOURCC {fourcc!r} must be 4 characters, such as MJPG or YUYV")
        if buffer_frames < 1:
            raise ConfigError(f"{self._name}: buffer_frames {buffer_frames} must be 1 or more")
        self._capacity, self._reconnect = (1 if self.live else buffer_frames), reconnect
        self._changed = threading.Condition(threading.Lock())  # the one lock: state, buffer, counters
        self._state = CaptureState.CREATED
        self._frames: deque[Frame] = deque()
        self._end_reason: str | None = None
        self._failed = False
        self._captured = self._dropped = self._reconnects = self._t_start_ns = self._last_frame_ns = 0
        self._lost_since_ns: int | None = None  # the last frame's time while a live source is lost
        self._media_offset_s = 0.0  # added to a looped file's own timestamps, so its media time runs on
        self._thread: threading.Thread | None = None
        self.nominal_fps, self.frame_count = 0.0, 0  # the source's CAP_PROP_FPS and (files) header frame count

    @property
    def name(self) -> str:
        return self._name

    @property
    def state(self) -> CaptureState:
        with self._changed:
            return self._state

    @property
    def ended(self) -> bool:
        """True once the source is over and every frame it delivered has been read: no frame will come."""
        with self._changed:
            return self._state in _FINISHED and not self._frames

    @property
    def end_reason(self) -> str | None:
        with self._changed:
            return self._end_reason

    @property
    def failed(self) -> bool:
        """True when the capture thread itself raised (a bug or a native failure); `end_reason` names the error."""
        with self._changed:
            return self._failed

    @property
    def frames_captured(self) -> int:
        with self._changed:
            return self._captured

    @property
    def dropped_frames(self) -> int:
        with self._changed:
            return self._dropped

    @property
    def reconnects(self) -> int:
        """Times a lost live source came back (delivered a frame again)."""
        with self._changed:
            return self._reconnects

    @property
    def outage_s(self) -> float:
        """Seconds since the last frame while a live source is lost (and after it was given up); 0 while frames come."""
        with self._changed:
            since = self._lost_since_ns
        return 0.0 if since is None else max(0.0, (time.monotonic_ns() - since) / 1e9)

    def start(self) -> None:
        """Open the source, grab its first frame and start the thread; an unusable source raises its error here."""
        if self.state is not CaptureState.CREATED:
            raise RuntimeError(f"{self._name}: start() called in state {self.state.value}; a source starts once")
        self._t_start_ns = time.monotonic_ns()
        try:
            capture = self._open()
            first = self._grab(capture, index=0, since_open=0, pace_from=None)
            if first is None:
                capture.release()
                raise self._unreadable_error()
        except (CameraError, VideoError) as error:
            with self._changed:
                self._set_state(CaptureState.ENDED, str(error))
            raise
        with self._changed:
            self._set_state(CaptureState.RUNNING)
        self._thread = threading.Thread(target=self._run, args=(capture, first), name="fdp-capture", daemon=True)
        self._thread.start()

    def read(self, timeout_s: float | None = None) -> Frame | None:
        """The next frame, or None if none came within `timeout_s` (None: wait) or the source has `ended`."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._changed:
            if self._state is CaptureState.CREATED:
                raise RuntimeError(f"{self._name}: read() before start()")
            while not self._frames:
                remaining = None if deadline is None else deadline - time.monotonic()
                if self._state in _FINISHED or (remaining is not None and remaining <= 0):
                    return None
                self._changed.wait(remaining)
            frame = self._frames.popleft()
            self._changed.notify_all()  # a file's capture thread may be waiting for room
            return frame

    def __iter__(self) -> Iterator[Frame]:
        """Every frame until the source ends (or is stopped)."""
        while not self.ended:
            frame = self.read(timeout_s=0.5)
            if frame is not None:
                yield frame

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop capturing, drop unread frames and join the thread. Safe to call more than once."""
        with self._changed:
            if self._state is not CaptureState.STOPPED:
                self._set_state(CaptureState.STOPPED, "stopped")
            self._frames.clear()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)
            if thread.is_alive():
                log.warning("%s: the capture thread did not finish within %.1f s (a read hangs)", self._name, timeout_s)

    def __enter__(self) -> VideoSource:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _set_state(self, new: CaptureState, reason: str | None = None) -> None:
        """Move to `new` with the lock held, keeping the first end reason; an impossible transition is a bug."""
        if new is not self._state and new not in _TRANSITIONS[self._state]:
            raise RuntimeError(f"{self._name}: capture state cannot go from {self._state.value} to {new.value}")
        self._state = new
        if reason is not None and self._end_reason is None:
            self._end_reason = reason
        self._changed.notify_all()

    def _wait(self, until_ns: int | None = None) -> bool:
        """Wait until monotonic time `until_ns`, or (None) for room in the buffer; False if stop() came first."""
        with self._changed:
            while self._state is not CaptureState.STOPPED:
                remaining_s = None if until_ns is None else (until_ns - time.monotonic_ns()) / 1e9
                if (len(self._frames) < self._capacity) if remaining_s is None else remaining_s <= 0:
                    return True
                self._changed.wait(remaining_s)
            return False

    def _open(self) -> cv2.VideoCapture:
        """Open the source once; raise the one-line error that says what to do when it cannot be opened."""
        if self.kind is SourceKind.FILE and not Path(str(self._target)).is_file():
            reason = "is a folder, not a video file" if Path(str(self._target)).is_dir() else "no such file"
            raise VideoError(f"{self._name}: {reason}; check --video")
        log_level = cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # our one line says it all
        try:
            if self.kind is SourceKind.STREAM:  # bounded waits: a stalled or unreachable stream counts as lost
                timeout_ms = int(STREAM_TIMEOUT_S * 1000)
                capture = cv2.VideoCapture(self._target, cv2.CAP_FFMPEG, [
                    cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms])
            else:
                capture = cv2.VideoCapture(self._target)
        finally:
            cv2.utils.logging.setLogLevel(log_level)
        if not capture.isOpened():
            capture.release()
            if self.kind is SourceKind.FILE:
                raise self._unreadable_error()
            if self.kind is SourceKind.STREAM:
                raise CameraError(f"{self._name}: cannot open (unreachable, or a format OpenCV cannot read); "
                                  "check the URL")
            raise CameraError(f"{self._name}: cannot open (no such device or it is busy); check --camera, "
                              "or use --video FILE")
        if self._fourcc is not None:  # FOURCC first, then size, then rate: the order V4L2 wants
            capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*self._fourcc))
        for key, value in self._asked.items():
            capture.set(_CAMERA_PROPS[key], value)
        for key, value in self._asked.items():  # say so when a camera picks another size or rate
            if abs(capture.get(_CAMERA_PROPS[key]) - value) > 0.5:
                log.warning("%s: asked for %s %s, got %s", self._name, key, value, capture.get(_CAMERA_PROPS[key]))
        self.nominal_fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        if self.kind is SourceKind.FILE:
            self.frame_count = max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0), 0)
        return capture

    def _unreadable_error(self) -> CameraError | VideoError:
        if self.kind is SourceKind.FILE:
            return VideoError(f"{self._name}: cannot read this video (corrupt, truncated, or a codec OpenCV lacks); "
                              "re-encode it, e.g. ffmpeg -i IN -c:v mjpeg OUT.avi")
        return CameraError(f"{self._name}: opened but gives no frames (busy, or a format it cannot deliver); "
                           "check --camera, or try another --fourcc")

    def _grab(self, capture: cv2.VideoCapture, *, index: int, since_open: int,
              pace_from: tuple[int, float] | None) -> tuple[Frame, float] | None:
        """Grab, pace, stamp and decode one frame; returns it and its position, or None when none came.

        `pace_from` is (t_capture_ns, position_s) of the first frame since opening: a paced source waits until as
        much monotonic time has passed as media time, and stamps the frame when it is due."""
        try:
            if not capture.grab():
                return None
            pos_ms = capture.get(cv2.CAP_PROP_POS_MSEC)  # the frame's own timestamp, else index / fps
            if math.isfinite(pos_ms) and pos_ms >= 0 and (pos_ms > 0 or since_open == 0):
                pos_s = pos_ms / 1e3
            else:
                pos_s = since_open / self.nominal_fps if self.nominal_fps > 0 else 0.0
            if (self.realtime and pace_from is not None and self.kind in (SourceKind.FILE, SourceKind.STREAM)
                    and not self._wait(pace_from[0] + int((pos_s - pace_from[1]) * 1e9))):
                return None  # stop() came while pacing
            t_capture_ns = time.monotonic_ns()
            ok, image = capture.retrieve()
        except cv2.error as error:
            log.warning("%s: OpenCV failed while reading frame %d: %s", self._name, index, str(error).strip())
            return None
        if not ok or image is None or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            return None
        media_s = (pos_s + self._media_offset_s if self.kind is SourceKind.FILE
                   else (t_capture_ns - self._t_start_ns) / 1e9)
        return Frame(index, t_capture_ns, media_s, image, self._name), pos_s

    def _deliver(self, frame: Frame) -> bool:
        """Hand a frame over, replacing an unread one (a drop) when full; False once stop() came."""
        with self._changed:
            if self._state is CaptureState.STOPPED:
                return False
            self._captured += 1
            self._last_frame_ns = frame.t_capture_ns
            if self._lost_since_ns is not None:  # a lost live source is back
                log.warning("%s: frames again after %.1f s", self._name,
                            (frame.t_capture_ns - self._lost_since_ns) / 1e9)
                self._lost_since_ns = None
                self._reconnects += 1
                if self._state is CaptureState.RECONNECTING:
                    self._set_state(CaptureState.RUNNING)
            while len(self._frames) >= self._capacity:  # only a live source gets here full: files wait for room
                self._frames.popleft()
                self._dropped += 1
            self._frames.append(frame)
            self._changed.notify_all()
            return True

    def _run(self, capture: cv2.VideoCapture, first: tuple[Frame, float]) -> None:
        """The capture thread: grab until the source ends, reopening a lost live source (and a looped file)."""
        reason = "end of stream"
        try:
            pace_from: tuple[int, float] | None = (first[0].t_capture_ns, first[1])
            index = since_open = 1
            last = first[0]
            attempts = 0  # reopen attempts since the last frame
            if not self._deliver(first[0]):
                return
            while self.live or self._wait():  # a file waits for room before it grabs: no drops, fresh stamps
                got = self._grab(capture, index=index, since_open=since_open, pace_from=pace_from)
                if self.state is CaptureState.STOPPED:
                    return
                if got is None and not self.live:  # a header's frame count may be a frame or two off
                    count = self.frame_count
                    broke = count > 0 and since_open < count - max(1, count // 100)
                    if broke or not self.loop or since_open == 0:
                        reason = (f"{self._name}: video broke off after {since_open} of {count} frames (truncated "
                                  "or corrupt)" if broke else "end of file")
                        return
                    capture.release()
                    try:
                        capture = self._open()  # the file from its start, its media time and pacing running on
                    except VideoError as error:  # it went away meanwhile
                        reason = str(error)
                        return
                    period_s = 1.0 / self.nominal_fps if self.nominal_fps > 0 else 1.0 / 30
                    self._media_offset_s = last.media_s + period_s
                    since_open, pace_from = 0, (last.t_capture_ns + int(period_s * 1e9), 0.0)
                    continue
                if got is None:
                    capture.release()
                    reopened = self._reopen(attempts)
                    if reopened is None:
                        give_up_s = self._reconnect.give_up_s
                        reason = (f"{self._name}: lost, not back within {give_up_s:g} s; check the connection"
                                  if give_up_s > 0 else f"{self._name}: lost (reconnecting is off); check the "
                                  "connection")
                        return
                    (capture, attempts), since_open, pace_from = reopened, 0, None
                    continue
                pace_from = pace_from or (got[0].t_capture_ns, got[1])
                if not self._deliver(got[0]):
                    return
                last = got[0]
                index, since_open, attempts = index + 1, since_open + 1, 0
        except Exception as error:  # a bug: end the stream with its reason rather than leave the consumer waiting
            log.debug("%s: the capture thread failed", self._name, exc_info=True)
            reason = f"{self._name}: capture failed ({type(error).__name__}: {error})"
            with self._changed:
                self._failed = True
        finally:
            capture.release()
            with self._changed:
                if self._state is not CaptureState.STOPPED:
                    self._set_state(CaptureState.ENDED, reason)

    def _reopen(self, after_attempt: int) -> tuple[cv2.VideoCapture, int] | None:
        """Reopen with backoff until `give_up_s` after the last frame; the capture and the attempts since the last
        frame, or None (given up, or stopped). The state stays RECONNECTING until a frame comes: an open that
        gives no frame is no recovery."""
        with self._changed:
            if self._state is CaptureState.STOPPED:
                return None
            if self._lost_since_ns is None:
                self._lost_since_ns = self._last_frame_ns or time.monotonic_ns()
            lost_since_ns = self._lost_since_ns
            self._set_state(CaptureState.RECONNECTING)
        policy = self._reconnect
        give_up_ns = lost_since_ns + int(policy.give_up_s * 1e9)
        attempt = after_attempt
        while (now_ns := time.monotonic_ns()) < give_up_ns:
            attempt += 1
            delay_s = policy.delay_s(attempt)
            log.warning("%s: no frames for %.1f s; reopening in %.2f s (giving up %g s after the last frame)",
                        self._name, (now_ns - lost_since_ns) / 1e9, delay_s, policy.give_up_s)
            if not self._wait(min(now_ns + int(delay_s * 1e9), give_up_ns)):
                return None
            try:
                capture = self._open()
            except (CameraError, VideoError):
                continue
            return capture, attempt
        return None
