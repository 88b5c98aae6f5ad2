"""The live loop: capture -> align -> track -> encode (once per new frame) -> window -> pool -> head -> spot -> publish.

The capture thread never waits on us (live sources drop the oldest frame) and publishers never wait on the loop
(the fan-out queues and drops); this loop runs on the caller's thread and stops on end of stream, `max_frames`, or
the `stop` event (Ctrl-C, SIGTERM), always publishing `fdp/end` last so a log is complete.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engines.base import Engine, crops_to_input
from engines.factory import load_engine
from fdp.align import AlignedFace, FaceAligner
from fdp.rank_pooling import warm_up
from realtime.annotate import annotate
from realtime.capture import VideoSource
from realtime.console import ConsoleStatus
from realtime.frames import AnnotatedFrame, EndOfStream, Frame, Prediction, StatusReport
from realtime.latency import LatencyMonitor
from realtime.live_config import LiveConfig, resolve_input
from realtime.publishers.base import Publisher, PublisherFanout
from realtime.publishers.recorder import JsonlRecorder
from realtime.publishers.zmq import ZmqPublisher
from realtime.spotting import Spotter, SpotterSettings, window_motion
from realtime.tracks import FaceTracker, Track
from realtime.window import FaceWindow

STATUS_PERIOD_S = 1.0


class StopRequest(threading.Event):
    """Set by a signal handler (or a test) to end the run cleanly; remembers why, for the end record."""

    def __init__(self) -> None:
        super().__init__()
        self.reason = "stopped"

    def request(self, reason: str) -> None:
        self.reason = reason
        self.set()


@dataclass
class FaceState:
    window: FaceWindow
    spotter: Spotter
    last: Prediction | None = None
    dynamic_image: np.ndarray | None = None  # of the last window's raw crops, for the preview


class LivePipeline:
    """One run over one source with one engine; `run` returns the end-of-stream record it published."""

    def __init__(self, config: LiveConfig, engine: Engine, aligner: FaceAligner, source: VideoSource,
                 fanout: PublisherFanout, model_name: str, monitor: LatencyMonitor | None = None):
        self.config = config
        self.engine = engine
        self.aligner = aligner
        self.source = source
        self.fanout = fanout
        self.model_name = model_name
        self.monitor = monitor or LatencyMonitor()
        model = engine.config
        self.window_s = config.window_s or model.window_s
        self.labels = model.class_names
        self.spotter_settings = SpotterSettings(p_active=config.p_active)
        self.tracker: FaceTracker[FaceState] = FaceTracker(self._new_face, max_faces=config.max_faces,
                                                           lost_after_s=max(0.5, self.window_s))
        self._unix_offset_ns = time.time_ns() - time.monotonic_ns()
        self.frames = 0
        self.events = 0
        self._next_status_ns = 0
        self._next_frame_ns = 0

    def _new_face(self, face_id: int) -> FaceState:
        """A new face's window, and its spotter, which times events from the frames that window holds."""
        model = self.engine.config
        side = model.image_size
        window = FaceWindow(model.frames, self.window_s, model.rank_dim,
                            (side, side) if model.in_chans == 1 else (side, side, 3))
        spotter = Spotter(face_id, self.labels, self.window_s, self.spotter_settings, history=window.between)
        return FaceState(window, spotter)

    def run(self, stop: StopRequest) -> EndOfStream:
        warm_up()
        self._publish_status()
        reason = "stopped"
        while not stop.is_set():
            frame = self.source.read(timeout_s=0.1)
            if frame is None:
                if self.source.ended:
                    reason = self.source.end_reason or "end of stream"
                    break
            else:
                self._process(frame)
                if self.config.max_frames is not None and self.frames >= self.config.max_frames:
                    reason = f"max frames ({self.config.max_frames}) reached"
                    break
            if time.monotonic_ns() >= self._next_status_ns:
                self._publish_status()
        else:
            reason = stop.reason
        for track in list(self.tracker.tracks.values()):
            self._publish_event(track.state.spotter.close())
        end = EndOfStream(reason=reason, frames=self.frames, events=self.events)
        self.fanout.publish(end)
        return end

    def _process(self, frame: Frame) -> None:
        self.frames += 1
        self.monitor.record_frame(frame.t_capture_ns)
        timings = {}
        start = time.perf_counter()
        faces = self.aligner.process(frame.image, timestamp_ms=int(round(frame.media_s * 1000)))
        timings["align"] = (time.perf_counter() - start) * 1e3
        tracked = [(face, track) for face, track in
                   zip(faces, self.tracker.update(frame.media_s, [face.bbox for face in faces])) if track]
        if tracked:
            self._predict(frame, tracked, timings)
        wants_frames = self.config.zmq_frames or not self.config.headless
        if wants_frames and time.monotonic_ns() >= self._next_frame_ns:
            self._next_frame_ns = time.monotonic_ns() + int(1e9 / self.config.frames_per_s)
            self._publish_frame(frame)

    def _predict(self, frame: Frame, tracked: list[tuple[AlignedFace, Track[FaceState]]],
                 timings: dict[str, float]) -> None:
        start = time.perf_counter()
        encoded = self.engine.encode(crops_to_input(np.stack([face.crop for face, _ in tracked])))
        timings["encode"] = (time.perf_counter() - start) * 1e3
        for i, (face, track) in enumerate(tracked):
            track.state.window.push(frame.media_s, frame.index, face.crop, encoded.rank_features[i],
                                    float(encoded.scores[i]))
        ready = [track for _, track in tracked if track.state.window.ready]
        if not ready:
            return
        start = time.perf_counter()
        slots = [track.state.window.resample() for track in ready]
        pooled = np.stack([track.state.window.pooled(s) for track, s in zip(ready, slots)])
        for track, s in zip(ready, slots):
            track.state.dynamic_image = track.state.window.dynamic_image(s)
        motions = [window_motion(track.state.dynamic_image, len(s)) for track, s in zip(ready, slots)]
        timings["pool"] = (time.perf_counter() - start) * 1e3
        start = time.perf_counter()
        head = self.engine.head(pooled)
        timings["head"] = (time.perf_counter() - start) * 1e3
        time_unix = (frame.t_capture_ns + self._unix_offset_ns) / 1e9
        for track, probs, motion in zip(ready, head.probs, motions):
            active, event = track.state.spotter.update(frame.media_s, frame.index, time_unix, probs, motion)
            timings["e2e"] = (time.monotonic_ns() - frame.t_capture_ns) / 1e6
            prediction = Prediction(
                face_id=track.face_id, frame_index=frame.index, media_s=frame.media_s,
                t_capture_ns=frame.t_capture_ns, time_unix=time_unix, window_s=self.window_s,
                label=self.labels[int(np.argmax(probs))], probs=dict(zip(self.labels, map(float, probs))),
                motion=motion, me_active=active, latency_ms=dict(timings))
            track.state.last = prediction
            self.fanout.publish(prediction)
            self._publish_event(event)
        for stage, value in timings.items():
            self.monitor.record_ms(stage, value)

    def _publish_event(self, event) -> None:
        if event is not None:
            self.events += 1
            self.fanout.publish(event)

    def _publish_status(self) -> None:
        self._next_status_ns = time.monotonic_ns() + int(STATUS_PERIOD_S * 1e9)
        snapshot = self.monitor.snapshot()
        self.fanout.publish(StatusReport(
            labels=self.labels, model=self.model_name, engine=f"{self.engine.name} {self.engine.precision}",
            device=self.engine.device, fps=snapshot.fps, e2e_ms_p50=snapshot.p50_ms["e2e"],
            e2e_ms_p99=snapshot.p99_ms["e2e"], dropped_frames=self.source.dropped_frames,
            faces=len(self.tracker.tracks)))

    def _publish_frame(self, frame: Frame) -> None:
        boxes = {track.face_id: track.box for track in self.tracker.tracks.values()}
        predictions = {track.face_id: track.state.last for track in self.tracker.tracks.values()
                       if track.state.last is not None}
        images = {track.face_id: track.state.dynamic_image for track in self.tracker.tracks.values()
                  if track.state.dynamic_image is not None}
        image = annotate(frame.image, boxes, predictions, images, self.model_name)
        self.fanout.publish(AnnotatedFrame(frame_index=frame.index, t_capture_ns=frame.t_capture_ns, image=image))


