"""Every user-facing error of FDP Live, in one tree.

An `FDPError` is an expected failure the user can fix: its message is one line that says what failed, where,
and what to do. Entry points print it without a traceback (see `fdp.cli.run_main`); anything else is a bug
and keeps its traceback.
"""


class FDPError(Exception):
    """Base of the expected, user-fixable failures."""


class ConfigError(FDPError):
    """A setting or command-line option that cannot work."""


class CameraError(FDPError):
    """A camera, device path or stream that cannot be opened or read."""


class VideoError(FDPError):
    """A video file that is missing, unreadable or corrupt."""


class DatasetLayoutError(FDPError):
    """A dataset folder or annotation sheet that is not in the layout its distribution ships."""


class ModelFileError(FDPError):
    """A checkpoint, ONNX graph, engine cache or face-landmarker file that is missing, wrong or foreign."""


class EngineError(FDPError):
    """An inference backend that is absent, or cannot run the model on this machine."""


def first_line(error: BaseException, limit: int = 200) -> str:
    """A library's exception as a short phrase for one of our one-line messages: its first non-empty line, cut to
    `limit` characters (its type name when it says nothing)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0][:limit] if lines else type(error).__name__
