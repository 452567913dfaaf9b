"""MER2023 (MERTools' ``mer2023-dataset-process`` table): ``label.csv`` with ``name, split, text_zh, text_en,
emotion, valence`` and videos, when present, at ``video/<name>.mp4`` (or ``Raw/<name>.mp4``). Mandarin; the
5-class label comes from the annotated valence in [-5, 5] (labels.from_mer2023 documents the bins).

MER2023 has no validation split. Its ``train`` rows are train; ``test1`` and ``test2`` (both labelled) are test;
``test3`` has no valence and is skipped (counted as unlabelled, not as bad rows). ``text_en`` is MERTools' English
translation and goes to ``translation``.

Public API:
    read_mer2023(root, check_files=True) -> (list[ManifestRecord], list[Problem])
"""

from __future__ import annotations

import logging
from pathlib import Path

from omni_mer.core.config import MEDIA_EXTENSIONS
from omni_mer.data.manifest import ManifestRecord, Problem, iter_csv, require_columns
from omni_mer.core.labels import from_mer2023

log = logging.getLogger(__name__)

MER2023_COLUMNS = ("name", "split", "text_zh", "text_en", "emotion", "valence")
SPLITS = {"train": "train", "test1": "test", "test2": "test"}
VIDEO_DIRS = ("video", "Raw")


def _find_video(root: Path, name: str) -> Path | None:
    for folder in VIDEO_DIRS:
        for ext in MEDIA_EXTENSIONS:
            p = root / folder / f"{name}{ext}"
            if p.is_file():
                return p
    return None


def read_mer2023(root: str | Path, check_files: bool = True) -> tuple[list[ManifestRecord], list[Problem]]:
    """MER2023 rows with a valence as manifest records (lang "zh"); text-only when no video folder exists."""
    root = Path(root)
    csv_path = root / "label.csv"
    if not csv_path.is_file():
        return [], [Problem("mer2023", str(csv_path), None, "missing_file", f"label.csv not found under {root}")]
    absent = require_columns(csv_path, ("name", "split", "text_zh", "valence"))
    if absent:
        return [], [Problem("mer2023", str(csv_path), 1, "bad_row",
                            f"header lacks columns {absent}; expected {list(MER2023_COLUMNS)}")]
    text_only = not any((root / d).is_dir() for d in VIDEO_DIRS)
    records: list[ManifestRecord] = []
    problems: list[Problem] = []
    unlabelled = 0
    for line, row in iter_csv(csv_path):
        name, split = row.get("name", "").strip(), row.get("split", "").strip().lower()
        raw = row.get("valence", "").strip()
        if split not in SPLITS:
            if split == "test3" or not raw:
                unlabelled += 1
                continue
            problems.append(Problem("mer2023", str(csv_path), line, "bad_row",
                                    f"split {split!r} is not one of {sorted(SPLITS) + ['test3']}"))
            continue
        if not raw:
            unlabelled += 1
            continue
        try:
            if not name:
                raise ValueError("empty name")
            label5 = from_mer2023(raw)
        except ValueError as exc:
            problems.append(Problem("mer2023", str(csv_path), line, "bad_row", str(exc)))
            continue
        video = None if text_only else _find_video(root, name)
        if video is None and not text_only and check_files:
            problems.append(Problem("mer2023", str(csv_path), line, "missing_video",
                                    f"{root / VIDEO_DIRS[0] / (name + '.mp4')} not found"))
            continue
        records.append(ManifestRecord(
            id=name, path=None if video is None else str(video.resolve()), lang="zh", label5=label5,
            score=float(raw), text=row.get("text_zh", "").strip() or None, split=SPLITS[split], source="mer2023",
            translation=row.get("text_en", "").strip() or None,
        ))
    if unlabelled:
        log.info("mer2023: %d rows without a valence (test3 / unlabelled) skipped", unlabelled)
    return records, problems
