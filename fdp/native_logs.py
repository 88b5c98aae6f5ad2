"""Keep native libraries' start-up chatter off the user's terminal, without hiding anything else.

MediaPipe 1.2.2's C++ side writes lines such as `W0000 ... Feedback manager requires a model with a single
signature inference` and `INFO: Created TensorFlow Lite XNNPACK delegate for CPU` straight to file descriptor 2
when a landmarker starts and runs for the first time; no environment variable silences them (GLOG_minloglevel,
ABSL_MIN_LOG_LEVEL and TF_CPP_MIN_LOG_LEVEL were tried). `quiet_native_logs` holds fd 2 for that moment only and
passes on every line that is not such chatter, so real errors still reach stderr.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

# glog/absl lines look like "W0000 00:00:1795579647.551245   23044 face_landmarker_graph.cc:181] ..."
CHATTER = re.compile(r"^(WARNING: Logging before InitGoogle\(\)|[WI]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] |"
                     r"INFO: Created TensorFlow Lite)")


@contextmanager
def quiet_native_logs() -> Iterator[None]:
    """Capture fd 2 for the duration; afterwards write back every captured line that is not known chatter."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            kept = [line for line in sink.read().decode("utf-8", "replace").splitlines() if not CHATTER.match(line)]
            if kept:
                print("\n".join(kept), file=sys.stderr, flush=True)
