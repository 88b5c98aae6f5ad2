"""Copy a long-video set with every video re-encoded the way real footage is stored: H.264 (libx264, through the
ffmpeg that imageio-ffmpeg ships: a keyframe every few seconds, B-frames, a CRF quality), or OpenCV's own MPEG-4
writer (`mp4v`), as many Python scripts save video.

Why: `fdp.synthesis.long_videos` writes MJPG, every frame coded on its own; phones, webcam recorders and streams
code each frame against the ones before it. That moves texture in ways a per-frame codec never does (a keyframe
re-draws all of it at once; at low quality a small motion's return to rest may not be coded until the next
keyframe), and a spotter that reads sub-pixel motion must be measured on it too (docs/STATUS.md). The ground truth
is copied with the new file name and codec; every video is read back and must hold its frames, frame for frame.

    python -m fdp.synthesis.recode --source data/spotting_v10/heldout --out data/spotting_v10_crf23/heldout --crf 23
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2

from fdp.cli import CommandParser, add_config_options, config_from_args, option, run_main
from fdp.errors import ConfigError, VideoError
from fdp.synthesis.long_videos import INDEX_FORMAT, TRUTH_FORMAT

CODECS: tuple[str, ...] = ("h264", "mp4v")
RECODE_FORMAT = "fdp-recoded-set/1"


@dataclass(frozen=True)
class RecodeConfig:
    """One re-encoding of a set; written into the new set's index.json."""

    source: Path = dataclasses.field(metadata=option("long-video set to copy (a folder with index.json)"))
    out: Path = dataclasses.field(metadata=option("folder to write (must not hold a set already)"))
    codec: str = dataclasses.field(default="h264", metadata=option(
        "h264: libx264 with --crf, --keyframe-s and two B-frames; mp4v: OpenCV's MPEG-4 writer at its defaults",
        choices=CODECS))
    crf: int = dataclasses.field(default=23, metadata=option(
        "h264 quality, 0 (lossless) to 51; 23 is ffmpeg's default, 28 a small file"))
    keyframe_s: float = dataclasses.field(default=2.0, metadata=option(
        "h264: seconds between keyframes (webcam recorders and streams use 1-10)"))
    preset: str = dataclasses.field(default="veryfast", metadata=option("h264: the x264 speed preset"))

    def __post_init__(self) -> None:
        if not 0 <= self.crf <= 51:
            raise ConfigError(f"--crf {self.crf}: use 0 (lossless) to 51")
        if self.keyframe_s <= 0:
            raise ConfigError(f"--keyframe-s {self.keyframe_s:g}: use a positive number of seconds")

    def describe(self) -> str:
        """The codec as the truth's `codec` field says it."""
        if self.codec == "mp4v":
            return "MPEG-4 Part 2 MP4, OpenCV VideoWriter fourcc mp4v, default quality"
        return (f"H.264 MP4 (libx264 {self.preset}, CRF {self.crf}, a keyframe every {self.keyframe_s:g} s, "
                "2 B-frames, yuv420p)")


def ffmpeg_exe() -> str:
    """The ffmpeg binary imageio-ffmpeg ships (with libx264)."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise ConfigError("--codec h264 needs the ffmpeg that imageio-ffmpeg ships: pip install imageio-ffmpeg, "
                          "or use --codec mp4v") from None
    return imageio_ffmpeg.get_ffmpeg_exe()


def count_frames(path: Path) -> int:
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.grab():
        count += 1
    capture.release()
    return count


def recode_video(source: Path, out: Path, fps: float, config: RecodeConfig) -> None:
    """Re-encode one video into `out` (.mp4) at `fps`."""
    if config.codec == "h264":
        command = [ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(source), "-c:v", "libx264", "-preset",
                   config.preset, "-crf", str(config.crf), "-g", str(max(1, round(config.keyframe_s * fps))),
                   "-bf", "2", "-pix_fmt", "yuv420p", "-r", f"{fps:g}", "-an", str(out)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise VideoError(f"{source}: ffmpeg could not re-encode it ({last})")
        return
    capture, writer = cv2.VideoCapture(str(source)), None
    while (got := capture.read())[0]:
        if writer is None:
            height, width = got[1].shape[:2]
            writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
        writer.write(got[1])
    capture.release()
    if writer is None:
        raise VideoError(f"{source}: OpenCV reads no frame from it; make the set again")
    writer.release()


def recode_set(config: RecodeConfig, log: Callable[[str], object] = print) -> Path:
    """Write the re-encoded copy of `config.source` into `config.out`; returns the new index path."""
    index_path = config.source / "index.json"
    try:
        index = json.loads(index_path.read_text())
        if index.get("format") != INDEX_FORMAT:
            raise ValueError(f"format {index.get('format')!r}, not {INDEX_FORMAT}")
    except (OSError, ValueError) as error:
        raise ConfigError(f"--source {config.source}: not a long-video set ({error}); point it at a folder that "
                          "python -m fdp.synthesis.long_videos wrote") from None
    if (config.out / "index.json").exists():
        raise ConfigError(f"{config.out} already holds a long-video set (index.json); choose a new --out or delete it")
    config.out.mkdir(parents=True, exist_ok=True)
    videos = []
    for number, entry in enumerate(index["videos"], start=1):
        truth = json.loads((config.source / entry["truth"]).read_text())
        if truth.get("format") != TRUTH_FORMAT:
            raise ConfigError(f"{config.source / entry['truth']}: not a long-video ground truth")
        out = config.out / f"{Path(entry['video']).stem}.mp4"
        recode_video(config.source / entry["video"], out, float(truth["fps"]), config)
        found = count_frames(out)
        if found != int(truth["n_frames"]):
            raise VideoError(f"{out}: reads back as {found} frames, not {truth['n_frames']}; this codec or OpenCV "
                             "build drops or adds frames: try the other --codec")
        truth |= {"video": out.name, "codec": config.describe()}
        (config.out / entry["truth"]).write_text(json.dumps(truth, indent=1))
        videos.append(entry | {"video": out.name})
        log(f"[{number}/{len(index['videos'])}] {out.name}: {out.stat().st_size / 1024:.0f} KiB")
    record = index | {"videos": videos, "recoded": {"format": RECODE_FORMAT, "from": str(config.source),
                                                     "codec": config.describe(),
                                                     "config": dataclasses.asdict(config) | {
                                                         "source": str(config.source), "out": str(config.out)}}}
    (config.out / "index.json").write_text(json.dumps(record, indent=1))
    log(f"wrote {len(videos)} videos to {config.out} ({config.describe()})")
    return config.out / "index.json"


def _parse(argv: list[str] | None) -> RecodeConfig:
    parser = CommandParser(prog="python -m fdp.synthesis.recode", description=__doc__.splitlines()[0])
    add_config_options(parser, RecodeConfig)
    return config_from_args(RecodeConfig, parser.parse_args(argv))


def main(argv: list[str] | None = None) -> int:
    recode_set(_parse(argv), log=lambda line: print(line, flush=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
