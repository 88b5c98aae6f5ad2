"""Spot and recognize facial micro-expressions live: `python run_live.py --camera 0` (or --video FILE, --demo).

The same command as the installed `fdp-live` (see `realtime/cli.py`, and `--help`). `python run_live.py --calibrate
20 --user NAME` (or `fdp-calibrate`) records NAME's neutral face first; `--user NAME` then puts the spotter's
thresholds in units of that person's resting noise. Results go out over ZeroMQ (tcp://127.0.0.1:5555, see
`fdp-subscribe`), to a JSONL log with --record, and to the console. Ctrl-C or SIGTERM stop cleanly: the log is
complete and ends with fdp/end.
"""

from __future__ import annotations

import sys

from fdp.cli import run_main
from realtime.cli import main

if __name__ == "__main__":
    sys.exit(run_main(main))
