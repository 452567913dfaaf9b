"""Writing frames and audio to media files with PyAV (bundled FFmpeg, no system ffmpeg): the benchmark's scaling
clips, scripts/make_samples.py and the test media makers (tests/media_makers.py) write through here.

Public API:
    write_video(path, frames: np.ndarray (T,H,W,3) uint8, fps: float, audio: np.ndarray | None = None,
                sample_rate: int = 16000, vcodec: str | None = None, acodec: str | None = None,
                frame_times: np.ndarray | None = None, faststart: bool = False) -> Path
        Container from the extension: .mp4/.m4v/.mov (h264 + aac), .mkv (h264 + aac), .avi (mpeg4 + pcm_s16le),
        .webm (vp8 + opus), .gif (animated, no audio; audio ignored). frame_times (seconds, increasing) gives
        variable-frame-rate output. Odd frame sizes are cropped to even for yuv420p codecs.
    write_audio(path, audio: np.ndarray, sample_rate: int = 16000) -> Path     # .wav .flac .mp3 .m4a .ogg
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path
from typing import Iterable

import numpy as np

_VIDEO_DEFAULTS: dict[str, tuple[str, str | None, str]] = {
    # extension: (video codec, audio codec, pixel format)
    ".mp4": ("libx264", "aac", "yuv420p"),
    ".m4v": ("libx264", "aac", "yuv420p"),
    ".mov": ("libx264", "aac", "yuv420p"),
    ".mkv": ("libx264", "aac", "yuv420p"),
    ".avi": ("mpeg4", "pcm_s16le", "yuv420p"),
    ".webm": ("libvpx", "libopus", "yuv420p"),
    ".gif": ("gif", None, "rgb8"),
}
_AUDIO_DEFAULTS: dict[str, tuple[str, str | None]] = {
    # extension: (audio codec, container format name or None to guess)
    ".wav": ("pcm_s16le", None),
    ".flac": ("flac", None),
    ".mp3": ("libmp3lame", None),
    ".m4a": ("aac", "ipod"),
    ".ogg": ("libopus", "ogg"),
    ".opus": ("libopus", "ogg"),
}
# Sample rates each encoder accepts; audio is resampled by PyAV to the nearest allowed one.
_CODEC_RATES = {"libopus": 48000, "opus": 48000}


def _as_audio_array(audio: np.ndarray) -> np.ndarray:
    """(channels, samples) float32 in [-1, 1] from mono (N,) or (N, C) / (C, N)."""
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 1:
        a = a[None, :]
    elif a.ndim == 2 and a.shape[0] > a.shape[1]:
        a = a.T  # (N, C) -> (C, N)
    return np.ascontiguousarray(np.clip(a, -1.0, 1.0))


def _add_audio_stream(container, codec: str, sample_rate: int, channels: int):
    import av

    rate = _CODEC_RATES.get(codec, sample_rate)
    stream = container.add_stream(codec, rate=rate)
    try:
        stream.layout = "mono" if channels == 1 else "stereo"
    except (AttributeError, ValueError, av.error.FFmpegError):
        pass
    return stream


def _encode_audio(container, stream, audio: np.ndarray, sample_rate: int) -> None:
    """Feed (C, N) float32 audio; PyAV resamples/reframes to the encoder's format, rate and frame size."""
    import av

    a = _as_audio_array(audio)
    layout = "mono" if a.shape[0] == 1 else "stereo"
    resampler = av.AudioResampler(
        format=stream.codec_context.format or "fltp", layout=layout, rate=stream.codec_context.sample_rate
    )
    frame_size = stream.codec_context.frame_size or 1024
    chunk = 4096
    pts = 0
    pending: list = []
    for start in range(0, a.shape[1], chunk):
        block = np.ascontiguousarray(a[:, start : start + chunk])
        frame = av.AudioFrame.from_ndarray(block, format="fltp", layout=layout)
        frame.sample_rate = sample_rate
        pending.extend(resampler.resample(frame))
    pending.extend(resampler.resample(None))
    # Re-chunk to the encoder's fixed frame size (aac 1024, mp3 1152, opus 960...).
    if not pending:
        return
    fmt = pending[0].format.name
    data = np.concatenate([f.to_ndarray() for f in pending], axis=1)
    planar = pending[0].format.is_planar
    n_total = data.shape[1] if planar else data.shape[1] // a.shape[0]
    for start in range(0, n_total, frame_size):
        if planar:
            block = data[:, start : start + frame_size]
        else:
            block = data[:, start * a.shape[0] : (start + frame_size) * a.shape[0]]
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block), format=fmt, layout=layout)
        frame.sample_rate = stream.codec_context.sample_rate
        frame.pts = pts
        frame.time_base = Fraction(1, stream.codec_context.sample_rate)
        pts += frame.samples
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)


