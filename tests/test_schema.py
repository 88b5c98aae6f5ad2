"""realtime.schema: every topic round-trips through its wire frames and JSONL line, payloads carry exactly the
ARCHITECTURE.md §5 fields, and validate() names what is wrong with a message that breaks the schema."""

from __future__ import annotations

import copy
import dataclasses
import json

import numpy as np
import pytest

from realtime import schema
from realtime.frames import (
    LATENCY_STAGES,
    AnnotatedFrame,
    EndOfStream,
    Frame,
    MEEvent,
    Prediction,
    StatusReport,
)
from realtime.schema import SchemaError

LABELS = ("none", "negative", "positive", "surprise")
PROBS = {"none": 0.1, "negative": 0.05, "positive": 0.8, "surprise": 0.05}
LATENCY = {"align": 4.2, "spot": 1.1, "encode": 2.1, "pool": 0.05, "head": 0.04, "e2e": 9.7}

SPEC_FIELDS = {  # ARCHITECTURE.md §5, copied here on purpose: the schema module must match the document
    "fdp/prediction": {"face_id", "frame_index", "media_s", "t_capture_ns", "time_unix", "window_s", "label",
                       "probs", "motion", "me_active", "latency_ms"},
    "fdp/event": {"face_id", "onset_frame", "offset_frame", "onset_media_s", "offset_media_s", "onset_time_unix",
                  "offset_time_unix", "duration_s", "label", "probs", "peak_motion",
                  # added by spot-then-recognize (ARCHITECTURE §5 is to gain them): when the apex was, what moved
                  # and what spotted it
                  "apex_frame", "apex_media_s", "regions", "spotter"},
    "fdp/status": {"labels", "model", "engine", "device", "fps", "e2e_ms_p50", "e2e_ms_p99", "dropped_frames",
                   "faces", "spotter", "baseline",
                   # added with reconnection (ARCHITECTURE §5 is to gain them): whether the input delivers, how
                   # long it has not, and how often it came back
                   "source_state", "outage_s", "reconnects",
                   # added with the concurrent stages (ARCHITECTURE §5 is to gain them): per-stage latency p50/p99
                   # with the waits between stages, and where frames were dropped
                   "stage_ms_p50", "stage_ms_p99", "dropped_by_stage"},
    "fdp/end": {"reason", "frames", "events"},
    "fdp/frame": {"frame_index", "t_capture_ns", "width", "height"},
}


def face_image() -> np.ndarray:
    image = np.zeros((48, 64, 3), np.uint8)
    image[8:40, 16:48] = (40, 160, 220)
    image[16:20, 22:28] = image[16:20, 36:42] = 0
    return image


def sample_items() -> list:
    return [
        Prediction(face_id=0, frame_index=np.int64(41), media_s=np.float32(1.375), t_capture_ns=123_456_789_000,
                   time_unix=1.7e9, window_s=0.5, label="positive", probs=PROBS, motion=np.float32(0.42),
                   me_active=np.bool_(True), latency_ms=LATENCY),
        MEEvent(face_id=0, onset_frame=30, apex_frame=35, offset_frame=41, onset_media_s=1.0, apex_media_s=1.2,
                offset_media_s=1.375,
                onset_time_unix=1.7e9, offset_time_unix=1.7e9 + 0.375, duration_s=0.375, label="positive",
                probs=PROBS, peak_motion=1.5, regions=("mouth_l", "mouth_r"), spotter="fdp-spot/1"),
        StatusReport(labels=LABELS, model="fdp-live-synthetic", engine="onnxruntime", device="cpu", fps=29.9,
                     e2e_ms_p50=None, e2e_ms_p99=None, dropped_frames=0, faces=1,
                        spotter="fdp-spot/1", baseline="running baseline"),
        AnnotatedFrame(frame_index=41, t_capture_ns=123_456_789_000, image=face_image()),
        EndOfStream(reason="end of file", frames=472, events=3),
    ]


@pytest.mark.parametrize("item", sample_items(), ids=lambda item: type(item).__name__)
def test_schema_round_trip_wire_frames_keeps_payload_and_fields(item):
    message = schema.encode(item, source="clip.mp4", seq=7)
    frames = message.to_frames()
    assert len(frames) == (3 if message.topic == schema.TOPIC_FRAME else 2)
    assert frames[0] == message.topic.encode()
    decoded = schema.decode(frames)
    assert decoded.topic == message.topic and dict(decoded.payload) == dict(message.payload)
    payload = json.loads(frames[1])
    assert set(payload) == SPEC_FIELDS[message.topic] | {"schema", "source", "seq"}
    assert (payload["schema"], payload["source"], payload["seq"]) == ("fdp-live/1", "clip.mp4", 7)


def test_schema_version_lives_in_one_constant():
    assert schema.SCHEMA_VERSION == "fdp-live/1"
    assert set(schema.TOPICS) == set(SPEC_FIELDS)


def test_schema_numpy_scalars_become_plain_json():
    payload = json.loads(schema.encode(sample_items()[0], source="camera 0", seq=0).data)
    assert payload["frame_index"] == 41 and type(payload["frame_index"]) is int
    assert payload["media_s"] == 1.375 and payload["me_active"] is True
    assert payload["latency_ms"] == LATENCY and list(payload["probs"]) == list(LABELS)


def test_schema_frame_message_carries_a_jpeg_of_the_image():
    item = AnnotatedFrame(frame_index=3, t_capture_ns=5, image=face_image())
    decoded = schema.decode(schema.encode(item, source="camera 0", seq=1).to_frames())
    assert (decoded.payload["width"], decoded.payload["height"]) == (64, 48)
    image = schema.decode_image(decoded.jpeg)
    assert image.shape == (48, 64, 3)
    assert np.abs(image.astype(int) - face_image().astype(int)).mean() < 4


