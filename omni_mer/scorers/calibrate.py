"""`omni-mer calibrate`: fit the lite scorer's fusion on labelled clips (ordinal maximum likelihood)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

from omni_mer.core.config import MODALITIES, PROJECT_ROOT, MediaConfig
from omni_mer.evidence.types import Evidence
from omni_mer.core.labels import LABEL_INDEX, LABELS
from omni_mer.core.ordinal import ordinal_probs
from omni_mer.scorers.fusion import apply_intensity, design, fuse_valence
from omni_mer.scorers.lite import DEFAULT_CALIBRATION_PATH, Calibration, FusionParams

log = logging.getLogger(__name__)

MIN_CLIPS_PER_LANGUAGE = 20  # below this a per-language fit overfits; the shared fit is used instead
L2 = 0.05  # pull toward the documented defaults, so small sets cannot produce degenerate parameters
GUARD_FOLDS = 5  # held-out folds that decide whether a modality keeps its weight


def _free(init: FusionParams) -> list[str]:
    """The parameters the fit moves: every polarity weight that is not pinned at 0, and the intensity gain when it
    is on (a weight at 0 is a measured decision, e.g. audio's polarity; ``guard_weights`` sets more of them)."""
    return [m for m in MODALITIES if init.weights[m] > 0] + (["intensity"] if init.intensity > 0 else [])


def _pack(p: FusionParams, free: list[str]) -> np.ndarray:
    th = np.asarray(p.thresholds)
    vals = [p.weights[m] if m in p.weights else p.intensity for m in free]
    return np.concatenate([np.log(vals), [np.log(p.shrink + 1e-6)], [th[0]], np.log(np.diff(th)),
                           [np.log(p.temperature)]])


def _unpack(x: np.ndarray, init: FusionParams, free: list[str]) -> FusionParams:
    k = len(free)
    vals = dict(zip(free, map(float, np.exp(x[:k]))))
    th = x[k + 1] + np.concatenate([[0.0], np.cumsum(np.exp(x[k + 2:k + 5]))])
    return FusionParams(
        weights={m: vals.get(m, init.weights[m]) for m in MODALITIES}, shrink=float(np.exp(x[k])),
        thresholds=tuple(map(float, th)), temperature=float(np.exp(x[k + 5])), tilt=dict(init.tilt),
        intensity=vals.get("intensity", init.intensity),
    )


def predict_probs(params: FusionParams, d: dict[str, np.ndarray]) -> np.ndarray:
    """The valence fusion's 5-class probabilities for a design (fusion.design), intensity included: the same
    formulas LiteScorer.score uses for coalitions without a text head."""
    s = fuse_valence(d["v"], d["c"], params.weight_vector(), params.shrink)
    p = ordinal_probs(s, np.asarray(params.thresholds), params.temperature)
    return apply_intensity(p, d["arousal"], d["arousal_c"], params.intensity) if params.intensity else p


def _subset(d: dict[str, np.ndarray], idx) -> dict[str, np.ndarray]:
    return {k: v[idx] for k, v in d.items()}


def _fit(d: dict[str, np.ndarray], y: np.ndarray, init: FusionParams, maxiter: int = 4000) -> FusionParams:
    free = _free(init)
    x0 = _pack(init, free)

    def nll(x: np.ndarray) -> float:
        probs = predict_probs(_unpack(x, init, free), d)
        return float(-np.log(probs[np.arange(len(y)), y]).mean() + L2 * np.sum((x - x0) ** 2))

    res = minimize(nll, x0, method="Nelder-Mead", options={"maxiter": maxiter, "xatol": 1e-4, "fatol": 1e-6})
    log.info("calibration fit: NLL %.4f -> %.4f on %d clips (%s)", nll(x0), res.fun, len(y), res.message)
    return _unpack(res.x, init, free)


def fit_fusion(evidences: list[Evidence], labels: list[str], init: FusionParams | None = None) -> FusionParams:
    """Maximum-likelihood fusion parameters for gold ``labels`` (ordinal NLL + a small L2 pull to ``init``)."""
    if len(evidences) != len(labels) or not evidences:
        raise ValueError(f"need equally many evidences and labels (got {len(evidences)} and {len(labels)})")
    return _fit(design(evidences), np.asarray([LABEL_INDEX[label] for label in labels]), init or FusionParams())


def _uar(probs: np.ndarray, y: np.ndarray) -> float:
    pred = probs.argmax(1)
    return float(np.mean([np.mean(pred[y == k] == k) for k in np.unique(y)]))


def guard_weights(evidences: list[Evidence], labels: list[str], init: FusionParams | None = None,
                  folds: int = GUARD_FOLDS) -> tuple[FusionParams, dict]:
    """A modality keeps its fitted weight only if the held-out folds say it helps: for each fold the fusion is fit on
    the rest, then the held-out clips are scored with and without each modality's weight (audio: its intensity
    gain). A modality is kept only when the held-out NLL is lower with it and the held-out UAR no lower; otherwise it
    is pinned at 0 and the rest refit. Returns the parameters and, per modality, the held-out (UAR, NLL) with and without it."""
    init = init or FusionParams()
    d = design(evidences)
    y = np.asarray([LABEL_INDEX[label] for label in labels])
    order = np.random.default_rng(0).permutation(len(y))
    parts = [order[i::folds] for i in range(min(folds, len(y)))]
    ablate = [m for m in MODALITIES if init.weights[m] > 0] + (["intensity"] if init.intensity > 0 else [])
    with_p = np.zeros((len(y), len(LABELS)))
    without = {m: np.zeros((len(y), len(LABELS))) for m in ablate}
    for test in parts:
        train = np.setdiff1d(order, test)
        fit = _fit(_subset(d, train), y[train], init, maxiter=1500)
        with_p[test] = predict_probs(fit, _subset(d, test))
        for m in ablate:
            off = dataclasses.replace(fit, weights={**fit.weights, m: 0.0} if m in fit.weights else fit.weights,
                                      intensity=0.0 if m == "intensity" else fit.intensity)
            without[m][test] = predict_probs(off, _subset(d, test))

    def nll(p):
        return float(-np.log(p[np.arange(len(y)), y]).mean())

    report = {"with": {"uar": _uar(with_p, y), "nll": nll(with_p)}}
    pinned = dataclasses.replace(init, weights=dict(init.weights))
    for m in ablate:
        r = {"uar": _uar(without[m], y), "nll": nll(without[m])}
        # kept only when it helps held out: lower NLL with it and a UAR no lower than without it
        r["dropped"] = not (report["with"]["nll"] < r["nll"] and report["with"]["uar"] >= r["uar"])
        report[f"without_{m}"] = r
        if r["dropped"]:
            if m == "intensity":
                pinned.intensity = 0.0
            else:
                pinned.weights[m] = 0.0
            log.info("calibration guard: %s does not help on held-out folds (%s); pinned at 0", m, r)
    return _fit(d, y, pinned), report


def accuracy(params: FusionParams, evidences: list[Evidence], labels: list[str]) -> float:
    pred = predict_probs(params, design(evidences)).argmax(1)
    return float(np.mean(pred == np.asarray([LABEL_INDEX[x] for x in labels])))


def calibrate(evidences: list[Evidence], labels: list[str], languages: list[str]) -> Calibration:
    """Fit a shared calibration and, where a language has enough clips, a per-language one; each guarded by held-out
    folds (``guard_weights``) so a modality that does not help there gets no weight."""
    shared, guard = guard_weights(evidences, labels)
    cal = Calibration(default=shared, source="omni-mer calibrate")
    cal.metrics = {"n": len(labels), "acc5_train": accuracy(shared, evidences, labels),
                   "acc5_train_defaults": accuracy(FusionParams(), evidences, labels), "guard": guard}
    for lang in sorted(set(languages)):
        idx = [i for i, la in enumerate(languages) if la == lang]
        if len(idx) >= MIN_CLIPS_PER_LANGUAGE:
            ev, lab = [evidences[i] for i in idx], [labels[i] for i in idx]
            cal.per_language[lang], cal.metrics[f"guard_{lang}"] = guard_weights(ev, lab, init=shared)
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
