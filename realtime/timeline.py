"""Run the live recognizer over a video file and plot what it published over time: each class's probability,
the spotter's score and the spotted events. The model card's real-video figures come from this.

Usage: python -m realtime.timeline --video single_face.mp4 --out single_face.png [--model models/fdp_live]
"""

from __future__ import annotations

import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fdp.cli import CommandParser, run_main
from realtime import schema
from realtime.live_config import LiveConfig
from realtime.pipeline import StopRequest, run_live


@dataclass(frozen=True)
class Timeline:
    labels: tuple[str, ...]
    model: str
    media_s: np.ndarray  # (N,) of the predictions of face 0
    probs: np.ndarray  # (N, K)
    motion: np.ndarray  # (N,)
    events: list[dict]  # fdp/event payloads
    frames: int


def record_timeline(video: Path, model: str | None = None, engine: str = "onnxruntime") -> Timeline:
    """Every message of one unpaced run over `video` (face 0's predictions, all events)."""
    with tempfile.TemporaryDirectory(prefix="fdp-timeline-") as folder:
        log = Path(folder) / "run.jsonl"
        config = LiveConfig(video=str(video), model=model, engine=engine, zmq="off", record=str(log), headless=True,
                            quiet=True)
        end = run_live(config, StopRequest(), log=lambda line: None)
        messages = [schema.decode_json_line(line) for line in log.read_text().splitlines()]
    status = next(m.payload for m in messages if m.topic == schema.TOPIC_STATUS)
    labels = tuple(status["labels"])
    predictions = [m.payload for m in messages if m.topic == schema.TOPIC_PREDICTION and m.payload["face_id"] == 0]
    return Timeline(
        labels=labels, model=status["model"],
        media_s=np.array([p["media_s"] for p in predictions]),
        probs=np.array([[p["probs"][label] for label in labels] for p in predictions]).reshape(-1, len(labels)),
        motion=np.array([p["motion"] for p in predictions]),
        events=[m.payload for m in messages if m.topic == schema.TOPIC_EVENT], frames=end.frames)


def plot_timeline(timeline: Timeline, title: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 5), sharex=True, height_ratios=(2, 1))
    for index, label in enumerate(timeline.labels):
        top.plot(timeline.media_s, timeline.probs[:, index], label=label, lw=1.2)
    for event in timeline.events:
        for axis in (top, bottom):
            axis.axvspan(event["onset_media_s"], max(event["offset_media_s"], event["onset_media_s"] + 0.03),
                         color="red", alpha=0.2)
        top.text(event["onset_media_s"], 1.02, event["label"], color="red", fontsize=7, rotation=45)
    top.set_ylim(0, 1.1)
    top.set_ylabel("probability")
    top.legend(loc="upper right", fontsize=8, ncol=len(timeline.labels))
    bottom.plot(timeline.media_s, timeline.motion, color="k", lw=1)
    bottom.set_ylabel("spotter score (resting SD)")
    bottom.set_xlabel("video time (s)")
    figure.suptitle(f"{title}\n" + textwrap.fill(timeline.model, 120), fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = CommandParser(prog="python -m realtime.timeline", description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--model", default=None, help="model folder (default: the bundled model)")
    parser.add_argument("--engine", default="onnxruntime", choices=("onnxruntime", "torch"))
    args = parser.parse_args(argv)
    timeline = record_timeline(args.video, args.model, args.engine)
    plot_timeline(timeline, f"{args.video.name}: {timeline.frames} frames, {len(timeline.events)} event(s)",
                  args.out)
    shares = ", ".join(f"{label} {share:.0%}" for label, share in
                       zip(timeline.labels, np.bincount(timeline.probs.argmax(1), minlength=len(timeline.labels))
                           / max(1, len(timeline.probs))))
    print(f"wrote {args.out}: {len(timeline.media_s)} windows (top class: {shares}); {len(timeline.events)} event(s)")
    for event in timeline.events:
        print(f"  {event['onset_media_s']:.2f}-{event['offset_media_s']:.2f} s {event['label']} "
              f"(p {event['probs'][event['label']]:.2f}, peak motion {event['peak_motion']:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
