"""The console view of a live run: a start-up line, one compact status line a second, and a line per event.

It is a publisher like the others (fed by the fan-out's thread), so printing can never slow the pipeline.
"""

from __future__ import annotations

import sys
from typing import TextIO

from realtime import schema
from realtime.schema import Message


class ConsoleStatus:
    """Prints status and events as they are published; predictions update the per-face label it shows."""

    name = "console"

    def __init__(self, stream: TextIO | None = None, show_status: bool = True):
        self.stream = stream or sys.stderr
        self.show_status = show_status
        self._labels: dict[int, str] = {}

    def publish(self, message: Message) -> None:
        payload = message.payload
        if message.topic == schema.TOPIC_PREDICTION:
            mark = "*" if payload["me_active"] else ""
            self._labels[payload["face_id"]] = f"{payload['label']}{mark} {payload['probs'][payload['label']]:.2f}"
        elif message.topic == schema.TOPIC_STATUS and self.show_status:
            e2e = (f"e2e p50 {payload['e2e_ms_p50']:.1f} ms p99 {payload['e2e_ms_p99']:.1f} ms"
                   if payload["e2e_ms_p50"] is not None else "e2e -")
            faces = " ".join(f"face {i}: {label}" for i, label in sorted(self._labels.items())) or "no face"
            self._print(f"{payload['fps']:5.1f} fps | {e2e} | dropped {payload['dropped_frames']} | "
                        f"{payload['faces']} face(s) | {faces}"
                        + (" | learning baseline" if "learning" in payload["baseline"] else ""))
        elif message.topic == schema.TOPIC_EVENT:
            probs = ", ".join(f"{k} {v:.2f}" for k, v in payload["probs"].items())
            self._print(f"ME face {payload['face_id']}: {payload['label']} at {payload['onset_media_s']:.2f} s "
                        f"({payload['duration_s'] * 1000:.0f} ms, {', '.join(payload['regions'])}; {probs})")
        elif message.topic == schema.TOPIC_END:
            self._print(f"end: {payload['reason']}; {payload['frames']} frames, {payload['events']} event(s)")

    def _print(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    def close(self) -> None:
        self.stream.flush()
