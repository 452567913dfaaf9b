"""Per-coalition table of the lite scorer on every labelled set with media: text, audio, visual, pairs, all.

Sets (how little there is, said plainly):
- ``actors``: the 17 silent talking-head clips of ../shared/data/clips with a weak polarity label from their file
  names (13 negative, 4 positive). Only the face is present, so every coalition without "visual" is the prior.
  Metric: polarity balanced accuracy (chance 0.33 over neg/neu/pos predictions; mean recall of neg and pos).
- ``mead``: the one MEAD neutral speech clip (English, audio only: text from ASR + prosody). Metric: predicted label.
- ``samples``: samples/ (6 project-made clips, synthetic speech and faces): a consistency check, NOT an accuracy
  claim. Metric: Acc-5 and polarity accuracy against the manifest labels.

The scorer is the default one (LiteScorer.from_path: the shipped text head and calibration, if any). Evidence is
extracted once per clip; each coalition is then scored from it (the same numbers the Shapley values come from).

    PYTHONPATH=$PWD .venv/bin/python scripts/fusion_table.py [--clips ../shared/data/clips] [--json out.json]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODALITIES = ("text", "audio", "visual")
COALITIONS = [frozenset(c) for k in (1, 2, 3) for c in itertools.combinations(MODALITIES, k)]
POLARITY = {"SNEG": "neg", "WNEG": "neg", "NEUT": "neu", "WPOS": "pos", "SPOS": "pos"}


def polarity_of(p: np.ndarray, labels) -> str:
    """The polarity with the most probability mass (neg: SNEG+WNEG, neu: NEUT, pos: WPOS+SPOS)."""
    mass = {"neg": 0.0, "neu": 0.0, "pos": 0.0}
    for lab, q in zip(labels, p):
        mass[POLARITY[lab]] += float(q)
    return max(mass, key=mass.get)


def balanced(gold: list[str], pred: list[str]) -> float:
    classes = sorted(set(gold))
    return float(np.mean([np.mean([p == g for g, p in zip(gold, pred) if g == c]) for c in classes]))


def load_sets(clips: Path) -> dict[str, list[dict]]:
    sets: dict[str, list[dict]] = {"actors": [], "mead": [], "samples": []}
    if (clips / "labels.csv").is_file():
        for r in csv.DictReader(open(clips / "labels.csv", encoding="utf-8")):
            if r["file"].endswith(".mp4") and r["polarity_weak"] in ("neg", "pos"):
                sets["actors"].append({"id": r["file"], "path": clips / r["file"], "polarity": r["polarity_weak"]})
            elif r["file"].endswith(".wav") and r["polarity_weak"] == "neu":
                sets["mead"].append({"id": r["file"], "path": clips / r["file"], "polarity": "neu", "label5": "NEUT"})
    manifest = ROOT / "samples" / "meta" / "manifest.jsonl"
    if manifest.is_file():
        for line in manifest.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            sets["samples"].append({"id": rec["id"], "path": (manifest.parent / rec["path"]).resolve(),
                                    "label5": rec["label5"], "polarity": POLARITY[rec["label5"]],
                                    "lang": rec.get("lang")})
    return {k: v for k, v in sets.items() if v}


def main(argv=None) -> int:
    from omni_mer.core.config import MediaConfig
    from omni_mer.evidence.extract import EvidenceExtractor
    from omni_mer.core.labels import LABELS
    from omni_mer.media import decode
    from omni_mer.scorers.lite import LiteScorer

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=Path, default=ROOT.parent / "shared" / "data" / "clips")
    ap.add_argument("--json", type=Path, help="also write the per-clip predictions here")
    args = ap.parse_args(argv)
    extractor, scorer = EvidenceExtractor(), LiteScorer.from_path(None)
    out: dict = {}
    for name, items in load_sets(args.clips).items():
        rows = []
        for it in items:
            clip = decode(it["path"], MediaConfig(), clip_id=it["id"], language=it.get("lang"))
            ev = extractor.extract(clip)
            preds = {"+".join(sorted(c)): LABELS[int(np.argmax(scorer.score(clip, ev, c)))] for c in COALITIONS}
            pols = {"+".join(sorted(c)): polarity_of(scorer.score(clip, ev, c), LABELS) for c in COALITIONS}
            rows.append({**{k: str(v) for k, v in it.items()}, "present": sorted(ev.present), "label": preds,
                         "pol": pols})
        out[name] = rows
    print(f"scorer: {scorer.version()}\n")
    keys = ["+".join(sorted(c)) for c in COALITIONS]
    print("| set (n) | present | metric | " + " | ".join(keys) + " |")
    print("|---|---|---|" + "---|" * len(keys))
    for name, rows in out.items():
        present = sorted({m for r in rows for m in r["present"]})
        gold = [r["polarity"] for r in rows]
        cells = [f"{balanced(gold, [r['pol'][k] for r in rows]):.2f}" for k in keys]
        print(f"| {name} ({len(rows)}) | {', '.join(present)} | polarity bal. acc. | " + " | ".join(cells) + " |")
        if all("label5" in r for r in rows):
            cells = [f"{np.mean([r['label'][k] == r['label5'] for r in rows]):.2f}" for k in keys]
            print(f"| {name} ({len(rows)}) | {', '.join(present)} | Acc-5 | " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
