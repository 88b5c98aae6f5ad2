"""The JSON Schema of fdp-live/1 (realtime.json_schema): printed by its command, a valid draft 2020-12 schema,
it accepts every message a real run records, and it rejects what `realtime.schema.validate` rejects."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from fdp.assets import asset_path
from realtime import schema
from realtime.json_schema import build_schema

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    document = build_schema()
    jsonschema.Draft202012Validator.check_schema(document)
    return jsonschema.Draft202012Validator(document)


def test_json_schema_command_prints_the_schema():
    done = subprocess.run([sys.executable, "-m", "realtime.json_schema"], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert (done.returncode, done.stderr) == (0, "")
    assert json.loads(done.stdout) == build_schema()


@pytest.mark.timeout(240)
def test_json_schema_accepts_every_message_a_real_run_records(tmp_path, validator):
    log = tmp_path / "run.jsonl"
    done = subprocess.run([sys.executable, "run_live.py", "--video", str(asset_path("WolfgangLanger_Pexels.mp4")),
                           "--max-frames", "40", "--headless", "--quiet", "--zmq", "off", "--record", str(log)],
                          cwd=REPO, capture_output=True, text=True, timeout=200)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in log.read_text().splitlines()]
    for record in records:
        validator.validate(record)
    assert {r["topic"] for r in records} >= {schema.TOPIC_STATUS, schema.TOPIC_PREDICTION, schema.TOPIC_END}


def _messages() -> list[tuple[str, dict]]:
    """One valid payload per topic, as the encoder writes them."""
    from test_publishers import event, noisy_frame, prediction, status

    from realtime.frames import EndOfStream

    items = [prediction(3), event(), status(), EndOfStream("end of file", frames=4, events=1), noisy_frame(2)]
    return [(m.topic, dict(m.payload)) for m in (schema.encode(item, source="clip.mp4", seq=i)
                                                 for i, item in enumerate(items))]


@pytest.mark.parametrize("topic, payload", _messages(), ids=lambda v: v if isinstance(v, str) else None)
def test_json_schema_rejects_what_the_schema_module_rejects(topic, payload, validator):
    def agree(candidate: dict) -> bool:
        try:
            schema.validate(topic, candidate)
            python_ok = True
        except schema.SchemaError as error:  # the label-among-probs rule spans fields: JSON Schema cannot state it
            python_ok = "is not among the probs' labels" in str(error)
        return python_ok == validator.is_valid({"topic": topic, "payload": candidate})

    assert validator.is_valid({"topic": topic, "payload": payload})
    assert validator.is_valid({"topic": topic, "payload": payload | {"added_later": 1}})  # unknown fields pass
    assert not validator.is_valid({"topic": "fdp/other", "payload": payload})
    for name in payload:
        assert agree({k: v for k, v in payload.items() if k != name}), f"without {name}"
        for wrong in ("text", -1, 1.5, None, True, [], {}, ["a"], {"e2e": 1.0}):
            assert agree(payload | {name: wrong}), f"{name} = {wrong!r}"
