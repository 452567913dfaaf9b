"""The face's polarity weight in the valence fusion, fitted and validated on the real labelled actor clips.

The 17 silent actor clips of ../shared/data/clips with a weak polarity label (13 negative, 4 positive) are the only
labelled real media with a face. For each weight on a grid, the visual-only coalition's polarity (neg: SNEG+WNEG,
neu: NEUT, pos: WPOS+SPOS; the default bands) is scored by balanced accuracy over neg/pos, in-sample and
leave-one-out: the weight refit on the other 16 clips, either by the polarity's class-balanced negative
log-likelihood (the criterion `omni-mer calibrate` fits by) or by balanced accuracy (smallest weight on ties; a
step function, so ties are common and the tie-break decides). Its output is the number behind
lite.DEFAULT_WEIGHTS["visual"] (docs/fusion.md).

    PYTHONPATH=$PWD .venv/bin/python scripts/visual_reliability.py [--clips ../shared/data/clips]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GRID = (0.3, 0.45, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0)


def main(argv=None) -> int:
    from omni_mer.core.config import MediaConfig
    from omni_mer.evidence.face import FaceAnalyzer
    from omni_mer.media import decode
    from omni_mer.scorers.lite import FusionParams

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=Path, default=ROOT.parent / "shared" / "data" / "clips")
    args = ap.parse_args(argv)
    analyzer = FaceAnalyzer()
    y, v, c = [], [], []
    for r in csv.DictReader(open(args.clips / "labels.csv", encoding="utf-8")):
        if r["file"].endswith(".mp4") and r["polarity_weak"] in ("neg", "pos"):
            ev = analyzer.analyze(decode(args.clips / r["file"], MediaConfig()), "en")
            y.append(r["polarity_weak"])
            v.append(ev.valence if ev.present else 0.0)
            c.append(ev.confidence)
    y, v, c = np.asarray(y), np.asarray(v), np.asarray(c)

    def sides(w: float, idx) -> np.ndarray:
        """(neg, neu, pos) probability of each clip in idx under visual weight w."""
        p = FusionParams(weights={**FusionParams().weights, "visual": w})
        out = []
        for i in idx:
            q = p.distribution(p.fused_valence({"visual": v[i]}, {"visual": c[i]}))
            out.append([q[:2].sum(), q[2], q[3:].sum()])
        return np.asarray(out)

    def polarity(w: float, idx) -> np.ndarray:
        return np.asarray(["neg", "neu", "pos"])[sides(w, idx).argmax(1)]

    def nll(w: float, idx) -> float:
        """Class-balanced negative log-likelihood of the gold polarity (each class weighs the same)."""
        q = sides(w, idx)
        gold = np.where(y[idx] == "neg", 0, 2)
        ll = np.log(np.maximum(q[np.arange(len(idx)), gold], 1e-12))
        return float(-np.mean([ll[y[idx] == k].mean() for k in ("neg", "pos")]))

    def bal(pred, idx) -> float:
        return float(np.mean([np.mean(pred[y[idx] == k] == k) for k in ("neg", "pos")]))

    every = np.arange(len(y))
    print(f"{len(y)} clips ({int((y == 'neg').sum())} neg, {int((y == 'pos').sum())} pos)\n")
    print("| visual weight | in-sample balanced accuracy | in-sample balanced NLL |\n|---|---|---|")
    for w in GRID:
        print(f"| {w} | {bal(polarity(w, every), every):.3f} | {nll(w, every):.3f} |")
    loo_acc, loo_nll, picked_nll = [], [], []
    for i in every:
        rest = np.setdiff1d(every, [i])
        by_acc = GRID[int(np.argmax([bal(polarity(w, rest), rest) for w in GRID]))]
        by_nll = GRID[int(np.argmin([nll(w, rest) for w in GRID]))]
        loo_acc.append(polarity(by_acc, [i])[0])
        loo_nll.append(polarity(by_nll, [i])[0])
        picked_nll.append(by_nll)
    print("\nleave-one-out balanced accuracy, weight refit per fold:")
    print(f"  by balanced NLL (as omni-mer calibrate): {bal(np.asarray(loo_nll), every):.3f} "
          f"(weights picked: {sorted(set(picked_nll))})")
    print(f"  by balanced accuracy, smallest on ties:  {bal(np.asarray(loo_acc), every):.3f}")
    print(f"weight picked on all clips: by NLL {GRID[int(np.argmin([nll(w, every) for w in GRID]))]}, "
          f"by accuracy {GRID[int(np.argmax([bal(polarity(w, every), every) for w in GRID]))]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
