"""Decoding any container into a Clip (omni_mer.media.decoder).

Public API:
    decode(path, media=MediaConfig(), clip_id=None, language=None, include_video=True) -> Clip
    probe(path) -> MediaInfo
"""

from omni_mer.media.decoder import MediaInfo, decode, probe

__all__ = ["MediaInfo", "decode", "probe"]
