"""Publish messages on a ZeroMQ socket for other programs (ARCHITECTURE.md §5), never blocking the pipeline.

Sends are non-blocking with a small send high-water mark: a subscriber that stops reading loses messages (ZeroMQ
drops them for that subscriber alone); it never slows the loop. Closing waits for what is still queued (fdp/end
last) to reach the subscribers, for at most `LINGER_S`: ZeroMQ sends from a thread of its own, and a process that
exits right after the last send would otherwise take its last messages with it.
"""

from __future__ import annotations

import errno
import logging
import threading

import zmq

from fdp.errors import ConfigError
from realtime.schema import TOPIC_FRAME, Message

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555"
LINGER_S = 2.0  # the longest close() waits for queued messages to reach a subscriber that is still reading


class ZmqPublisher:
    """A bound PUB socket that sends each message as [topic, json] (or [topic, json, jpeg] for fdp/frame)."""

    def __init__(self, endpoint: str = DEFAULT_ENDPOINT, *, send_hwm: int = 100, send_frames: bool = True) -> None:
        if send_hwm < 1:
            raise ConfigError(f"ZeroMQ send high-water mark {send_hwm} must be 1 or more messages")
        self._lock = threading.Lock()  # zmq sockets are not thread-safe; publish and close may race
        # A context of its own: terminating it in close() is what waits out the linger (the shared instance is
        # never terminated, so its sockets' queued messages die with the process).
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.PUB)
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
        self._send_frames = send_frames  # fdp/frame carries JPEGs: only when the user asked (--zmq-frames)
        self._closed = False
        self.sent_messages = 0  # handed to ZeroMQ (which may still drop them for a subscriber that lags)
        self.dropped_messages = 0  # refused outright because the socket would have blocked

    def publish(self, message: Message) -> None:
        """Send without blocking: drop rather than wait when the socket is full."""
        if message.topic == TOPIC_FRAME and not self._send_frames:
            return
        frames = message.to_frames()
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self.name}: publish() after close()")
            try:
                self._socket.send_multipart(frames, flags=zmq.NOBLOCK)
            except zmq.Again:
                self.dropped_messages += 1
                return
            self.sent_messages += 1

    def close(self) -> None:
        """Close the socket and wait until its queued messages have reached the subscribers, or `LINGER_S`."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._socket.close()
                self._context.term()


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
