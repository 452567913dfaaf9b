"""CMU-MOSEI in the MMSA layout: ``label.csv`` (video_id, clip_id, text, label, annotation, mode) and videos at
``Raw/<video_id>/<clip_id>.mp4``. English; 5-class label from the [-3, 3] score by labels.from_mosei.

When ``Raw/`` is absent under the root (the table alone, e.g. ../shared/data/text/MOSEI), every row becomes a
text-only record (``path`` None): the transcript and its label, counted once, not one missing-video problem per row.

Public API:
    read_mosei(root, check_files=True) -> (list[ManifestRecord], list[Problem])
    read_mosi(root, check_files=True)  -> same, CMU-MOSI (same layout and scale)
    read_sims(root, check_files=True)  -> same, CH-SIMS (v1: label.csv, SIMS grid)
    read_mmsa_layout(root, csv_name, source, lang, to_label, columns, unimodal=False, check_files=True)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from omni_mer.core.config import MEDIA_EXTENSIONS
from omni_mer.data.manifest import ManifestRecord, Problem, iter_csv, normalise_split, require_columns
from omni_mer.core.labels import from_mosei, from_sims

MOSEI_COLUMNS = ("video_id", "clip_id", "text", "label", "annotation", "mode")


def clip_record_id(video_id: str, clip_id: str) -> str:
    """Manifest id of an MMSA clip (unique across a dataset: clip ids repeat between videos)."""
    return f"{video_id}_{clip_id}"


def find_video(root: Path, video_id: str, clip_id: str) -> Path | None:
    """Raw/<video_id>/<clip_id>.mp4, else the same stem with another media extension or zero-padded to 4 digits
    (CSV tools often turn "0001" into 1)."""
    folder = root / "Raw" / video_id
    stems = [clip_id]
    if clip_id.isdigit() and len(clip_id) < 4:
        stems.append(clip_id.zfill(4))
    for stem in stems:
        p = folder / f"{stem}.mp4"
        if p.is_file():
            return p
    if folder.is_dir():
        for stem in stems:
            for ext in MEDIA_EXTENSIONS:
                p = folder / f"{stem}{ext}"
                if p.is_file():
                    return p
    return None


def read_mmsa_layout(
    root: str | Path,
    csv_name: str,
    source: str,
    lang: str,
    to_label: Callable[[object], str],
    columns: tuple[str, ...],
    unimodal: bool = False,
    check_files: bool = True,
) -> tuple[list[ManifestRecord], list[Problem]]:
    """Rows of an MMSA-style CSV as manifest records; bad rows and missing videos become Problems."""
    root = Path(root)
    csv_path = root / csv_name
    if not csv_path.is_file():
        return [], [Problem(source, str(csv_path), None, "missing_file", f"{csv_name} not found under {root}")]
    absent = require_columns(csv_path, [c for c in columns if c not in ("annotation",)])
    if absent:
        return [], [Problem(source, str(csv_path), 1, "bad_row", f"header lacks columns {absent}; expected {list(columns)}")]
    records: list[ManifestRecord] = []
    problems: list[Problem] = []
    text_only = not (root / "Raw").is_dir()
    for line, row in iter_csv(csv_path):
        video_id, clip_id = row.get("video_id", "").strip(), row.get("clip_id", "").strip()
        try:
            if not video_id or not clip_id:
                raise ValueError("empty video_id or clip_id")
            label5 = to_label(row.get("label", "").strip())
            score = float(row["label"])
            split = normalise_split(row.get("mode"))
            extra: dict = {}
            if unimodal:
                for m in ("T", "A", "V"):
                    raw = row.get(f"label_{m}", "").strip()
                    if raw:
                        extra[f"label_{m}"] = to_label(raw)
                        extra[f"score_{m}"] = float(raw)
        except (ValueError, KeyError) as exc:
            problems.append(Problem(source, str(csv_path), line, "bad_row", str(exc)))
            continue
        video = None if text_only else find_video(root, video_id, clip_id)
        if video is None and not text_only:
            expected = root / "Raw" / video_id / f"{clip_id}.mp4"
            if check_files:
                problems.append(Problem(source, str(csv_path), line, "missing_video", f"{expected} not found"))
                continue
            video = expected
        records.append(
            ManifestRecord(
                id=clip_record_id(video_id, clip_id),
                path=None if video is None else str(video.resolve()),
                lang=lang,
                label5=label5,
                score=score,
                text=row.get("text", "").strip() or None,
                split=split,
                source=source,
                **extra,
            )
        )
    return records, problems


def read_mosei(root: str | Path, check_files: bool = True) -> tuple[list[ManifestRecord], list[Problem]]:
    """CMU-MOSEI (MMSA layout) under ``root`` as manifest records (lang "en") plus the problems found."""
    return read_mmsa_layout(root, "label.csv", "mosei", "en", from_mosei, MOSEI_COLUMNS, check_files=check_files)


def read_mosi(root: str | Path, check_files: bool = True) -> tuple[list[ManifestRecord], list[Problem]]:
    """CMU-MOSI (MMSA layout, [-3, 3] like MOSEI) under ``root`` as manifest records (lang "en")."""
    return read_mmsa_layout(root, "label.csv", "mosi", "en", from_mosei, MOSEI_COLUMNS, check_files=check_files)


def read_sims(root: str | Path, check_files: bool = True) -> tuple[list[ManifestRecord], list[Problem]]:
    """CH-SIMS v1 (MMSA layout ``label.csv``, SIMS grid in [-1, 1]) under ``root`` as manifest records (lang "zh")."""
    return read_mmsa_layout(root, "label.csv", "sims", "zh", from_sims, MOSEI_COLUMNS, check_files=check_files)
