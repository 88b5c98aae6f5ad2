"""One way to build a command from a frozen config (fdp.cli.option / add_config_options / config_from_args): every
setting of every command config is an option whose help lives on the field, and a parsed command line gives the
same config as one built by keyword."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fdp.cli import CommandParser, add_config_options, config_from_args, option
from fdp.evaluate import EvaluateConfig
from fdp.evaluate import parse_args as parse_evaluate
from fdp.preprocess import PreprocessConfig
from fdp.preprocess import parse_args as parse_preprocess
from fdp.synthesis.clip_plan import Ranges
from fdp.synthesis.long_videos import LongVideoConfig
from fdp.synthesis.long_videos import _parse as parse_long_videos
from fdp.synthesis.synthetic import SynthConfig
from fdp.synthesis.synthetic import _parse as parse_synthetic
from fdp.train import parse_args as parse_train
from fdp.train_config import TrainConfig
from realtime.live_config import LiveConfig, build_parser, parse_config

# Fields that no option sets: nested configs filled from their own options, or settings that travel in a model.
NOT_OPTIONS = {SynthConfig: {"ranges", "aligner"}}


@pytest.mark.parametrize("config_type", [LiveConfig, TrainConfig, EvaluateConfig, PreprocessConfig, SynthConfig,
                                         Ranges, LongVideoConfig], ids=lambda t: t.__name__)
def test_config_options_every_field_carries_its_option_and_help(config_type):
    bare = {f.name for f in dataclasses.fields(config_type) if "fdp.cli.option" not in f.metadata}
    assert bare == NOT_OPTIONS.get(config_type, set())
    assert all(f.metadata["fdp.cli.option"].help for f in dataclasses.fields(config_type) if f.name not in bare)


def test_config_options_train_command_line_equals_keyword_config(tmp_path):
    first, second = tmp_path / "casme2", tmp_path / "samm"
    first.mkdir()
    second.mkdir()
    config, progress = parse_train(["--dataset", "casme2", "--root", str(first), "--dataset", "samm", "--root",
                                    str(second), "--folds", "0, sub04", "--no-augment", "--lr", "0.01", "--quiet"])
    assert config == TrainConfig(datasets=("casme2", "samm"), roots=(first, second), folds=("0", "sub04"),
                                 augment=False, lr=0.01)
    assert progress is False


def test_config_options_other_commands_equal_keyword_configs(tmp_path):
    assert parse_evaluate(["--run", str(tmp_path), "--subjects", "sub01,sub02"]) == EvaluateConfig(
        run=tmp_path, subjects=("sub01", "sub02"))
    assert parse_preprocess(["--dataset", "casme2", "--root", str(tmp_path), "--workers", "1"]) == PreprocessConfig(
        datasets=("casme2",), roots=(tmp_path,), workers=1)
    assert parse_synthetic(["--out", "x", "--min-fw", "0.01", "--subjects", "a,b", "--fields", "own"]) == SynthConfig(
        out=Path("x"), ranges=Ranges(min_fw=0.01), subjects=("a", "b"), fields="own")
    assert parse_long_videos(["--out", "x", "--fps", "30", "60"]) == LongVideoConfig(out=Path("x"), fps=(30.0, 60.0))
    assert parse_config(["--demo", "--user", "ada", "--spot-z", "5", "--compile"]) == LiveConfig(
        demo=True, user="ada", spot_z=5.0, compile=True)


def test_config_options_help_and_default_come_from_the_field():
    (action,) = [a for a in build_parser()._actions if a.dest == "spot_z"]
    assert action.option_strings == ["--spot-z"] and action.default == 4.0 and action.type is float
    assert action.help.startswith("spotting sensitivity: resting deviations") and action.help.endswith("(default 4)")


@dataclass(frozen=True)
class Toy:
    out: Path = field(metadata=option("where"))
    names: tuple[str, ...] = field(default=("a",), metadata=option("a name", flag="--name", many="repeat"))
    loud: bool = field(default=True, metadata=option("quietly"))
    share: float = field(default=0.5, metadata=option("a 50 % share"))
    hidden: int = 3


def toy_parser() -> CommandParser:
    parser = CommandParser(prog="toy")
    add_config_options(parser, Toy)
    return parser


def test_config_options_required_switch_repeat_and_unset_fields():
    parser = toy_parser()
    assert config_from_args(Toy, parser.parse_args(["--out", "o"])) == Toy(out=Path("o"))
    args = parser.parse_args(["--out", "o", "--name", "b", "--name", "c", "--no-loud"])
    assert config_from_args(Toy, args, hidden=4) == Toy(out=Path("o"), names=("b", "c"), loud=False, hidden=4)
    assert "a 50 % share (default 0.5)" in " ".join(parser.format_help().split())


def test_config_options_missing_required_is_one_line(capsys):
    with pytest.raises(SystemExit) as stop:
        toy_parser().parse_args([])
    assert stop.value.code == 2
    assert capsys.readouterr().err == "toy: missing --out; see toy --help\n"


def test_live_loop_replays_a_video_file_and_nothing_else():
    from fdp.errors import ConfigError
    from realtime.live_config import resolve_input

    assert resolve_input(parse_config(["--video", "clip.mp4", "--loop", "--realtime"])) == ("clip.mp4", True, True)
    assert resolve_input(parse_config(["--video", "clip.mp4"])).looped is False
    with pytest.raises(ConfigError) as error:
        parse_config(["--camera", "0", "--loop"])
    assert str(error.value) == "--loop replays a --video file; --demo loops by itself with the preview page on"
