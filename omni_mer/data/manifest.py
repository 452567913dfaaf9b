"""One manifest (JSONL) for every labelled clip, and `omni-mer prepare`.

Public API:
    ManifestRecord(id, path, lang, label5, score=None, text=None, split=None, source="",
                   label_T=None, label_A=None, label_V=None, score_T=None, score_A=None, score_V=None)
    Problem(source, file, line, kind, message)          # a bad row or a missing video, reported not raised
    read_manifest(path) -> list[ManifestRecord]
    write_manifest(records, path) -> Path
    build_manifest(mosei=None, sims2=None, extra=(), check_files=True) -> (records, problems)
    main(argv) -> int       # omni-mer prepare --mosei DIR --sims2 DIR [--extra FILE ...] --out manifest.jsonl
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from omni_mer.cli import emit
from omni_mer.labels import LABEL_INDEX

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
_SPLIT_ALIASES = {"train": "train", "training": "train", "valid": "valid", "val": "valid", "dev": "valid",
                  "validation": "valid", "test": "test", "testing": "test"}


@dataclass
class ManifestRecord:
    """One labelled clip. ``label5`` is one of LABELS; per-modality labels are CH-SIMS v2's unimodal ones."""

    id: str
    path: str
    lang: str
    label5: str
    score: float | None = None
    text: str | None = None
    split: str | None = None
    source: str = ""
    label_T: str | None = None
    label_A: str | None = None
    label_V: str | None = None
    score_T: float | None = None
    score_A: float | None = None
    score_V: float | None = None

    def __post_init__(self) -> None:
        if self.label5 not in LABEL_INDEX:
            raise ValueError(f"label5 {self.label5!r} is not one of {tuple(LABEL_INDEX)}")

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, d: dict) -> ManifestRecord:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class Problem:
    """A row that was skipped or a file that is missing, with where it came from."""

    source: str
    file: str
    line: int | None
    kind: str  # "missing_video" | "bad_row" | "duplicate_id" | "missing_file"
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"[{self.source}] {where}: {self.kind}: {self.message}"


def normalise_split(value: str | None) -> str | None:
    """'train'/'valid'/'test' (accepting val/dev/validation); None for empty; ValueError otherwise."""
    if value is None or str(value).strip() == "":
        return None
    key = str(value).strip().lower()
    if key not in _SPLIT_ALIASES:
        raise ValueError(f"split {value!r} is not one of {SPLITS}")
    return _SPLIT_ALIASES[key]


def iter_csv(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number in the file, row) for each data row; tolerant of a UTF-8 BOM (Chinese CSVs)."""
    with Path(path).open("r", encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        line = reader.line_num + 1
        for row in reader:
            yield line, {(k or "").strip(): (v if v is not None else "") for k, v in row.items()}
            line = reader.line_num + 1


def require_columns(path: Path, needed: Iterable[str]) -> list[str]:
    """Columns of ``needed`` absent from the CSV header (empty list when all are there)."""
    with Path(path).open("r", encoding="utf-8-sig", newline="") as fh:
        header = next(csv.reader(fh), [])
    have = {h.strip() for h in header}
    return [c for c in needed if c not in have]


def read_manifest(path: str | Path) -> list[ManifestRecord]:
    """Records of a JSONL manifest. A bad line raises ValueError naming the file and line."""
    records = []
    with Path(path).open("r", encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rec = ManifestRecord.from_dict(json.loads(line))
                if not Path(rec.path).is_absolute():  # portable manifests: paths relative to the manifest's folder
                    rec.path = str(Path(path).parent / rec.path)
                records.append(rec)
            except (json.JSONDecodeError, TypeError, ValueError) as exc:
                raise ValueError(f"{path}:{n}: bad manifest line: {exc}") from exc
    return records


def write_manifest(records: Iterable[ManifestRecord], path: str | Path) -> Path:
    """Write records as JSONL (UTF-8, Chinese kept readable)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r.to_dict(), ensure_ascii=False) + "\n")
    return path


def build_manifest(
    mosei: str | Path | None = None,
    sims2: str | Path | None = None,
    extra: Iterable[str | Path] = (),
    check_files: bool = True,
) -> tuple[list[ManifestRecord], list[Problem]]:
    """Read every given dataset; return the records (de-duplicated by id) and every problem found."""
    from omni_mer.data.generic import read_generic
    from omni_mer.data.mosei import read_mosei
    from omni_mer.data.sims2 import read_sims2

    records: list[ManifestRecord] = []
    problems: list[Problem] = []
    if mosei is not None:
        r, p = read_mosei(mosei, check_files=check_files)
        records += r
        problems += p
    if sims2 is not None:
        r, p = read_sims2(sims2, check_files=check_files)
        records += r
        problems += p
    for f in extra:
        r, p = read_generic(f, check_files=check_files)
        records += r
        problems += p
    seen: dict[str, ManifestRecord] = {}
    unique = []
    for r in records:
        if r.id in seen:
            problems.append(Problem(r.source, r.path, None, "duplicate_id",
                                    f"id {r.id!r} already used by {seen[r.id].path}; kept the first"))
            continue
        seen[r.id] = r
        unique.append(r)
    return unique, problems


def summarise(records: list[ManifestRecord], problems: list[Problem]) -> str:
    """Human-readable counts by source/split/label and problems by kind."""
    lines = [f"{len(records)} records"]
    by = Counter((r.source, r.split or "-") for r in records)
    for (src, split), n in sorted(by.items()):
        lines.append(f"  {src:<8} {split:<6} {n}")
    labels = Counter(r.label5 for r in records)
    lines.append("  labels: " + ", ".join(f"{k}={labels.get(k, 0)}" for k in LABEL_INDEX))
    kinds = Counter(p.kind for p in problems)
    lines.append(f"{len(problems)} problems" + (": " + ", ".join(f"{k}={v}" for k, v in kinds.items()) if kinds else ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """omni-mer prepare: one manifest from CMU-MOSEI / CH-SIMS v2 / generic files."""
    ap = argparse.ArgumentParser(prog="omni-mer prepare", description=__doc__.splitlines()[0])
    ap.add_argument("--mosei", type=Path, help="CMU-MOSEI root (MMSA layout: label.csv + Raw/<video_id>/<clip_id>.mp4)")
    ap.add_argument("--sims2", type=Path, help="CH-SIMS v2 root (meta.csv + Raw/<video_id>/<clip_id>.mp4)")
    ap.add_argument("--extra", type=Path, action="append", default=[],
                    help="generic CSV/JSONL (path, label or score[+score_scale], language[, text, split, id])")
    ap.add_argument("--out", type=Path, required=True, help="manifest.jsonl to write")
    ap.add_argument("--no-check-files", action="store_true", help="do not check that the videos exist")
    ap.add_argument("--problems", type=Path, help="also write every problem to this file (one per line)")
    args = ap.parse_args(argv)
    if args.mosei is None and args.sims2 is None and not args.extra:
        ap.error("give at least one of --mosei, --sims2, --extra")
    records, problems = build_manifest(args.mosei, args.sims2, args.extra, check_files=not args.no_check_files)
    for p in problems:
        log.warning("%s", p)
    write_manifest(records, args.out)
    if args.problems:
        args.problems.parent.mkdir(parents=True, exist_ok=True)
        args.problems.write_text("".join(f"{p}\n" for p in problems), encoding="utf-8")
    emit(summarise(records, problems))
    emit(f"wrote {args.out}")
    return 0 if records else 1
