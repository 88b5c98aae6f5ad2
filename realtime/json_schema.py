"""A JSON Schema (draft 2020-12) of every fdp-live/1 message, made from the `FIELDS` table of `realtime.schema`.

`python -m realtime.json_schema > fdp-live-1.schema.json` gives programs in other languages what the subscriber
checks: `$defs` holds one schema per topic for the JSON payload of a ZeroMQ message (the second frame), and the
document itself validates a record of a JSONL recording, `{"topic": ..., "payload": {...}}`. Generated from the
table, it cannot drift from the encoder. Two rules of `realtime.schema.validate` cannot be written in JSON Schema
and are left out: a prediction's or event's label must be among its probs, and an integer must not be written
with a fraction (JSON Schema takes 3.0 for 3).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from fdp.cli import CommandParser, run_main
from realtime.frames import LATENCY_STAGES
from realtime.schema import COMMON_FIELDS, FIELDS, SCHEMA_VERSION, TOPIC_PREFIX

_NUMBER = {"type": "number"}
_KINDS: dict[str, dict[str, Any]] = {  # realtime.schema's field kinds
    "str": {"type": "string"},
    "bool": {"type": "boolean"},
    "int": {"type": "integer"},
    "count": {"type": "integer", "minimum": 0},
    "float": _NUMBER,
    "float?": {"type": ["number", "null"]},
    "labels": {"type": "array", "items": {"type": "string"}},
    "probs": {"type": "object", "additionalProperties": _NUMBER},
    "numbers": {"type": "object", "additionalProperties": _NUMBER},
    "counts": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}},
    "latency": {"type": "object", "properties": {stage: _NUMBER for stage in LATENCY_STAGES},
                "required": list(LATENCY_STAGES), "additionalProperties": _NUMBER},
}


def definition_name(topic: str) -> str:
    """'fdp/prediction' -> 'prediction': the topic's key under `$defs`."""
    return topic.removeprefix(TOPIC_PREFIX)


def payload_schema(topic: str) -> dict[str, Any]:
    """The schema of one topic's payload; fields it does not know are allowed, as consumers ignore them."""
    fields = {**COMMON_FIELDS, **FIELDS[topic]}
    properties = {name: dict(_KINDS[kind]) for name, kind in fields.items()}
    properties["schema"] = {"const": SCHEMA_VERSION}
    return {"title": f"{topic} payload", "type": "object", "properties": properties, "required": list(fields)}


def build_schema() -> dict[str, Any]:
    """The whole document: `$defs` per topic, and the JSONL record as the root."""
    records = [{"type": "object", "properties": {"topic": {"const": topic},
                                                 "payload": {"$ref": f"#/$defs/{definition_name(topic)}"}},
                "required": ["topic", "payload"], "additionalProperties": False} for topic in FIELDS]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": f"{SCHEMA_VERSION} message record", "oneOf": records,
            "$defs": {definition_name(topic): payload_schema(topic) for topic in FIELDS}}


def main(argv: list[str] | None = None) -> int:
    CommandParser(prog="python -m realtime.json_schema", description=__doc__.splitlines()[0]).parse_args(argv)
    json.dump(build_schema(), sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
