"""The decoded video every later stage reads. Decoded once per file by omni_mer.media.decode()."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from omni_mer.core.config import SAMPLE_RATE


@dataclass
class Clip:
    """Sampled RGB frames with timestamps plus 16 kHz mono float32 audio.

    frames: (T, H, W, 3) uint8, T may be 0 (audio-only file); frame_times: (T,) seconds from the start;
    fps: the sampling rate the frames were taken at (pass it to the Qwen processor: TMRoPE needs it).
    """

    path: Path
    id: str
    frames: np.ndarray
    frame_times: np.ndarray
    fps: float
    audio: np.ndarray
    duration: float
    has_video: bool
    has_audio: bool
    sample_rate: int = SAMPLE_RATE
    language: str | None = None  # hint ("en" / "zh") when known, e.g. from a manifest
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def from_audio(cls, audio: np.ndarray, clip_id: str = "audio", language: str | None = None,
                   has_audio: bool = True, sample_rate: int = SAMPLE_RATE) -> "Clip":
        """An audio-only Clip from mono float samples already at ``sample_rate`` (speech made in memory)."""
        audio = np.asarray(audio, dtype=np.float32)
        return cls(path=Path(f"{clip_id}.wav"), id=clip_id, frames=np.zeros((0, 0, 0, 3), np.uint8),
                   frame_times=np.zeros(0), fps=0.0, audio=audio, duration=len(audio) / sample_rate,
                   has_video=False, has_audio=has_audio, sample_rate=sample_rate, language=language)

    @property
    def audio_seconds(self) -> float:
        return float(len(self.audio)) / self.sample_rate

    @property
    def audio_is_silent(self) -> bool:
        return (not self.has_audio) or len(self.audio) == 0 or float(np.max(np.abs(self.audio))) < 1e-4
