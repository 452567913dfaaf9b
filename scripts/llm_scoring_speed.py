"""Seconds per clip of the llm scorer's label scoring on top of evidence (issue 18's 1.5 s target), three ways:

- ``one``: one label-scoring call with every modality (the label alone);
- ``coalitions_looped``: the 8 coalitions of an explanation as 8 calls (how explain() scored before);
- ``coalitions_batched``: the 8 coalitions batched on the shared prefix cache (``score_coalitions``, explain() now).

Evidence is extracted once per clip by the default extractor and is not timed; every method runs ``--repeats``
times per clip after one warm-up, and the report gives the median over clips of each clip's median.

    PYTHONPATH=$PWD .venv/bin/python scripts/llm_scoring_speed.py --input ../shared/data/clips \
        [--model qwen2.5-coder-0.5b] [--adapter DIR] [--limit 12] [--repeats 3] [--dtype auto] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    import torch

    from omni_mer.core.config import MEDIA_EXTENSIONS, MODALITIES, MediaConfig
    from omni_mer.eval.bench import timed
    from omni_mer.evidence.extract import EvidenceExtractor
    from omni_mer.explain.shapley import COALITIONS
    from omni_mer.llm.model import INFERENCE_DTYPES
    from omni_mer.media import decode
    from omni_mer.scorers.base import Scorer
    from omni_mer.scorers.llm import LLMScorer

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", type=Path, required=True, help="folder of clips")
    ap.add_argument("--model", default=None, help="model folder or registered name (default: the prepared 0.5B)")
    ap.add_argument("--adapter", default=None)
    ap.add_argument("--limit", type=int, default=12, help="first N clips by name (default: %(default)s)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dtype", default="auto", choices=INFERENCE_DTYPES,
                    help="auto = bfloat16 where the CPU computes it natively, else float32")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    paths = sorted(p for p in args.input.iterdir() if p.suffix.lower() in MEDIA_EXTENSIONS)[: args.limit]
    if not paths:
        ap.error(f"no media files in {args.input}")
    extractor, media = EvidenceExtractor(), MediaConfig()
    scorer = LLMScorer(args.model, adapter=args.adapter, dtype=args.dtype)
    full = frozenset(MODALITIES)
    rows = []
    for p in paths:
        clip = decode(p, media)
        ev = extractor.extract(clip)
        scorer.score_coalitions(clip, ev, COALITIONS)  # warm-up (and the language's prefix cache)
        looped = Scorer.score_coalitions(scorer, clip, ev, COALITIONS)
        batched = scorer.score_coalitions(clip, ev, COALITIONS)
        rows.append({
            "file": p.name, "language": ev.language, "transcript_chars": len(ev.transcript or ""),
            "present": sorted(ev.present), "unique_prompts": int(scorer.timings["forwards_unique"]),
            "prompt_tokens_mean": scorer.timings["prompt_tokens"], "cached_tokens": scorer.timings["cached_tokens"],
            "max_abs_prob_diff": float(np.max(np.abs(np.asarray(looped) - np.asarray(batched)))),
            "one_s": timed(lambda: scorer.score(clip, ev, full), repeats=args.repeats),
            "coalitions_looped_s": timed(lambda: Scorer.score_coalitions(scorer, clip, ev, COALITIONS),
                                         repeats=args.repeats),
            "coalitions_batched_s": timed(lambda: scorer.score_coalitions(clip, ev, COALITIONS),
                                          repeats=args.repeats),
        })
        print(json.dumps(rows[-1]), flush=True)
    summary = {k: statistics.median(r[k] for r in rows) for k in ("one_s", "coalitions_looped_s",
                                                                   "coalitions_batched_s", "prompt_tokens_mean")}
    summary.update({"clips": len(rows), "threads": torch.get_num_threads(), "model": scorer.version(),
                    "dtype": str(scorer.dtype).removeprefix("torch."),
                    "max_abs_prob_diff": max(r["max_abs_prob_diff"] for r in rows)})
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