@pytest.mark.parametrize("item", sample_items(), ids=lambda item: type(item).__name__)
def test_schema_round_trip_json_line(item):
    message = schema.encode(item, source="camera 0", seq=3)
    line = message.to_json_line()
    assert "\n" not in line
    assert json.loads(line) == {"topic": message.topic, "payload": dict(message.payload)}
    assert dict(schema.decode_json_line(line).payload) == dict(message.payload)


def valid_payload(topic: str) -> dict:
    item = next(i for i in sample_items() if schema.encode(i, source="s", seq=0).topic == topic)
    return json.loads(schema.encode(item, source="s", seq=0).data)


@pytest.mark.parametrize("topic", list(SPEC_FIELDS))
def test_schema_validate_rejects_payload_missing_a_field(topic):
    for name in sorted(SPEC_FIELDS[topic] | {"schema", "source", "seq"}):
        payload = valid_payload(topic)
        del payload[name]
        with pytest.raises(SchemaError) as error:
            schema.validate(topic, payload)
        assert str(error.value) == f"{topic}: missing field {name!r}"


@pytest.mark.parametrize(
    "topic, field, value, expected",
    [
        ("fdp/prediction", "frame_index", "41", "fdp/prediction: field 'frame_index' must be an integer, got '41'"),
        ("fdp/prediction", "frame_index", -1, "fdp/prediction: field 'frame_index' must be 0 or more, got -1"),
        ("fdp/prediction", "me_active", 1, "fdp/prediction: field 'me_active' must be true or false, got 1"),
        ("fdp/prediction", "media_s", float("nan"), "fdp/prediction: field 'media_s' must be a finite number, got nan"),
        ("fdp/prediction", "face_id", True, "fdp/prediction: field 'face_id' must be an integer, got True"),
        ("fdp/prediction", "latency_ms", {"e2e": 1.0}, "fdp/prediction: field 'latency_ms' lacks stage(s) align, "
                                                        "spot, encode, pool, head"),
        ("fdp/prediction", "label", "anger", "fdp/prediction: label 'anger' is not among the probs' labels"),
        ("fdp/event", "probs", {"positive": "high"}, "fdp/event: field 'probs' must be an object of finite numbers, "
                                                      "got {'positive': 'high'}"),
        ("fdp/status", "labels", "none,positive", "fdp/status: field 'labels' must be a list of strings, got "
                                                   "'none,positive'"),
        ("fdp/status", "schema", "fdp-live/2", "fdp/status: schema 'fdp-live/2', this reader speaks 'fdp-live/1'"),
        ("fdp/end", "reason", None, "fdp/end: field 'reason' must be a string, got None"),
    ],
)
def test_schema_validate_names_the_wrong_field(topic, field, value, expected):
    payload = valid_payload(topic)
    payload[field] = value
    with pytest.raises(SchemaError) as error:
        schema.validate(topic, payload)
    assert str(error.value) == expected


def test_schema_validate_accepts_null_latency_percentiles_and_unknown_fields():
    payload = valid_payload("fdp/status")
    assert payload["e2e_ms_p50"] is None
    payload["e2e_ms_p50"], payload["future_field"] = 12.5, "ignored"
    schema.validate("fdp/status", payload)


def test_schema_decode_rejects_malformed_messages():
    good = schema.encode(sample_items()[-1], source="s", seq=0).to_frames()
    cases = [
        ([b"fdp/unknown", good[1]], "unknown topic 'fdp/unknown'; expected one of fdp/prediction, fdp/event, "
                                    "fdp/status, fdp/end, fdp/frame"),
        ([good[0]], "a message has 2 frames (3 for fdp/frame), got 1"),
        ([good[0], good[1], b"\xff\xd8"], "fdp/end: expected 2 frames, got 3"),
        ([good[0], b"{not json"], "fdp/end: payload is not JSON (Expecting property name enclosed in double quotes: "
                                  "line 1 column 2 (char 1))"),
        ([good[0], b"[1, 2]"], "fdp/end: payload is a list, expected a JSON object"),
    ]
    for frames, expected in cases:
        with pytest.raises(SchemaError) as error:
            schema.decode(frames)
        assert str(error.value) == expected


def test_schema_encode_refuses_what_it_cannot_send():
    with pytest.raises(TypeError):
        schema.encode("hello", source="s", seq=0)  # type: ignore[arg-type]
    bad = dataclasses.replace(sample_items()[0], motion=float("inf"))
    with pytest.raises(SchemaError):
        schema.encode(bad, source="s", seq=0)


def test_frames_dataclasses_are_frozen_and_read_only():
    item = sample_items()[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        item.label = "none"  # type: ignore[misc]
    with pytest.raises(TypeError):
        item.probs["none"] = 1.0  # type: ignore[index]
    assert dataclasses.asdict(item)["probs"] == PROBS and copy.deepcopy(item).probs == PROBS
    drawn = face_image()
    annotated = AnnotatedFrame(frame_index=0, t_capture_ns=0, image=drawn)
    drawn[:] = 0  # the pipeline draws the next frame into the same buffer
    assert annotated.image.any() and not annotated.image.flags.writeable
    frame = Frame(index=0, t_capture_ns=1, media_s=0.0, image=face_image(), source="camera 0")
    assert not frame.image.flags.writeable and (frame.width, frame.height) == (64, 48)
    with pytest.raises(ValueError):
        Frame(index=0, t_capture_ns=1, media_s=0.0, image=np.zeros((4, 4), np.float32), source="x")
    with pytest.raises(ValueError):
        dataclasses.replace(item, latency_ms={"e2e": 1.0})
    assert LATENCY_STAGES == ("align", "spot", "encode", "pool", "head", "e2e")
