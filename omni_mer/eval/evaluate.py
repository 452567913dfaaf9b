"""`omni-mer evaluate`: metrics of label_prediction.csv files against a manifest.

    omni-mer evaluate --pred Test_Results/label_prediction.csv [--pred zh_model.csv ...] [--train-lang en ...]
                      --manifest manifest.jsonl [--out DIR] [--split test]

Writes DIR/metrics.json, DIR/summary.md and DIR/confusion_<run>.csv/.png. Prediction IDs are matched to manifest
ids, then (when unique) to the video file's name or stem; every unmatched ID is reported in metrics.json and the
summary (missing predictions, unknown IDs, unreadable labels), never silently dropped. With --train-lang per
--pred (the language the model behind that file was trained/calibrated on) a cross-lingual table is added.

EXTENSION POINT: optional sections (faithfulness on --supplements, robustness under --perturb, ...) plug in
without touching main(): a module exposes ``EVAL_SECTION = Section(name, add_arguments, run)`` and its name is
added to SECTION_MODULES below (or it calls register_section()). add_arguments(parser) adds its flags;
run(args, ctx) returns a JSON-able dict stored under metrics.json[name] (or None to skip) and may append
markdown to ctx.markdown.

Public API:
    Section, EvalContext, register_section(section), SECTIONS, SECTION_MODULES
    read_predictions(path) -> (dict[id, label], list[problem str])
    match_predictions(preds, records) -> (pairs, report)
    evaluate_run(pred_path, records, split=None, train_lang=None) -> dict
    main(argv) -> int
"""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from omni_mer.core.console import emit
from omni_mer.data.manifest import ManifestRecord, read_manifest
from omni_mer.core.labels import label_from_text
from omni_mer.eval.metrics import cross_lingual_table, evaluate_labels, markdown_summary, save_confusion

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------ extension points


@dataclass
class EvalContext:
    """What optional sections can read (and the markdown they can add to summary.md)."""

    args: argparse.Namespace
    out_dir: Path
    records: list[ManifestRecord] = field(default_factory=list)
    runs: list[dict] = field(default_factory=list)
    markdown: list[str] = field(default_factory=list)


@dataclass
class Section:
    """An optional part of the evaluation with its own flags."""

    name: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, EvalContext], dict | None]


SECTIONS: list[Section] = []
# Modules that define EVAL_SECTION; missing ones are skipped. Add one line per optional section, e.g.
# "omni_mer.explain.faithfulness" (--supplements DIR) and "omni_mer.eval.noise" (--perturb).
SECTION_MODULES: list[str] = ["omni_mer.explain.faithfulness", "omni_mer.eval.noise"]


def register_section(section: Section) -> None:
    """Add (or replace by name) an optional evaluation section."""
    SECTIONS[:] = [s for s in SECTIONS if s.name != section.name] + [section]


def _load_sections() -> list[Section]:
    for mod in SECTION_MODULES:
        # Our own modules: an ImportError here is a bug to see, not an optional feature to skip.
        section = getattr(importlib.import_module(mod), "EVAL_SECTION", None)
        if section is not None:
            register_section(section)
    return list(SECTIONS)


# ------------------------------------------------------------------------------------------------ predictions


def read_predictions(path: str | Path) -> tuple[dict[str, str], list[str]]:
    """``ID,Label`` CSV (header optional, label code or name) -> ({id: label}, problems with line numbers)."""
    path = Path(path)
    preds: dict[str, str] = {}
    problems: list[str] = []
    with path.open("r", encoding="utf-8-sig", newline="") as fh:
        for n, row in enumerate(csv.reader(fh), start=1):
            if not row or not any(c.strip() for c in row):
                continue
            if n == 1 and row[0].strip().lower() in ("id", "clip_id", "video_id", "name"):
                continue  # header
            if len(row) < 2:
                problems.append(f"{path}:{n}: expected 'ID,Label', got {row!r}")
                continue
            pid, raw = row[0].strip(), row[1].strip()
            label = label_from_text(raw)
            if label is None:
                problems.append(f"{path}:{n}: ID {pid!r} has unreadable label {raw!r}")
                continue
            if pid in preds:
                problems.append(f"{path}:{n}: duplicate ID {pid!r}; kept the first")
                continue
            preds[pid] = label
    return preds, problems


