"""The live loop: capture -> align -> track -> spot -> encode (once per new frame) -> window -> pool -> head -> publish.

Spot, then recognize: the class-agnostic spotter (`realtime.spotting`) finds each micro-expression's onset, apex
and offset; once the frames its training-style window reaches have arrived, the classifier labels that interval
from the encoder outputs already cached (one pooling and one head call). Per-window predictions keep flowing for
the page and subscribers, but they never decide that an event happened, so a model with no `none` class runs too.

Three stages overlap (`realtime.stages`): the capture thread grabs, the alignment thread finds and cuts faces, and
the model stage (tracking, spotting, the engine, publishing) runs on the caller's thread, one frame behind at most
a few. Nothing waits on a slower stage in a live run: capture and the align -> model hand-over keep the newest
frame and count what they drop, and publishers never wait on the loop (the fan-out queues and drops). A file,
paced or not, waits instead and loses nothing (a paced file that cannot keep up falls behind its own clock). The
run stops on end of stream, `max_frames`, the `stop` event (Ctrl-C, SIGTERM) or a stage that raises (the reason
names it), always publishing `fdp/end` last so a log is complete. A lost live input is the capture thread's to
reopen: the loop keeps going, and fdp/status says so at once and every second after. When a run ends by itself
with the preview page on, the page stays up, showing the final state, until `stop`.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from calibration.neutral import NeutralProfile
from engines.base import Engine, crops_to_input
from engines.factory import load_engine
from fdp.align import AlignedFace, FaceAligner
from fdp.errors import ConfigError
from fdp.io import write_bytes
from fdp.rank_pooling import warm_up
from realtime.annotate import annotate
from realtime.capture import ReconnectPolicy, VideoSource
from realtime.console import ConsoleStatus
from realtime.frames import (
    AlignedFrame,
    AnnotatedFrame,
    EndCause,
    EndOfStream,
    Frame,
    MEEvent,
    Prediction,
    StatusReport,
)
from realtime.latency import LatencyMonitor
from realtime.live_config import LiveConfig, resolve_input
from realtime.neutral_recording import load_user_profile
from realtime.publishers.base import Publisher, PublisherFanout
from realtime.publishers.recorder import JsonlRecorder, prepare_recording
from realtime.publishers.zmq import ZmqPublisher
from realtime.spotting import SPOTTER_NAME, FaceSpotter, SpottedInterval, SpotterSettings
from realtime.stages import AlignStage, HandOver
from realtime.tracks import FaceTracker, Track
from realtime.window import FaceWindow

log = logging.getLogger(__name__)

STATUS_PERIOD_S = 1.0
ALIGNED_CAPACITY = 4  # aligned frames waiting for the model stage: 20 ms of slack at 200 fps, 133 ms at 30
# Measured side by side (bench_pipeline's loop, 2 cores): the stages already keep both cores busy, so one ONNX
# Runtime thread beats two (no spinning pool fighting alignment), and a 0.5 ms GIL switch interval (Python's is
# 5 ms) lets the alignment thread take the GIL back as soon as MediaPipe's graph hands it a result.
LIVE_ENGINE_THREADS = 1
SWITCH_INTERVAL_S = 0.0005
NONE_LABEL = "none"  # a model's no-expression class (the bundled model has one): never an event's label
STOP_REASONS = {EndCause.INTERRUPTED: "stopped by Ctrl-C", EndCause.TERMINATED: "stopped by SIGTERM",
                EndCause.STOPPED: "stopped"}
HOLD_PAGE_AFTER = (EndCause.END_OF_STREAM, EndCause.MAX_FRAMES)  # ends that keep the preview page up until stopped
SIGNAL_CHECK_S = 0.2  # the main thread waits this long at a time while the page stays up: Python runs a signal's
# handler on the main thread, and a SIGINT the kernel hands to another thread (the page's server, the publishers)
# does not wake an untimed wait; the run then ignored Ctrl-C (seen once in CI)


class StopRequest(threading.Event):
    """Set by a signal handler (or a test) to end the run cleanly; remembers why (`cause`, as data) and says it
    (`reason`, for the end record)."""

    def __init__(self) -> None:
        super().__init__()
        self.cause = EndCause.STOPPED
        self.reason = STOP_REASONS[self.cause]

    def request(self, cause: EndCause = EndCause.STOPPED) -> None:
        if cause not in STOP_REASONS:
            raise ValueError(f"{cause} is not a way to stop a run; use one of {', '.join(map(str, STOP_REASONS))}")
        self.cause, self.reason = cause, STOP_REASONS[cause]
        self.set()


@dataclass
class FaceState:
    window: FaceWindow
    spotter: FaceSpotter
    pending: list[SpottedInterval] = field(default_factory=list)  # spotted, waiting for their window's frames
    last: Prediction | None = None
    dynamic_image: np.ndarray | None = None  # of the last window's raw crops, for the preview


class LivePipeline:
    """One run over one source with one engine; `run` returns the end-of-stream record it published."""

    def __init__(self, config: LiveConfig, engine: Engine, aligner: FaceAligner, source: VideoSource,
                 fanout: PublisherFanout, model_name: str, monitor: LatencyMonitor | None = None,
                 profile: NeutralProfile | None = None):
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
        self.spotter_settings = SpotterSettings(open_z=config.spot_z)
        self.profile = profile
        self._label_choices = [i for i, label in enumerate(self.labels) if label != NONE_LABEL] or \
            list(range(len(self.labels)))
        self.tracker: FaceTracker[FaceState] = FaceTracker(self._new_face, max_faces=config.max_faces,
                                                           lost_after_s=max(0.5, self.window_s))
        self._unix_offset_ns = time.time_ns() - time.monotonic_ns()
        self.frames = 0
        self.events = 0
        self._next_status_ns = 0
        self._next_frame_ns = 0
        self.aligned: HandOver | None = None  # the align -> model hand-over of the current run

    def _new_face(self, face_id: int) -> FaceState:
        """A new face's window (which caches its encoder outputs) and its spotter."""
        model = self.engine.config
        side = model.image_size
        window = FaceWindow(model.frames, self.window_s, model.rank_dim,
                            (side, side) if model.in_chans == 1 else (side, side, 3))
        return FaceState(window, FaceSpotter(self.spotter_settings, self.profile))

    @property
    def baseline(self) -> str:
        """Whose resting noise the spotter's thresholds are in, as status messages and the start line say it."""
        if self.profile is not None:
            return f"profile of {self.profile.user}, never tighter than this stream's running baseline"
        learning = any(track.state.spotter.learning for track in self.tracker.tracks.values())
        return "running baseline (learning)" if learning else "running baseline"

    def run(self, stop: StopRequest) -> EndOfStream:
        """Run the stages until the input ends, `max_frames`, `stop`, or a stage raises; publish fdp/end last."""
        warm_up()
        switch_interval_s = sys.getswitchinterval()
        sys.setswitchinterval(min(switch_interval_s, SWITCH_INTERVAL_S))
        source_state = self.source.state
        self._publish_status()
        self.aligned = HandOver(ALIGNED_CAPACITY, drop_oldest=self.source.live)
        align = AlignStage(self.source, self.aligner, self.aligned, self.monitor)
        align.start()
        reason, cause = stop.reason, stop.cause
        try:
            while not stop.is_set():
                item = self.aligned.get(timeout_s=0.1)
                if item is None:
                    if self.aligned.finished:
                        reason = self.aligned.close_reason or "end of stream"
                        cause = EndCause.FAILED if self.aligned.failed else EndCause.END_OF_STREAM
                        break
                else:
                    self._process(item)
                    if self.config.max_frames is not None and self.frames >= self.config.max_frames:
                        reason, cause = f"max frames ({self.config.max_frames}) reached", EndCause.MAX_FRAMES
                        break
                if self.source.state is not source_state:  # lost, or back: say so now, not at the next second
                    source_state = self.source.state
                    self._publish_status()
                elif time.monotonic_ns() >= self._next_status_ns:
                    self._publish_status()
            else:
                reason, cause = stop.reason, stop.cause
        except Exception as error:  # a bug in the model stage: end the run with it, everything published so far kept
            log.debug("the model stage failed", exc_info=True)
            reason, cause = f"model stage failed ({type(error).__name__}: {error})", EndCause.FAILED
        finally:
            align.stop()
            sys.setswitchinterval(switch_interval_s)
        if cause is not EndCause.FAILED:
            for track in list(self.tracker.tracks.values()):
                track.state.pending += track.state.spotter.finish()
                self._label_intervals(track, final=True)
        self._publish_status()  # the run's final figures, drops included, just before the end
        end = EndOfStream(reason=reason, frames=self.frames, events=self.events, cause=cause)
        self.fanout.publish(end)
        return end

    def _process(self, item: AlignedFrame) -> None:
        frame = item.frame
        self.frames += 1
        wait_model_ms = (time.monotonic_ns() - item.t_aligned_ns) / 1e6
        self.monitor.record_frame(frame.t_capture_ns)
        self.monitor.record_ms("wait_model", wait_model_ms)
        timings = {"wait_align": item.wait_align_ms, "align": item.align_ms, "wait_model": wait_model_ms}
        faces = list(item.faces)
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
        spots = [track.state.spotter.update(frame.image, face.face, frame.media_s, frame.index)
                 for face, track in tracked]
        for (_, track), spot in zip(tracked, spots):
            track.state.pending += spot.intervals
        timings["spot"] = (time.perf_counter() - start) * 1e3
        start = time.perf_counter()
        encoded = self.engine.encode(crops_to_input(np.stack([face.crop for face, _ in tracked])))
        timings["encode"] = (time.perf_counter() - start) * 1e3
        for i, (face, track) in enumerate(tracked):
            track.state.window.push(frame.media_s, frame.index, face.crop, encoded.rank_features[i],
                                    float(encoded.scores[i]))
        time_unix = (frame.t_capture_ns + self._unix_offset_ns) / 1e9
        for _, track in tracked:
            self._label_intervals(track, time_unix=time_unix)
        ready = [(track, spot) for (_, track), spot in zip(tracked, spots) if track.state.window.ready]
        if not ready:
            return
        start = time.perf_counter()
        slots = [track.state.window.resample() for track, _ in ready]
        pooled = np.stack([track.state.window.pooled(s) for (track, _), s in zip(ready, slots)])
        for (track, _), s in zip(ready, slots):
            track.state.dynamic_image = track.state.window.dynamic_image(s)
        timings["pool"] = (time.perf_counter() - start) * 1e3
        start = time.perf_counter()
        head = self.engine.head(pooled)
        timings["head"] = (time.perf_counter() - start) * 1e3
        for (track, spot), probs in zip(ready, head.probs):
            timings["e2e"] = (time.monotonic_ns() - frame.t_capture_ns) / 1e6
            prediction = Prediction(
                face_id=track.face_id, frame_index=frame.index, media_s=frame.media_s,
                t_capture_ns=frame.t_capture_ns, time_unix=time_unix, window_s=self.window_s,
                label=self.labels[int(np.argmax(probs))], probs=dict(zip(self.labels, map(float, probs))),
                motion=spot.score, me_active=spot.active, latency_ms=dict(timings))
            track.state.last = prediction
            self.fanout.publish(prediction)
        for stage in ("spot", "encode", "pool", "head", "e2e"):
            self.monitor.record_ms(stage, timings[stage])

    def _label_intervals(self, track: Track[FaceState], time_unix: float | None = None, final: bool = False) -> None:
        """Classify each spotted interval of a face whose window's frames have all arrived (at the end of the
        stream: every one, with the frames there are), and publish it as an event."""
        state = track.state
        newest_s = state.window.newest_s
        time_unix = time.time() if time_unix is None else time_unix
        while state.pending and (final or state.window.interval_ready(state.pending[0].onset_s,
                                                                      state.pending[0].offset_s)):
            interval = state.pending.pop(0)
            slots = state.window.interval_slots(interval.onset_s, interval.offset_s)
            probs = self.engine.head(state.window.pooled(slots)[None]).probs[0]
            label = max(self._label_choices, key=lambda i: probs[i])
            self._publish_event(MEEvent(
                face_id=track.face_id, onset_frame=interval.onset_frame, apex_frame=interval.apex_frame,
                offset_frame=interval.offset_frame, onset_media_s=interval.onset_s, apex_media_s=interval.apex_s,
                offset_media_s=interval.offset_s, onset_time_unix=time_unix - (newest_s - interval.onset_s),
                offset_time_unix=time_unix - (newest_s - interval.offset_s), duration_s=interval.duration_s,
                label=self.labels[label], probs=dict(zip(self.labels, map(float, probs))),
                peak_motion=interval.peak_z, regions=interval.regions, spotter=SPOTTER_NAME))

    def _publish_event(self, event: MEEvent) -> None:
        self.events += 1
        self.fanout.publish(event)

    def _publish_status(self) -> None:
        self._next_status_ns = time.monotonic_ns() + int(STATUS_PERIOD_S * 1e9)
        snapshot = self.monitor.snapshot()
        drops = {"capture": self.source.dropped_frames, "align": self.aligned.dropped if self.aligned else 0}
        self.fanout.publish(StatusReport(
            labels=self.labels, model=self.model_name, engine=f"{self.engine.name} {self.engine.precision}",
            device=self.engine.device, fps=snapshot.fps, e2e_ms_p50=snapshot.p50_ms["e2e"],
            e2e_ms_p99=snapshot.p99_ms["e2e"], dropped_frames=sum(drops.values()),
            faces=len(self.tracker.tracks), spotter=SPOTTER_NAME, baseline=self.baseline,
            source_state=self.source.state.value, outage_s=round(self.source.outage_s, 3),
            reconnects=self.source.reconnects,
            stage_ms_p50={stage: v for stage, v in snapshot.p50_ms.items() if v is not None},
            stage_ms_p99={stage: v for stage, v in snapshot.p99_ms.items() if v is not None},
            dropped_by_stage=drops))

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


