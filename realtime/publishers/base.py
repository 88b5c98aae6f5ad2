"""The publisher interface, and the fan-out that hands each result to every publisher without slowing the loop.

The pipeline calls `PublisherFanout.publish(item)`: the item is encoded once (so every publisher sees the same
`seq`) and queued, and the call returns at once. A publisher thread hands the queue to each publisher in order.
Publishers are isolated: one that raises is logged once and skipped for that message; the others and the loop go
on. If the publishers fall behind (a stalled disk, say), the queue is bounded: the oldest prediction, frame or
status messages are dropped and counted, and events and the end of stream are kept.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from realtime import schema
from realtime.frames import EndOfStream, Publishable
from realtime.schema import Message

log = logging.getLogger(__name__)

DROPPABLE_TOPICS = frozenset({schema.TOPIC_PREDICTION, schema.TOPIC_FRAME, schema.TOPIC_STATUS})
"""Topics a backlog may lose: the next one supersedes them. Events and the end are never dropped."""


@runtime_checkable
class Publisher(Protocol):
    """Something that passes messages on: a ZeroMQ socket, a JSONL file, a preview page."""

    name: str

    def publish(self, message: Message) -> None:
        """Pass one message on without blocking for long; raising is allowed (the fan-out isolates it)."""
        ...

    def close(self) -> None:
        """Release what the publisher holds; called once, after its last message."""
        ...


class PublisherFanout:
    """Encode results once, queue them, and deliver them to every publisher on one background thread."""

    def __init__(self, publishers: Sequence[Publisher], *, source: str, capacity: int = 256) -> None:
        if capacity < 1:
            raise ValueError(f"fan-out capacity must be >= 1, got {capacity}")
        self.publishers = tuple(publishers)
        self.source = source
        self._capacity = capacity
        self._changed = threading.Condition(threading.Lock())
        self._queue: deque[Message] = deque()
        self._seq = 0
        self._in_flight = 0  # messages taken off the queue and not yet handed to every publisher
        self._ended = False  # an EndOfStream was published: nothing may follow it
        self._closing = False
        self._dropped = 0
        self.failures: dict[str, int] = {publisher.name: 0 for publisher in self.publishers}
        self._thread = threading.Thread(target=self._run, name="fdp-publish", daemon=True)
        self._thread.start()

    @property
    def dropped_messages(self) -> int:
        """Messages lost because the publishers fell `capacity` messages behind."""
        with self._changed:
            return self._dropped

    def publish(self, item: Publishable) -> Message:
        """Encode `item` with the next seq and queue it for every publisher; never waits for them."""
        with self._changed:
            if self._ended or self._closing:
                raise RuntimeError(f"publish({type(item).__name__}) after the end of stream or close()")
            message = schema.encode(item, source=self.source, seq=self._seq)
            self._seq += 1
            if len(self._queue) >= self._capacity:
                self._drop_one()
            self._queue.append(message)
            self._ended = isinstance(item, EndOfStream)
            self._changed.notify_all()
        return message

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until every queued message has been handed to every publisher; False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while self._queue or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._thread.is_alive():
                    return False
                self._changed.wait(remaining)
            return True

    def close(self, timeout_s: float = 5.0) -> None:
        """Deliver what is queued (up to `timeout_s`), then close every publisher, each isolated from the rest."""
        with self._changed:
            if self._closing:
                return
            self._closing = True
            self._changed.notify_all()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.warning("publishers: %d message(s) still queued after %.1f s; closing anyway",
                        len(self._queue), timeout_s)
        for publisher in self.publishers:
            try:
                publisher.close()
            except Exception as error:  # a publisher's failure is its own: the others still close
                log.warning("publisher %s failed to close: %s: %s", publisher.name, type(error).__name__, error)

    def __enter__(self) -> PublisherFanout:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _drop_one(self) -> None:
        """Make room (lock held): drop the oldest droppable message, or the oldest if all are events."""
        victim = next((m for m in self._queue if m.topic in DROPPABLE_TOPICS), self._queue[0])
        self._queue.remove(victim)
        self._dropped += 1
        if self._dropped == 1 or self._dropped % 1000 == 0:
            log.warning("publishers are behind: %d message(s) dropped so far (the oldest predictions, frames and "
                        "status first; events and the end are kept)", self._dropped)

    def _run(self) -> None:
        """The publisher thread: deliver queued messages in order until close() and the queue is empty."""
        while True:
            with self._changed:
                while not self._queue and not self._closing:
                    self._changed.wait()
                if not self._queue:
                    return
                message = self._queue.popleft()
                self._in_flight = 1
            for publisher in self.publishers:
                self._deliver(publisher, message)
            with self._changed:
                self._in_flight = 0
                self._changed.notify_all()

    def _deliver(self, publisher: Publisher, message: Message) -> None:
        """Hand one message to one publisher; a failure is logged the first time and counted every time."""
        try:
            publisher.publish(message)
        except Exception as error:  # isolation: whatever one publisher does, the others and the loop go on
            self.failures[publisher.name] = self.failures.get(publisher.name, 0) + 1
            if self.failures[publisher.name] == 1:
                log.warning("publisher %s failed on %s seq %s (%s: %s); it is skipped whenever it fails, "
                            "and this is logged once", publisher.name, message.topic, message.payload["seq"],
                            type(error).__name__, error)
