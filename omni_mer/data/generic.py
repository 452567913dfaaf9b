"""Generic labelled-clip list, CSV or JSONL, one clip per row.

Columns / keys: ``path`` (relative paths resolve against the list's folder), ``label`` or ``label5`` (LABELS code or
its English or Chinese name) or ``score`` with ``score_scale`` (``mosei`` for [-3, 3], ``sims`` for [-1, 1]),
``language`` (or ``lang``: en / zh), optional ``text``, ``split`` (train / valid / test) and ``id`` (default: the
file name without extension).

Public API:
    read_generic(file, check_files=True, default_scale=None) -> (list[ManifestRecord], list[Problem])
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from omni_mer.core.i18n import LANGUAGES
from omni_mer.data.manifest import ManifestRecord, Problem, iter_csv, normalise_split
from omni_mer.core.labels import from_mosei, from_sims, label_from_text

_LANG_ALIASES = {"en": "en", "eng": "en", "english": "en", "zh": "zh", "cn": "zh", "zh-cn": "zh", "chinese": "zh",
                 "mandarin": "zh", "cmn": "zh"}
_SCALES = {"mosei": from_mosei, "sims": from_sims, "sims2": from_sims}


def _iter_jsonl(path: Path) -> Iterator[tuple[int, dict | None, str | None]]:
    with path.open("r", encoding="utf-8-sig") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                yield n, None, f"not JSON: {exc.msg}"
                continue
            if not isinstance(obj, dict):
                yield n, None, "not a JSON object"
                continue
            yield n, obj, None


def _row_to_record(row: dict, base: Path, source: str, default_scale: str | None) -> tuple[ManifestRecord, Path]:
    raw_path = str(row.get("path") or "").strip()
    if not raw_path:
        raise ValueError("no path")
    p = Path(raw_path)
    p = p if p.is_absolute() else base / p
    lang_raw = str(row.get("language") or row.get("lang") or "").strip().lower()
    if lang_raw not in _LANG_ALIASES:
        raise ValueError(f"language {lang_raw!r} is not one of {LANGUAGES}")
    label_raw = row.get("label")
    if label_raw in (None, ""):
        label_raw = row.get("label5")  # the manifest's own key (samples/meta/manifest.jsonl)
    score_raw = row.get("score")
    score = None
    if label_raw not in (None, ""):
        label5 = label_from_text(str(label_raw))
        if label5 is None:
            raise ValueError(f"label {label_raw!r} is not a known label name")
        if score_raw not in (None, ""):
            score = float(score_raw)  # kept as given; the label decides
    elif score_raw not in (None, ""):
        scale = str(row.get("score_scale") or default_scale or "").strip().lower()
        if scale not in _SCALES:
            raise ValueError(f"score given without a valid score_scale ({scale!r}); use one of mosei, sims")
        label5 = _SCALES[scale](score_raw)
        score = float(score_raw)
    else:
        raise ValueError("neither label nor score")
    text = row.get("text")
    rec = ManifestRecord(
        id=str(row.get("id") or "").strip() or p.stem,
        path=str(p.resolve()),
        lang=_LANG_ALIASES[lang_raw],
        label5=label5,
        score=score,
        text=str(text).strip() if text not in (None, "") else None,
        split=normalise_split(row.get("split")),
        source=source,
    )
    return rec, p


def read_generic(
    file: str | Path, check_files: bool = True, default_scale: str | None = None
) -> tuple[list[ManifestRecord], list[Problem]]:
    """Records of a generic CSV or JSONL list plus the problems (bad rows with line numbers, missing videos)."""
    file = Path(file)
    source = file.stem
    if not file.is_file():
        return [], [Problem(source, str(file), None, "missing_file", "list file not found")]
    base = file.parent
    if file.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        rows = ((n, obj, err) for n, obj, err in _iter_jsonl(file))
    else:
        rows = ((n, row, None) for n, row in iter_csv(file))
    records, problems = [], []
    for n, row, err in rows:
        if err is not None:
            problems.append(Problem(source, str(file), n, "bad_row", err))
            continue
        try:
            rec, p = _row_to_record(row, base, source, default_scale)
        except (ValueError, TypeError) as exc:
            problems.append(Problem(source, str(file), n, "bad_row", str(exc)))
            continue
        if check_files and not p.is_file():
            problems.append(Problem(source, str(file), n, "missing_video", f"{p} not found"))
            continue
        records.append(rec)
    return records, problems
