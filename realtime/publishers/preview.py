"""The live preview page (ARCHITECTURE.md §1): a local Gradio page with the annotated frame, the probabilities, a
30 s timeline of what the model and the spotter see, the last events and the run's stats.

`publish()` runs on the fan-out's thread, so it only copies what the page needs into `PreviewState` under a lock.
Rendering happens in the page's timer handlers (Gradio's server threads), once per new state and shared by every
open page: the frame goes out as the message's own JPEG in a data URI (never decoded, re-encoded or written to
disk), the timeline as one small PNG drawn with matplotlib's Agg. Gradio timers tick in the browser: with no page
open, nothing is rendered at all.
"""

from __future__ import annotations

import base64
import errno
import io
import logging
import math
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from fdp.errors import ConfigError
from realtime import schema
from realtime.schema import Message

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
FRAME_PERIOD_S = 0.25  # frame and probabilities: 4 Hz
PAGE_PERIOD_S = 1.0  # timeline, events, stats
TIMELINE_S = 30.0
TIMELINE_POINTS = 8192  # per face; a cap in case predictions come faster than any camera
EVENT_ROWS = 10
SPAN_LIMIT = 256  # event spans kept for the timeline
FACE_GONE_S = 2.0  # a face with no prediction this long (in media time) before the newest one leaves the list
QUIET_AFTER_S = 3.0  # no message for this long: the page says so
EVENT_COLUMNS = ["face", "label", "p", "onset s", "offset s", "duration ms", "peak motion"]
WAITING = "Waiting for the first frames…"
NOT_VALIDATED = ("What this page shows is the model's output, not a validated emotion reading: do not use it "
                 "to judge what a person feels.")
_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]<>#|~"})


class PreviewState:
    """What the page shows, updated by `update` (cheap, under the lock) and copied out by the handlers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.frame: tuple[int, bytes, int, int] | None = None  # frame_index, JPEG, width, height
        self.faces: dict[int, Mapping[str, Any]] = {}  # face_id -> latest fdp/prediction payload
        self.traces: dict[int, deque[tuple[float, float, float]]] = {}  # face_id -> (media_s, p(ME), motion)
        self.spans: deque[tuple[int, float, float, str]] = deque(maxlen=SPAN_LIMIT)  # face, onset, offset, label
        self.events: deque[Mapping[str, Any]] = deque(maxlen=EVENT_ROWS)
        self.status: Mapping[str, Any] | None = None
        self.end: Mapping[str, Any] | None = None
        self.newest_s = -math.inf  # the newest prediction's media_s
        self.last_message_s: float | None = None  # time.monotonic() of the last message
        self.frame_version = 0  # bumped by each new frame
        self.faces_version = 0  # by each prediction
        self.timeline_version = 0  # by each prediction or event

    def update(self, message: Message) -> None:
        payload = message.payload
        with self.lock:
            self.last_message_s = time.monotonic()
            if message.topic == schema.TOPIC_FRAME:
                if message.jpeg is not None:
                    self.frame = (payload["frame_index"], message.jpeg, payload["width"], payload["height"])
                    self.frame_version += 1
            elif message.topic == schema.TOPIC_PREDICTION:
                self._add_prediction(payload)
            elif message.topic == schema.TOPIC_EVENT:
                self.events.append(payload)
                self.spans.append((payload["face_id"], payload["onset_media_s"], payload["offset_media_s"],
                                   payload["label"]))
                self.timeline_version += 1
            elif message.topic == schema.TOPIC_STATUS:
                self.status = payload
                self.end = None  # a status after an end: a new run
            elif message.topic == schema.TOPIC_END:
                self.end = payload

    def _add_prediction(self, payload: Mapping[str, Any]) -> None:
        """Keep the face's latest reading and extend its trace (lock held)."""
        t, face_id = payload["media_s"], payload["face_id"]
        if t < self.newest_s - 1.0:  # time went back: a new source or a looped file; start the timeline over
            self.traces.clear()
            self.spans.clear()
            self.faces.clear()
            self.newest_s = -math.inf
        self.newest_s = max(self.newest_s, t)
        probs = payload["probs"]
        p_me = 1.0 - probs["none"] if "none" in probs else math.nan  # a model without `none` has no p(ME)
        trace = self.traces.setdefault(face_id, deque(maxlen=TIMELINE_POINTS))
        trace.append((t, p_me, payload["motion"]))
        for other in self.traces.values():
            while other and other[0][0] < self.newest_s - TIMELINE_S:
                other.popleft()
        self.faces[face_id] = payload
        self.faces_version += 1
        self.timeline_version += 1


