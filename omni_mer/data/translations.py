"""Machine translations of dataset transcripts (MERTools' ``name, chinese, english`` tables).

A translation row is matched to a record by id (``<video_id>_<clip_id>`` for the MMSA layouts, the sample name
for MER2023); the text in the record's other language goes to ``record.translation``.

Public API:
    read_translations(csv_path) -> dict[str, tuple[str, str]]      # id -> (chinese, english)
    attach_translations(records, folder) -> int                    # how many records got one
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from omni_mer.data.manifest import ManifestRecord, iter_csv

log = logging.getLogger(__name__)

# translations/<file>.csv per manifest source
FILES = {"mosi": "MOSI.csv", "sims": "SIMS.csv", "sims2": "SIMSv2.csv", "mer2023": "MER2023.csv"}


def read_translations(csv_path: str | Path) -> dict[str, tuple[str, str]]:
    """id -> (chinese, english) for each row with a name."""
    out: dict[str, tuple[str, str]] = {}
    for _, row in iter_csv(Path(csv_path)):
        name = row.get("name", "").strip()
        if name:
            out[name] = (row.get("chinese", "").strip(), row.get("english", "").strip())
    return out


def attach_translations(records: Iterable[ManifestRecord], folder: str | Path) -> int:
    """Fill ``translation`` (the other language's text) from ``folder/<dataset>.csv``; returns the count filled."""
    folder = Path(folder)
    tables: dict[str, dict[str, tuple[str, str]]] = {}
    filled = 0
    for rec in records:
        name = FILES.get(rec.source)
        if name is None or rec.translation:
            continue
        if name not in tables:
            path = folder / name
            tables[name] = read_translations(path) if path.is_file() else {}
            if not tables[name]:
                log.info("translations: no %s under %s", name, folder)
        pair = tables[name].get(rec.id)
        if pair is None:
            continue
        other = pair[1] if rec.lang == "zh" else pair[0]
        if other:
            rec.translation = other
            filled += 1
    return filled
