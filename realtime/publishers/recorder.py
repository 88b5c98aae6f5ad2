"""Record every message of a run as JSON lines, flushed one by one, so a crash or SIGTERM loses nothing written.

Each line is `{"topic": ..., "payload": {...}}` (`realtime.schema.Message.to_json_line`; the JPEG of an
`fdp/frame` is left out). `realtime.schema.decode_json_line` reads a line back and validates it. The fan-out
guarantees the end-of-stream record is the last one.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from fdp.errors import ConfigError
from fdp.io import output_folder
from realtime.schema import Message

log = logging.getLogger(__name__)


def prepare_recording(path: str | Path) -> Path:
    """Check a --record path before anything starts (its folder created, as every command's output folder is), so
    an unwritable one is one line at once, not a failure after the engine, camera and page are up."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: a folder, not a file; give --record a file path such as {path / 'run.jsonl'}")
    output_folder(path.parent, "--record")
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"{path}: this file is not writable; choose another --record path")
    return path


class JsonlRecorder:
    """Append each message to a JSONL file and flush it to the operating system at once."""

    def __init__(self, path: str | Path, *, append: bool = False) -> None:
        self.path = Path(path)
        self.name = f"jsonl {self.path}"
        try:
            if not self.path.parent.exists():
                self.path.parent.mkdir(parents=True)
            self._file = open(self.path, "a" if append else "w", encoding="utf-8")
        except OSError as error:
            raise ConfigError(f"{self.path}: cannot write the recording ({error.strerror}); choose another "
                              "--record path") from None
        self.lines_written = 0

    @property
    def closed(self) -> bool:
        return self._file.closed

    def publish(self, message: Message) -> None:
        """Write one line and flush it: a reader (or a crash) sees every message already published."""
        if self._file.closed:
            raise RuntimeError(f"{self.name}: publish() after close()")
        self._file.write(message.to_json_line() + "\n")
        self._file.flush()
        self.lines_written += 1

    def close(self) -> None:
        """Flush and fsync once, so the finished recording also survives a power cut, then close."""
        if self._file.closed:
            return
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as error:
            log.warning("%s: could not sync the recording to disk: %s", self.path, error)
        finally:
            self._file.close()
