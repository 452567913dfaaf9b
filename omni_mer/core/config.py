"""Media flags shared by decoding, the omni scorer, training and the demo (one source of truth)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

# Project-relative defaults (checkpoints/) resolve from here, never from the current directory.
PROJECT_ROOT = Path(__file__).resolve().parents[2]

SAMPLE_RATE = 16_000
MODALITIES: tuple[str, ...] = ("text", "audio", "visual")
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".avi", ".webm", ".mov", ".gif", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv")
AUDIO_EXTENSIONS = (".wav", ".mp3", ".m4a", ".flac", ".ogg", ".aac", ".opus")
MEDIA_EXTENSIONS = VIDEO_EXTENSIONS + AUDIO_EXTENSIONS


@dataclass(frozen=True)
class MediaConfig:
    """How a video is sampled. The omni processor, generate() and training all read this one object."""

    fps: float = 2.0  # frames sampled per second (lowered automatically to respect max_frames)
    max_frames: int = 16
    max_side: int = 448  # longer side of sampled frames, pixels
    max_audio_seconds: float = 300.0  # audio kept per clip; longer files are truncated with a warning
    decode_timeout_s: float = 120.0  # wall-clock budget for decoding one file
    use_audio_in_video: bool = True  # Qwen2.5-Omni: interleave the video's audio (TMRoPE); processor+forward+generate
    # H.264/HEVC: don't decode non-reference frames (bit-exact frames, fewer of them; media.decoder._fast_decode)
    fast_video_decode: bool = True

    def __post_init__(self) -> None:
        if not self.fps > 0:
            raise ValueError(f"fps={self.fps!r} must be > 0")
        if self.max_frames < 1:
            raise ValueError(f"max_frames={self.max_frames!r} must be >= 1")
        if self.max_side < 32:
            raise ValueError(f"max_side={self.max_side!r} must be >= 32")
        if not self.max_audio_seconds > 0:
            raise ValueError(f"max_audio_seconds={self.max_audio_seconds!r} must be > 0")

    def to_dict(self) -> dict:
        return asdict(self)
