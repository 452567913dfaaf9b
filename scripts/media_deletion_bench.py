"""Media-level deletion rate (omni_mer.explain.media_deletion) on every clip with at least two modalities.

Sets:
- ``samples``: samples/ (project-made: synthetic speech and faces; all three modalities);
- ``mead``: the real MEAD neutral speech clip of ../shared/data/clips (text + audio);
- ``real face + real voice``: each real talking-head video of ../shared/data/clips (silent) with the real MEAD
  speech as its audio track, put together in memory (real media in every modality; the labels do not matter for
  this test, which compares attributions with what removing the media does).

    PYTHONPATH=$PWD .venv/bin/python scripts/media_deletion_bench.py [--clips ../shared/data/clips] [--json out.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    from omni_mer.core.config import MEDIA_EXTENSIONS, MediaConfig
    from omni_mer.evidence.extract import EvidenceExtractor
    from omni_mer.explain.faithfulness import summarize
    from omni_mer.explain.media_deletion import media_deletion
    from omni_mer.media import decode
    from omni_mer.scorers.lite import LiteScorer

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=Path, default=ROOT.parent / "shared" / "data" / "clips")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    extractor, scorer = EvidenceExtractor(), LiteScorer.from_path(None)
    media = MediaConfig()
    sets: dict[str, list] = {}
    samples = sorted(p for p in (ROOT / "samples").iterdir() if p.suffix.lower() in MEDIA_EXTENSIONS)
    sets["samples (synthetic)"] = [decode(p, media) for p in samples]
    wavs = sorted(args.clips.glob("*.wav"))
    if wavs:
        voice = decode(wavs[0], media)
        sets["mead (real speech)"] = [voice]
        composites = []
        for p in sorted(args.clips.glob("*.mp4")):
            face = decode(p, media)
            composites.append(dataclasses.replace(face, id=f"{p.stem}+{wavs[0].stem}", audio=voice.audio,
                                                  has_audio=True, duration=max(face.duration, voice.duration)))
        sets["real face + real voice"] = composites
    out = {}
    print(f"scorer: {scorer.version()}\n")
    print("| set | clips | evaluated | deletion rate | mean drop top / bottom | excluded (<2 modalities, ties) |")
    print("|---|---|---|---|---|---|")
    for name, clips in sets.items():
        per_clip = [media_deletion(extractor, scorer, c) for c in clips]
        s = summarize(per_clip)
        out[name] = {"summary": s, "per_clip": per_clip}
        rate = "n/a" if s["deletion_rate"] is None else f"{s['deletion_rate']:.0%}"
        drops = ("n/a" if s["mean_drop_top"] is None else
                 f"{s['mean_drop_top']:+.3f} / {s['mean_drop_bottom']:+.3f}")
        print(f"| {name} | {s['n_clips']} | {s['n_evaluated']} | {rate} ({s['n_success']}) | {drops} | "
              f"{s['n_excluded_lt2_modalities']}, {s['n_excluded_ties']} |", flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
