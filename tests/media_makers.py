"""Project-made media for tests, samples and robustness checks (written with PyAV; no system ffmpeg).

Public API (stable; other modules and tests call these):

    write_video(path, frames: np.ndarray (T,H,W,3) uint8, fps: float, audio: np.ndarray | None = None,
                sample_rate: int = 16000, vcodec: str | None = None, acodec: str | None = None,
                frame_times: np.ndarray | None = None, faststart: bool = False) -> Path
        Container from the extension: .mp4/.m4v/.mov (h264 + aac), .mkv (h264 + aac), .avi (mpeg4 + pcm_s16le),
        .webm (vp8 + opus), .gif (animated, no audio; audio ignored). frame_times (seconds, increasing) gives
        variable-frame-rate output. Odd frame sizes are cropped to even for yuv420p codecs.
    write_audio(path, audio: np.ndarray, sample_rate: int = 16000) -> Path     # .wav .flac .mp3 .m4a .ogg
    moving_face_frames(n: int, size: tuple[int, int] = (48, 64), seed: int = 0) -> np.ndarray  (n,h,w,3) uint8
        A real face (skimage.data.astronaut()) with small pans and zooms.
    tone(seconds: float, sr: int = 16000, freq: float = 220.0, amplitude: float = 0.3) -> np.ndarray float32
    silence(seconds: float, sr: int = 16000) -> np.ndarray float32
    noise(seconds: float, sr: int = 16000, amplitude: float = 0.1, seed: int = 0) -> np.ndarray float32
    color_frames(n: int, size=(48, 64)) -> np.ndarray   frames whose mean colour changes over time
    write_truncated(src, dst, fraction: float = 0.5) -> Path    first `fraction` of src's bytes
    write_text_as_video(path, text: str = ...) -> Path           a plain text file (e.g. named .mp4)
    write_empty(path) -> Path                                    a 0-byte file
    write_subtitle_only(path, text="hello") -> Path              valid .mkv with only a subtitle stream
    write_rotated_mp4(src, dst) -> Path                          .mp4 flagged "rotate 90° clockwise" (phone portrait)
    write_streamed_mkv(path, frames, fps) -> Path                 .mkv with no duration in it (muxed to a pipe)
    write_garbage(path, n_bytes=4096, seed=0) -> Path            random bytes
    write_corrupted(src, dst, start=0.4, end=0.7, seed=0) -> Path   bytes [start, end) replaced by garbage
    write_two_video_streams(path, n=5, fps=5.0) -> Path   stream 0: red 64x48, not default; stream 1: blue
        32x24, flagged default (an alternate angle before the main one)
"""

from __future__ import annotations

import io
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


def tone(seconds: float, sr: int = 16000, freq: float = 220.0, amplitude: float = 0.3) -> np.ndarray:
    """A sine tone, mono float32 in [-amplitude, amplitude]."""
    t = np.arange(int(round(seconds * sr)), dtype=np.float64) / sr
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def silence(seconds: float, sr: int = 16000) -> np.ndarray:
    """Digital silence, mono float32."""
    return np.zeros(int(round(seconds * sr)), dtype=np.float32)


def noise(seconds: float, sr: int = 16000, amplitude: float = 0.1, seed: int = 0) -> np.ndarray:
    """White noise, mono float32."""
    rng = np.random.default_rng(seed)
    return (amplitude * rng.uniform(-1, 1, int(round(seconds * sr)))).astype(np.float32)


def color_frames(n: int, size: tuple[int, int] = (48, 64)) -> np.ndarray:
    """Frames whose colour changes with the frame index (frame i has red channel ~ 255*i/(n-1))."""
    h, w = size
    out = np.zeros((n, h, w, 3), dtype=np.uint8)
    for i in range(n):
        out[i, ..., 0] = int(round(255 * i / max(n - 1, 1)))
        out[i, ..., 1] = 80
        out[i, ..., 2] = 255 - out[i, 0, 0, 0]
    return out


_FACE_CACHE: list[np.ndarray] = []


def _astronaut() -> np.ndarray:
    if not _FACE_CACHE:
        from skimage import data

        _FACE_CACHE.append(np.ascontiguousarray(data.astronaut()))  # (512, 512, 3) uint8, a real face
    return _FACE_CACHE[0]


