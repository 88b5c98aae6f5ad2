"""Training and evaluation: metrics against hand-computed confusion matrices, clip-consistent augmentation,
precise BN, and end-to-end runs (tiny preset) on a miniature CASME II tree of real faces: per-fold outputs,
pooled reports, resume, --folds, --select-on-test labelling, holdout + checkpoint evaluation, LOSO hygiene,
and the one-line errors of the commands."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from builders import build_casme2

from engines.factory import load_engine
from fdp.assets import missing_assets
from fdp.checkpoint import load_checkpoint, read_checkpoint_metadata
from fdp.clip_batches import Augmentation, augment_clip, class_weights, epoch_order
from fdp.config import preset
from fdp.errors import ConfigError
from fdp.export import main as export_main
from fdp.metrics import confusion_matrix, score
from fdp.model import FDP
from fdp.train import main as train_main
from fdp.train import parse_args, run_training
from fdp.training_loop import lr_factor, recalibrate_batchnorm

REPO = Path(__file__).resolve().parents[1]
needs_landmarker = pytest.mark.skipif("face_landmarker.task" in missing_assets(),
                                      reason="face_landmarker.task not fetched: run `python -m fdp.assets fetch`")
FAST = ["--preset", "tiny", "--epochs", "2", "--batch-size", "4", "--precise-bn-batches", "2", "--quiet"]


# ---- metrics, by hand -------------------------------------------------------------------------------------------

def test_metrics_three_classes_match_hand_computation() -> None:
    true, pred = [0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 2, 2]
    assert confusion_matrix(true, pred, 3).tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    s = score(true, pred, 3)
    # F1: class 0 = 2*2/(2*2+0+1) = 0.8; class 1 = 2/(2+1+1) = 0.5; class 2 = 2/(2+1+0) = 2/3
    assert s.accuracy == pytest.approx(4 / 6)
    assert s.uf1 == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert s.uar == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert s.weighted_f1 == pytest.approx((3 * 0.8 + 2 * 0.5 + 1 * 2 / 3) / 6)
    assert s.clips == 6


def test_metrics_class_absent_everywhere_left_out_of_means() -> None:
    assert score([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 2, 2], 4) == score([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 2, 2], 3)


def test_metrics_class_predicted_but_absent_counts_in_uf1_not_uar() -> None:
    s = score([0, 0], [0, 1], 2)
    # class 0: F1 = 2/(2+0+1) = 2/3, recall 1/2; class 1: no true clip, one false positive: F1 0, recall undefined
    assert (s.accuracy, s.uf1, s.uar, s.weighted_f1) == pytest.approx((0.5, 1 / 3, 0.5, 2 / 3))


def test_metrics_no_predictions_give_nulls() -> None:
    s = score([], [], 3)
    assert math.isnan(s.uf1) and s.to_dict() == {"accuracy": None, "uf1": None, "uar": None, "weighted_f1": None,
                                                 "clips": 0}


def test_metrics_label_out_of_range_rejected() -> None:
    with pytest.raises(ValueError):
        confusion_matrix([0, 3], [0, 1], 3)


# ---- batches, schedule, BatchNorm ---------------------------------------------------------------------------------

def test_augment_clip_identical_frames_stay_identical() -> None:
    frame = np.random.default_rng(0).integers(0, 255, (32, 32), dtype=np.uint8)
    strong = Augmentation(flip=1.0, rotate_deg=10, scale=0.1, shift=0.1, brightness=0.2, contrast=0.3)
    out = augment_clip(np.stack([frame] * 4), np.random.default_rng(1), strong)
    assert out.dtype == np.float32 and out.shape == (4, 32, 32) and 0 <= out.min() and out.max() <= 1
    assert all(np.array_equal(out[0], out[t]) for t in range(4))  # one draw for the whole clip: no fake motion
    assert not np.allclose(out[0], frame / 255.0)


def test_class_weights_inverse_frequency_absent_class_zero() -> None:
    weights = class_weights([0, 0, 0, 1], 3)
    assert weights.tolist() == pytest.approx([4 / 6, 2.0, 0.0])  # N / (K_present * n_c); mean per clip 1


def test_epoch_order_balanced_sampling_evens_classes() -> None:
    labels = [0] * 90 + [1] * 10
    drawn = np.concatenate(epoch_order(labels, 10, np.random.default_rng(0), balanced=True))
    share = np.mean(np.asarray(labels)[drawn] == 1)
    assert 0.35 < share < 0.65
    assert all(len(b) > 1 for b in epoch_order(list(range(9)), 4, np.random.default_rng(0)))  # no batch of one


def test_lr_factor_warmup_then_cosine_to_floor() -> None:
    values = [lr_factor(s, 4, 20) for s in range(20)]
    assert values[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert all(a >= b for a, b in zip(values[3:], values[4:])) and lr_factor(20, 4, 20) == pytest.approx(0.01)


def test_recalibrate_batchnorm_one_batch_sets_its_statistics() -> None:
    torch.manual_seed(0)
    model = FDP(preset("tiny"))
    clips = np.random.default_rng(0).random((6, 4, 1, 32, 32), dtype=np.float32)
    recalibrate_batchnorm(model, [(clips, np.zeros(6, np.int64))], "cpu")
    with torch.no_grad():
        pooled = model.eval().pool(model.forward_features(torch.from_numpy(clips))[0])
    assert torch.allclose(model.pooled_norm.running_mean, pooled.mean(0), atol=1e-5)
    assert torch.allclose(model.pooled_norm.running_var, pooled.var(0), rtol=1e-3, atol=1e-6)
    assert model.pooled_norm.momentum == 0.1 and not model.training


# ---- end to end -----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def casme2_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 subjects x 3 clips of real faces (10 of them in casme2-5's classes), raw 160x120 frames."""
    return build_casme2(tmp_path_factory.mktemp("data"), layout="raw", subjects=4, clips_per_subject=3).root


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def train_args(root: Path, out: Path, cache: Path, *extra: str) -> list[str]:
    return ["--dataset", "casme2", "--root", str(root), "--out", str(out), "--cache-dir", str(cache), *FAST, *extra]


