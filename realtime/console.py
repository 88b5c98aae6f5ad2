"""The console view of a live run: a start-up line, one compact status line a second, a line per event, and a line
when the input is lost and one when it is back (those two even with --quiet, as events are).

It is a publisher like the others (fed by the fan-out's thread), so printing can never slow the pipeline.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, TextIO

from realtime import schema
from realtime.schema import Message


class ConsoleStatus:
    """Prints status and events as they are published; predictions update the per-face label it shows."""

    name = "console"

    def __init__(self, stream: TextIO | None = None, show_status: bool = True):
        self.stream = stream or sys.stderr
        self.show_status = show_status
        self._labels: dict[int, str] = {}
        self._outage_s: float | None = None  # the input's outage as the last status gave it, while it is lost

    def publish(self, message: Message) -> None:
        payload = message.payload
        if message.topic == schema.TOPIC_PREDICTION:
            mark = "*" if payload["me_active"] else ""
            self._labels[payload["face_id"]] = f"{payload['label']}{mark} {payload['probs'][payload['label']]:.2f}"
        elif message.topic == schema.TOPIC_STATUS:
            self._show_input(payload)
            if self.show_status:
                self._show_status(payload)
        elif message.topic == schema.TOPIC_EVENT:
            probs = ", ".join(f"{k} {v:.2f}" for k, v in payload["probs"].items())
            self._print(f"ME face {payload['face_id']}: {payload['label']} at {payload['onset_media_s']:.2f} s "
                        f"({payload['duration_s'] * 1000:.0f} ms, {', '.join(payload['regions'])}; {probs})")
        elif message.topic == schema.TOPIC_END:
            self._print(f"end: {payload['reason']}; {payload['frames']} frames, {payload['events']} event(s)")

    def _show_input(self, payload: Mapping[str, Any]) -> None:
        """One line when a status first says the input is lost, one when a status says it delivers again."""
        state = payload.get("source_state")  # .get: a status from an older sender lacks it
        if state == "reconnecting":
            if self._outage_s is None:
                self._print(f"input lost: no frames for {payload['outage_s']:.1f} s; reconnecting with backoff")
            self._outage_s = payload["outage_s"]
        elif state == "running" and self._outage_s is not None:
            self._print(f"input back after about {self._outage_s:.0f} s without frames "
                        f"({payload['reconnects']} reconnect(s) so far)")
            self._outage_s = None

    def _show_status(self, payload: Mapping[str, Any]) -> None:
        e2e = (f"e2e p50 {payload['e2e_ms_p50']:.1f} ms p99 {payload['e2e_ms_p99']:.1f} ms"
               if payload["e2e_ms_p50"] is not None else "e2e -")
        faces = " ".join(f"face {i}: {label}" for i, label in sorted(self._labels.items())) or "no face"
        by_stage = payload.get("dropped_by_stage") or {}  # .get: a status from an older sender lacks it
        where = ", ".join(f"{stage} {n}" for stage, n in by_stage.items() if n)
        self._print(f"{payload['fps']:5.1f} fps | {e2e} | dropped {payload['dropped_frames']}"
                    f"{f' ({where})' if where else ''} | "
                    f"{payload['faces']} face(s) | {faces}"
                    + (" | learning baseline" if "learning" in payload["baseline"] else "")
                    + (f" | input lost {payload['outage_s']:.0f} s, reconnecting"
                       if payload.get("source_state") == "reconnecting" else ""))

    def _print(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    def close(self) -> None:
        self.stream.flush()
