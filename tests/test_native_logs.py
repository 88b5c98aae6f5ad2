"""Native start-up chatter is held back; every other line written to fd 2 still reaches stderr."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import os
from fdp.native_logs import quiet_native_logs
with quiet_native_logs():
    os.write(2, b"W0000 00:00:1795579647.551245   23044 face_landmarker_graph.cc:181] Sets acceleration.\\n")
    os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n")
    os.write(2, b"E1125 real failure: the model file is damaged\\n")
os.write(2, b"after\\n")
"""


def test_quiet_native_logs_drops_chatter_keeps_other_lines():
    result = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True)
    assert result.stderr.splitlines() == ["E1125 real failure: the model file is damaged", "after"]
