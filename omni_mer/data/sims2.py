"""CH-SIMS v2: ``meta.csv`` (video_id, clip_id, text, label, label_T, label_A, label_V, annotation, mode) and
videos at ``Raw/<video_id>/<clip_id>.mp4``. Mandarin; labels by labels.from_sims, including the unimodal ones.

Public API:
    read_sims2(root, check_files=True) -> (list[ManifestRecord], list[Problem])
"""

from __future__ import annotations

from pathlib import Path

from omni_mer.data.manifest import ManifestRecord, Problem
from omni_mer.data.mosei import read_mmsa_layout
from omni_mer.core.labels import from_sims

SIMS2_COLUMNS = ("video_id", "clip_id", "text", "label", "label_T", "label_A", "label_V", "annotation", "mode")


def read_sims2(root: str | Path, check_files: bool = True) -> tuple[list[ManifestRecord], list[Problem]]:
    """CH-SIMS v2 under ``root`` as manifest records (lang "zh", per-modality labels) plus the problems found."""
    return read_mmsa_layout(
        root, "meta.csv", "sims2", "zh", from_sims, SIMS2_COLUMNS, unimodal=True, check_files=check_files
    )
