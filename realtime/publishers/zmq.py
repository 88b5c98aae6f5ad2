"""Publish messages on a ZeroMQ socket for other programs (ARCHITECTURE.md §5), never blocking the pipeline.

The socket is an XPUB: to subscribers it is a plain PUB, and it also tells us who subscribed, which gives
`wait_for_subscriber` (the slow-joiner fix, for tests and for runs that should start only once someone listens).
Sends are non-blocking with a small send high-water mark: a subscriber that stops reading loses messages (ZeroMQ
drops them for that subscriber alone); it never slows the loop. LINGER 0 so closing never waits on the network.
"""

from __future__ import annotations

import logging
import threading
import time

import zmq

from fdp.errors import ConfigError
from realtime.schema import TOPIC_FRAME, Message

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555"


class ZmqPublisher:
    """A bound XPUB socket that sends each message as [topic, json] (or [topic, json, jpeg] for fdp/frame)."""

    def __init__(self, endpoint: str = DEFAULT_ENDPOINT, *, send_hwm: int = 100, send_frames: bool = True,
                 context: zmq.Context | None = None) -> None:
        if send_hwm < 1:
            raise ConfigError(f"ZeroMQ send high-water mark {send_hwm} must be 1 or more messages")
        self._lock = threading.Lock()  # zmq sockets are not thread-safe; the fan-out and a waiter may share this
        self._socket = (context or zmq.Context.instance()).socket(zmq.XPUB)
        self._socket.setsockopt(zmq.SNDHWM, send_hwm)
        self._socket.setsockopt(zmq.LINGER, 0)
        try:
            self._socket.bind(endpoint)
        except zmq.ZMQError as error:
            self._socket.close(linger=0)
            raise ConfigError(f"{endpoint}: cannot bind the ZeroMQ publisher ({zmq.strerror(error.errno or 0)}); "
                              "pick another --zmq endpoint, or stop the program that holds it") from None
        self.endpoint: str = self._socket.getsockopt_string(zmq.LAST_ENDPOINT)  # the real port when asked for *
        self.name = f"zmq {self.endpoint}"
        if any(host in endpoint for host in ("0.0.0.0", "://*", "[::]")):
            log.warning("%s: publishing to every network interface; anyone who can reach this port can read "
                        "the results", self.endpoint)
        self._subscriptions: set[bytes] = set()
        self._send_frames = send_frames  # fdp/frame carries JPEGs: only when the user asked (--zmq-frames)
        self._closed = False
        self.sent_messages = 0  # handed to ZeroMQ (which may still drop them for a subscriber that lags)
        self.dropped_messages = 0  # refused outright because the socket would have blocked

    @property
    def subscriptions(self) -> frozenset[str]:
        """The topic prefixes some subscriber asked for, as last seen by `publish` or `wait_for_subscriber`."""
        with self._lock:
            self._read_subscriptions()
            return frozenset(topic.decode("utf-8", "replace") for topic in self._subscriptions)

    def publish(self, message: Message) -> None:
        """Send without blocking: drop rather than wait when the socket is full."""
        if message.topic == TOPIC_FRAME and not self._send_frames:
            return
        frames = message.to_frames()
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self.name}: publish() after close()")
            self._read_subscriptions()
            try:
                self._socket.send_multipart(frames, flags=zmq.NOBLOCK)
            except zmq.Again:
                self.dropped_messages += 1
                return
            self.sent_messages += 1

    def wait_for_subscriber(self, timeout_s: float, topic: str = "fdp/") -> bool:
        """Wait until some subscriber's subscription would receive `topic`; False after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        wanted = topic.encode("utf-8")
        while True:
            with self._lock:
                if self._closed:
                    return False
                self._read_subscriptions()
                if any(wanted.startswith(prefix) for prefix in self._subscriptions):
                    return True
                remaining_ms = int((deadline - time.monotonic()) * 1000)
                if remaining_ms <= 0:
                    return False
                self._socket.poll(min(remaining_ms, 50), zmq.POLLIN)

    def close(self) -> None:
        """Close the socket at once (LINGER 0: queued messages are discarded, nothing waits on the network)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._socket.close(linger=0)

    def _read_subscriptions(self) -> None:
        """Take the pending (un)subscription frames off the XPUB socket (the lock is held)."""
        while True:
            try:
                frame = self._socket.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            if frame[:1] == b"\x01":
                self._subscriptions.add(frame[1:])
            elif frame[:1] == b"\x00":
                self._subscriptions.discard(frame[1:])
