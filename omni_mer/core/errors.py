"""Typed errors. Each names the file and the reason; batch jobs record them and carry on."""

from __future__ import annotations

from pathlib import Path


class OmniMerError(Exception):
    """Base class for every error omni-mer raises on purpose."""


class MediaError(OmniMerError):
    """A file could not be turned into a Clip."""

    reason = "media error"

    def __init__(self, path: str | Path, detail: str = "") -> None:
        self.path = Path(path)
        self.detail = detail
        msg = f"{self.path}: {self.reason}"
        super().__init__(f"{msg}: {detail}" if detail else msg)


class MissingFileError(MediaError):
    reason = "file does not exist"


class EmptyFileError(MediaError):
    reason = "file is empty (0 bytes)"


class NotMediaError(MediaError):
    reason = "not a media file"


class NoStreamError(MediaError):
    reason = "no decodable audio or video stream"


class CorruptMediaError(MediaError):
    reason = "corrupt or truncated stream with nothing usable"


class DecodeTimeoutError(MediaError):
    reason = "decoding took longer than the time limit"


class ModelNotFoundError(OmniMerError):
    """A model folder was asked for but is not there."""


class EmptyInputError(OmniMerError):
    """The input folder holds nothing to label (the batch job refuses to write an empty result silently)."""


class ConfigError(OmniMerError, ValueError):
    """A bad configuration value; the message names the value and the valid ones."""
