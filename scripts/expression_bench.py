"""Expression options on the real labelled clips: which face reading gives polarity, measured not assumed.

Clips: the videos of ../shared/data/clips with a weak polarity label (labels.csv ``polarity_weak``: 13 negative, 4
positive actors, all speaking, silent files). For each clip the analyzer's 12 frames are tracked with CenterFace and
read by fer's mini-Xception in several ways:

- network and crop: fer's mini-Xception on "box" (fer's crop of the detector box: squared, padded 10 %, the default
  before), "aligned" (rotated so the eyes are level, square around eyes and mouth from the landmarks), "upper"
  (aligned, mouth region grayed out: the speaking mouth cannot vote); facex's network (omni_mer.evidence.facex_net)
  on the "square" crop (as fer's box crop, 200 px) or the raw detector "box"; and the two ensembles (mean of the
  two networks' probabilities);
- aggregation: "mean" (mean valence over frames), "baseline" (the clip's mean minus its most neutral frames, the
  per-clip neutral baseline), "mouth-weighted" (the clip's more open-mouthed half of the frames weighted 0.25:
  face.mouth_opening, the intensity spread in the mouth region of the aligned crop).

Reports per option the AUC (negative vs positive, threshold-free), and the balanced accuracy of the sign at the
valence margin +-0.1 (the scorer's weak bands; neutral counts as wrong), with the 7-expression -> valence rule of
omni_mer.evidence.face.VALENCE_WEIGHTS.

    PYTHONPATH=$PWD .venv/bin/python scripts/expression_bench.py [--clips ../shared/data/clips]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from omni_mer.core.config import MediaConfig
from omni_mer.evidence import face as F
from omni_mer.evidence.facex_net import FACEX_INPUT, FacexNet
from omni_mer.evidence.fer_net import EXPRESSIONS
from omni_mer.media import decode

ROOT = Path(__file__).resolve().parents[1]


def auc(scores: np.ndarray, y: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties half."""
    pos, neg = scores[y == 1], scores[y == 0]
    return float(np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg]))


def balanced_sign_accuracy(v: np.ndarray, y: np.ndarray, margin: float = 0.1) -> float:
    pred = np.where(v > margin, 1, np.where(v < -margin, 0, -1))
    return float(np.mean([np.mean(pred[y == c] == c) for c in (0, 1)]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=Path, default=ROOT.parent / "shared" / "data" / "clips")
    args = ap.parse_args(argv)
    rows = [r for r in csv.DictReader(open(args.clips / "labels.csv", encoding="utf-8"))
            if r["polarity_weak"] in ("neg", "pos") and r["file"].endswith(".mp4")]
    analyzer = F.FaceAnalyzer()
    facex = FacexNet()
    vw = F._VW
    results: dict[str, list[float]] = {}
    y = np.asarray([1 if r["polarity_weak"] == "pos" else 0 for r in rows])
    for r in rows:
        clip = decode(args.clips / r["file"], MediaConfig())
        idx = np.unique(np.linspace(0, len(clip.frames) - 1, min(analyzer.max_frames, len(clip.frames)))
                        .round().astype(int))
        frames = [clip.frames[i] for i in idx]
        faces = analyzer.track_faces(frames)
        ok = [(f, fa) for f, fa in zip(frames, faces) if fa is not None]
        crops = {"box": [F.crop_face(F._gray(f), fa.box) for f, fa in ok],
                 "aligned": [F.aligned_crop(F._gray(f), fa) for f, fa in ok],
                 "upper": [F.mask_mouth(F.aligned_crop(F._gray(f), fa)) for f, fa in ok]}
        opening = np.asarray([F.mouth_opening(c) for c in crops["aligned"]])
        probs = {f"fer {c}": analyzer.model.predict(np.stack(cs)) for c, cs in crops.items()}
        # facex on the fer-style square crop (its own training crops are squares of the detector box)
        square = [F.crop_face(F._gray(f), fa.box, size=FACEX_INPUT) for f, fa in ok]
        probs["facex square"] = facex.predict(square)
        probs["facex box"] = facex.predict([F._gray(f)[fa.box[1]:fa.box[1] + fa.box[3], fa.box[0]:fa.box[0] + fa.box[2]]
                                            for f, fa in ok])
        probs["fer box + facex square"] = (probs["fer box"] + probs["facex square"]) / 2
        probs["fer aligned + facex square"] = (probs["fer aligned"] + probs["facex square"]) / 2
        for cname, p in probs.items():
            v = p @ vw
            neutral = np.argsort(-p[:, EXPRESSIONS.index("neutral")])[: max(1, len(p) // 4)]
            w = F.mouth_weights(opening)
            aggs = {"mean": float(v.mean()), "baseline": float(v.mean() - v[neutral].mean()),
                    "mouth-weighted": float((w * v).sum() / w.sum())}
            for aname, val in aggs.items():
                results.setdefault(f"{cname} / {aname}", []).append(val)
        print(r["file"], r["polarity_weak"], {k: round(v[-1], 2) for k, v in results.items()}, flush=True)
    print(f"\n{len(rows)} clips ({int((y == 0).sum())} negative, {int((y == 1).sum())} positive)\n")
    print("| crop / aggregation | AUC neg vs pos | balanced sign accuracy (margin 0.1) | mean valence neg / pos |")
    print("|---|---|---|---|")
    for k, v in results.items():
        v = np.asarray(v)
        print(f"| {k} | {auc(v, y):.2f} | {balanced_sign_accuracy(v, y):.2f} | "
              f"{v[y == 0].mean():+.2f} / {v[y == 1].mean():+.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
