"""omni_mer.media.decode on every container, audio-only formats, odd videos and every bad input."""

from pathlib import Path

import numpy as np
import pytest

from tests import media_makers as syn
from omni_mer.core.config import SAMPLE_RATE, MediaConfig
from omni_mer.core.errors import (
    CorruptMediaError,
    DecodeTimeoutError,
    EmptyFileError,
    MediaError,
    MissingFileError,
    NoStreamError,
    NotMediaError,
)
from omni_mer.media import decode, probe

FPS = 10
SECONDS = 2.0
VIDEO_EXTS = [".mp4", ".mkv", ".avi", ".webm", ".mov", ".gif"]
AUDIO_EXTS = [".wav", ".mp3", ".m4a", ".flac", ".ogg"]


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
def videos(media_dir) -> dict[str, Path]:
    """2 s, 64x48, 10 fps face video with a 440 Hz tone, in every container (GIF has no audio)."""
    frames = syn.moving_face_frames(int(SECONDS * FPS), size=(48, 64))
    audio = syn.tone(SECONDS, SAMPLE_RATE, freq=440.0)
    return {ext: syn.write_video(media_dir / f"face{ext}", frames, FPS, audio=audio) for ext in VIDEO_EXTS}


@pytest.fixture(scope="module")
def ramp(media_dir) -> Path:
    """5 s at 10 fps where frame i has red = 255*i/49: the red channel tells which source frame was sampled."""
    return syn.write_video(media_dir / "ramp.mkv", syn.color_frames(50, (48, 64)), FPS, audio=syn.tone(5.0))


