"""realtime.capture on real video files written with OpenCV (mp4v, MJPG): every frame of a file in order, pacing,
the live drop-oldest policy, reconnection, and the one-line errors for sources that cannot be used."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from fdp.errors import CameraError, ConfigError, VideoError
from realtime.capture import (
    CaptureState,
    FrameSource,
    ReconnectPolicy,
    SourceKind,
    VideoSource,
    classify_source,
    describe_source,
)

FPS = 20.0
SIZE = (160, 120)  # (W, H)


def frame_image(i: int) -> np.ndarray:
    """A frame whose left half has gray level 20 + 7 (i mod 32) (so its index survives compression), with its
    number written on it and a red square that moves."""
    w, h = SIZE
    image = np.full((h, w, 3), 40, np.uint8)
    image[:, : w // 2] = 20 + 7 * (i % 32)
    cv2.putText(image, str(i), (w // 2 + 5, 70), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (255, 255, 255), 2)
    x = (i * 5) % (w - 12)
    cv2.rectangle(image, (x, h - 14), (x + 10, h - 4), (0, 0, 255), -1)
    return image


def index_of(image: np.ndarray) -> int:
    """Read a frame's index (mod 32) back from the gray level of its left half."""
    w = image.shape[1]
    return round((float(image[10:-20, 5 : w // 2 - 5].mean()) - 20) / 7)


def write_video(path: Path, fourcc: str, frames: int = 24, fps: float = FPS) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), fps, SIZE)
    assert writer.isOpened(), f"OpenCV cannot write {fourcc} here"
    for i in range(frames):
        writer.write(frame_image(i))
    writer.release()
    return path


@pytest.fixture(params=[("mp4v", ".mp4"), ("MJPG", ".avi")], ids=["mp4v", "mjpg"])
def video(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    fourcc, suffix = request.param
    return write_video(tmp_path / f"clip{suffix}", fourcc)


@pytest.mark.timeout(30)
def test_capture_file_delivers_every_frame_in_order(video: Path):
    source = VideoSource(video)
    assert isinstance(source, FrameSource)
    with source:
        frames = list(source)
    assert [f.index for f in frames] == list(range(24))
    assert [index_of(f.image) for f in frames] == list(range(24))  # the content, not just the counter
    assert np.allclose([f.media_s for f in frames], np.arange(24) / FPS, atol=1e-3)
    stamps = [f.t_capture_ns for f in frames]
    assert all(b > a for a, b in zip(stamps, stamps[1:]))
    assert all(f.source == str(video) and f.image.shape == (120, 160, 3) for f in frames)
    assert (source.end_reason, source.dropped_frames, source.frames_captured) == ("end of file", 0, 24)
    assert source.state in (CaptureState.ENDED, CaptureState.STOPPED) and source.ended


@pytest.mark.timeout(30)
def test_capture_file_slow_consumer_loses_no_frame(tmp_path: Path):
    source = VideoSource(write_video(tmp_path / "clip.avi", "MJPG", frames=10), buffer_frames=2)
    source.start()
    indices = []
    while (frame := source.read(timeout_s=5)) is not None:
        time.sleep(0.03)  # slower than decoding: the capture thread must wait, not drop
        indices.append(frame.index)
    assert indices == list(range(10)) and source.dropped_frames == 0 and source.ended
    source.stop()


@pytest.mark.timeout(30)
def test_capture_file_paced_takes_about_its_duration(tmp_path: Path):
    path = write_video(tmp_path / "clip.mp4", "mp4v", frames=16)
    duration_s = 15 / FPS  # the last frame is due 0.75 s after the first
    t0 = time.monotonic()
    with VideoSource(path, realtime=True) as source:
        frames = list(source)
    elapsed_s = time.monotonic() - t0
    assert [f.index for f in frames] == list(range(16))
    assert elapsed_s >= 0.5 * duration_s  # sanity bound only: the run was paced, not as fast as possible
    assert np.allclose([f.media_s for f in frames], np.arange(16) / FPS, atol=1e-3)
    spread_s = (frames[-1].t_capture_ns - frames[0].t_capture_ns) / 1e9
    assert spread_s >= 0.5 * duration_s


def test_capture_missing_file_raises_one_line_video_error(tmp_path: Path):
    path = tmp_path / "nope.mp4"
    with pytest.raises(VideoError) as error:
        VideoSource(path).start()
    assert str(error.value) == f"{path}: no such file; check --video"


def test_capture_missing_camera_index_raises_one_line_camera_error():
    with pytest.raises(CameraError) as error:
        VideoSource(97).start()
    assert str(error.value) == ("camera 97: cannot open (no such device or it is busy); check --camera, "
                                "or use --video FILE")


def test_capture_missing_device_path_raises_one_line_camera_error():
    with pytest.raises(CameraError) as error:
        VideoSource("/dev/video97").start()
    assert str(error.value) == ("/dev/video97: cannot open (no such device or it is busy); check --camera, "
                                "or use --video FILE")


@pytest.mark.parametrize("fourcc, suffix, keep", [("mp4v", ".mp4", 0.5), ("MJPG", ".avi", 0.1)])
def test_capture_unreadable_truncated_file_raises_one_line_video_error(tmp_path: Path, fourcc, suffix, keep):
    data = write_video(tmp_path / f"whole{suffix}", fourcc).read_bytes()
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(data[: int(len(data) * keep)])  # mp4: the index (moov) is at the end; avi: headers only
    source = VideoSource(path)
    with pytest.raises(VideoError) as error:
        source.start()
    assert str(error.value) == (f"{path}: cannot read this video (corrupt, truncated, or a codec OpenCV lacks); "
                                "re-encode it, e.g. ffmpeg -i IN -c:v mjpeg OUT.avi")
    assert source.state is CaptureState.ENDED and source.end_reason == str(error.value)


@pytest.mark.timeout(30)
def test_capture_file_truncated_midway_ends_with_reason(tmp_path: Path):
    data = write_video(tmp_path / "whole.avi", "MJPG", frames=30).read_bytes()
    path = tmp_path / "cut.avi"
    path.write_bytes(data[: len(data) // 2])  # MJPG frames are independent: the first half still decodes
    with VideoSource(path) as source:
        frames = list(source)  # no exception: the stream just ends
    assert 5 < len(frames) < 30
    assert [f.index for f in frames] == list(range(len(frames)))
    assert source.end_reason == f"{path}: video broke off after {len(frames)} of 30 frames (truncated or corrupt)"


@pytest.mark.timeout(30)
def test_capture_live_slow_consumer_drops_oldest_and_gets_newest(tmp_path: Path):
    path = write_video(tmp_path / "clip.avi", "MJPG", frames=24)
    source = VideoSource(path, kind=SourceKind.STREAM, reconnect=ReconnectPolicy(give_up_s=0))
    source.start()
    deadline = time.monotonic() + 10
    while source.state is not CaptureState.ENDED and time.monotonic() < deadline:
        time.sleep(0.01)  # a consumer busy elsewhere while the whole "stream" goes by
    frame = source.read(timeout_s=1)
    assert frame is not None and frame.index == 23 and index_of(frame.image) == 23  # the newest one
    assert source.dropped_frames == 23 and source.frames_captured == 24
    assert source.read(timeout_s=0.1) is None and source.ended
    assert source.end_reason == f"{path}: lost (reconnecting is off); check the connection"
    source.stop()


@pytest.mark.timeout(30)
def test_capture_live_paced_slow_consumer_counts_every_drop(tmp_path: Path):
    path = write_video(tmp_path / "clip.mp4", "mp4v", frames=24)
    source = VideoSource(path, kind=SourceKind.STREAM, realtime=True, reconnect=ReconnectPolicy(give_up_s=0))
    t0 = time.monotonic()
    with source:
        frames = []
        for frame in source:
            frames.append(frame)
            time.sleep(2.5 / FPS)  # slower than the stream's 20 fps
        elapsed_s = time.monotonic() - t0
        indices = [f.index for f in frames]
        assert all(b > a for a, b in zip(indices, indices[1:])) and source.dropped_frames > 0
        assert len(frames) + source.dropped_frames == source.frames_captured == 24
    media = [f.media_s for f in frames]  # a live source's media_s: seconds since start
    assert all(b > a for a, b in zip(media, media[1:])) and media[0] >= 0 and media[-1] <= elapsed_s


@pytest.mark.timeout(60)
def test_capture_live_source_lost_is_reopened_then_ends_when_gone(tmp_path: Path):
    path = shutil.copy(write_video(tmp_path / "clip.avi", "MJPG", frames=12), tmp_path / "feed.avi")
    url = f"file://{path}"
    assert classify_source(url) is SourceKind.STREAM
    source = VideoSource(url, realtime=True, reconnect=ReconnectPolicy(initial_s=0.2, max_s=0.4, give_up_s=1.5))
    source.start()
    frames, states, timeouts = [], set(), 0
    while True:
        frame = source.read(timeout_s=0.02)
        states.add(source.state)
        if frame is not None:
            frames.append(frame)
        elif source.ended:
            break
        else:
            timeouts += 1  # the consumer keeps running while the source is away
        if source.reconnects >= 2 and os.path.exists(path):
            os.remove(path)  # the "camera" is unplugged for good
    assert CaptureState.RECONNECTING in states and timeouts > 0
    assert source.reconnects == 2
    assert [f.index for f in frames] == sorted({f.index for f in frames})
    assert frames[-1].index >= 24  # frames kept coming after each reopen, numbered on
    media = [f.media_s for f in frames]
    assert all(b > a for a, b in zip(media, media[1:]))  # seconds since start, across reopens
    assert source.end_reason == f"{url}: lost, not back within 1.5 s; check the connection"
    source.stop()


@pytest.mark.timeout(60)
def test_capture_file_looped_plays_on_with_media_time_running_on(tmp_path: Path):
    """The demo stands in for a camera: a looped file starts again at its end, numbered on, its media time (and
    pacing) running on, so MediaPipe's timestamps keep rising; it stops only when stopped."""
    source = VideoSource(write_video(tmp_path / "clip.avi", "MJPG", frames=12), realtime=True, loop=True)
    source.start()
    frames = []
    deadline = time.monotonic() + 45
    while len(frames) < 40 and time.monotonic() < deadline:
        frame = source.read(timeout_s=0.5)
        if frame is not None:
            frames.append(frame)
    source.stop()
    assert [f.index for f in frames] == list(range(40))  # every frame, three times over and more
    assert [index_of(f.image) for f in frames] == [i % 12 for i in range(40)]
    media = [f.media_s for f in frames]
    assert media == pytest.approx([i / FPS for i in range(40)], abs=1e-3)
    assert source.end_reason == "stopped" and source.dropped_frames == 0


def test_capture_loop_of_a_live_source_raises_config_error():
    with pytest.raises(ConfigError, match="only a video file can be looped"):
        VideoSource(0, loop=True)


@pytest.mark.timeout(30)
def test_capture_stop_joins_thread_and_ends_stream(tmp_path: Path):
    source = VideoSource(write_video(tmp_path / "clip.avi", "MJPG", frames=200), realtime=True)
    source.start()
    assert source.read(timeout_s=5) is not None
    source.stop()
    assert source.state is CaptureState.STOPPED and source.end_reason == "stopped"
    assert not any(t.name == "fdp-capture" and t.is_alive() for t in threading.enumerate())
    assert source.read(timeout_s=0.1) is None and source.ended and list(source) == []
    source.stop()  # twice is fine


def test_capture_read_before_start_is_a_bug(tmp_path: Path):
    with pytest.raises(RuntimeError):
        VideoSource(tmp_path / "x.mp4").read(timeout_s=0)


def test_capture_camera_settings_on_a_file_raise_config_error(tmp_path: Path):
    with pytest.raises(ConfigError) as error:
        VideoSource(tmp_path / "x.mp4", width=640)
    assert str(error.value) == (f"{tmp_path / 'x.mp4'}: camera settings (width) apply only to cameras; "
                                "a file keeps its own size and rate")
    with pytest.raises(ConfigError) as error:
        VideoSource(0, fourcc="MJPEG")
    assert str(error.value) == "camera 0: FOURCC 'MJPEG' must be 4 characters, such as MJPG or YUYV"


def test_capture_source_names_hide_stream_credentials():
    assert classify_source(0) is classify_source("2") is SourceKind.CAMERA
    assert classify_source("/dev/video0") is SourceKind.DEVICE
    assert classify_source("clip.mp4") is SourceKind.FILE
    url = "rtsp://admin:secret@10.0.0.5:554/stream1"
    assert describe_source(url, classify_source(url)) == "rtsp://***@10.0.0.5:554/stream1"
    assert describe_source(3, SourceKind.CAMERA) == "camera 3"


@pytest.mark.timeout(30)
def test_capture_frames_are_read_only(video: Path):
    with VideoSource(video) as source:
        frame = source.read(timeout_s=5)
    assert frame is not None and not frame.image.flags.writeable
    with pytest.raises(ValueError):
        frame.image[0, 0] = 0
