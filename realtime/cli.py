"""The live command: `fdp-live` (or `python run_live.py`) spots and recognizes micro-expressions on a camera, a video
file, a stream URL or the demo video; `fdp-calibrate` (`run_live.py --calibrate SECONDS --user NAME`) records a
user's neutral face first. Also the installed `fdp-subscribe`, `fdp-json-schema` and `fdp-timeline`.

Ctrl-C or SIGTERM stop cleanly: the log is complete and ends with fdp/end; the exit status reads the end's
`cause` (Ctrl-C: 130, else 0), never the wording of its reason. The command line is read before anything heavy is
imported, so a usage or range error is one line at once.
"""

from __future__ import annotations

import argparse
import signal

from fdp.cli import run_command
from realtime.frames import EndCause
from realtime.live_config import build_parser, parse_config

CALIBRATE_DESCRIPTION = ("Record a person's neutral face into a profile for the spotter (the same as run_live.py "
                         "--calibrate SECONDS --user NAME); use it with fdp-live --user NAME.")


def exit_status(cause: EndCause) -> int:
    """The exit status a run ends with: 130 after Ctrl-C, as shells expect of an interrupted command; 1 when a
    stage failed (its reason was the last line); else 0."""
    return 130 if cause is EndCause.INTERRUPTED else 1 if cause is EndCause.FAILED else 0


def main(argv: list[str] | None = None, parser: argparse.ArgumentParser | None = None,
         calibrate_only: bool = False) -> int:
    """Run live (or, with --calibrate, record a profile) until the input ends or a signal stops it."""
    parser = parser or build_parser()
    config = parse_config(argv, parser)
    if calibrate_only and config.calibrate is None:
        parser.error("the following arguments are required: --calibrate SECONDS")
    from realtime.neutral_recording import record_profile  # the heavy imports: MediaPipe, ONNX Runtime, OpenCV
    from realtime.pipeline import StopRequest, print_line, run_live

    stop = StopRequest()
    signal.signal(signal.SIGTERM, lambda *_: stop.request(EndCause.TERMINATED))
    signal.signal(signal.SIGINT, lambda *_: stop.request(EndCause.INTERRUPTED))
    if config.calibrate is not None:
        record_profile(config, stop, print_line)
        return exit_status(stop.cause) if stop.is_set() else 0
    end = run_live(config, stop)
    # A signal after the end (the preview page kept up) is how the command was stopped: it sets the status.
    return exit_status(stop.cause if stop.is_set() else end.cause)


def calibrate_main(argv: list[str] | None = None) -> int:
    """`fdp-calibrate`: the live command's line, with --calibrate SECONDS required."""
    return main(argv, build_parser(prog="fdp-calibrate", description=CALIBRATE_DESCRIPTION), calibrate_only=True)


def live() -> int:
    return run_command(main, "fdp-live")


def calibrate() -> int:
    return run_command(calibrate_main, "fdp-calibrate")


def subscribe() -> int:
    from realtime.subscribe import main as subscribe_main

    return run_command(subscribe_main, "fdp-subscribe")


def json_schema() -> int:
    from realtime.json_schema import main as schema_main

    return run_command(schema_main, "fdp-json-schema")


def timeline() -> int:
    from realtime.timeline import main as timeline_main

    return run_command(timeline_main, "fdp-timeline")
