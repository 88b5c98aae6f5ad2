"""`fdp.train --executor ray` on a real local Ray of 2 CPUs (started once for the module, on loopback): the same
folds and crops as a serial run (which never imports Ray), resume, a failing fold reported while the other
finishes, and the one line when Ray is not installed."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from builders import build_casme2
from safetensors.numpy import load_file

from fdp.assets import missing_assets
from fdp.cli import run_main
from fdp.train import main as train_main
from fdp.train_config import PER_MACHINE_FIELDS

if importlib.util.find_spec("ray") is None:  # not imported here: Ray must be first imported by fdp.ray_executor
    pytest.skip('ray is not installed: pip install -e ".[ray]"', allow_module_level=True)

REPO = Path(__file__).resolve().parents[1]
FAST = ["--preset", "tiny", "--epochs", "2", "--batch-size", "4", "--precise-bn-batches", "2", "--quiet",
        "--cpus-per-fold", "1"]
BLOCK_RAY = ("import sys; sys.modules['ray'] = None; from fdp.cli import run_main; from fdp.train import main; "
             "raise SystemExit(run_main(main, sys.argv[1:]))")
pytestmark = [pytest.mark.slow, pytest.mark.skipif("face_landmarker.task" in missing_assets(),
                                                   reason="face_landmarker.task not fetched: run "
                                                          "`python -m fdp.assets fetch`")]


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    from fdp.ray_executor import ray_session

    with ray_session(num_cpus=2):
        yield


@pytest.fixture(scope="module")
def casme2_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 subjects x 3 clips of real faces (10 in casme2-5's classes), raw frames: 4 folds."""
    return build_casme2(tmp_path_factory.mktemp("data"), layout="raw", subjects=4, clips_per_subject=3).root


def train_args(root: Path, out: Path, cache: Path, *extra: str) -> list[str]:
    return ["--dataset", "casme2", "--root", str(root), "--out", str(out), "--cache-dir", str(cache), *FAST, *extra]


def comparable(record: dict) -> dict:
    """A fold's metrics.json without what may differ between two runs of the same fold: timings, and the settings
    that are the machine's (paths, executor)."""
    record = dict(record, history=[{k: v for k, v in h.items() if k != "seconds"} for h in record["history"]])
    record["config"] = {k: v for k, v in record["config"].items() if k not in PER_MACHINE_FIELDS}
    del record["train_seconds"]
    return record


def fold_records(run: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(run.glob("folds/*/metrics.json"))}


