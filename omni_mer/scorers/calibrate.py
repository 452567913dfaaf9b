"""`omni-mer calibrate`: fit the lite scorer's fusion on labelled clips (ordinal maximum likelihood)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

from omni_mer.core.config import MODALITIES, PROJECT_ROOT, MediaConfig
from omni_mer.evidence.types import Evidence
from omni_mer.core.labels import LABEL_INDEX
from omni_mer.core.ordinal import ordinal_probs
from omni_mer.scorers.lite import DEFAULT_CALIBRATION_PATH, Calibration, FusionParams

log = logging.getLogger(__name__)

MIN_CLIPS_PER_LANGUAGE = 20  # below this a per-language fit overfits; the shared fit is used instead
L2 = 0.05  # pull toward the documented defaults, so small sets cannot produce degenerate parameters


def _design(evidences: list[Evidence]) -> tuple[np.ndarray, np.ndarray]:
    """(n, 3) valences and (n, 3) confidences, zero for absent modalities."""
    v = np.zeros((len(evidences), len(MODALITIES)))
    c = np.zeros_like(v)
    for i, ev in enumerate(evidences):
        for j, m in enumerate(MODALITIES):
            me = ev.modality(m)
            if me.present:
                v[i, j], c[i, j] = me.valence, me.confidence
    return v, c


def _pack(p: FusionParams) -> np.ndarray:
    th = np.asarray(p.thresholds)
    return np.concatenate(
        [np.log([p.weights[m] for m in MODALITIES]), [np.log(p.shrink + 1e-6)], [th[0]], np.log(np.diff(th)),
         [np.log(p.temperature)]]
    )


def _unpack(x: np.ndarray) -> FusionParams:
    w = np.exp(x[:3])
    th = x[4] + np.concatenate([[0.0], np.cumsum(np.exp(x[5:8]))])
    return FusionParams(
        weights=dict(zip(MODALITIES, map(float, w))), shrink=float(np.exp(x[3])),
        thresholds=tuple(map(float, th)), temperature=float(np.exp(x[8])),
    )


def fit_fusion(evidences: list[Evidence], labels: list[str], init: FusionParams | None = None) -> FusionParams:
    """Maximum-likelihood fusion parameters for gold ``labels`` (ordinal NLL + a small L2 pull to ``init``)."""
    if len(evidences) != len(labels) or not evidences:
        raise ValueError(f"need equally many evidences and labels (got {len(evidences)} and {len(labels)})")
    init = init or FusionParams()
    v, c = _design(evidences)
    y = np.asarray([LABEL_INDEX[label] for label in labels])
    x0 = _pack(init)

    def nll(x: np.ndarray) -> float:
        p = _unpack(x)
        w = np.asarray([p.weights[m] for m in MODALITIES])
        s = (v * c * w).sum(1) / (p.shrink + (c * w).sum(1))
        probs = ordinal_probs(s, np.asarray(p.thresholds), p.temperature)
        return float(-np.log(probs[np.arange(len(y)), y]).mean() + L2 * np.sum((x - x0) ** 2))

    res = minimize(nll, x0, method="Nelder-Mead", options={"maxiter": 4000, "xatol": 1e-4, "fatol": 1e-6})
    log.info("calibration fit: NLL %.4f -> %.4f on %d clips (%s)", nll(x0), res.fun, len(y), res.message)
    return _unpack(res.x)


def accuracy(params: FusionParams, evidences: list[Evidence], labels: list[str]) -> float:
    v, c = _design(evidences)
    w = np.asarray([params.weights[m] for m in MODALITIES])
    s = (v * c * w).sum(1) / (params.shrink + (c * w).sum(1))
    pred = ordinal_probs(s, np.asarray(params.thresholds), params.temperature).argmax(1)
    return float(np.mean(pred == np.asarray([LABEL_INDEX[x] for x in labels])))


def calibrate(evidences: list[Evidence], labels: list[str], languages: list[str]) -> Calibration:
    """Fit a shared calibration and, where a language has enough clips, a per-language one."""
    shared = fit_fusion(evidences, labels)
    cal = Calibration(default=shared, source="omni-mer calibrate")
    cal.metrics = {"n": len(labels), "acc5_train": accuracy(shared, evidences, labels),
                   "acc5_train_defaults": accuracy(FusionParams(), evidences, labels)}
    for lang in sorted(set(languages)):
        idx = [i for i, la in enumerate(languages) if la == lang]
        if len(idx) >= MIN_CLIPS_PER_LANGUAGE:
            ev, lab = [evidences[i] for i in idx], [labels[i] for i in idx]
            cal.per_language[lang] = fit_fusion(ev, lab, init=shared)
            cal.metrics[f"acc5_train_{lang}"] = accuracy(cal.per_language[lang], ev, lab)
        else:
            log.info("calibration: %d %s clips < %d, %s uses the shared fit", len(idx), lang,
                     MIN_CLIPS_PER_LANGUAGE, lang)
    return cal


def main(argv: list[str] | None = None) -> int:
    from omni_mer.data.manifest import read_manifest
    from omni_mer.evidence.extract import EvidenceCache, EvidenceExtractor
    from omni_mer.media import decode

    ap = argparse.ArgumentParser(prog="omni-mer calibrate", description=__doc__)
    ap.add_argument("--manifest", type=Path, required=True, help="labelled manifest JSONL (omni-mer prepare)")
    ap.add_argument("--out", type=Path, default=DEFAULT_CALIBRATION_PATH.parent, help="folder for calibration.json")
    ap.add_argument("--split", default="train", help="manifest split to fit on ('all' for every record)")
    ap.add_argument("--cache", type=Path, default=PROJECT_ROOT / ".cache" / "evidence", help="per-clip evidence cache")
    args = ap.parse_args(argv)

    records = [r for r in read_manifest(args.manifest) if args.split == "all" or r.split == args.split]
    text_only = sum(r.text_only for r in records)
    if text_only:
        log.info("calibrate: %d text-only records (no video) skipped; the text head learns from those", text_only)
        records = [r for r in records if not r.text_only]
    if not records:
        ap.error(f"no records with split={args.split!r} in {args.manifest}")
    extractor = EvidenceExtractor()
    media = MediaConfig()  # the batch job's default: fit on the evidence test_script.py will compute
    cache = EvidenceCache(args.cache, media=media)
    evidences, labels, langs = [], [], []
    for rec in records:
        try:  # decoding happens only on a cache miss
            ev = cache.get_lazy(rec.id, rec.path, lambda r=rec: extractor.extract(
                decode(r.path, media, clip_id=r.id, language=r.lang)))
        except Exception as exc:  # one bad clip must not stop the fit; it is reported
            log.warning("calibrate: skipping %s (%s: %s)", rec.path, type(exc).__name__, exc)
            continue
        evidences.append(ev)
        labels.append(rec.label5)
        langs.append(rec.lang)
    cal = calibrate(evidences, labels, langs)
    out = args.out / "calibration.json"
    cal.save(out)
    log.info("wrote %s: %s", out, cal.metrics)
    return 0