class PreviewPublisher:
    """A Publisher that serves the live preview page on http://host:port/ until `close()`."""

    def __init__(self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
        self.host = host
        self.port = port
        self.state = PreviewState()
        self._render_lock = threading.Lock()  # one timeline render at a time, shared by every page
        self._frame_html: tuple[int, str] = (-1, "")
        self._timeline_html: tuple[int, str] = (-1, "")
        self._plot: TimelinePlot | None = None  # made on the first render, used under _render_lock
        self._closed = False
        _check_port_free(host, port)
        os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before the import: the page never calls home
        import gradio as gr

        self._demo = self._build_page(gr)
        try:
            self._demo.launch(server_name=host, server_port=port, prevent_thread_lock=True, quiet=True,
                              ssr_mode=False, max_threads=8, theme=_offline_theme(gr))
        except OSError:
            raise ConfigError(f"{host}:{port}: cannot serve the preview page there (the port was just taken); pick "
                              "another --preview-port, or stop the program that holds it") from None
        self.url: str = f"http://{_url_host(host)}:{self._demo.server_port}/"
        self.name = f"preview {self.url}"
        if host not in ("127.0.0.1", "localhost", "::1"):
            log.warning("%s:%s: the preview page (your camera's picture) is open to every machine that can reach "
                        "this address", host, self._demo.server_port)

    def publish(self, message: Message) -> None:
        """Keep what the page needs from `message`; never renders and never waits on the page."""
        if self._closed:
            raise RuntimeError(f"{self.name}: publish() after close()")
        self.state.update(message)

    def close(self) -> None:
        """Shut the page's server down and free the port."""
        if not self._closed:
            self._closed = True
            self._demo.close(verbose=False)

    # The page ---------------------------------------------------------------------------------------------------

    def _build_page(self, gr: Any) -> Any:
        with gr.Blocks(analytics_enabled=False, title="FDP Live preview") as demo:
            gr.Markdown("## FDP Live: micro-expression preview")
            notice = gr.Markdown(self._notice(), elem_id="fdp-notice")
            with gr.Row():
                with gr.Column(scale=3):
                    frame = gr.HTML(f"<p>{WAITING}</p>", elem_id="fdp-frame", min_height=120)
                with gr.Column(scale=2):
                    probs = gr.Label(label="probabilities", num_top_classes=None, elem_id="fdp-probs")
                    faces = gr.Markdown("", elem_id="fdp-faces")
                    stats = gr.Markdown("", elem_id="fdp-stats")
            timeline = gr.HTML("", elem_id="fdp-timeline")
            events = gr.Dataframe(value=_event_table([]), label="last events (newest first)", interactive=False,
                                  elem_id="fdp-events")
            seen = gr.State({"frame": -1, "faces": -1, "timeline": -1})  # per page: what it already has
            fast, slow = [frame, probs, faces, seen], [notice, stats, timeline, events, seen]
            for outputs, handler, period_s in ((fast, self._tick_frame, FRAME_PERIOD_S),
                                               (slow, self._tick_page, PAGE_PERIOD_S)):
                # queue=False: Gradio's queue summarises its last 10,000 events with pandas after every event
                options = dict(inputs=[seen], outputs=outputs, show_progress="hidden", queue=False)
                demo.load(handler, **options)
                gr.Timer(period_s).tick(handler, **options)
        return demo

    def _tick_frame(self, seen: dict[str, int]) -> tuple[Any, ...]:
        """The frame and the probabilities, each only when it changed since this page last had it."""
        import gradio as gr

        seen = dict(seen)
        frame_version, html = self._frame()
        frame = html if frame_version != seen["frame"] else gr.skip()
        seen["frame"] = frame_version
        with self.state.lock:
            faces_version, newest_s = self.state.faces_version, self.state.newest_s
            faces = dict(self.state.faces) if faces_version != seen["faces"] else None
        seen["faces"] = faces_version
        if faces is None:
            return frame, gr.skip(), gr.skip(), seen
        present = sorted(f for f, p in faces.items() if newest_s - p["media_s"] <= FACE_GONE_S)
        if not present:
            return frame, gr.Label(value=None, label="probabilities"), "", seen
        label = gr.Label(value=dict(faces[present[0]]["probs"]), label=f"probabilities, face #{present[0]}")
        return frame, label, "  \n".join(_face_line(faces[f]) for f in present), seen

    def _tick_page(self, seen: dict[str, int]) -> tuple[Any, ...]:
        """The notice, stats, timeline and events: stats every tick, the rest when it changed."""
        import gradio as gr

        with self.state.lock:
            timeline_version = self.state.timeline_version
            rows = list(self.state.events)
        seen = {**seen}
        if timeline_version == seen["timeline"]:
            return self._notice(), self._stats(), gr.skip(), gr.skip(), seen
        seen["timeline"] = timeline_version
        return self._notice(), self._stats(), self._timeline(), _event_table(rows), seen

    def _notice(self) -> str:
        with self.state.lock:
            status = self.state.status
        if status is None:
            return f"**{WAITING}** The model, and what it was trained on, appear here with the first status.  \n" \
                   f"{NOT_VALIDATED}"
        return f"**Model:** {_md(status['model'])}  \n**{NOT_VALIDATED}**"

    def _stats(self) -> str:
        with self.state.lock:
            status, end, last_s = self.state.status, self.state.end, self.state.last_message_s
        if status is None:
            return WAITING
        p50, p99 = (f"{v:.1f}" if v is not None else "–" for v in (status["e2e_ms_p50"], status["e2e_ms_p99"]))
        lines = [f"**{status['fps']:.1f} fps** · end-to-end latency p50 {p50} ms, p99 {p99} ms",
                 f"dropped frames {status['dropped_frames']}{_drops(status)} · faces {status['faces']}",
                 *_stage_lines(status),
                 f"engine {_md(status['engine'])} on {_md(status['device'])} · classes "
                 f"{_md(', '.join(status['labels']))}",
                 f"spotting: {_md(status['spotter'])}, thresholds from the {_md(status['baseline'])}"]
        if end is not None:
            lines.append(f"**stream ended:** {_md(end['reason'])} ({end['frames']} frames, {end['events']} events)")
        elif last_s is not None and time.monotonic() - last_s > QUIET_AFTER_S:
            lines.append(f"**no message for {time.monotonic() - last_s:.0f} s**")
        return "  \n".join(lines)

    def _frame(self) -> tuple[int, str]:
        """(version, the latest annotated frame as an <img> of its own JPEG); built once per new frame."""
        with self.state.lock:
            version, frame = self.state.frame_version, self.state.frame
        cached = self._frame_html
        if version == cached[0]:
            return cached
        if frame is None:
            html = f"<p>{WAITING}</p>"
        else:
            index, jpeg, width, height = frame
            uri = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")
            html = (f'<img id="fdp-frame-image" alt="annotated frame {index}" src="{uri}" width="{width}" '
                    f'height="{height}" style="max-width:100%;height:auto;display:block">')
        self._frame_html = (version, html)
        return version, html

    def _timeline(self) -> str:
        """The timeline as an <img> of a PNG, rendered at most once per change whatever the number of pages."""
        with self._render_lock:
            with self.state.lock:
                version = self.state.timeline_version
                traces = {face: list(points) for face, points in self.state.traces.items()}
                spans, newest_s = list(self.state.spans), self.state.newest_s
            if version != self._timeline_html[0]:
                if not any(traces.values()):
                    html = "<p>timeline: waiting for the first predictions</p>"
                else:
                    self._plot = self._plot or TimelinePlot()
                    png = self._plot.render(traces, spans, newest_s)
                    html = ('<img id="fdp-timeline-image" alt="timeline of the last 30 s" style="max-width:100%" '
                            f'src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">')
                self._timeline_html = (version, html)
            return self._timeline_html[1]


class TimelinePlot:
    """One matplotlib figure (Agg, no pyplot: no global state), kept and redrawn: p(ME) = 1 - p(none) per face
    (solid, left axis), motion (dashed, right axis), each spotted event shaded and labelled. Not thread-safe."""

    COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink")

    def __init__(self) -> None:
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator

        self.figure = Figure(figsize=(9.0, 2.4), dpi=80)
        self.figure.subplots_adjust(left=0.06, right=0.93, top=0.88, bottom=0.2)
        self.ax = self.figure.add_subplot()
        self.motion_ax = self.ax.twinx()
        for axis in (self.ax, self.motion_ax):
            axis.xaxis.set_major_locator(MaxNLocator(8))
            axis.yaxis.set_major_locator(MaxNLocator(5))
            axis.tick_params(labelsize=8)
        self.ax.set_ylim(0.0, 1.0)
        self.ax.set_ylabel("1 − p(none)", fontsize=8)
        self.ax.set_xlabel("media time (s)", fontsize=8)
        self.motion_ax.set_ylabel("motion", fontsize=8)
        self._lines: dict[int, tuple[Any, Any]] = {}  # face_id -> (p(ME) line, motion line)
        self._marks: list[Any] = []  # this render's event spans and their labels

    def render(self, traces: Mapping[int, list[tuple[float, float, float]]],
               spans: list[tuple[int, float, float, str]], newest_s: float) -> bytes:
        """The PNG of the last `TIMELINE_S` seconds before `newest_s`."""
        start_s = min(points[0][0] for points in traces.values() if points)
        left, right = newest_s - TIMELINE_S, newest_s
        if left < 0 <= start_s:  # the first 30 s of a run fill the plot from the left
            left, right = 0.0, TIMELINE_S
        faces_before = set(self._lines)
        for face_id in traces:
            if face_id not in self._lines:
                color = self.COLORS[face_id % len(self.COLORS)]
                self._lines[face_id] = (
                    self.ax.plot([], [], color=color, linewidth=1.4, label=f"#{face_id} p(ME)")[0],
                    self.motion_ax.plot([], [], color=color, linewidth=1.0, linestyle="--", alpha=0.7,
                                        label=f"#{face_id} motion")[0])
        for face_id, (p_line, motion_line) in self._lines.items():
            t, p_me, motion = zip(*traces[face_id]) if traces.get(face_id) else ((), (), ())
            p_line.set_data(t, p_me)
            motion_line.set_data(t, motion)
        if set(self._lines) != faces_before:
            handles = [line for pair in sorted(self._lines.items()) for line in pair[1]]
            self.ax.legend(handles=handles, loc="upper left", fontsize=7, ncols=2, framealpha=0.6)
        for mark in self._marks:
            mark.remove()
        self._marks = []
        for face_id, onset_s, offset_s, label in spans:
            if offset_s >= left:
                self._marks.append(self.ax.axvspan(onset_s, max(offset_s, onset_s + 0.05), color="tab:red",
                                                   alpha=0.18, linewidth=0))
                self._marks.append(self.ax.text(max(onset_s, left), 1.03, f"#{face_id} {label}", fontsize=8,
                                                color="tab:red", clip_on=False))
        self.ax.set_xlim(left, right)
        peak = max((m for points in traces.values() for _, _, m in points), default=0.0)
        self.motion_ax.set_ylim(0.0, max(peak * 1.1, 1e-3))
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", pil_kwargs={"compress_level": 1})  # speed over size
        return buffer.getvalue()


def _face_line(payload: Mapping[str, Any]) -> str:
    label = payload["label"]
    state = " · **ME under way**" if payload["me_active"] else ""
    return (f"face #{payload['face_id']} · {_md(label)} {payload['probs'][label]:.2f} · "
            f"motion {payload['motion']:.2f}{state}")


def _event_table(events: list[Mapping[str, Any]]) -> Any:
    import pandas as pd

    rows = [[e["face_id"], e["label"], round(e["probs"].get(e["label"], math.nan), 2),
             round(e["onset_media_s"], 2), round(e["offset_media_s"], 2), round(e["duration_s"] * 1000),
             round(e["peak_motion"], 2)] for e in reversed(events)]
    return pd.DataFrame(rows, columns=EVENT_COLUMNS)


def _md(text: str) -> str:
    """Text from a message, shown literally in Markdown."""
    return str(text).translate(_MD_SPECIAL)


def _offline_theme(gr: Any) -> Any:
    """Gradio's default theme with local fonts: the page asks nothing of any other server (no Google Fonts)."""
    return gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                             font_mono=["ui-monospace", "monospace"])


