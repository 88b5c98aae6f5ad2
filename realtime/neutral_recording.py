"""`run_live.py --calibrate SECONDS --user NAME`: record a user's neutral face into a profile for the spotter.

The same capture, aligner and spotting features as a live run, with the reference frame always lagged (as at
rest); frames where no face is found are skipped and counted. The prompt goes to the console and, unless
--headless, to the preview page (on the frame and as the page's notice) with the seconds left. Blinks are
counted, not removed: the profile is how this person rests, blinks included, and the spotter's statistics are
robust to them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from calibration.neutral import NeutralProfile, load_profile, new_profile, profile_path
from fdp.align import FaceAligner
from fdp.config import ALIGNER_VERSION, AlignerSettings
from fdp.errors import CameraError
from realtime.annotate import annotate
from realtime.capture import ReconnectPolicy, VideoSource
from realtime.frames import AnnotatedFrame, Frame, StatusReport
from realtime.live_config import LiveConfig, resolve_input
from realtime.publishers.base import PublisherFanout
from realtime.spotting import FEATURE_NAMES, SPOTTER_NAME, SPOTTER_VERSION, FaceSpotter, SpotterSettings

PROMPT = "Calibrating: look at the camera, relax your face and blink normally"
_BLINK = FEATURE_NAMES.index("blink")
PAGE_FRAMES_PER_S = 5.0


class CalibrationPage:
    """The preview page during a calibration: the camera frame with the prompt and the seconds left on it."""

    def __init__(self, config: LiveConfig, source_name: str) -> None:
        from realtime.publishers.preview import PreviewPublisher  # imports gradio (about 2 s)

        self.preview = PreviewPublisher(config.preview_host, config.preview_port)
        self.fanout = PublisherFanout([self.preview], source=source_name)
        self.user = str(config.user)
        self._next_s = 0.0

    def show(self, frame: Frame, box: tuple[float, float, float, float] | None, left_s: float, fps: float) -> None:
        if frame.media_s < self._next_s:
            return
        self._next_s = frame.media_s + 1.0 / PAGE_FRAMES_PER_S
        note = f"{PROMPT}: {max(0.0, left_s):.0f} s left"
        self.fanout.publish(AnnotatedFrame(frame_index=frame.index, t_capture_ns=frame.t_capture_ns,
                                           image=annotate(frame.image, {0: box} if box else {}, {}, {}, note)))
        self.fanout.publish(StatusReport(
            labels=(), model=f"recording the neutral profile of {self.user}. {PROMPT} ({left_s:.0f} s left)",
            engine="none", device="cpu", fps=fps, e2e_ms_p50=None, e2e_ms_p99=None, dropped_frames=0,
            faces=int(box is not None), spotter=SPOTTER_NAME, baseline=f"profile of {self.user}, being recorded"))

    def close(self) -> None:
        self.fanout.close()


def profiles_folder(config: LiveConfig) -> Path | None:
    return Path(config.profiles).expanduser() if config.profiles else None


def load_user_profile(config: LiveConfig) -> NeutralProfile | None:
    """The --user profile for a live run (None without --user), refused in one line if it does not fit."""
    if config.user is None:
        return None
    return load_profile(profile_path(config.user, profiles_folder(config)), FEATURE_NAMES, ALIGNER_VERSION,
                        SPOTTER_VERSION)


def record_profile(config: LiveConfig, stop: threading.Event, log: Callable[[str], None]) -> Path | None:
    """Record `config.calibrate` seconds of one face, write the profile, and return its path; None when `stop`
    came first (Ctrl-C, SIGTERM): then nothing is written, and that is said, not raised."""
    path = profile_path(str(config.user), profiles_folder(config))
    spec, paced, looped = resolve_input(config)
    settings = SpotterSettings(open_z=config.spot_z)
    spotter = FaceSpotter(settings)
    samples: list[np.ndarray] = []
    first_s = last_s = None
    blinks, blinking, no_face = 0, False, 0
    source = VideoSource(spec, realtime=paced, loop=looped, width=config.width, height=config.height,
                         fps=config.fps, fourcc=config.fourcc, reconnect=ReconnectPolicy(give_up_s=config.reconnect_s))
    source.start()
    page = None
    try:
        if not config.headless:
            page = CalibrationPage(config, source.name)
        # landmarks only: the spotter cuts its own crops, so the aligner's crop settings do not matter here
        with FaceAligner(AlignerSettings(), config.landmarker, running_mode="video") as aligner:
            log(f"{PROMPT} ({config.calibrate:g} s, input {source.name}, profile {path}"
                + (f", page {page.preview.url}" if page else "") + ")")
            while not stop.is_set():
                frame = source.read(timeout_s=0.1)
                if frame is None:
                    if source.ended:
                        break
                    continue
                faces = aligner.detect(frame.image, timestamp_ms=int(round(frame.media_s * 1000)))
                if page is not None:
                    elapsed = 0.0 if first_s is None else frame.media_s - first_s
                    page.show(frame, faces[0].bbox if faces else None, config.calibrate - elapsed,
                              len(samples) / max(elapsed, 1e-9) if elapsed else 0.0)
                if not faces:
                    no_face += 1
                    continue
                features, _ = spotter.features(frame.image, faces[0], frame.media_s, frame.index)
                first_s = frame.media_s if first_s is None else first_s
                last_s = frame.media_s
                if features is not None:
                    samples.append(features)
                    closed = features[_BLINK] >= settings.blink_min
                    blinks += int(closed and not blinking)
                    blinking = closed
                if last_s - first_s >= config.calibrate:
                    break
    finally:
        source.stop()
        if page is not None:
            page.close()
    seconds = 0.0 if first_s is None else last_s - first_s
    if stop.is_set() and seconds < config.calibrate:
        log(f"calibration stopped before {config.calibrate:g} s of a face were recorded; no profile written")
        return None
    if len(samples) < 10 or seconds < 0.8 * config.calibrate:
        raise CameraError(f"calibration got {seconds:.1f} s of a face ({len(samples)} frames, {no_face} without a "
                          f"face) of the {config.calibrate:g} s asked; sit in view of the camera, in even light, "
                          "and run --calibrate again")
    profile = new_profile(str(config.user), FEATURE_NAMES, np.stack(samples), blinks, seconds, ALIGNER_VERSION,
                          SPOTTER_VERSION, source.name)
    profile.save(path)
    log(f"profile of {config.user} written to {path}: {len(samples)} frames over {seconds:.1f} s, "
        f"{profile.blinks_per_min:.0f} blinks/min; use it with --user {config.user}")
    return path

