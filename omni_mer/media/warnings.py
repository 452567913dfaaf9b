"""What can go wrong in a decode that still yields a Clip, as kinds (an enum) with a message each.

The decoder records a DecodeWarning with its message; decisions (is the file truncated?) read the kinds, never the
text. Clip.warnings carries the messages, as the batch job's records and explanation.json always have.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class DecodeWarning(Enum):
    PACKETS_SKIPPED = "packets skipped"  # some packets failed to decode; the rest of the stream was used
    STOPPED_EARLY = "stopped early"  # the demuxer, the resampler or too many bad packets ended a stream early
    VIDEO_ENDS_EARLY = "video ends early"  # fewer frames than planned: the video stream ends before its duration
    HEADER_PROMISES_MORE = "header promises more"  # the header counts frames the data does not hold (e.g. AVI)
    GIF_NO_TRAILER = "gif without trailer"  # a GIF cut off before its trailer byte
    AUDIO_ENDS_EARLY = "audio ends early"  # the audio stream ends well before the duration it declares
    AUDIO_CUT = "audio cut at the limit"  # MediaConfig.max_audio_seconds reached (the file itself is whole)
    STREAM_UNREADABLE = "stream unreadable"  # one stream failed entirely; the other was kept
    NOTHING_DECODED = "nothing decoded"  # a stream is present but gave no frame / no sample


# The kinds that mean the file holds less than its header promises: its duration is what was decoded.
TRUNCATION: frozenset[DecodeWarning] = frozenset({
    DecodeWarning.STOPPED_EARLY, DecodeWarning.VIDEO_ENDS_EARLY, DecodeWarning.HEADER_PROMISES_MORE,
    DecodeWarning.GIF_NO_TRAILER, DecodeWarning.AUDIO_ENDS_EARLY,
})


@dataclass
class DecodeWarnings:
    """The warnings of one decode, in the order they happened."""

    items: list[tuple[DecodeWarning, str]] = field(default_factory=list)

    def add(self, kind: DecodeWarning, message: str) -> None:
        self.items.append((kind, message))

    def has(self, *kinds: DecodeWarning) -> bool:
        return any(k in kinds for k, _ in self.items)

    @property
    def truncated(self) -> bool:
        """The file holds less than its header says (see TRUNCATION)."""
        return any(k in TRUNCATION for k, _ in self.items)

    @property
    def messages(self) -> list[str]:
        return [m for _, m in self.items]

    def __bool__(self) -> bool:
        return bool(self.items)