def run_live(config: LiveConfig, stop: StopRequest, log=None, source: VideoSource | None = None) -> EndOfStream:
    """Build everything the run needs (failing fast with one-line errors), run it, and release everything.

    `source` (not yet started) replaces the input the config names: a benchmark's file read as a live camera."""
    record = prepare_recording(config.record) if config.record else None  # before anything starts
    profile = load_user_profile(config)  # before the engine: a wrong profile is one line, at once
    threads = config.threads if config.threads is not None else LIVE_ENGINE_THREADS
    engine, reason = load_engine(config.model, config.engine, device=config.device, threads=threads,
                                 precision=config.precision, compile=config.compile)
    model_name = describe_model(engine, config.model)
    choice = resolve_input(config)
    publishers: list[Publisher] = [ConsoleStatus(show_status=not config.quiet)]
    outputs: list[str] = []
    aligner = fanout = preview = None
    try:
        source = source or VideoSource(choice.spec, realtime=choice.paced, loop=choice.looped, width=config.width,
                                       height=config.height, fps=config.fps, fourcc=config.fourcc,
                                       reconnect=ReconnectPolicy(give_up_s=config.reconnect_s))
        source.start()  # before MediaPipe loads: a bad input fails fast, with its one line alone on stderr
        if not config.headless:
            from realtime.publishers.preview import PreviewPublisher  # imports gradio (about 2 s)

            preview = PreviewPublisher(config.preview_host, config.preview_port)
            publishers.append(preview)
            outputs.append(f"preview {preview.url}")
        if config.zmq != "off":
            publishers.append(ZmqPublisher(config.zmq, send_frames=config.zmq_frames))
            outputs.append(f"zmq {publishers[-1].endpoint}")
        if record is not None:
            try:
                write_bytes(Path(f"{record}.config.json"), config.to_json().encode("utf-8"))
            except OSError as error:
                raise ConfigError(f"{record}.config.json: cannot write the run's config ({error.strerror}); "
                                  "choose another --record path") from None
            publishers.append(JsonlRecorder(record))
            outputs.append(f"recording {record}")
        aligner = FaceAligner(engine.config.aligner, config.landmarker, running_mode="video",
                              max_faces=config.max_faces)
        fanout = PublisherFanout(publishers, source=config.source_name or source.name)
        how = ", ".join(word for word, given in (("paced", choice.paced), ("looped until Ctrl-C", choice.looped))
                        if given)
        (log or print_line)(
            f"FDP Live | model {model_name} | engine {engine.name} {engine.precision} on {engine.device} "
            f"({reason}) | input {source.name}{f' ({how})' if how else ''} | "
            f"{' | '.join(outputs) or 'no outputs'}")
        pipeline = LivePipeline(config, engine, aligner, source, fanout, model_name, profile=profile)
        (log or print_line)(f"spotting: {SPOTTER_NAME}; thresholds in units of the {pipeline.baseline}"
                            + ("" if profile else " (learned from this stream's first idle second; record a "
                               "profile with --calibrate SECONDS --user NAME)") + "; labels: the model, on each "
                            "spotted interval")
        end = pipeline.run(stop)
        if preview is not None and end.cause in HOLD_PAGE_AFTER:
            source.stop()
            fanout.flush()  # the page (and the console) have the end before the line below
            (log or print_line)(f"stream ended ({end.reason}); the preview page stays up at {preview.url}, showing "
                                "the final state, until Ctrl-C")
            while not stop.wait(SIGNAL_CHECK_S):  # an untimed wait sees a signal only if it lands on this thread
                pass
        return end
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
    print(line, file=sys.stderr, flush=True)
