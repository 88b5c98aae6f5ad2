"""fdp.align on real faces: landmarks on the face, level eyes at the template, no-face frames, landmarker errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data

from fdp.align import (
    ENV_LANDMARKER,
    EYE_CORNERS,
    FaceAligner,
    align_crop,
    resolve_landmarker,
    template_points,
    transform_points,
)
from fdp.assets import ENV_ASSETS_DIR, asset_path, sha256_of
from fdp.config import AlignerSettings
from fdp.errors import ConfigError, ModelFileError

REPO = Path(__file__).resolve().parents[1]
SETTINGS = AlignerSettings()
FIX = "run `python -m fdp.assets fetch` and leave the landmarker path and $FDP_LANDMARKER unset to use the fetched copy"


def _frames(name: str, indices: tuple[int, ...]) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(asset_path(name)))
    frames = []
    for index in range(max(indices) + 1):
        ok, frame = capture.read()
        assert ok, f"{name} ended before frame {index}"
        if index in indices:
            frames.append(frame)
    return frames


def _eye_centres(points: np.ndarray) -> np.ndarray:
    return points[list(EYE_CORNERS)].reshape(2, 2, 2).mean(axis=1)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="module")
def wolfgang(fetched_assets) -> list[np.ndarray]:
    return _frames("WolfgangLanger_Pexels.mp4", (0, 100, 200, 300, 400))


@pytest.fixture(scope="module")
def aligner(fetched_assets):
    with FaceAligner(SETTINGS, running_mode="image") as image_aligner:
        yield image_aligner


def _iou(a, b) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_detect_real_faces_landmarks_lie_on_the_face_haar_finds(aligner, astronaut, wolfgang):
    haar = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    for frame in [astronaut, *wolfgang]:
        boxes = haar.detectMultiScale(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), 1.1, 5, minSize=(60, 60))
        assert len(boxes) == 1
        x, y, w, h = boxes[0]
        haar_box = (x, y, x + w, y + h)
        faces = aligner.detect(frame)
        assert len(faces) == 1
        face = faces[0]
        assert face.points.shape == (478, 2) and face.depth.shape == (478,) and face.pose.shape == (4, 4)
        assert _iou(face.bbox, haar_box) > 0.5
        for px, py in [face.points[1], *face.eye_centres]:  # nose tip and eyes inside the independent box
            assert x < px < x + w and y < py < y + h


def test_process_real_faces_crop_shape_dtype_and_level_eyes_at_template(aligner, astronaut, wolfgang):
    template_eyes = template_points(SETTINGS)[:4].reshape(2, 2, 2).mean(axis=1)  # anchors start with EYE_CORNERS
    assert abs(template_eyes[1, 0] - template_eyes[0, 0] - SETTINGS.eye_distance * SETTINGS.crop_size) < 1e-3
    for frame in [astronaut, *wolfgang]:
        (aligned,) = aligner.process(frame)
        assert aligned.crop.shape == (64, 64) and aligned.crop.dtype == np.uint8
        assert aligned.matrix.shape == (2, 3) and aligned.points.shape == (478, 2)
        np.testing.assert_allclose(aligned.points, transform_points(aligned.matrix, aligned.face.points), atol=1e-3)
        eyes = _eye_centres(aligned.points)
        assert abs(eyes[0, 1] - eyes[1, 1]) < 1.0  # level
        assert np.all(np.abs(eyes[:, 1] - template_eyes[:, 1]) < 1.0)
        assert np.all(np.abs(eyes[:, 0] - template_eyes[:, 0]) < 1.5)
        assert 40 < aligned.crop.mean() < 220 and aligned.crop.std() > 20  # a textured face, not a border smear


def test_aligned_crop_pixels_put_the_eyes_where_the_matrix_says(aligner, astronaut, wolfgang):
    big = AlignerSettings(crop_size=128, gray=False)
    with FaceAligner(big, running_mode="image") as big_aligner:
        for frame in [astronaut, wolfgang[0], wolfgang[2]]:
            (aligned,) = big_aligner.process(frame)
            bgr = cv2.cvtColor(aligned.crop, cv2.COLOR_RGB2BGR)
            canvas = cv2.copyMakeBorder(cv2.resize(bgr, (256, 256)), 128, 128, 128, 128, cv2.BORDER_CONSTANT)
            (again,) = aligner.detect(canvas)  # landmarks found in the crop's own pixels
            seen = (again.eye_centres - 128 + 0.5) / 2 - 0.5
            assert np.abs(seen - _eye_centres(aligned.points)).max() < 1.5


def test_align_crop_without_mediapipe_matches_the_aligner(aligner, wolfgang):
    (aligned,) = aligner.process(wolfgang[1])
    crop, matrix = align_crop(wolfgang[1], aligned.face.points, SETTINGS)
    np.testing.assert_array_equal(crop, aligned.crop)
    np.testing.assert_array_equal(matrix, aligned.matrix)


def test_rgb_settings_give_rgb_crop_of_the_set_size(fetched_assets, astronaut):
    with FaceAligner(AlignerSettings(crop_size=96, gray=False), running_mode="image") as rgb_aligner:
        (aligned,) = rgb_aligner.process(astronaut)
    assert aligned.crop.shape == (96, 96, 3) and aligned.crop.dtype == np.uint8
    assert aligned.crop[..., 0].mean() > aligned.crop[..., 2].mean() + 10  # skin is red-heavy: channel 0 is red


def test_image_mode_same_frame_gives_the_same_crop(aligner, astronaut):
    first, second = aligner.process(astronaut), aligner.process(astronaut)
    np.testing.assert_array_equal(first[0].crop, second[0].crop)
    np.testing.assert_array_equal(first[0].face.points, second[0].face.points)


def test_blendshapes_smiling_astronaut_top_two_are_the_smiles(aligner, astronaut):
    (aligned,) = aligner.process(astronaut)
    assert aligned.blendshapes.shape == (52,)
    top_two = {i for i in np.argsort(aligned.blendshapes)[-2:]}
    assert top_two == {44, 45}
    assert aligned.face.blendshape("mouthSmileLeft") > 0.5 and aligned.face.blendshape("mouthSmileRight") > 0.5


@pytest.mark.parametrize("mode", ["image", "video"])
def test_process_frames_without_a_face_give_empty_lists(fetched_assets, mode):
    no_face = _frames("no_face.mp4", (0, 47, 94))
    with FaceAligner(SETTINGS, running_mode=mode) as mode_aligner:
        for index, frame in enumerate([*no_face, np.zeros((360, 640, 3), np.uint8)]):
            assert mode_aligner.process(frame, index * 33) == []
            assert mode_aligner.detect(frame, index * 33 + 10) == []


def test_video_mode_repeated_and_backward_timestamps_are_bumped(fetched_assets, wolfgang):
    stamps = []
    with FaceAligner(SETTINGS, running_mode="video") as video_aligner:
        for frame, timestamp_ms in zip(wolfgang, (0, 0, -40, 500, 500)):
            (aligned,) = video_aligner.process(frame, timestamp_ms)
            stamps.append(aligned.timestamp_ms)
        assert video_aligner.last_detect_ms > 0 and video_aligner.last_ms >= video_aligner.last_detect_ms
    # The aligner's start-up warm-up ran at 0 ms, so even the first frame at 0 is bumped.
    assert stamps == [1, 2, 3, 500, 501]


def test_max_faces_two_faces_side_by_side_come_left_to_right(fetched_assets, astronaut, wolfgang):
    # MediaPipe's short-range detector sees a 128x128 letterbox, so put the two heads close together
    frame = np.hstack([astronaut[20:320, 100:350], cv2.resize(wolfgang[0][30:360, 290:590], (273, 300))])
    with FaceAligner(SETTINGS, running_mode="image", max_faces=2) as two:
        faces = two.process(frame)
    assert len(faces) == 2
    assert faces[0].bbox[2] < 250 < faces[1].bbox[0]
    with FaceAligner(SETTINGS, running_mode="image", max_faces=1) as one:
        assert len(one.process(frame)) == 1


def test_landmarker_text_file_raises_one_line_model_file_error(tmp_path):
    fake = tmp_path / "face_landmarker.task"
    fake.write_text("this is not a model\n")
    with pytest.raises(ModelFileError) as error:
        FaceAligner(SETTINGS, landmarker_path=fake)
    assert str(error.value) == f"face landmarker {fake}: not a MediaPipe face-landmarker .task bundle; {FIX}"


def test_landmarker_truncated_copy_raises_model_file_error(tmp_path, fetched_assets):
    cut = tmp_path / "cut.task"
    data = asset_path("face_landmarker.task").read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError) as error:
        FaceAligner(SETTINGS, landmarker_path=cut)
    assert str(error.value) == f"face landmarker {cut}: not a MediaPipe face-landmarker .task bundle; {FIX}"


def test_landmarker_repacked_bundle_raises_hash_error(tmp_path, fetched_assets):
    repacked = tmp_path / "repacked.task"
    with zipfile.ZipFile(asset_path("face_landmarker.task")) as source, \
            zipfile.ZipFile(repacked, "w", zipfile.ZIP_DEFLATED) as target:
        for name in source.namelist():
            target.writestr(name, source.read(name))
    found = sha256_of(repacked)
    with pytest.raises(ModelFileError) as error:
        FaceAligner(SETTINGS, landmarker_path=repacked)
    assert str(error.value) == (f"face landmarker {repacked}: sha256 {found[:12]}... is not the pinned 64184e229b26..."
                                f" this aligner is built on; {FIX}")


def test_landmarker_env_path_missing_or_wrong_suffix_raises(tmp_path, monkeypatch, fetched_assets):
    absent = tmp_path / "absent.task"
    monkeypatch.setenv(ENV_LANDMARKER, str(absent))
    with pytest.raises(ModelFileError) as error:
        FaceAligner(SETTINGS)
    assert str(error.value) == f"face landmarker {absent}: no such file; {FIX}"
    renamed = tmp_path / "face_landmarker.tflite"
    shutil.copy(asset_path("face_landmarker.task"), renamed)
    monkeypatch.setenv(ENV_LANDMARKER, str(renamed))
    with pytest.raises(ModelFileError, match="not a MediaPipe face-landmarker .task bundle"):
        resolve_landmarker()
    good = shutil.copy(asset_path("face_landmarker.task"), tmp_path / "copy.task")
    monkeypatch.setenv(ENV_LANDMARKER, str(good))
    assert resolve_landmarker() == Path(good)
    assert resolve_landmarker(asset_path("face_landmarker.task")) == asset_path("face_landmarker.task")


def test_landmarker_missing_asset_raises_fetch_line(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_LANDMARKER, raising=False)
    monkeypatch.setenv(ENV_ASSETS_DIR, str(tmp_path))
    with pytest.raises(ModelFileError) as error:
        FaceAligner(SETTINGS)
    assert str(error.value) == (f"asset face_landmarker.task is missing from {tmp_path}; run `python -m fdp.assets "
                                f"fetch` (or set FDP_ASSETS_DIR to the folder that holds it)")


def test_settings_of_another_aligner_version_raise_config_error():
    with pytest.raises(ConfigError, match="^aligner settings are version 'fdp-align/0' but this FDP Live aligns"):
        FaceAligner(AlignerSettings(version="fdp-align/0"))


def test_importing_fdp_align_leaves_mediapipe_unloaded():
    code = "import sys, fdp.align; print('mediapipe' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "False"