@pytest.fixture(scope="module")
def runs(casme2_root: Path, local_ray: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same LOSO twice, each aligning into its own cache: serially (in a process where `import ray` fails), and
    on the local Ray."""
    work = tmp_path_factory.mktemp("runs")
    serial = subprocess.run([sys.executable, "-c", BLOCK_RAY, *train_args(casme2_root, work / "serial",
                                                                          work / "cache-serial")],
                            capture_output=True, text=True, cwd=REPO, timeout=180)
    assert serial.returncode == 0, serial.stderr
    assert run_main(train_main, train_args(casme2_root, work / "ray", work / "cache-ray", "--executor", "ray")) == 0
    return {"serial": work / "serial", "ray": work / "ray", "work": work}


def test_local_ray_serves_on_loopback_only(local_ray: None) -> None:
    import ray

    assert ray.util.get_node_ip_address() == "127.0.0.1"
    assert ray.get_runtime_context().gcs_address.startswith("127.0.0.1:")


def test_ray_run_folds_match_serial_run(runs: dict[str, Path]) -> None:
    serial, ray = fold_records(runs["serial"]), fold_records(runs["ray"])
    assert len(serial) == 4 and serial.keys() == ray.keys()
    for name in serial:
        assert comparable(ray[name]) == comparable(serial[name]), name
        assert ray[name]["config"]["executor"] == "ray" and serial[name]["config"]["executor"] == "serial"
        weights = [load_file(run / "folds" / name / "checkpoint.safetensors") for run in (runs["serial"], runs["ray"])]
        assert weights[0].keys() == weights[1].keys()
        assert all(np.array_equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert json.loads((runs["ray"] / "summary.json").read_text())["folds_finished"] == 4


def test_ray_preprocessing_writes_the_serial_cache(runs: dict[str, Path]) -> None:
    caches = [sorted((runs["work"] / name).rglob("*.npz")) for name in ("cache-serial", "cache-ray")]
    assert len(caches[0]) == 10  # the clips in casme2-5's classes
    assert [p.relative_to(runs["work"] / "cache-serial") for p in caches[0]] == \
           [p.relative_to(runs["work"] / "cache-ray") for p in caches[1]]
    for one, other in zip(*caches):
        with np.load(one) as a, np.load(other) as b:
            assert a.files == b.files and all(np.array_equal(a[k], b[k]) for k in a.files), one.name


def test_ray_resumed_run_trains_only_unfinished_fold(runs: dict[str, Path], casme2_root: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    run = runs["ray"]
    unfinished = sorted(run.glob("folds/*/metrics.json"))[2]
    unfinished.unlink()
    stamps = {p: p.stat().st_mtime_ns for p in run.glob("folds/*/*") if p.parent != unfinished.parent}
    capsys.readouterr()
    assert run_main(train_main, train_args(casme2_root, run, runs["work"] / "cache-ray", "--executor", "ray")) == 0
    out = capsys.readouterr().out
    assert out.count("finished earlier, skipped") == 3 and out.count("; test UF1 ") == 1
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert comparable(json.loads(unfinished.read_text())) == comparable(fold_records(runs["serial"])[
        unfinished.parent.name])


def test_ray_failing_fold_reported_other_fold_finishes(local_ray: None, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    built = build_casme2(tmp_path, layout="raw", subjects=2, clips_per_subject=3)
    # sub02 keeps one clip of casme2-5 with a face (its first clip's frames are faceless, its third is 'fear'):
    # fold 0 (test sub01) has 1 training clip and fails; fold 1 trains on sub01's 3 clips
    for frame in built.clip("sub02", "EP02_01f").folder.iterdir():
        cv2.imwrite(str(frame), np.full((120, 160, 3), 128, np.uint8))
    out = tmp_path / "run"
    args = train_args(built.root, out, tmp_path / "cache", "--executor", "ray", "--val-fraction", "0")
    assert run_main(train_main, args) == 1
    captured = capsys.readouterr()
    line = ("fold 0 (casme2/sub01) failed twice: ConfigError: fold 0 (casme2/sub01): 1 training and 3 test clips; "
            "a fold needs 2+ training clips and 1+ test clip")
    assert captured.out.count("fold 0 (casme2/sub01) failed (ConfigError: ") == 1 and line in captured.out
    assert captured.err == ("FDPError: 1 of 2 folds failed: fold 0 (casme2/sub01); each one's error.txt holds its "
                            "traceback: fix the cause and run the same command again (finished folds are skipped)\n")
    failed, finished = sorted((out / "folds").iterdir())
    assert not (failed / "metrics.json").exists() and "ConfigError" in (failed / "error.txt").read_text()
    assert (finished / "metrics.json").is_file() and (finished / "checkpoint.safetensors").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["folds_finished"], summary["folds_total"]) == (1, 2)


def test_ray_executor_without_ray_one_line(tmp_path: Path) -> None:
    root = tmp_path / "CASME2"
    root.mkdir()
    done = subprocess.run([sys.executable, "-c", BLOCK_RAY, "--dataset", "casme2", "--root", str(root), "--out",
                           str(tmp_path / "run"), "--executor", "ray"], capture_output=True, text=True, cwd=REPO,
                          timeout=120)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == ("ConfigError: --executor ray needs Ray, which is not installed here: "
                           'pip install -e ".[ray]"\n')
    assert not (tmp_path / "run").exists()