def match_predictions(preds: dict[str, str], records: list[ManifestRecord]) -> tuple[list[tuple[ManifestRecord, str]], dict]:
    """Pair predictions with manifest records by id, else by unique file name / stem of the record's path."""
    by_id = {r.id: r for r in records}
    alias: dict[str, list[ManifestRecord]] = {}
    for r in records:
        if r.text_only:
            continue
        p = Path(r.path)
        for key in {p.name, p.stem}:
            alias.setdefault(key, []).append(r)
    pairs: list[tuple[ManifestRecord, str]] = []
    matched: set[str] = set()
    unknown, ambiguous = [], []
    for pid, label in preds.items():
        rec = by_id.get(pid)
        if rec is None:
            cands = alias.get(pid, [])
            if len(cands) == 1:
                rec = cands[0]
            elif len(cands) > 1:
                ambiguous.append(pid)
                continue
        if rec is None:
            unknown.append(pid)
            continue
        if rec.id in matched:
            ambiguous.append(pid)
            continue
        matched.add(rec.id)
        pairs.append((rec, label))
    missing = [r.id for r in records if r.id not in matched]
    report = {
        "n_predictions": len(preds),
        "n_manifest": len(records),
        "n_matched": len(pairs),
        "missing_predictions": missing,
        "unknown_ids": unknown,
        "ambiguous_ids": ambiguous,
    }
    return pairs, report


def _run_name(path: Path, used: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.parent.name + "_" + path.stem if path.parent.name else path.stem)
    name, i = base, 2
    while name in used:
        name, i = f"{base}_{i}", i + 1
    used.add(name)
    return name


def evaluate_run(pred_path: str | Path, records: list[ManifestRecord], split: str | None = None,
                 train_lang: str | None = None) -> dict:
    """Metrics of one prediction file against the manifest (restricted to ``split`` when given)."""
    pred_path = Path(pred_path)
    preds, problems = read_predictions(pred_path)
    pool = [r for r in records if split is None or r.split == split]
    pairs, report = match_predictions(preds, pool)
    if split is not None:
        # An ID that exists in another split is not "unknown": say where it is.
        other = {r.id: r.split for r in records if r.split != split}
        report["other_split_ids"] = [i for i in report["unknown_ids"] if i in other]
        report["unknown_ids"] = [i for i in report["unknown_ids"] if i not in other]
    report["bad_rows"] = problems
    y_true = [r.label5 for r, _ in pairs]
    y_pred = [p for _, p in pairs]
    langs = [r.lang for r, _ in pairs]
    result = evaluate_labels(y_true, y_pred, langs)
    return {"pred": str(pred_path), "train_lang": train_lang, "split": split, **result, "matching": report}


def _matching_markdown(name: str, m: dict) -> str:
    def show(ids: list[str]) -> str:
        head = ", ".join(ids[:10])
        return head + (f", … (+{len(ids) - 10})" if len(ids) > 10 else "")

    lines = [f"- **{name}**: {m['n_matched']} of {m['n_manifest']} manifest clips matched "
             f"({m['n_predictions']} predictions)"]
    for key, what in (("missing_predictions", "manifest clips without a prediction"),
                      ("unknown_ids", "prediction IDs not in the manifest"),
                      ("other_split_ids", "prediction IDs from another split (not scored)"),
                      ("ambiguous_ids", "ambiguous or repeated IDs"), ("bad_rows", "unreadable rows")):
        if m.get(key):
            lines.append(f"  - {len(m[key])} {what}: {show(m[key])}")
    return "\n".join(lines)


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")


