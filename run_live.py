"""Spot and recognize facial micro-expressions live: `python run_live.py --camera 0` (or --video FILE, --demo).

`python run_live.py --calibrate 20 --user NAME` records NAME's neutral face first; `--user NAME` then puts the
spotter's thresholds in units of that person's resting noise. Results go out over ZeroMQ (tcp://127.0.0.1:5555, see `python -m realtime.subscribe`), to a JSONL log with
--record, and to the console. Ctrl-C or SIGTERM stop cleanly: the log is complete and ends with fdp/end.
"""

from __future__ import annotations

import signal
import sys

from fdp.cli import run_main
from realtime.live_config import parse_config
from realtime.neutral_recording import record_profile
from realtime.pipeline import StopRequest, print_line, run_live


def main(argv: list[str] | None = None) -> int:
    config = parse_config(argv)
    stop = StopRequest()
    signal.signal(signal.SIGTERM, lambda *_: stop.request("stopped by SIGTERM"))
    signal.signal(signal.SIGINT, lambda *_: stop.request("stopped by Ctrl-C"))
    if config.calibrate is not None:
        record_profile(config, stop, print_line)
        return 130 if stop.reason == "stopped by Ctrl-C" else 0
    end = run_live(config, stop)
    return 130 if end.reason == "stopped by Ctrl-C" else 0


if __name__ == "__main__":
    sys.exit(run_main(main))
