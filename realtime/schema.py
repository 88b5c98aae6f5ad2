"""The ZeroMQ message schema (ARCHITECTURE.md §5): the only module that encodes or decodes a message.

One table (`FIELDS`) says which fields each topic carries and of what kind; `encode`, `validate` and `decode`
all read it, so the encoder, the subscriber and the tests cannot disagree. A field that changes meaning, or goes
away, bumps `SCHEMA_VERSION`; a new field does not, because consumers ignore fields they do not know.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import cv2
import numpy as np

from realtime.frames import (
    LATENCY_STAGES,
    AnnotatedFrame,
    EndOfStream,
    MEEvent,
    Prediction,
    Publishable,
    StatusReport,
)

SCHEMA_VERSION = "fdp-live/1"

TOPIC_PREDICTION = "fdp/prediction"
TOPIC_EVENT = "fdp/event"
TOPIC_STATUS = "fdp/status"
TOPIC_END = "fdp/end"
TOPIC_FRAME = "fdp/frame"
TOPIC_PREFIX = "fdp/"  # subscribe to this for everything

COMMON_FIELDS: dict[str, str] = {"schema": "str", "source": "str", "seq": "count"}

# Field kinds: int, count (int >= 0), float, float? (float or null), str, bool, probs ({str: float}),
# latency ({stage: float} for every LATENCY_STAGES), numbers ({str: float}), counts ({str: int >= 0}), labels ([str]).
FIELDS: dict[str, dict[str, str]] = {
    TOPIC_PREDICTION: {
        "face_id": "int", "frame_index": "count", "media_s": "float", "t_capture_ns": "int", "time_unix": "float",
        "window_s": "float", "label": "str", "probs": "probs", "motion": "float", "me_active": "bool",
        "latency_ms": "latency",
    },
    TOPIC_EVENT: {
        "face_id": "int", "onset_frame": "count", "apex_frame": "count", "offset_frame": "count",
        "onset_media_s": "float", "apex_media_s": "float", "offset_media_s": "float", "onset_time_unix": "float",
        "offset_time_unix": "float", "duration_s": "float", "label": "str", "probs": "probs", "peak_motion": "float",
        "regions": "labels", "spotter": "str",
    },
    TOPIC_STATUS: {
        "labels": "labels", "model": "str", "engine": "str", "device": "str", "fps": "float",
        "e2e_ms_p50": "float?", "e2e_ms_p99": "float?", "dropped_frames": "count", "faces": "count",
        "spotter": "str", "baseline": "str", "source_state": "str", "outage_s": "float", "reconnects": "count",
        "stage_ms_p50": "numbers", "stage_ms_p99": "numbers", "dropped_by_stage": "counts",
    },
    TOPIC_END: {"reason": "str", "frames": "count", "events": "count"},
    TOPIC_FRAME: {"frame_index": "count", "t_capture_ns": "int", "width": "count", "height": "count"},
}
TOPICS: tuple[str, ...] = tuple(FIELDS)

_TOPIC_OF_TYPE: dict[type, str] = {
    Prediction: TOPIC_PREDICTION, MEEvent: TOPIC_EVENT, StatusReport: TOPIC_STATUS, EndOfStream: TOPIC_END,
    AnnotatedFrame: TOPIC_FRAME,
}

JPEG_QUALITY = 80


class SchemaError(ValueError):
    """A message that does not follow `SCHEMA_VERSION`: a bug in the sender, or a sender of another version."""


@dataclass(frozen=True, eq=False)
class Message:
    """One message as it goes on the wire: topic, JSON payload, and the JPEG of an `fdp/frame`."""

    topic: str
    payload: Mapping[str, Any]  # read-only; validated
    data: bytes  # the payload as compact UTF-8 JSON, encoded once
    jpeg: bytes | None = None  # only for fdp/frame
    item: Publishable | None = field(default=None, repr=False)  # the dataclass it came from; None off the wire

    def to_frames(self) -> list[bytes]:
        """The ZeroMQ frames: [topic, json] or, for fdp/frame, [topic, json, jpeg]."""
        frames = [self.topic.encode("ascii"), self.data]
        if self.jpeg is not None:
            frames.append(self.jpeg)
        return frames

    def to_json_line(self) -> str:
        """One JSONL record `{"topic": ..., "payload": {...}}` without a newline (the JPEG is left out)."""
        return f'{{"topic":{json.dumps(self.topic)},"payload":{self.data.decode("utf-8")}}}'


def encode(item: Publishable, *, source: str, seq: int) -> Message:
    """Turn a frames.py result into a validated message; numpy scalars become plain JSON numbers."""
    topic = _TOPIC_OF_TYPE.get(type(item))
    if topic is None:
        expected = ", ".join(t.__name__ for t in _TOPIC_OF_TYPE)
        raise TypeError(f"cannot encode a {type(item).__name__}; expected one of {expected}")
    payload: dict[str, Any] = {"schema": SCHEMA_VERSION, "source": str(source), "seq": int(seq)}
    jpeg = None
    if isinstance(item, AnnotatedFrame):
        height, width = item.image.shape[:2]
        values: dict[str, Any] = {"frame_index": item.frame_index, "t_capture_ns": item.t_capture_ns,
                                  "width": width, "height": height}
        ok, buffer = cv2.imencode(".jpg", item.image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise SchemaError(f"{topic}: frame {item.frame_index} could not be JPEG-encoded")
        jpeg = buffer.tobytes()
    else:
        values = {name: getattr(item, name) for name in FIELDS[topic]}
    for name, kind in FIELDS[topic].items():
        payload[name] = _to_json_value(kind, values[name])
    validate(topic, payload)
    data = json.dumps(payload, separators=(",", ":"), allow_nan=False, ensure_ascii=False).encode("utf-8")
    return Message(topic, MappingProxyType(payload), data, jpeg, item)


def validate(topic: str, payload: Any) -> None:
    """Raise `SchemaError` (one line) unless `payload` has every field `topic` requires, each of the right kind."""
    if topic not in FIELDS:
        raise SchemaError(f"unknown topic {topic!r}; expected one of {', '.join(TOPICS)}")
    if not isinstance(payload, Mapping):
        raise SchemaError(f"{topic}: payload is a {type(payload).__name__}, expected a JSON object")
    for name, kind in {**COMMON_FIELDS, **FIELDS[topic]}.items():
        if name not in payload:
            raise SchemaError(f"{topic}: missing field {name!r}")
        problem = _kind_problem(kind, payload[name])
        if problem:
            raise SchemaError(f"{topic}: field {name!r} {problem}")
    if payload["schema"] != SCHEMA_VERSION:
        raise SchemaError(f"{topic}: schema {payload['schema']!r}, this reader speaks {SCHEMA_VERSION!r}")
    if topic in (TOPIC_PREDICTION, TOPIC_EVENT) and payload["probs"] and payload["label"] not in payload["probs"]:
        raise SchemaError(f"{topic}: label {payload['label']!r} is not among the probs' labels")


def decode(frames: Sequence[bytes]) -> Message:
    """Parse and validate the ZeroMQ frames of one message (what a subscriber's recv_multipart returns)."""
    if len(frames) not in (2, 3):
        raise SchemaError(f"a message has 2 frames (3 for {TOPIC_FRAME}), got {len(frames)}")
    try:
        topic = bytes(frames[0]).decode("ascii")
    except UnicodeDecodeError:
        raise SchemaError("topic frame is not ASCII") from None
    expected = 3 if topic == TOPIC_FRAME else 2
    if len(frames) != expected:
        raise SchemaError(f"{topic}: expected {expected} frames, got {len(frames)}")
    data = bytes(frames[1])
    payload = _parse_json(topic, data)
    validate(topic, payload)
    jpeg = bytes(frames[2]) if expected == 3 else None
    return Message(topic, MappingProxyType(payload), data, jpeg)


def decode_json_line(line: str) -> Message:
    """Parse and validate one record of a JSONL recording (see `Message.to_json_line`)."""
    record = _parse_json("record", line.encode("utf-8"))
    if not isinstance(record, dict) or set(record) != {"topic", "payload"}:
        raise SchemaError('a record is {"topic": ..., "payload": {...}}')
    topic, payload = record["topic"], record["payload"]
    validate(topic, payload)
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return Message(topic, MappingProxyType(payload), data)


def decode_image(jpeg: bytes) -> np.ndarray:
    """Decode the JPEG of an `fdp/frame` message to a BGR uint8 (H, W, 3) image."""
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise SchemaError(f"{TOPIC_FRAME}: the third frame is not a JPEG image")
    return image


def _parse_json(topic: str, data: bytes) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SchemaError(f"{topic}: payload is not JSON ({error})") from None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _kind_problem(kind: str, value: Any) -> str | None:
    """What is wrong with `value` as a field of `kind`, or None when it fits."""
    if kind == "str":
        return None if isinstance(value, str) else f"must be a string, got {value!r}"
    if kind == "bool":
        return None if isinstance(value, bool) else f"must be true or false, got {value!r}"
    if kind in ("int", "count"):
        if not isinstance(value, int) or isinstance(value, bool):
            return f"must be an integer, got {value!r}"
        return f"must be 0 or more, got {value}" if kind == "count" and value < 0 else None
    if kind == "float" or (kind == "float?" and value is not None):
        return None if _is_number(value) else f"must be a finite number, got {value!r}"
    if kind == "float?":
        return None
    if kind == "labels":
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        return None if ok else f"must be a list of strings, got {value!r}"
    if kind == "counts":  # whole numbers, as JSON Schema reads "integer" (3.0 is 3): the two validators agree
        ok = isinstance(value, Mapping) and all(isinstance(k, str) and _is_number(v) and v >= 0 and v == int(v)
                                                for k, v in value.items())
        return None if ok else f"must be an object of counts (whole numbers >= 0), got {value!r}"
    if kind in ("probs", "latency", "numbers"):
        if not isinstance(value, Mapping) or not all(isinstance(k, str) and _is_number(v) for k, v in value.items()):
            return f"must be an object of finite numbers, got {value!r}"
        missing = [stage for stage in LATENCY_STAGES if stage not in value] if kind == "latency" else []
        return f"lacks stage(s) {', '.join(missing)}" if missing else None
    raise AssertionError(f"unknown field kind {kind!r} in the schema table")


def _to_json_value(kind: str, value: Any) -> Any:
    """Plain JSON types from whatever the pipeline holds (numpy scalars, tuples, read-only mappings)."""
    if value is None:
        return None
    if kind in ("int", "count") and isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if kind in ("float", "float?") and isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if kind == "bool" and isinstance(value, (bool, np.bool_)):
        return bool(value)
    if kind in ("probs", "latency", "numbers") and isinstance(value, Mapping):
        return {str(k): float(v) for k, v in value.items()}
    if kind == "counts" and isinstance(value, Mapping):
        return {str(k): int(v) for k, v in value.items()}
    if kind == "labels" and isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return value  # a wrong kind is left as it is, for validate() to name