@pytest.fixture(scope="module")
def loso_run(casme2_root: Path, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "loso"
    assert train_main(train_args(casme2_root, out, cache_dir)) == 0
    return out


def _folds(run: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(run.glob("folds/*/metrics.json"))]


@needs_landmarker
@pytest.mark.slow
def test_train_loso_run_writes_fold_and_pooled_outputs(loso_run: Path) -> None:
    folds = _folds(loso_run)
    assert [f["fold"] for f in folds] == [0, 1, 2, 3]
    for record in folds:
        assert set(record["metrics"]) == {"accuracy", "uf1", "uar", "weighted_f1", "clips"}
        assert record["selection"]["rule"] == "val-uf1" and record["selection"]["select_on_test"] is False
        assert len(record["history"]) == 2 and record["train_seconds"] > 0
        assert len(record["predictions"]) == record["clips"]["test"] > 0
    summary = json.loads((loso_run / "summary.json").read_text())
    assert summary["folds_finished"] == summary["folds_total"] == 4
    assert summary["pooled"]["clips"] == sum(f["clips"]["test"] for f in folds) == 10
    assert "concatenation" in summary["pooled"]["definition"]
    assert np.asarray(summary["confusion_matrix"]).sum() == 10
    markdown = (loso_run / "summary.md").read_text()
    assert "| **pooled** |" in markdown and "| mean of folds |" in markdown and "SELECT-ON-TEST" not in markdown
    assert (loso_run / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    config = json.loads((loso_run / "train_config.json").read_text())
    assert config["preset"] == "tiny" and config["lambda_di"] == 100.0 and config["window_s"] == 0.5


@needs_landmarker
@pytest.mark.slow
def test_train_loso_never_trains_on_test_subject(loso_run: Path) -> None:
    for record in _folds(loso_run):
        test = set(record["test_subjects"])
        assert set(record["subjects_used"]["test"]) == test
        assert not test & (set(record["subjects_used"]["train"]) | set(record["subjects_used"]["val"]))
        assert not test & (set(record["train_subjects"]) | set(record["val_subjects"]))
        folder = next(loso_run.glob(f"folds/fold{record['fold']:02d}_*"))
        metadata = read_checkpoint_metadata(folder / record["checkpoint"])
        assert not test & set(json.loads(metadata["train_subjects"])) and metadata["class_setting"] == "casme2-5"
        assert metadata["selection_rule"] == "val-uf1" and metadata["select_on_test"] == "false"


@needs_landmarker
@pytest.mark.slow
def test_train_resumed_run_skips_finished_folds(loso_run: Path, casme2_root: Path, cache_dir: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    stamps = {p: p.stat().st_mtime_ns for p in loso_run.glob("folds/*/*")}
    import fdp.fold_runner

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a finished fold was trained again")

    monkeypatch.setattr(fdp.fold_runner, "train_fold", refuse)
    config, _ = parse_args(train_args(casme2_root, loso_run, cache_dir))
    summary = run_training(config, progress=False)
    assert summary["folds_finished"] == 4
    assert {p: p.stat().st_mtime_ns for p in loso_run.glob("folds/*/*")} == stamps


@needs_landmarker
@pytest.mark.slow
def test_train_folds_option_runs_only_those(casme2_root: Path, cache_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "part"
    assert train_main(train_args(casme2_root, out, cache_dir, "--folds", "1,sub04")) == 0
    assert [f["test_subjects"] for f in _folds(out)] == [["casme2/sub02"], ["casme2/sub04"]]
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["folds_finished"], summary["folds_total"]) == (2, 4)
    assert "2 of 4 folds finished" in (out / "summary.md").read_text()


@needs_landmarker
@pytest.mark.slow
def test_train_select_on_test_labelled_in_every_output(casme2_root: Path, cache_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "optimistic"
    assert train_main(train_args(casme2_root, out, cache_dir, "--folds", "0", "--select-on-test")) == 0
    record = _folds(out)[0]
    assert record["selection"]["rule"] == "test-uf1" and record["selection"]["select_on_test"] is True
    assert "SELECT-ON-TEST" in record["selection"]["label"] and all(h["test"] for h in record["history"])
    assert json.loads((out / "train_config.json").read_text())["select_on_test"] is True
    summary = json.loads((out / "summary.json").read_text())
    assert summary["title"].endswith("[SELECT-ON-TEST]") and summary["selection"]["select_on_test"] is True
    markdown = (out / "summary.md").read_text()
    assert markdown.startswith("# ") and "[SELECT-ON-TEST]" in markdown.splitlines()[0]
    assert "**SELECT-ON-TEST:" in markdown
    assert b"SELECT-ON-TEST" in (out / "confusion.png").read_bytes()  # the plot title, in the PNG's Title text
    checkpoint = next(out.glob("folds/*/checkpoint.safetensors"))
    assert read_checkpoint_metadata(checkpoint)["select_on_test"] == "true"


@needs_landmarker
@pytest.mark.slow
def test_train_holdout_then_evaluate_checkpoint(casme2_root: Path, cache_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "holdout"
    assert train_main(train_args(casme2_root, out, cache_dir, "--holdout-subjects", "sub02,casme2/sub03")) == 0
    record = _folds(out)[0]
    assert record["test_subjects"] == ["casme2/sub02", "casme2/sub03"]
    assert set(record["subjects_used"]["train"]) | set(record["subjects_used"]["val"]) <= {"casme2/sub01",
                                                                                            "casme2/sub04"}
    checkpoint = out / "folds" / "holdout" / "checkpoint.safetensors"
    done = subprocess.run([sys.executable, "-m", "fdp.evaluate", "--checkpoint", str(checkpoint), "--dataset",
                           "casme2", "--root", str(casme2_root), "--cache-dir", str(cache_dir), "--out",
                           str(tmp_path / "eval")], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    evaluation = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert evaluation["pooled"]["clips"] == 10 and len(evaluation["groups"]) == 4
    assert any("training or validation set" in n for n in evaluation["notes"])  # sub01/sub04 were trained on
    assert (tmp_path / "eval" / "confusion.png").is_file() and (tmp_path / "eval" / "evaluation.md").is_file()


@needs_landmarker
@pytest.mark.slow
def test_evaluate_cli_run_pools_folds(loso_run: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "fdp.evaluate", "--run", str(loso_run)], capture_output=True,
                          text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "| **pooled** |" in done.stdout and (loso_run / "evaluate_config.json").is_file()


def test_train_resume_other_settings_refused(tmp_path: Path) -> None:
    root = tmp_path / "CASME2"
    root.mkdir()
    first, _ = parse_args(["--dataset", "casme2", "--root", str(root), "--out", str(tmp_path / "run")])
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "train_config.json").write_text(json.dumps(first.to_dict()))
    other, _ = parse_args(["--dataset", "casme2", "--root", str(root), "--out", str(tmp_path / "run"), "--lr", "0.1",
                           "--device", "cpu"])
    with pytest.raises(ConfigError, match=r"other settings \(lr differ\)"):
        run_training(other, progress=False)


def test_train_config_bad_values_one_line_errors(tmp_path: Path) -> None:
    base = ["--dataset", "casme2", "--root", str(tmp_path)]
    with pytest.raises(ConfigError, match="one --root per --dataset"):
        parse_args(["--dataset", "casme2", "--dataset", "samm", "--root", str(tmp_path)])
    with pytest.raises(ConfigError, match="has no classes for casme2"):
        parse_args([*base, "--classes", "samm-5"])
    with pytest.raises(ConfigError, match="does not combine"):
        parse_args([*base, "--folds", "1", "--holdout-subjects", "sub01"])


@pytest.mark.parametrize("command", ["fdp.train", "fdp.evaluate"])
def test_cli_malformed_dataset_root_one_line_error(command: str, tmp_path: Path) -> None:
    root = tmp_path / "CASME2"
    (root / "CASME2_RAW_selected" / "sub01").mkdir(parents=True)  # frames folder, but no coding sheet
    args = ["--dataset", "casme2", "--root", str(root)]
    args += ["--out", str(tmp_path / "run")] if command == "fdp.train" else [
        "--checkpoint", str(tmp_path / "none.safetensors")]
    if command == "fdp.evaluate":  # a real checkpoint, so the dataset is what fails
        from fdp.checkpoint import save_checkpoint

        save_checkpoint(FDP(preset("tiny", class_names=("happiness", "disgust", "repression", "surprise",
                                                        "others"))), tmp_path / "none.safetensors",
                        {"class_setting": "casme2-5"})
    done = subprocess.run([sys.executable, "-m", command, *args], capture_output=True, text=True, cwd=REPO,
                          timeout=120)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("DatasetLayoutError: " + str(root)) and done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr


@needs_landmarker
@pytest.mark.slow
def test_train_all_uses_every_subject_and_writes_one_checkpoint(casme2_root: Path, cache_dir: Path,
                                                               tmp_path: Path) -> None:
    out = tmp_path / "all"
    assert train_main(train_args(casme2_root, out, cache_dir, "--train-all", "--val-fraction", "0")) == 0
    (record,) = _folds(out)
    assert record["test_subjects"] == [] and record["clips"]["test"] == 0
    assert len(record["subjects_used"]["train"]) == 4 and record["selection"]["rule"] == "last-epoch"
    checkpoint = out / "folds" / "all" / "checkpoint.safetensors"
    metadata = read_checkpoint_metadata(checkpoint)
    assert len(json.loads(metadata["train_subjects"])) == 4
    assert metadata["training_data"] == "trained on CASME II (4 subjects)"
    # fdp.export turns the checkpoint into a whole model folder: every engine runs it and says what it learned from
    folder = tmp_path / "model"
    assert export_main(["--checkpoint", str(checkpoint), "--out", str(folder)]) == 0
    for kind in ("onnxruntime", "torch"):
        engine, _ = load_engine(folder, kind)
        assert engine.training_data == metadata["training_data"] and engine.config.class_names == tuple(
            json.loads((out / "protocol.json").read_text())["class_names"])
    assert json.loads((out / "protocol.json").read_text())["protocol"] == "train-all"
    with pytest.raises(ConfigError, match="--train-all trains one model on every subject"):
        parse_args(train_args(casme2_root, out, cache_dir, "--train-all", "--folds", "0"))


@needs_landmarker
def test_train_all_with_fixed_validation_subjects_and_another_crop_size(casme2_root: Path, cache_dir: Path,
                                                                        tmp_path: Path) -> None:
    out = tmp_path / "fixed"
    assert train_main(train_args(casme2_root, out, cache_dir, "--train-all", "--val-subjects", "sub02",
                                 "--crop-size", "64")) == 0
    (record,) = _folds(out)
    assert record["val_subjects"] == ["casme2/sub02"] and "casme2/sub02" not in record["subjects_used"]["train"]
    assert record["selection"]["rule"] == "val-uf1" and len(record["subjects_used"]["train"]) == 3
    model = load_checkpoint(out / "folds" / "all" / "checkpoint.safetensors")
    assert model.config.image_size == 64 and model.config.name == "tiny"
    assert not (out / "folds" / "all" / "training_state.safetensors").exists()  # a finished fold keeps no state
    with pytest.raises(ConfigError, match="--val-subjects fixes the validation subjects of one split"):
        parse_args(train_args(casme2_root, out, cache_dir, "--val-subjects", "sub02"))