def describe_model(engine: Engine, model_path: str | None) -> str:
    """The model as every output names it, with what it was trained on (never shown without it)."""
    from engines.base import ModelFiles

    name = ModelFiles.locate(model_path).folder.name
    trained_on = engine.training_data or "training data not stated in the model files"
    return f"{name} ({engine.config.name} preset; {trained_on})"


def run_live(config: LiveConfig, stop: StopRequest, log=None) -> EndOfStream:
    """Build everything the run needs (failing fast with one-line errors), run it, and release everything."""
    engine, reason = load_engine(config.model, config.engine, device=config.device, threads=config.threads)
    model_name = describe_model(engine, config.model)
    spec, paced = resolve_input(config)
    publishers: list[Publisher] = [ConsoleStatus(show_status=not config.quiet)]
    outputs: list[str] = []
    source = aligner = fanout = None
    try:
        source = VideoSource(spec, realtime=paced, width=config.width, height=config.height, fps=config.fps,
                             fourcc=config.fourcc)
        source.start()  # before MediaPipe loads: a bad input fails fast, with its one line alone on stderr
        if not config.headless:
            from realtime.publishers.preview import PreviewPublisher  # imports gradio (about 2 s)

            publishers.append(PreviewPublisher(config.preview_host, config.preview_port))
            outputs.append(f"preview {publishers[-1].url}")
        if config.zmq != "off":
            publishers.append(ZmqPublisher(config.zmq, send_frames=config.zmq_frames))
            outputs.append(f"zmq {publishers[-1].endpoint}")
        if config.record:
            Path(config.record).parent.mkdir(parents=True, exist_ok=True)
            Path(f"{config.record}.config.json").write_text(config.to_json())
            publishers.append(JsonlRecorder(config.record))
            outputs.append(f"recording {config.record}")
        aligner = FaceAligner(engine.config.aligner, config.landmarker, running_mode="video",
                              max_faces=config.max_faces)
        fanout = PublisherFanout(publishers, source=source.name)
        (log or print_line)(
            f"FDP Live | model {model_name} | engine {engine.name} {engine.precision} on {engine.device} "
            f"({reason}) | input {source.name}{' (paced)' if paced else ''} | {' | '.join(outputs) or 'no outputs'}")
        return LivePipeline(config, engine, aligner, source, fanout, model_name).run(stop)
    finally:
        if source is not None:
            source.stop()
        if fanout is not None:
            fanout.close()
        else:
            for publisher in publishers:
                publisher.close()
        if aligner is not None:
            aligner.close()
        engine.close()


def print_line(line: str) -> None:
    import sys

    print(line, file=sys.stderr, flush=True)
