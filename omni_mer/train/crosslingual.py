"""Cross-lingual experiments: evaluate adapters trained on English only / Mandarin only / both on a held-out
manifest split and fill the train-language × test-language accuracy table (retention = cross / in-language).

    python -m omni_mer.train.crosslingual --model DIR --manifest M.jsonl --split test \
        --runs en=checkpoints/xl-en zh=checkpoints/xl-zh both=checkpoints/xl-both --out Test_Results/crosslingual

Each run's predictions are written as OUT/<run>/label_prediction.csv (``ID,Label``), so
``omni-mer evaluate --pred … --train-lang …`` reproduces the full metrics.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from omni_mer.core.console import emit
from omni_mer.core.config import MODALITIES, MediaConfig
from omni_mer.evidence.types import Evidence
from omni_mer.core.labels import LABELS

log = logging.getLogger(__name__)


def predict_records(scorer, records, media: MediaConfig, extract_fn: Callable | None, cache_dir: Path) -> list[str]:
    """The omni scorer's label (argmax of label scoring, all modalities) for each manifest record."""
    from omni_mer.media import decode
    from omni_mer.train.data import EvidenceCache, transcript_evidence

    preds = []
    for rec in records:
        clip = decode(rec.path, media, clip_id=rec.id, language=(rec.lang or "en")[:2])
        fn = extract_fn or transcript_evidence(rec)
        sub = "evidence" if extract_fn is not None else "evidence-transcript"
        ev: Evidence = EvidenceCache(cache_dir / sub, fn, media).get(clip, rec.id, rec.path)
        probs = scorer.score(clip, ev, frozenset(MODALITIES))
        preds.append(LABELS[int(np.argmax(probs))])
    return preds


def evaluate_adapter(model_path: str, adapter: str | None, manifest: str, split: str | None,
                     media: MediaConfig = MediaConfig(), extract_fn: Callable | None = None,
                     cache_dir: Path | None = None, langs: Sequence[str] | None = None) -> dict:
    """Metrics of one adapter on a manifest split, overall and per language (omni_mer.eval.metrics)."""
    from omni_mer.eval.metrics import evaluate_labels
    from omni_mer.scorers.omni import OmniScorer
    from omni_mer.train.data import load_records, select_records

    records = select_records(load_records(manifest), split, langs)
    if not records:
        raise ValueError(f"no records in {manifest} for split={split!r}")
    scorer = OmniScorer(model_path, adapter=adapter, media=media)
    cache = Path(cache_dir) if cache_dir else Path(adapter or ".") / "cache"
    preds = predict_records(scorer, records, media, extract_fn, cache)
    res = evaluate_labels([r.label5 for r in records], preds, [(r.lang or "en")[:2] for r in records])
    res["ids"] = [r.id for r in records]
    res["predictions"] = preds
    res["summary"] = {"acc5": res["overall"]["acc5"],
                      **{f"acc5_{k}": v["acc5"] for k, v in res["per_language"].items()}}
    return res


def table_from_results(results: dict[str, dict]) -> dict:
    """Train-language × test-language table from {run (train language(s)): evaluate_adapter result}."""
    from omni_mer.eval.metrics import cross_lingual_table

    acc = {(run, te): m["acc5"] for run, r in results.items() for te, m in r["per_language"].items()}
    return cross_lingual_table(acc)


def write_predictions(path: Path, ids: Sequence[str], preds: Sequence[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["ID", "Label"])
        w.writerows(zip(ids, preds))
    return path


def main(argv: Sequence[str] | None = None) -> int:
    from omni_mer.eval.metrics import cross_lingual_markdown

    p = argparse.ArgumentParser(prog="python -m omni_mer.train.crosslingual", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="base Qwen2.5-Omni folder the adapters were trained on")
    p.add_argument("--runs", nargs="+", required=True, metavar="TRAIN_LANG=ADAPTER_DIR",
                   help="e.g. en=checkpoints/xl-en zh=checkpoints/xl-zh both=checkpoints/xl-both")
    p.add_argument("--manifest", required=True)
    p.add_argument("--split", default="test")
    p.add_argument("--out", default="Test_Results/crosslingual")
    p.add_argument("--evidence", choices=("transcript", "extract"), default="extract")
    p.add_argument("--fps", type=float, default=MediaConfig().fps)
    p.add_argument("--max-frames", type=int, default=MediaConfig().max_frames)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    runs = {}
    for spec in args.runs:
        if "=" not in spec:
            p.error(f"--runs entry {spec!r} must be TRAIN_LANG=ADAPTER_DIR (e.g. en=checkpoints/xl-en)")
        name, path = spec.split("=", 1)
        runs[name] = path
    extract_fn = None
    if args.evidence == "extract":
        from omni_mer.evidence.extract import EvidenceExtractor

        extract_fn = EvidenceExtractor().extract
    media = MediaConfig(fps=args.fps, max_frames=args.max_frames)
    out = Path(args.out)
    results = {}
    for name, adapter in runs.items():
        res = evaluate_adapter(args.model, adapter, args.manifest, args.split, media, extract_fn, out / "cache")
        write_predictions(out / name / "label_prediction.csv", res["ids"], res["predictions"])
        results[name] = res
    table = table_from_results(results)
    md = cross_lingual_markdown(table)
    out.mkdir(parents=True, exist_ok=True)
    (out / "crosslingual.json").write_text(json.dumps(table, indent=2))
    (out / "crosslingual.md").write_text(md + "\n", encoding="utf-8")
    emit(md)
    emit(f"written to {out}/crosslingual.{{md,json}}; per-run predictions in {out}/<run>/label_prediction.csv")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
