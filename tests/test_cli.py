"""Every command through a real subprocess: an unwritable output path, a malformed option or a meaningless number
is one line on stderr (exit 1 for an `FDPError`, 2 for a usage error), never a traceback or the usage block."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BUNDLED_CHECKPOINT = REPO / "models" / "fdp_live" / "model.safetensors"
pytestmark = pytest.mark.timeout(120)


def run_command(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, *args] if args[0].endswith(".py") else [sys.executable, "-m", *args]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=110)


@pytest.fixture()
def blocked(tmp_path: Path) -> Path:
    """A folder that cannot be created: its parent is a regular file."""
    (tmp_path / "a_file").write_text("x")
    return tmp_path / "a_file" / "out"


@pytest.mark.parametrize("command, flag", [
    (("fdp.train", "--dataset", "casme2", "--root", "{tmp}", "--out", "{out}"), "--out"),
    (("fdp.evaluate", "--checkpoint", str(BUNDLED_CHECKPOINT), "--dataset", "synthetic", "--root", "{tmp}",
      "--out", "{out}"), "--out"),
    (("fdp.export", "--checkpoint", str(BUNDLED_CHECKPOINT), "--out", "{out}"), "--out"),
    (("fdp.preprocess", "--dataset", "casme2", "--root", "{tmp}", "--cache-dir", "{out}"), "--cache-dir"),
    (("fdp.synthesis.synthetic", "--out", "{out}", "--clips", "1"), "--out"),
    (("fdp.synthesis.heldout", "--out", "{out}", "--clips", "1"), "--out"),
    (("fdp.assets", "fetch", "--dir", "{out}"), "--dir"),
], ids=lambda value: value[0] if isinstance(value, tuple) else None)
def test_cli_unwritable_output_folder_one_line_exit_1(command, flag, blocked, tmp_path):
    result = run_command(*(part.format(tmp=tmp_path, out=blocked) for part in command))
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (f"ConfigError: {blocked}: cannot create this folder (Not a directory); choose another "
                             f"{flag}\n")


def test_cli_train_out_under_dev_null_one_line_exit_1(tmp_path):
    result = run_command("fdp.train", "--dataset", "casme2", "--root", str(tmp_path), "--out", "/dev/null/x")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == ("ConfigError: /dev/null/x: cannot create this folder (Not a directory); "
                             "choose another --out\n")


def test_cli_output_folder_that_is_a_file_one_line_exit_1(tmp_path):
    taken = tmp_path / "model"
    taken.write_text("x")
    result = run_command("fdp.export", "--checkpoint", str(BUNDLED_CHECKPOINT), "--out", str(taken))
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"ConfigError: {taken}: a file, not a folder; choose another --out\n"


@pytest.mark.parametrize("command, expected", [
    (("run_live.py", "--max-faces", "x"), "run_live.py: --max-faces: expected an integer, got 'x'"),
    (("run_live.py", "--engine", "tensorflow"),
     "run_live.py: --engine: 'tensorflow' is not one of auto, tensorrt, onnxruntime, torch"),
    (("run_live.py", "--demo", "--precision", "fp64"),
     "run_live.py: --precision: 'fp64' is not one of fp32, fp16, bf16, int8"),
    (("run_live.py", "--spot-z", "inf"), "run_live.py: --spot-z: expected a finite number, got 'inf'"),
    (("realtime.subscribe", "--count", "many"),
     "python -m realtime.subscribe: --count: expected an integer, got 'many'"),
    (("realtime.subscribe", "--plain", "--json"), "python -m realtime.subscribe: --json: not allowed with --plain"),
    (("realtime.timeline", "--video", "v.mp4", "--out", "t.png", "--engine", "tensorrt"),
     "python -m realtime.timeline: --engine: 'tensorrt' is not one of onnxruntime, torch"),
    (("fdp.train", "--epochs", "1.5"), "python -m fdp.train: --epochs: expected an integer, got '1.5'"),
    (("fdp.train", "--lr", "nan"), "python -m fdp.train: --lr: expected a finite number, got 'nan'"),
    (("fdp.train", "--dataset", "casme"),
     "python -m fdp.train: --dataset: 'casme' is not one of casme2, samm, casme_sq, casme3, synthetic"),
    (("fdp.evaluate", "--bogus"),
     "python -m fdp.evaluate: unknown argument --bogus; see python -m fdp.evaluate --help"),
    (("fdp.export",), "python -m fdp.export: missing --checkpoint, --out; see python -m fdp.export --help"),
    (("fdp.export", "--checkpoint"), "python -m fdp.export: --checkpoint: expected one argument"),
    (("fdp.preprocess", "--workers", "two"), "python -m fdp.preprocess: --workers: expected an integer, got 'two'"),
    (("fdp.synthesis.synthetic", "--out", "x", "--fields", "theirs"),
     "python -m fdp.synthesis.synthetic: --fields: 'theirs' is not one of mixed, own"),
    (("fdp.synthesis.heldout", "--out", "x", "--seed", "1e3"),
     "python -m fdp.synthesis.heldout: --seed: expected an integer, got '1e3'"),
    (("fdp.assets", "grab"), "python -m fdp.assets: command: 'grab' is not one of fetch, list"),
], ids=lambda value: " ".join(value) if isinstance(value, tuple) else None)
def test_cli_usage_error_one_line_exit_2(command, expected):
    result = run_command(*command)
    assert (result.returncode, result.stdout, result.stderr) == (2, "", expected + "\n")


@pytest.mark.parametrize("command, expected", [
    (("fdp.train", "--dataset", "casme2", "--root", "{tmp}", "--seed", "-1"), "--seed -1: use 0 or more"),
    (("fdp.train", "--dataset", "casme2", "--root", "{tmp}", "--epochs", "0"),
     "--epochs 0 / --batch-size 16: need 1+ epochs and batches of 2+ clips (BatchNorm)"),
    (("fdp.train", "--dataset", "casme2", "--root", "{tmp}", "--lr", "-0.1"),
     "--lr -0.1 must be positive, --weight-decay and --warmup-epochs 0 or more"),
    (("fdp.export", "--checkpoint", str(BUNDLED_CHECKPOINT), "--out", "{tmp}", "--opset", "0"),
     "--opset 0: the exporters write opset 7 and later; use the default 17 unless a runtime needs another"),
    (("fdp.preprocess", "--dataset", "casme2", "--root", "{tmp}", "--workers", "0"), "--workers 0: use 1 or more"),
    (("fdp.synthesis.synthetic", "--out", "{tmp}", "--seed", "-3"), "--seed -3: use 0 or more"),
    (("fdp.synthesis.synthetic", "--out", "{tmp}", "--fps", "0"),
     "--fps 0.0: an ME of 0.1 s needs 2 frames or more; raise --fps"),
    (("fdp.synthesis.heldout", "--out", "{tmp}", "--clips", "0"), "--clips 0: write at least one clip"),
    (("fdp.synthesis.heldout", "--out", "{tmp}", "--workers", "-2"), "--workers -2: use 1 or more"),
    (("realtime.subscribe", "--count", "-1"), "--count -1 must be 0 (never stop) or more"),
], ids=lambda value: " ".join(value[:1] + value[-2:]) if isinstance(value, tuple) else None)
def test_cli_meaningless_number_one_line_exit_1(command, expected, tmp_path):
    result = run_command(*(part.format(tmp=tmp_path) for part in command))
    assert (result.returncode, result.stdout, result.stderr) == (1, "", f"ConfigError: {expected}\n")


def test_cli_evaluate_unreadable_checkpoint_names_the_checkpoint_flag(tmp_path):
    checkpoint = tmp_path / "weights.safetensors"
    checkpoint.write_text("not a model")
    result = run_command("fdp.evaluate", "--checkpoint", str(checkpoint), "--dataset", "synthetic", "--root",
                         str(tmp_path))
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (f"ModelFileError: {checkpoint}: not a readable safetensors file (Error while "
                             "deserializing header: header too large); pass --checkpoint an FDP .safetensors "
                             "checkpoint (python -m fdp.train writes them; the bundled one is "
                             "models/fdp_live/model.safetensors)\n")


@pytest.mark.parametrize("record, expected", [
    ("/dev/null/x.jsonl", "/dev/null: a file, not a folder; choose another --record"),
    ("{tmp}/a_file/sub/run.jsonl", "{tmp}/a_file/sub: cannot create this folder (Not a directory); choose another "
                                   "--record"),
    ("{tmp}", "{tmp}: a folder, not a file; give --record a file path such as {tmp}/run.jsonl"),
], ids=["under /dev/null", "under a file", "a folder"])
def test_cli_live_unwritable_record_path_one_line_exit_1_before_anything_starts(record, expected, tmp_path):
    (tmp_path / "a_file").write_text("x")
    result = run_command("run_live.py", "--demo", "--headless", "--zmq", "off", "--record",
                         record.format(tmp=tmp_path))
    # One line and nothing else: no start-up line, so nothing was loaded or opened first.
    expected = f"ConfigError: {expected.format(tmp=tmp_path)}\n"
    assert (result.returncode, result.stdout, result.stderr) == (1, "", expected)


@pytest.mark.parametrize("args, expected", [
    (("--threads", "-3"), "--threads -3: use 1 to 256 ONNX Runtime threads (default 1: the live loop's stages "
                          "already keep the cores busy)"),
    (("--threads", "0"), "--threads 0: use 1 to 256 ONNX Runtime threads (default 1: the live loop's stages "
                          "already keep the cores busy)"),
    (("--width", "0"), "--width 0: use 16 to 8192 pixels"),
    (("--height", "100000"), "--height 100000: use 16 to 8192 pixels"),
    (("--fps", "-30"), "--fps -30.0: use more than 0 and at most 1000 frames a second"),
    (("--max-faces", "0"), "--max-faces 0: use 1 to 16 faces"),
    (("--frames-per-s", "0"), "--frames-per-s 0.0: use more than 0 and at most 60 frames a second"),
    (("--preview-port", "70000"), "--preview-port 70000: use a port number from 1 to 65535"),
    (("--max-frames", "0"), "--max-frames 0: use 1 or more"),
    (("--window-s", "9"), "--window-s 9.0: use 0.05 to 5 seconds (0.5 s spans the longest ME)"),
    (("--reconnect-s", "-1"), "--reconnect-s -1.0: use 0 (end at the first loss) to 3600 seconds"),
    (("--source-name", " "), "--source-name: give a non-empty name, e.g. --source-name door-camera"),
], ids=lambda value: " ".join(value) if isinstance(value, tuple) else None)
def test_cli_live_number_out_of_range_one_line_exit_1(args, expected):
    result = run_command("run_live.py", "--camera", "0", *args)
    assert (result.returncode, result.stdout, result.stderr) == (1, "", f"ConfigError: {expected}\n")


@pytest.mark.parametrize("args, expected", [
    (("--precision", "int8"), "onnxruntime runs int8 only from a quantized model: run python -m calibration.int8"),
    (("--compile",), "--compile applies to --engine torch"),
], ids=lambda value: " ".join(value) if isinstance(value, tuple) else None)
def test_cli_live_engine_options_reach_the_engine(args, expected, tmp_path):
    """--precision and --compile are handed to the engine: the bundled FP32 model on ONNX Runtime refuses them."""
    result = run_command("run_live.py", "--demo", "--headless", "--zmq", "off", "--engine", "onnxruntime", *args)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and expected in result.stderr, result.stderr
