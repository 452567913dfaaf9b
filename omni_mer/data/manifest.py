"""One manifest (JSONL) for every labelled clip, and `omni-mer prepare`.

Public API:
    ManifestRecord(id, path, lang, label5, score=None, text=None, split=None, source="",
                   label_T=None, label_A=None, label_V=None, score_T=None, score_A=None, score_V=None,
                   translation=None)      # path None: a text-only record (the table's videos are not on disk)
    Problem(source, file, line, kind, message)          # a bad row or a missing video, reported not raised
    read_manifest(path) -> list[ManifestRecord]
    write_manifest(records, path) -> Path
    build_manifest(mosei=None, sims2=None, extra=(), check_files=True, mosi=None, sims=None, mer2023=None,
                   translations=None) -> (records, problems)
    main(argv) -> int       # omni-mer prepare --mosei DIR --sims2 DIR [--mosi/--sims/--mer2023 DIR]
                            #                  [--translations DIR] [--extra FILE ...] --out manifest.jsonl
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

from omni_mer.core.console import emit
from omni_mer.core.labels import LABEL_INDEX

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
_SPLIT_ALIASES = {"train": "train", "training": "train", "valid": "valid", "val": "valid", "dev": "valid",
                  "validation": "valid", "test": "test", "testing": "test"}


@dataclass
class ManifestRecord:
    """One labelled clip. ``label5`` is one of LABELS; per-modality labels are CH-SIMS v2's unimodal ones.

    ``path`` is None for a text-only record: a dataset table read without its ``Raw/`` videos (transcript + label
    only, used by the text head). ``translation`` is a machine translation of ``text`` into the other language.
    """

    id: str
    path: str | None
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
    translation: str | None = None

    @property
    def text_only(self) -> bool:
        return self.path is None

    def __post_init__(self) -> None:
        if self.label5 not in LABEL_INDEX:
            raise ValueError(f"label5 {self.label5!r} is not one of {tuple(LABEL_INDEX)}")

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, d: dict) -> ManifestRecord:
        known = {f.name for f in fields(cls)}
        return cls(**{"path": None, **{k: v for k, v in d.items() if k in known}})  # to_dict drops a None path


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
                if rec.path is not None and not Path(rec.path).is_absolute():  # portable manifests: paths relative to the manifest's folder
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
    mosi: str | Path | None = None,
    sims: str | Path | None = None,
    mer2023: str | Path | None = None,
    translations: str | Path | None = None,
) -> tuple[list[ManifestRecord], list[Problem]]:
    """Read every given dataset; return the records (de-duplicated by id) and every problem found.

    A dataset root without its videos (no ``Raw/``) gives text-only records; ``translations`` is a folder of
    ``name, chinese, english`` tables (MOSI.csv, SIMS.csv, SIMSv2.csv, MER2023.csv) joined onto the records by id.
    """
    from omni_mer.data.generic import read_generic
    from omni_mer.data.mer2023 import read_mer2023
    from omni_mer.data.mosei import read_mosei, read_mosi, read_sims
    from omni_mer.data.sims2 import read_sims2
    from omni_mer.data.translations import attach_translations

    records: list[ManifestRecord] = []
    problems: list[Problem] = []
    for root, reader in ((mosei, read_mosei), (mosi, read_mosi), (sims, read_sims), (sims2, read_sims2),
                         (mer2023, read_mer2023)):
        if root is not None:
            r, p = reader(root, check_files=check_files)
            records += r
            problems += p
    for f in extra:
        r, p = read_generic(f, check_files=check_files)
        records += r
        problems += p
    if translations is not None:
        n = attach_translations(records, translations)
        log.info("translations: %d of %d records have one", n, len(records))
    seen: dict[str, ManifestRecord] = {}
    unique = []
    for r in records:
        key = (r.source, r.id) if r.text_only else r.id
        if key in seen:
            problems.append(Problem(r.source, r.path or r.source, None, "duplicate_id",
                                    f"id {r.id!r} already used by {seen[key].path or seen[key].source}; kept the first"))
            continue
        seen[key] = r
        unique.append(r)
    return unique, problems


def text_table_roots(data: str | Path) -> dict[str, Path]:
    """The dataset folders of a text-table tree (../shared/data/text layout) that exist, by build_manifest keyword."""
    data = Path(data)
    names = {"mosei": "MOSEI", "mosi": "MOSI", "sims": "SIMS", "sims2": "SIMSv2", "mer2023": "MER2023",
             "translations": "translations"}
    return {k: data / v for k, v in names.items() if (data / v).is_dir()}


def summarise(records: list[ManifestRecord], problems: list[Problem]) -> str:
    """Human-readable counts by source/split/label and problems by kind."""
    lines = [f"{len(records)} records"]
    by = Counter((r.source, r.split or "-") for r in records)
    for (src, split), n in sorted(by.items()):
        lines.append(f"  {src:<8} {split:<6} {n}")
    text_only = sum(r.text_only for r in records)
    if text_only:
        lines.append(f"  text-only (no video on disk): {text_only}; with a translation: "
                     f"{sum(bool(r.translation) for r in records)}")
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
    ap.add_argument("--mosi", type=Path, help="CMU-MOSI root (MMSA layout, like --mosei)")
    ap.add_argument("--sims", type=Path, help="CH-SIMS v1 root (MMSA layout label.csv + Raw/)")
    ap.add_argument("--mer2023", type=Path, help="MER2023 root (label.csv: name, split, text_zh, text_en, valence)")
    ap.add_argument("--translations", type=Path, help="folder of name,chinese,english tables joined by id")
    ap.add_argument("--text-data", type=Path,
                    help="a text-table tree (MOSEI/ MOSI/ SIMS/ SIMSv2/ MER2023/ translations/, e.g. "
                         "../shared/data/text): every dataset found there, as text-only records without Raw/")
    ap.add_argument("--extra", type=Path, action="append", default=[],
                    help="generic CSV/JSONL (path, label or score[+score_scale], language[, text, split, id])")
    ap.add_argument("--out", type=Path, required=True, help="manifest.jsonl to write")
    ap.add_argument("--no-check-files", action="store_true", help="do not check that the videos exist")
    ap.add_argument("--problems", type=Path, help="also write every problem to this file (one per line)")
    args = ap.parse_args(argv)
    roots = {k: getattr(args, k) for k in ("mosei", "sims2", "mosi", "sims", "mer2023", "translations")}
    if args.text_data is not None:
        if not args.text_data.is_dir():
            ap.error(f"--text-data {args.text_data}: not a folder")
        for k, v in text_table_roots(args.text_data).items():
            roots[k] = roots[k] or v
    for key, root in roots.items():
        if root is not None and not Path(root).is_dir():
            ap.error(f"--{key.replace('_', '-')} {root}: not a folder")
    for f in args.extra:
        if not Path(f).is_file():
            ap.error(f"--extra {f}: no such file")
    if not any(v for k, v in roots.items() if k != "translations") and not args.extra:
        ap.error("give at least one of --mosei, --sims2, --mosi, --sims, --mer2023, --text-data, --extra")
    records, problems = build_manifest(extra=args.extra, check_files=not args.no_check_files, **roots)
    for p in problems:
        log.warning("%s", p)
    write_manifest(records, args.out)
    if args.problems:
        args.problems.parent.mkdir(parents=True, exist_ok=True)
        args.problems.write_text("".join(f"{p}\n" for p in problems), encoding="utf-8")
    emit(summarise(records, problems))
    emit(f"wrote {args.out}")
    return 0 if records else 1
