"""The live loop's concurrent stages: capture (realtime/capture.py) -> alignment (here) -> the model stage (the
pipeline's own thread), joined by bounded hand-overs.

Alignment is the dearest step and its native code (MediaPipe's graph thread, OpenCV) runs without the GIL, so it
gets a thread of its own and overlaps the model stage's spotting, encoding and publishing of the previous frame.
One aligner thread and one consumer keep frames in grab order; every face's state stays with the model stage
(single writer). A live source keeps only the newest aligned frame waiting (an unread one is replaced and counted
as dropped), so a slow model stage never holds alignment back; a file waits instead and loses nothing. A stage
that raises ends the run: the hand-over is closed with a reason that names the stage and the error, and the
pipeline publishes it as the end of stream.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque

from fdp.align import FaceAligner
from realtime.capture import FrameSource
from realtime.frames import AlignedFrame
from realtime.latency import LatencyMonitor

log = logging.getLogger(__name__)


class HandOver:
    """A bounded FIFO between two stages: `drop_oldest` replaces the oldest unread item when full (counted), else
    `put` waits for room. Closing it with a reason tells the reader that nothing more will come."""

    def __init__(self, capacity: int, drop_oldest: bool) -> None:
        if capacity < 1:
            raise ValueError(f"hand-over capacity must be >= 1, got {capacity}")
        self.capacity, self.drop_oldest = capacity, drop_oldest
        self._changed = threading.Condition(threading.Lock())
        self._items: deque[AlignedFrame] = deque()
        self._dropped = 0
        self._close_reason: str | None = None
        self._failed = False

    @property
    def dropped(self) -> int:
        with self._changed:
            return self._dropped

    @property
    def finished(self) -> bool:
        """True once it is closed and every item put has been read."""
        with self._changed:
            return self._close_reason is not None and not self._items

    @property
    def close_reason(self) -> str | None:
        with self._changed:
            return self._close_reason

    @property
    def failed(self) -> bool:
        """True when the writer closed it because it raised (the reason names the error)."""
        with self._changed:
            return self._failed

    def put(self, item: AlignedFrame) -> bool:
        """Hand `item` over (waiting for room unless `drop_oldest`); False if it was closed first."""
        with self._changed:
            while not self.drop_oldest and len(self._items) >= self.capacity and self._close_reason is None:
                self._changed.wait()
            if self._close_reason is not None:
                return False
            if len(self._items) >= self.capacity:
                self._items.popleft()
                self._dropped += 1
            self._items.append(item)
            self._changed.notify_all()
            return True

    def get(self, timeout_s: float) -> AlignedFrame | None:
        """The oldest unread item, or None if none came within `timeout_s` or it is `finished`."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while not self._items:
                remaining = deadline - time.monotonic()
                if self._close_reason is not None or remaining <= 0:
                    return None
                self._changed.wait(remaining)
            item = self._items.popleft()
            self._changed.notify_all()  # a waiting writer has room
            return item

    def close(self, reason: str, failed: bool = False) -> None:
        """No more items (the first reason is kept); wakes a writer waiting for room and a reader waiting for items.
        Items already handed over stay readable, so nothing aligned is lost at the end of a file."""
        with self._changed:
            if self._close_reason is None:
                self._close_reason, self._failed = reason, failed
            self._changed.notify_all()


class AlignStage:
    """The alignment thread: reads the source, aligns every frame it gets, hands the result on in grab order.

    It ends when the source ends (the hand-over closes with the source's end reason, as failed if the capture
    thread raised), when `stop` is called, or when alignment raises (closed as failed, with the error in the
    reason). Alignment timings go to `monitor`.
    """

    def __init__(self, source: FrameSource, aligner: FaceAligner, out: HandOver, monitor: LatencyMonitor) -> None:
        self.source, self.aligner, self.out, self.monitor = source, aligner, out, monitor
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fdp-align", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop after the frame in hand and join the thread; safe to call more than once."""
        self._stopping.set()
        self.out.close("stopped")
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("the alignment thread did not finish within %.0f s", timeout_s)

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                frame = self.source.read(timeout_s=0.1)
                if frame is None:
                    if self.source.ended:
                        self.out.close(self.source.end_reason or "end of stream", failed=self.source.failed)
                        return
                    continue
                start_ns = time.monotonic_ns()
                faces = self.aligner.process(frame.image, timestamp_ms=int(round(frame.media_s * 1000)))
                done_ns = time.monotonic_ns()
                wait_ms, align_ms = (start_ns - frame.t_capture_ns) / 1e6, (done_ns - start_ns) / 1e6
                self.monitor.record_ms("wait_align", wait_ms)
                self.monitor.record_ms("align", align_ms)
                if not self.out.put(AlignedFrame(frame, tuple(faces), wait_ms, align_ms, done_ns)):
                    return
        except Exception as error:  # a bug or a native failure: the run ends with it as the reason, not a hang
            log.debug("the alignment stage failed", exc_info=True)
            self.out.close(f"alignment stage failed ({type(error).__name__}: {error})", failed=True)