def write_video(
    path: str | Path,
    frames: np.ndarray | Iterable[np.ndarray],
    fps: float,
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
    vcodec: str | None = None,
    acodec: str | None = None,
    frame_times: np.ndarray | None = None,
    faststart: bool = False,
    x264_preset: str = "ultrafast",
) -> Path:
    """Write RGB ``frames`` (T,H,W,3 uint8, or an iterator of H,W,3 frames) and optional mono/stereo float audio;
    container from the extension.

    ``frame_times`` (seconds, strictly increasing, one per frame) makes a variable-frame-rate file.
    ``faststart`` puts the MP4/MOV index first (as streaming sites do), so a truncated copy stays readable.
    GIF files carry no audio (``audio`` is ignored). ``x264_preset`` (libx264 only): "ultrafast" gives a
    Baseline-like stream; "medium" gives High profile with B-frames and deblocking, as real footage has.
    """
    import av

    path = Path(path)
    ext = path.suffix.lower()
    if ext not in _VIDEO_DEFAULTS:
        raise ValueError(f"unsupported video extension {ext!r}; valid: {', '.join(_VIDEO_DEFAULTS)}")
    default_v, default_a, pix_fmt = _VIDEO_DEFAULTS[ext]
    vcodec = vcodec or default_v
    acodec = acodec or default_a
    if vcodec == "mjpeg":
        pix_fmt = "yuvj420p"  # the MJPEG encoder only takes full-range YUV
    if isinstance(frames, (np.ndarray, list, tuple)):
        frames = np.asarray(frames, dtype=np.uint8)
        if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
            raise ValueError(f"frames must be (T>=1, H, W, 3) uint8, got shape {frames.shape}")
        first, rest, n_frames = frames[0], iter(frames[1:]), len(frames)
    else:  # an iterator of (H, W, 3) frames: long or large clips without holding them all in memory
        rest = iter(frames)
        first = next(rest, None)
        if first is None or np.ndim(first) != 3 or np.shape(first)[-1] != 3:
            raise ValueError(f"frames must yield (H, W, 3) uint8 images, got {None if first is None else np.shape(first)}")
        n_frames = None
    height, width = np.shape(first)[:2]
    if pix_fmt in ("yuv420p", "yuvj420p"):
        # 4:2:0 chroma subsampling needs even sizes.
        height, width = height - height % 2, width - width % 2
    path.parent.mkdir(parents=True, exist_ok=True)

    vfr = frame_times is not None
    if vfr:
        frame_times = np.asarray(frame_times, dtype=np.float64)
        if (n_frames is not None and len(frame_times) != n_frames) or np.any(np.diff(frame_times) <= 0):
            raise ValueError("frame_times must be strictly increasing, one per frame")
    # Millisecond time base for VFR (and GIF, whose delays are centiseconds); 1/fps otherwise.
    rate = Fraction(fps).limit_denominator(1000)
    time_base = Fraction(1, 1000) if (vfr or ext == ".gif") else 1 / rate

    options = {"movflags": "faststart"} if faststart and ext in (".mp4", ".mov", ".m4v") else {}
    container = av.open(str(path), mode="w", options=options)
    try:
        vstream = container.add_stream(vcodec, rate=rate)
        vstream.width = width
        vstream.height = height
        vstream.pix_fmt = pix_fmt
        vstream.time_base = time_base
        vstream.codec_context.time_base = time_base
        if vcodec in ("libx264",):
            vstream.options = {"preset": x264_preset, "crf": "23"}
        astream = None
        if audio is not None and acodec is not None and ext != ".gif":
            a = _as_audio_array(audio)
            astream = _add_audio_stream(container, acodec, sample_rate, a.shape[0])
        for i, img in enumerate(itertools.chain([first], rest)):
            if vfr and i >= len(frame_times):
                raise ValueError("frame_times must be strictly increasing, one per frame")
            img = np.asarray(img, dtype=np.uint8)[:height, :width]
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            if vfr:
                frame.pts = int(round(frame_times[i] * 1000))
            elif ext == ".gif":
                frame.pts = int(round(i * 1000 / fps))
            else:
                frame.pts = i
            frame.time_base = time_base
            for packet in vstream.encode(frame):
                container.mux(packet)
        for packet in vstream.encode(None):
            container.mux(packet)
        if astream is not None:
            _encode_audio(container, astream, audio, sample_rate)
    finally:
        container.close()
    return path


def write_audio(path: str | Path, audio: np.ndarray, sample_rate: int = 16000) -> Path:
    """Write mono (N,) or multi-channel float audio in [-1, 1]; codec from the extension (.wav .flac .mp3 .m4a .ogg)."""
    import av

    path = Path(path)
    ext = path.suffix.lower()
    if ext not in _AUDIO_DEFAULTS:
        raise ValueError(f"unsupported audio extension {ext!r}; valid: {', '.join(_AUDIO_DEFAULTS)}")
    codec, fmt = _AUDIO_DEFAULTS[ext]
    path.parent.mkdir(parents=True, exist_ok=True)
    a = _as_audio_array(audio)
    container = av.open(str(path), mode="w", format=fmt) if fmt else av.open(str(path), mode="w")
    try:
        stream = _add_audio_stream(container, codec, sample_rate, a.shape[0])
        _encode_audio(container, stream, a, sample_rate)
    finally:
        container.close()
    return path