def build_parser(sections: list[Section]) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="omni-mer evaluate", description="metrics against a manifest")
    ap.add_argument("--pred", type=Path, action="append", default=[], help="ID,Label CSV (repeatable)")
    ap.add_argument("--train-lang", action="append", default=[],
                    help="language the model behind each --pred was trained on (same order; for the cross-lingual table)")
    ap.add_argument("--manifest", type=Path, help="manifest.jsonl from omni-mer prepare")
    ap.add_argument("--out", type=Path, default=Path("eval_results"), help="output folder")
    ap.add_argument("--split", default=None, help="only clips of this split (train/valid/test)")
    for s in sections:
        s.add_arguments(ap)
    return ap


def label_section(args: argparse.Namespace, ctx: EvalContext) -> dict | None:
    """The label metrics of every --pred file (always first)."""
    if not args.pred:
        return None
    if args.train_lang and len(args.train_lang) != len(args.pred):
        raise SystemExit(f"--train-lang given {len(args.train_lang)} times but --pred {len(args.pred)} times")
    used: set[str] = set()
    for i, pred in enumerate(args.pred):
        run = evaluate_run(pred, ctx.records, args.split, args.train_lang[i] if args.train_lang else None)
        run["name"] = _run_name(pred, used)
        cm = np.asarray(run["overall"]["confusion"])
        save_confusion(cm, ctx.out_dir / f"confusion_{run['name']}.csv", ctx.out_dir / f"confusion_{run['name']}.png",
                       title=f"{run['name']} (n={int(cm.sum())})")
        for lang, m in run["per_language"].items():
            save_confusion(np.asarray(m["confusion"]), ctx.out_dir / f"confusion_{run['name']}_{lang}.csv")
        ctx.runs.append(run)
        m = run["matching"]
        if m["missing_predictions"] or m["unknown_ids"] or m["bad_rows"] or m["ambiguous_ids"]:
            log.warning("%s: %d missing predictions, %d unknown IDs, %d ambiguous, %d bad rows", pred,
                        len(m["missing_predictions"]), len(m["unknown_ids"]), len(m["ambiguous_ids"]), len(m["bad_rows"]))
        title = f"{run['name']}" + (f" (trained on {run['train_lang']})" if run["train_lang"] else "")
        ctx.markdown.append(markdown_summary(run, title=title))
    cross = None
    if args.train_lang:
        acc: dict[tuple[str, str], float] = {}
        for run in ctx.runs:
            for lang, m in run["per_language"].items():
                if m["acc5"] is not None:
                    acc[(run["train_lang"], lang)] = m["acc5"]
        cross = cross_lingual_table(acc)
        from omni_mer.eval.metrics import cross_lingual_markdown

        ctx.markdown.append("## Cross-lingual accuracy (Acc-5, %)\n\n" + cross_lingual_markdown(cross) + "\n")
    ctx.markdown.append("## ID matching\n\n" + "\n".join(_matching_markdown(r["name"], r["matching"]) for r in ctx.runs) + "\n")
    return {"runs": ctx.runs, "cross_lingual": cross}


def main(argv: list[str] | None = None) -> int:
    """omni-mer evaluate: label metrics first, then every registered optional section."""
    sections = _load_sections()
    args = build_parser(sections).parse_args(argv)
    if args.pred and args.manifest is None:
        raise SystemExit("--pred needs --manifest (the gold labels)")
    out_dir = args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = EvalContext(args=args, out_dir=out_dir, records=read_manifest(args.manifest) if args.manifest else [])
    results: dict = {}
    labels = label_section(args, ctx)
    if labels is not None:
        results.update(labels)
    for s in sections:  # EXTENSION POINT: optional sections run here, in registration order
        value = s.run(args, ctx)
        if value is not None:
            results[s.name] = value
    if not results:
        raise SystemExit("nothing to evaluate: give --pred (and --manifest) or an optional section's flag")
    (out_dir / "metrics.json").write_text(json.dumps(results, indent=2, ensure_ascii=False, default=_json_default),
                                          encoding="utf-8")
    summary = "# omni-mer evaluation\n\n" + "\n".join(ctx.markdown)
    (out_dir / "summary.md").write_text(summary, encoding="utf-8")
    emit(summary)
    emit(f"wrote {out_dir / 'metrics.json'} and {out_dir / 'summary.md'}")
    return 0
