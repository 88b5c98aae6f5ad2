"""The one way every entry point reads its command line and turns expected failures into a single line.

`CommandParser` is the argparse parser of every command: a usage error is one line naming the fix (exit 2), not
the usage block. `run_main` runs a command: an `FDPError` is one line (exit 1), Ctrl-C exits 130 quietly.
`run_command` does the same for an installed command (`[project.scripts]`, e.g. `fdp-train`), whose help and
usage lines then carry that name instead of `python -m fdp.train`.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from fdp.errors import FDPError

_REQUIRED = "the following arguments are required: "
_UNRECOGNIZED = "unrecognized arguments: "
_command_name: str | None = None  # the installed command this process runs as (set by run_command), if any


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _number(text: str) -> float:
    """A float option: `nan` and `inf` parse as floats but no option of ours means them."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


class CommandParser(argparse.ArgumentParser):
    """argparse with one-line usage errors: `--max-faces: expected an integer, got 'x'`, `--engine: 'tensorrt'
    is not one of auto, onnxruntime, torch`. `type=int` and `type=float` options get these checks by themselves."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if _command_name is not None:  # run as an installed command: its usage lines carry the name typed
            kwargs["prog"] = _command_name
        super().__init__(*args, **kwargs)
        self.register("type", int, _integer)  # the registry is shared with argument groups, so they get it too
        self.register("type", float, _number)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {self._usage_line(message)}\n")

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        # argparse's own check of `choices`, overridden for its message (which also changes between versions).
        if action.choices is not None and value not in action.choices:
            raise argparse.ArgumentError(action, f"{value!r} is not one of {', '.join(map(str, action.choices))}")

    def _usage_line(self, message: str) -> str:
        if message.startswith(_REQUIRED):
            return f"missing {message.removeprefix(_REQUIRED)}; see {self.prog} --help"
        if message.startswith(_UNRECOGNIZED):
            unknown = message.removeprefix(_UNRECOGNIZED)
            return f"unknown argument{'s' if ' ' in unknown else ''} {unknown}; see {self.prog} --help"
        return message.removeprefix("argument ").replace(": not allowed with argument ", ": not allowed with ")


def run_main(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> int:
    """Run `main`; print an `FDPError` as one line on stderr (exit 1); Ctrl-C exits 130 quietly."""
    try:
        return int(main(argv) or 0)
    except FDPError as error:
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def run_command(main: Callable[[list[str] | None], int | None], name: str) -> int:
    """Run `main` as the installed command `name`: `run_main`, with every CommandParser's prog set to `name`."""
    global _command_name
    _command_name = name
    return run_main(main)
