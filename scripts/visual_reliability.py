"""The face's polarity weight in the valence fusion, fitted and validated on the real labelled actor clips.

The 17 silent actor clips of ../shared/data/clips with a weak polarity label (13 negative, 4 positive) are the only
labelled real media with a face. For each weight on a grid, the visual-only coalition's polarity (neg: SNEG+WNEG,
neu: NEUT, pos: WPOS+SPOS; the default bands) is scored by balanced accuracy over neg/pos, in-sample and
leave-one-out (the weight picked on the other 16 clips, smallest weight on ties). Its output is the number behind
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

    def polarity(w: float, idx) -> np.ndarray:
        p = FusionParams(weights={**FusionParams().weights, "visual": w})
        out = []
        for i in idx:
            q = p.distribution(p.fused_valence({"visual": v[i]}, {"visual": c[i]}))
            out.append(["neg", "neu", "pos"][int(np.argmax([q[:2].sum(), q[2], q[3:].sum()]))])
        return np.asarray(out)

    def bal(pred, idx) -> float:
        return float(np.mean([np.mean(pred[y[idx] == k] == k) for k in ("neg", "pos")]))

    every = np.arange(len(y))
    print(f"{len(y)} clips ({int((y == 'neg').sum())} neg, {int((y == 'pos').sum())} pos)\n")
    print("| visual weight | in-sample balanced accuracy |\n|---|---|")
    for w in GRID:
        print(f"| {w} | {bal(polarity(w, every), every):.3f} |")
    loo = []
    for i in every:
        rest = np.setdiff1d(every, [i])
        scores = [bal(polarity(w, rest), rest) for w in GRID]
        loo.append(polarity(GRID[int(np.argmax(scores))], [i])[0])
    scores = [bal(polarity(w, every), every) for w in GRID]
    print(f"\nleave-one-out balanced accuracy (weight refit per fold): {bal(np.asarray(loo), every):.3f}")
    print(f"weight picked on all clips (smallest of the best): {GRID[int(np.argmax(scores))]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
