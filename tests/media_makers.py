"""Test media makers: project-made clips and every kind of bad input for the tests, the bad-input suite
(tests/bad_inputs.py) and scripts/robustness.py (written with PyAV; no system ffmpeg; scikit-image for the face).

Public API (stable; other modules and tests call these):

    write_video(path, frames, fps, audio=None, ...) / write_audio(path, audio, sample_rate=16000)
        the package's media writers (omni_mer.media.write), re-exported here
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
"""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import numpy as np

from omni_mer.media.write import write_audio, write_video  # noqa: F401  (part of this API)



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