def _dominant_freq(audio: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    spec = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return float(np.fft.rfftfreq(len(audio), 1 / sr)[np.argmax(spec)])


def _check_clip(clip, media: MediaConfig = MediaConfig()):
    assert clip.frames.dtype == np.uint8 and clip.frames.ndim == 4 and clip.frames.shape[-1] == 3
    assert len(clip.frame_times) == len(clip.frames) <= media.max_frames
    assert np.all(np.diff(clip.frame_times) > 0)
    if len(clip.frames):
        assert max(clip.frames.shape[1:3]) <= media.max_side
        assert 0 <= clip.frame_times[0] and clip.frame_times[-1] <= clip.duration + 1e-6
    assert clip.audio.dtype == np.float32 and clip.audio.ndim == 1
    assert clip.sample_rate == SAMPLE_RATE


@pytest.mark.parametrize("ext", VIDEO_EXTS)
def test_every_container(videos, ext):
    clip = decode(videos[ext], clip_id="x1", language="en")
    _check_clip(clip)
    assert clip.id == "x1" and clip.language == "en" and clip.warnings == []
    assert clip.has_video and clip.frames.shape[1:] == (48, 64, 3)
    # 2 s at the default 2 fps: 4 uniform samples half a step from each edge.
    assert len(clip.frames) == 4 and clip.fps == pytest.approx(2.0, rel=0.05)
    np.testing.assert_allclose(clip.frame_times, [0.25, 0.75, 1.25, 1.75], atol=0.06)
    assert clip.duration == pytest.approx(SECONDS, abs=0.1)
    # The face image survives: frames are not blank and differ over time (pans/zooms).
    assert clip.frames.std() > 20 and np.abs(clip.frames[0].astype(int) - clip.frames[-1]).mean() > 2
    if ext == ".gif":
        assert not clip.has_audio and len(clip.audio) == 0
    else:
        assert clip.has_audio and not clip.audio_is_silent
        assert clip.audio_seconds == pytest.approx(SECONDS, abs=0.1)
        assert _dominant_freq(clip.audio) == pytest.approx(440.0, abs=5)


@pytest.mark.parametrize("ext", AUDIO_EXTS)
def test_audio_only_formats(media_dir, ext):
    src_sr = 44100 if ext == ".mp3" else 22050  # also exercises resampling to 16 kHz
    path = syn.write_audio(media_dir / f"voice{ext}", syn.tone(1.5, src_sr, freq=300.0), src_sr)
    clip = decode(path)
    _check_clip(clip)
    assert not clip.has_video and clip.frames.shape[0] == 0 and clip.fps == 0.0
    assert clip.has_audio and clip.audio_seconds == pytest.approx(1.5, abs=0.1)
    assert _dominant_freq(clip.audio) == pytest.approx(300.0, abs=5)
    rms = float(np.sqrt(np.mean(clip.audio[1600:-1600] ** 2)))
    assert rms == pytest.approx(0.3 / np.sqrt(2), rel=0.15)
    info = probe(path)
    assert not info.has_video and info.has_audio and info.duration == pytest.approx(1.5, abs=0.1)


def test_stereo_audio_downmixed(media_dir):
    stereo = np.stack([syn.tone(1.0, 16000, 200.0), syn.tone(1.0, 16000, 200.0)], axis=1)
    clip = decode(syn.write_audio(media_dir / "stereo.wav", stereo, 16000))
    assert clip.audio.ndim == 1 and clip.audio_seconds == pytest.approx(1.0, abs=0.01)


def test_no_audio_track(media_dir):
    clip = decode(syn.write_video(media_dir / "mute.mp4", syn.moving_face_frames(10), FPS))
    _check_clip(clip)
    assert clip.has_video and not clip.has_audio and len(clip.audio) == 0 and clip.audio_is_silent


def test_silent_track(media_dir):
    clip = decode(syn.write_video(media_dir / "silent.mp4", syn.moving_face_frames(10), FPS, audio=syn.silence(1.0)))
    assert clip.has_video and clip.has_audio and clip.audio_is_silent
    assert clip.audio_seconds == pytest.approx(1.0, abs=0.1)


def test_one_frame_video(media_dir):
    clip = decode(syn.write_video(media_dir / "one.mp4", syn.moving_face_frames(1), FPS))
    _check_clip(clip)
    assert len(clip.frames) == 1 and clip.has_video


def test_vertical_video(media_dir):
    clip = decode(syn.write_video(media_dir / "vertical.mp4", syn.moving_face_frames(20, size=(96, 54)), FPS))
    assert clip.frames.shape[1:] == (96, 54, 3)


def test_4k_video_resized(media_dir):
    frames = syn.moving_face_frames(2, size=(2160, 3840))
    clip = decode(syn.write_video(media_dir / "uhd.mp4", frames, 2), MediaConfig(max_side=448))
    assert clip.frames.shape[1:] == (252, 448, 3)
    clip = decode(media_dir / "uhd.mp4", MediaConfig(max_side=64))
    assert max(clip.frames.shape[1:3]) == 64


def test_sampling_picks_nearest_frames(ramp):
    clip = decode(ramp, MediaConfig(fps=2, max_frames=100))
    _check_clip(clip)
    assert len(clip.frames) == 10 and clip.fps == pytest.approx(2.0, rel=0.02)
    np.testing.assert_allclose(np.diff(clip.frame_times), 0.5, atol=1e-6)
    source_index = clip.frames[..., 0].mean(axis=(1, 2)) / 255 * 49
    expected = np.round(clip.frame_times * FPS)  # the source frame nearest each target time
    assert np.abs(source_index - expected).max() <= 1.5


def test_frame_cap_spreads_over_whole_duration(ramp):
    clip = decode(ramp, MediaConfig(fps=5, max_frames=4))
    assert len(clip.frames) == 4
    assert clip.fps == pytest.approx(4 / 5.0, rel=0.05)  # effective rate lowered to fit the cap
    assert clip.frame_times[0] < 1.0 and clip.frame_times[-1] > 4.0
    red = clip.frames[..., 0].mean(axis=(1, 2))
    assert np.all(np.diff(red) > 20)  # frames from across the clip, in order


def test_variable_frame_rate(media_dir):
    times = np.array([0.0, 0.1, 0.2, 1.0, 1.1, 2.5, 2.6, 2.7, 2.8, 2.9])
    frames = syn.color_frames(len(times))
    for ext in (".mp4", ".mkv"):
        clip = decode(syn.write_video(media_dir / f"vfr{ext}", frames, FPS, frame_times=times), MediaConfig(fps=2))
        _check_clip(clip)
        assert len(clip.frames) >= 4
        for t, img in zip(clip.frame_times, clip.frames):
            d = np.abs(times - t)
            nearest = np.flatnonzero(d <= d.min() + 1e-3)  # ties: either neighbour is right
            assert min(abs(img[..., 0].mean() - frames[i, 0, 0, 0]) for i in nearest) < 12, (ext, t)


def test_audio_truncated_at_max_seconds(media_dir):
    path = syn.write_audio(media_dir / "long.wav", syn.tone(3.0), 16000)
    clip = decode(path, MediaConfig(max_audio_seconds=1.0))
    assert len(clip.audio) == SAMPLE_RATE
    assert any("max_audio_seconds" in w for w in clip.warnings)


def test_timeout(videos):
    with pytest.raises(DecodeTimeoutError) as err:
        decode(videos[".mp4"], MediaConfig(decode_timeout_s=1e-9))
    assert "face.mp4" in str(err.value)


# ----------------------------------------------------------------------------------------------- bad inputs


def test_missing_file(tmp_path):
    with pytest.raises(MissingFileError) as err:
        decode(tmp_path / "nope.mp4")
    assert "nope.mp4" in str(err.value) and "does not exist" in str(err.value)


def test_empty_file(tmp_path):
    with pytest.raises(EmptyFileError) as err:
        decode(syn.write_empty(tmp_path / "empty.mp4"))
    assert "empty.mp4" in str(err.value)


@pytest.mark.parametrize("name", ["notes.mp4", "notes.wav", "notes.gif"])
def test_text_named_as_media(tmp_path, name):
    with pytest.raises(NotMediaError) as err:
        decode(syn.write_text_as_video(tmp_path / name))
    assert name in str(err.value)


def test_chinese_text_named_as_video(tmp_path):
    with pytest.raises(NotMediaError):
        decode(syn.write_text_as_video(tmp_path / "字幕.mkv", "这不是视频。\n" * 50))


def test_random_bytes(tmp_path):
    with pytest.raises(NotMediaError) as err:
        decode(syn.write_garbage(tmp_path / "noise.mp4"))
    assert "noise.mp4" in str(err.value)


def test_directory(tmp_path):
    d = tmp_path / "folder.mp4"
    d.mkdir()
    with pytest.raises(NotMediaError) as err:
        decode(d)
    assert "folder.mp4" in str(err.value) and "directory" in str(err.value)


def test_no_decodable_stream(tmp_path):
    with pytest.raises(NoStreamError) as err:
        decode(syn.write_subtitle_only(tmp_path / "subs.mkv"))
    assert "subs.mkv" in str(err.value)
    with pytest.raises(NoStreamError):
        probe(tmp_path / "subs.mkv")


def test_errors_are_media_errors():
    for cls in (MissingFileError, EmptyFileError, NotMediaError, NoStreamError, CorruptMediaError):
        assert issubclass(cls, MediaError)


@pytest.mark.parametrize("ext", VIDEO_EXTS)
@pytest.mark.parametrize("fraction", [0.3, 0.7])
def test_truncated(ramp, media_dir, tmp_path, ext, fraction):
    """Truncated files keep what decoded with a warning, or raise CorruptMediaError naming the file."""
    src = syn.write_video(media_dir / f"ramp{ext}", syn.color_frames(50, (48, 64)), FPS, audio=syn.tone(5.0))
    full = decode(src, MediaConfig(fps=2))
    bad = syn.write_truncated(src, tmp_path / f"cut{ext}", fraction)
    try:
        clip = decode(bad, MediaConfig(fps=2))
    except CorruptMediaError as err:
        assert f"cut{ext}" in str(err)
        assert ext in (".mp4", ".mov")  # index at the end: nothing readable without it
        return
    _check_clip(clip, MediaConfig(fps=2))
    assert clip.warnings, "a truncated file must say so"
    assert len(clip.frames) < len(full.frames)
    assert clip.duration < full.duration


def test_truncated_faststart_mp4_keeps_prefix(tmp_path):
    src = syn.write_video(tmp_path / "fs.mp4", syn.color_frames(50), FPS, audio=syn.tone(5.0), faststart=True)
    clip = decode(syn.write_truncated(src, tmp_path / "fs_cut.mp4", 0.5), MediaConfig(fps=2))
    assert clip.has_video and 2 <= len(clip.frames) < 10 and clip.warnings


def test_truncated_to_header_only(videos, tmp_path):
    bad = syn.write_truncated(videos[".mkv"], tmp_path / "stub.mkv", 0.02)
    with pytest.raises((CorruptMediaError, NoStreamError)) as err:
        decode(bad)
    assert "stub.mkv" in str(err.value)


@pytest.mark.parametrize("ext", [".mp4", ".mkv", ".webm", ".avi"])
def test_corrupt_middle(ramp, media_dir, tmp_path, ext):
    src = syn.write_video(media_dir / f"ramp{ext}", syn.color_frames(50, (48, 64)), FPS, audio=syn.tone(5.0))
    bad = syn.write_corrupted(src, tmp_path / f"garbled{ext}", 0.4, 0.7)
    try:
        clip = decode(bad, MediaConfig(fps=2))
    except CorruptMediaError as err:
        assert f"garbled{ext}" in str(err)
        return
    _check_clip(clip, MediaConfig(fps=2))
    assert clip.has_video and clip.warnings


def test_probe(videos):
    info = probe(videos[".mp4"])
    assert info.has_video and info.has_audio and (info.width, info.height) == (64, 48)
    assert info.video_fps == pytest.approx(FPS) and info.duration == pytest.approx(SECONDS, abs=0.1)
    assert info.to_dict()["video_codec"] == "h264"


def test_seeking_matches_sequential_decode(media_dir, monkeypatch):
    """Long gaps between targets are crossed by seeking; the frames must equal a full sequential decode."""
    import omni_mer.media.decoder as media_mod

    n = 400  # 40 s at 10 fps, tiny frames
    path = syn.write_video(media_dir / "long.mp4", syn.color_frames(n, (32, 32)), FPS)
    cfg = MediaConfig(fps=2, max_frames=5)  # 8 s between targets > SEEK_GAP_S
    assert 40 / 5 > media_mod.SEEK_GAP_S
    seeking = decode(path, cfg)
    monkeypatch.setattr(media_mod, "SEEK_GAP_S", float("inf"))
    sequential = decode(path, cfg)
    np.testing.assert_allclose(seeking.frame_times, [4, 12, 20, 28, 36], atol=1e-6)
    np.testing.assert_array_equal(seeking.frame_times, sequential.frame_times)
    assert np.abs(seeking.frames.astype(int) - sequential.frames).max() <= 2
    source_index = seeking.frames[..., 0].mean(axis=(1, 2)) / 255 * (n - 1)
    assert np.abs(source_index - seeking.frame_times * FPS).max() <= 2


@pytest.mark.slow
def test_long_hd_video_bounded(tmp_path):
    """3 minutes of 1080p: 16 frames, bounded time and memory (a 10-minute file measured 3.2 s / 108 MB RSS)."""
    import time

    import av

    path = tmp_path / "long1080.mp4"
    container = av.open(str(path), mode="w")
    stream = container.add_stream("libx264", rate=30)
    stream.width, stream.height, stream.pix_fmt = 1920, 1080, "yuv420p"
    stream.options = {"preset": "ultrafast"}
    img = np.zeros((1080, 1920, 3), np.uint8)
    for i in range(30 * 180):
        if i % 30 == 0:
            img[..., 0] = (i // 30) * 4 % 256
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts = i
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()
    start = time.monotonic()
    clip = decode(path, MediaConfig(fps=2, max_frames=16))
    assert time.monotonic() - start < 30
    assert clip.frames.shape == (16, 252, 448, 3) and clip.duration == pytest.approx(180, abs=1)
    expected = np.array([(int(round(t * 30)) // 30) * 4 % 256 for t in clip.frame_times])
    assert np.abs(clip.frames[..., 0].mean(axis=(1, 2)) - expected).max() < 8


def test_unknown_duration_stays_under_cap(media_dir):
    """A file without any duration (muxed to a pipe): the rate is halved whenever the cap would be exceeded."""
    n = 100
    path = syn.write_streamed_mkv(media_dir / "live.mkv", syn.color_frames(n, (32, 32)), FPS)
    assert probe(path).duration is None
    clip = decode(path, MediaConfig(fps=5, max_frames=6))
    _check_clip(clip, MediaConfig(fps=5, max_frames=6))
    assert 3 <= len(clip.frames) <= 6
    steps = np.diff(clip.frame_times)
    np.testing.assert_allclose(steps, steps[0], atol=1e-6)
    assert clip.fps == pytest.approx(1 / steps[0])
    assert clip.frame_times[-1] > 6.0 and clip.duration == pytest.approx(10.0, abs=0.2)
    source_index = clip.frames[..., 0].mean(axis=(1, 2)) / 255 * (n - 1)
    assert np.abs(source_index - clip.frame_times * FPS).max() <= 2


@pytest.mark.parametrize("name, vcodec, acodec", [
    ("mp3.avi", None, "libmp3lame"), ("vp9.webm", "libvpx-vp9", None), ("mjpeg.avi", "mjpeg", None),
    ("flac.mkv", None, "flac"), ("mpeg4.mkv", "mpeg4", "libopus"),
])
def test_codec_variants(media_dir, name, vcodec, acodec):
    path = syn.write_video(media_dir / name, syn.moving_face_frames(10), FPS, audio=syn.tone(1.0, freq=440.0),
                           vcodec=vcodec, acodec=acodec)
    clip = decode(path)
    _check_clip(clip)
    assert clip.has_video and len(clip.frames) == 2 and clip.has_audio
    assert _dominant_freq(clip.audio) == pytest.approx(440.0, abs=5)
    info = probe(path)
    if vcodec:
        assert info.video_codec == {"libvpx-vp9": "vp9"}.get(vcodec, vcodec)


def test_phone_rotation_metadata(media_dir):
    """A portrait phone video is stored landscape with a rotation matrix; frames come out upright (portrait)."""
    frames = syn.moving_face_frames(10, size=(48, 64))
    src = syn.write_video(media_dir / "landscape.mp4", frames, FPS)
    upright = decode(syn.write_rotated_mp4(src, media_dir / "portrait.mp4"))
    plain = decode(src)
    assert plain.frames.shape[1:3] == (48, 64) and upright.frames.shape[1:3] == (64, 48)
    np.testing.assert_array_equal(upright.frames, np.rot90(plain.frames, k=-1, axes=(1, 2)))


def test_decode_audio_only_skips_frames():
    sample = Path(__file__).resolve().parents[1] / "samples" / "en_happy_review.mp4"
    if not sample.is_file():
        pytest.skip("sample not shipped")
    full = decode(sample)
    audio_only = decode(sample, include_video=False)
    assert not audio_only.has_video and len(audio_only.frames) == 0
    np.testing.assert_array_equal(audio_only.audio, full.audio)
    assert audio_only.duration == pytest.approx(full.duration)
    assert not audio_only.warnings


def test_decode_audio_only_without_audio_raises(tmp_path):
    path = syn.write_video(tmp_path / "mute.mp4", syn.color_frames(10), fps=10)
    with pytest.raises(NoStreamError, match="mute.mp4"):
        decode(path, include_video=False)


def _moving_frames(n: int, w: int, h: int) -> np.ndarray:
    """A panning gradient with a moving square: real motion, so P- and B-frames carry work."""
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None]
    out = np.empty((n, h, w, 3), np.uint8)
    for i in range(n):
        base = (x + y + 6 * i) % 256
        img = np.stack([base, 255 - base, np.full_like(base, 40 + 3 * i % 200)], axis=-1)
        s = h // 4
        x0 = (i * w // (2 * n)) % (w - s)
        img[h // 3:h // 3 + s, x0:x0 + s] = (250, 250, 250)
        out[i] = img.astype(np.uint8)
    return out


@pytest.fixture(scope="module")
def bframe_video(tmp_path_factory):
    """1 s, 960x540, 25 fps, x264 'medium' (High profile, B-frames, deblocking): like real footage, small."""
    path = tmp_path_factory.mktemp("bframes") / "high.mp4"
    return syn.write_video(path, _moving_frames(25, 960, 540), fps=25, x264_preset="medium")


def test_fast_video_decode_skips_work_not_content(bframe_video):
    import av

    with av.open(str(bframe_video)) as c:
        assert c.streams.video[0].codec_context.profile == "High"
    fast = decode(bframe_video, MediaConfig(fps=4.0))
    slow = decode(bframe_video, MediaConfig(fps=4.0, fast_video_decode=False))
    np.testing.assert_allclose(fast.frame_times, slow.frame_times)  # the same sampling plan
    assert fast.frames.shape == slow.frames.shape == (4, 252, 448, 3)
    # Every source frame, fully decoded: each fast frame must be exactly one of them, a few frames from its target.
    every = decode(bframe_video, MediaConfig(fps=25.0, max_frames=25, fast_video_decode=False)).frames.astype(float)
    assert len(every) == 25
    for t, img in zip(fast.frame_times, fast.frames.astype(float)):
        dists = np.abs(every - img).mean(axis=(1, 2, 3))
        best = int(np.argmin(dists))
        assert abs(best - t * 25) <= 2.5, (t, best)
        assert dists[best] == 0.0  # decoded frames are bit-exact: only which frames are decoded changes


def test_fast_video_decode_decodes_fewer_frames(bframe_video):
    import av

    from omni_mer.media import decoder as media

    def count(fast: bool) -> int:
        with av.open(str(bframe_video)) as c:
            stream = c.streams.video[0]
            if fast:
                media._fast_decode(stream)
            return sum(1 for _ in c.decode(stream))

    full, fast = count(False), count(True)
    assert full == 25 and 0 < fast < full  # the non-reference B-frames were skipped


def test_write_video_from_an_iterator(tmp_path):
    frames = syn.color_frames(12, size=(48, 64))
    from_array = decode(syn.write_video(tmp_path / "a.mp4", frames, fps=10), MediaConfig(fps=10.0))
    from_iter = decode(syn.write_video(tmp_path / "b.mp4", (f for f in frames), fps=10), MediaConfig(fps=10.0))
    assert from_iter.duration == pytest.approx(from_array.duration)
    np.testing.assert_array_equal(from_iter.frames, from_array.frames)
    with pytest.raises(ValueError, match="frames must yield"):
        syn.write_video(tmp_path / "c.mp4", iter([]), fps=10)