def _url_host(host: str) -> str:
    if host == "0.0.0.0":
        return "127.0.0.1"
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _check_port_free(host: str, port: int) -> None:
    """One-line ConfigError unless (host, port) can be bound now (Gradio itself only tries localhost)."""
    if not 0 < port < 65536:
        raise ConfigError(f"--preview-port {port}: use a port from 1 to 65535")
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise ConfigError(f"--preview-host {host}: cannot resolve that name; use 127.0.0.1 (the default) or an "
                          "address of one of this machine's interfaces") from None
    family, kind, proto, _, address = infos[0]
    probe = socket.socket(family, kind, proto)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(address)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise ConfigError(f"{host}:{port}: port taken, cannot serve the preview page; pick another "
                              "--preview-port, or stop the program that holds it") from None
        raise ConfigError(f"--preview-host {host}: cannot serve the preview page there ({error.strerror}); use "
                          "127.0.0.1 (the default) or an address of one of this machine's interfaces") from None
    finally:
        probe.close()


def _drops(status: Mapping[str, Any]) -> str:
    """Where the frames were dropped, when any were (.get: a status from an older sender lacks the split)."""
    by_stage = status.get("dropped_by_stage") or {}
    lost = [f"{stage} {n}" for stage, n in by_stage.items() if n]
    return f" ({', '.join(lost)})" if lost else ""


def _stage_lines(status: Mapping[str, Any]) -> list[str]:
    """Per-stage latency p50/p99 and the waits between stages, in the order the frame goes through them."""
    p50, p99 = status.get("stage_ms_p50") or {}, status.get("stage_ms_p99") or {}
    order = ("wait_align", "align", "wait_model", "spot", "encode", "pool", "head")
    cells = [f"{stage.replace('_', ' ')} {p50[stage]:.1f}/{p99[stage]:.1f}" for stage in order
             if stage in p50 and stage in p99]
    return [f"stage ms p50/p99: {' · '.join(cells)}"] if cells else []
