"""The one way every entry point reads its command line and turns expected failures into a single line.

`CommandParser` is the argparse parser of every command: a usage error is one line naming the fix (exit 2), not
the usage block. `run_main` runs a command: an `FDPError` is one line (exit 1), Ctrl-C exits 130 quietly.
`run_command` does the same for an installed command (`[project.scripts]`, e.g. `fdp-train`), whose help and
usage lines then carry that name instead of `python -m fdp.train`.

A command's options come from its frozen config dataclass, one way for every command: a field that carries
`option(help)` metadata becomes `--field-name`, with its type read from the annotation and its default from the
field (no default: a required option); `add_config_options` adds them and `config_from_args` builds the config by
keyword, so a field and its option can never drift apart and `__post_init__` checks what the user typed.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NoReturn, TypeVar

from fdp.errors import FDPError

_REQUIRED = "the following arguments are required: "
_UNRECOGNIZED = "unrecognized arguments: "
_command_name: str | None = None  # the installed command this process runs as (set by run_command), if any
_OPTION = "fdp.cli.option"  # the field-metadata key of an option
Config = TypeVar("Config")


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


@dataclass(frozen=True)
class Option:
    """How a config field reads from the command line (see `option`)."""

    help: str
    flag: str | None = None
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    many: Literal["comma", "repeat", "spaces"] | None = None


def option(help: str, *, flag: str | None = None, metavar: str | None = None,
           choices: Sequence[str] | None = None,
           many: Literal["comma", "repeat", "spaces"] | None = None) -> dict[str, Option]:
    """Field metadata that makes a config field an option: `epochs: int = field(default=30, metadata=option(...))`.

    flag: the option's name when it is not `--field-name` (`--dataset` for `datasets`). A tuple field takes its
    values `many` ways: 'comma' (`--folds 0,3`), 'repeat' (`--dataset a --dataset b`) or 'spaces' (`--fps 30 200`).
    A bool field is a switch: `--name` when it defaults to False, `--no-name` when it defaults to True."""
    return {_OPTION: Option(help, flag, metavar, tuple(choices) if choices is not None else None, many)}


def add_config_options(parser: argparse.ArgumentParser, config_type: type) -> None:
    """Add an option for every field of `config_type` that carries `option(...)` metadata."""
    hints = typing.get_type_hints(config_type)
    for field in dataclasses.fields(config_type):
        spec = field.metadata.get(_OPTION)
        if spec is None:
            continue
        value_type = _without_none(hints[field.name])
        default = _field_default(field)
        kwargs: dict[str, Any] = {"dest": field.name, "help": _help_text(spec.help, default)}
        name = field.name.replace("_", "-")
        if value_type is bool:
            flag = spec.flag or (f"--no-{name}" if default is True else f"--{name}")
            parser.add_argument(flag, action="store_false" if default is True else "store_true", **kwargs)
            continue
        if typing.get_origin(value_type) is tuple:
            value_type = typing.get_args(value_type)[0]
            if spec.many is None:
                raise TypeError(f"{config_type.__name__}.{field.name}: a tuple option needs many=")
            if spec.many == "comma":
                kwargs["type"] = _comma_list(value_type)
            elif spec.many == "repeat":
                kwargs |= {"type": value_type, "action": "append"}
            else:
                kwargs |= {"type": value_type, "nargs": "+"}
        else:
            kwargs["type"] = value_type
        if default is dataclasses.MISSING:
            kwargs["required"] = True
        else:
            kwargs["default"] = None if spec.many == "repeat" else default
        if spec.choices is not None:
            kwargs["choices"] = spec.choices
        flag = spec.flag or f"--{name}"
        if spec.metavar is not None or spec.choices is None:  # `--root ROOT`, not argparse's `--root ROOTS`
            kwargs["metavar"] = spec.metavar or flag.removeprefix("--").replace("-", "_").upper()
        parser.add_argument(flag, **kwargs)


def config_from_args(config_type: type[Config], args: argparse.Namespace, **given: Any) -> Config:
    """The config built by keyword from the options `add_config_options` added, and `given` (fields not read from
    an option of their own, e.g. a nested config)."""
    values = dict(given)
    for field in dataclasses.fields(config_type):  # type: ignore[arg-type]
        if _OPTION not in field.metadata or field.name in given:
            continue
        value = getattr(args, field.name)
        if isinstance(value, list):  # 'repeat' and 'spaces' options give lists; the frozen configs hold tuples
            value = tuple(value)
        elif value is None and field.metadata[_OPTION].many == "repeat":
            value = _field_default(field)  # never repeated: the field's own default
        values[field.name] = value
    return config_type(**values)


def _without_none(annotation: Any) -> Any:
    """`X | None` -> X: None is an option's default, never a value typed on the command line."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        (inner,) = [a for a in typing.get_args(annotation) if a is not type(None)]
        return inner
    return annotation


def _field_default(field: dataclasses.Field) -> Any:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def _help_text(text: str, default: Any) -> str:
    """The help, with the default shown unless it says nothing (None, a switch, empty) or the help names it."""
    text = text.replace("%", "%%")  # argparse formats help with %
    if default is None or isinstance(default, bool) or default in ("", ()) or default is dataclasses.MISSING \
            or "default" in text:
        return text
    values = default if isinstance(default, tuple) else (default,)
    shown = " ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)
    return f"{text} (default {shown.replace('%', '%%')})"


def _comma_list(element: Callable[[str], Any]) -> Callable[[str], tuple[Any, ...]]:
    def parse(text: str) -> tuple[Any, ...]:
        return tuple(element(part.strip()) for part in text.split(",") if part.strip())

    parse.__name__ = "comma-separated list"  # argparse names the type in its error
    return parse
