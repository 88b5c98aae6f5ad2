"""Publish messages on a ZeroMQ socket for other programs (ARCHITECTURE.md §5), never blocking the pipeline.

The socket is an XPUB: to subscribers it is a plain PUB, and it also tells us who subscribed, which gives
`wait_for_subscriber` (the slow-joiner fix, for tests and for runs that should start only once someone listens).
Sends are non-blocking with a small send high-water mark: a subscriber that stops reading loses messages (ZeroMQ
drops them for that subscriber alone); it never slows the loop. Closing waits for what is still queued (fdp/end
last) to reach the subscribers, for at most `LINGER_S`: ZeroMQ sends from a thread of its own, and a process that
exits right after the last send would otherwise take its last messages with it.
"""

from __future__ import annotations

import errno
import logging
import threading
import time

import zmq

from fdp.errors import ConfigError
from realtime.schema import TOPIC_FRAME, Message

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555"
LINGER_S = 2.0  # the longest close() waits for queued messages to reach a subscriber that is still reading


class ZmqPublisher:
    """A bound XPUB socket that sends each message as [topic, json] (or [topic, json, jpeg] for fdp/frame)."""

    def __init__(self, endpoint: str = DEFAULT_ENDPOINT, *, send_hwm: int = 100, send_frames: bool = True) -> None:
        if send_hwm < 1:
            raise ConfigError(f"ZeroMQ send high-water mark {send_hwm} must be 1 or more messages")
        self._lock = threading.Lock()  # zmq sockets are not thread-safe; the fan-out and a waiter may share this
        # A context of its own: terminating it in close() is what waits out the linger (the shared instance is
        # never terminated, so its sockets' queued messages die with the process).
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.XPUB)
        self._socket.setsockopt(zmq.SNDHWM, send_hwm)
        self._socket.setsockopt(zmq.LINGER, round(LINGER_S * 1000))
        try:
            self._socket.bind(endpoint)
        except zmq.ZMQError as error:
            self._socket.close(linger=0)
            self._context.term()
            raise ConfigError(_bind_failure(endpoint, error)) from None
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
        """Close the socket and wait until its queued messages have reached the subscribers, or `LINGER_S`."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._socket.close()
                self._context.term()

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


def _bind_failure(endpoint: str, error: zmq.ZMQError) -> str:
    """What is wrong with an endpoint the publisher cannot bind, and the --zmq value that works."""
    reason = zmq.strerror(error.errno or 0)
    if error.errno == errno.EADDRINUSE:
        return (f"{endpoint}: cannot bind the ZeroMQ publisher ({reason}); pick another --zmq endpoint, or stop the "
                "program that holds it")
    if error.errno in (errno.ENODEV, errno.EADDRNOTAVAIL):
        return (f"{endpoint}: cannot bind the ZeroMQ publisher ({reason}): the host is not an address of this "
                "machine; give --zmq tcp://127.0.0.1:PORT, or tcp://*:PORT to publish on every interface")
    return (f"{endpoint}: not a ZeroMQ endpoint ({reason}); give --zmq as tcp://HOST:PORT, e.g. tcp://127.0.0.1:5555, "
            "or off")