def moving_face_frames(n: int, size: tuple[int, int] = (48, 64), seed: int = 0) -> np.ndarray:
    """``n`` frames of size (h, w) showing a real face (skimage astronaut) with small pans and zooms."""
    img = _astronaut()
    ih, iw = img.shape[:2]
    h, w = size
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi)
    # The face sits around row 120, column 235 of the 512x512 image; keep it in frame.
    cy0, cx0 = 130.0, 235.0
    base_h = 300.0
    out = np.empty((n, h, w, 3), dtype=np.uint8)
    for i in range(n):
        t = i / max(n - 1, 1)
        zoom = 1.0 + 0.12 * np.sin(2 * np.pi * t + phase)
        win_h = base_h / zoom
        win_w = win_h * w / h
        cy = cy0 + 12 * np.sin(2 * np.pi * t * 1.3 + phase)
        cx = cx0 + 15 * np.cos(2 * np.pi * t + phase)
        ys = np.clip(cy - win_h / 2 + (np.arange(h) + 0.5) * win_h / h, 0, ih - 1).astype(np.int64)
        xs = np.clip(cx - win_w / 2 + (np.arange(w) + 0.5) * win_w / w, 0, iw - 1).astype(np.int64)
        out[i] = img[ys[:, None], xs[None, :]]
    return out


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


def write_truncated(src: str | Path, dst: str | Path, fraction: float = 0.5) -> Path:
    """Copy the first ``fraction`` of ``src``'s bytes to ``dst`` (a truncated download / interrupted copy)."""
    data = Path(src).read_bytes()
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(data[: max(1, int(len(data) * fraction))])
    return dst


def write_text_as_video(path: str | Path, text: str = "this is not a video, just some text\n" * 20) -> Path:
    """A plain text file with a media extension (e.g. ``notes.mp4``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def write_empty(path: str | Path) -> Path:
    """A 0-byte file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def write_subtitle_only(path: str | Path, text: str = "hello") -> Path:
    """A valid Matroska file whose only stream is a subtitle (no audio, no video): NoStreamError input."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    container = av.open(str(path), mode="w", format="matroska")
    try:
        stream = container.add_stream("ass")
        stream.time_base = Fraction(1, 1000)
        packet = av.Packet(f"0,0,Default,,0,0,0,,{text}".encode())
        packet.stream = stream
        packet.pts = packet.dts = 0
        packet.duration = 1000
        packet.time_base = Fraction(1, 1000)
        container.mux(packet)
    finally:
        container.close()
    return path


def write_garbage(path: str | Path, n_bytes: int = 4096, seed: int = 0) -> Path:
    """Random binary bytes with whatever extension ``path`` has."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, n_bytes, dtype=np.uint8).tobytes())
    return path


def write_corrupted(src: str | Path, dst: str | Path, start: float = 0.4, end: float = 0.7, seed: int = 0) -> Path:
    """Copy ``src`` with the bytes between fractions ``start`` and ``end`` replaced by random garbage."""
    data = bytearray(Path(src).read_bytes())
    a, b = int(len(data) * start), int(len(data) * end)
    data[a:b] = np.random.default_rng(seed).integers(0, 256, b - a, dtype=np.uint8).tobytes()
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(bytes(data))
    return dst


class _PipeWriter(io.RawIOBase):
    """A write-only, non-seekable sink: muxers cannot go back to fill in the duration."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, b) -> int:
        self.buf += bytes(b)
        return len(b)


def write_streamed_mkv(path: str | Path, frames: np.ndarray, fps: float) -> Path:
    """A Matroska video muxed as if to a pipe (live capture): no duration anywhere in the file."""
    import av

    sink = _PipeWriter()
    container = av.open(sink, mode="w", format="matroska")
    try:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"preset": "ultrafast"}
        for i, img in enumerate(np.asarray(frames, dtype=np.uint8)):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    finally:
        container.close()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(sink.buf))
    return path


def write_rotated_mp4(src: str | Path, dst: str | Path) -> Path:
    """Copy an MP4 written by write_video and mark it as a phone's portrait recording: the track matrix says
    "rotate 90° clockwise to display" (what iPhones store; FFmpeg reports rotation -90)."""
    import struct

    data = bytearray(Path(src).read_bytes())
    unity = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    at = data.find(unity, data.find(b"tkhd"))
    if at < 0:
        raise ValueError(f"{src}: no track header with an identity matrix")
    data[at : at + 36] = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(bytes(data))
    return dst


def write_two_video_streams(path: str | Path, n: int = 5, fps: float = 5.0) -> Path:
    """Two video streams: stream 0 red 64x48 without the default flag, stream 1 blue 32x24 flagged default."""
    import av
    from av.stream import Disposition

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    container = av.open(str(path), mode="w")
    try:
        streams = []
        for colour, (w, h), disposition in (((255, 0, 0), (64, 48), Disposition(0)),
                                             ((0, 0, 255), (32, 24), Disposition.default)):
            s = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
            s.width, s.height, s.pix_fmt = w, h, "yuv420p"
            s.options = {"preset": "ultrafast"}
            s.disposition = disposition
            streams.append((s, np.full((h, w, 3), colour, np.uint8)))
        for i in range(n):
            for s, img in streams:
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                frame.pts = i
                for packet in s.encode(frame):
                    container.mux(packet)
        for s, _ in streams:
            for packet in s.encode(None):
                container.mux(packet)
    finally:
        container.close()
    return path
