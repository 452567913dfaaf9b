"""`omni-mer bench`: per-stage time, clips per minute, peak RSS, and the ASR-only floor on the same clips.

Targets on the 2-core reference machine (lite backend): whole pipeline <= 1.6 x the ASR-only floor; median <= 1.5 s
per clip of <= 10 s; peak RSS <= 2.5 GB; time linear in duration. Results go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import logging
import platform
import resource
import statistics
import time
from pathlib import Path

import numpy as np

from omni_mer.cli import emit
from omni_mer.config import MEDIA_EXTENSIONS, MediaConfig

log = logging.getLogger(__name__)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench(paths: list[Path], backend: str = "lite", model: str | None = None, adapter: str | None = None,
          repeats: int = 1) -> dict:
    """Time every stage on ``paths`` (models loaded once, one warm-up clip excluded) and the ASR-only floor."""
    from omni_mer.media import decode
    from omni_mer.pipeline import Pipeline

    media = MediaConfig()
    t = time.perf_counter()
    pipeline = Pipeline.build(backend, model, adapter, media)
    pipeline.warm_up()
    load_s = time.perf_counter() - t
    pipeline.analyze(paths[0])  # warm caches (first-call allocations) so per-clip numbers are steady-state

    rows = []
    for _ in range(repeats):
        for p in paths:
            t = time.perf_counter()
            a = pipeline.analyze(p)
            total = time.perf_counter() - t
            # ASR-only floor: decode + transcribe the same clip, nothing else.
            t = time.perf_counter()
            clip = decode(p, media)
            if not clip.audio_is_silent:
                pipeline.extractor.transcriber.transcribe(clip)
            floor = time.perf_counter() - t
            rows.append({"file": p.name, "duration": a.clip.duration, "total": total, "asr_floor": floor,
                         **{k: v for k, v in a.timings.items()}})
    totals = [r["total"] for r in rows]
    floors = [r["asr_floor"] for r in rows]
    durations = np.asarray([r["duration"] for r in rows])
    slope = float(np.polyfit(durations, totals, 1)[0]) if len(set(durations.round(2))) > 1 else float("nan")
    stages = sorted({k for r in rows for k in r} - {"file", "duration", "total", "asr_floor"})
    return {
        "backend": pipeline.scorer.name, "clips": len(rows), "model_load_s": load_s,
        "median_s": statistics.median(totals), "mean_s": statistics.fmean(totals),
        "asr_floor_median_s": statistics.median(floors), "ratio_to_asr_floor": sum(totals) / sum(floors),
        "clips_per_min": 60.0 * len(rows) / sum(totals), "peak_rss_mb": peak_rss_mb(),
        "seconds_per_clip_second": slope,
        "stage_means_s": {s: statistics.fmean(r.get(s, 0.0) for r in rows) for s in stages}, "rows": rows,
    }


def to_markdown(res: dict) -> str:
    lines = [
        f"# Benchmark ({res['backend']} backend)", "",
        f"Machine: {platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}; "
        f"{res['clips']} clips; models loaded once in {res['model_load_s']:.1f} s.", "",
        "| metric | value | target |", "|---|---|---|",
        f"| median time per clip | {res['median_s']:.2f} s | <= 1.5 s (clips <= 10 s) |",
        f"| whole pipeline / ASR-only floor | {res['ratio_to_asr_floor']:.2f} x | <= 1.6 x |",
        f"| ASR-only floor, median | {res['asr_floor_median_s']:.2f} s | |",
        f"| clips per minute | {res['clips_per_min']:.1f} | |",
        f"| peak RSS | {res['peak_rss_mb']:.0f} MB | <= 2500 MB |",
        f"| time per second of clip (slope) | {res['seconds_per_clip_second']:.3f} s/s | linear |", "",
        "| stage | mean s |", "|---|---|",
        *[f"| {k} | {v:.3f} |" for k, v in res["stage_means_s"].items()], "",
        "| file | duration s | total s | ASR floor s |", "|---|---|---|---|",
        *[f"| {r['file']} | {r['duration']:.1f} | {r['total']:.2f} | {r['asr_floor']:.2f} |" for r in res["rows"]],
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="omni-mer bench", description=__doc__)
    ap.add_argument("--input", type=Path, default=Path("samples"))
    ap.add_argument("--backend", default="lite", choices=["lite", "omni"])
    ap.add_argument("--model", default=None)
    ap.add_argument("--adapter", default=None)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("docs") / "benchmarks.md")
    args = ap.parse_args(argv)
    paths = sorted(p for p in args.input.iterdir() if p.suffix.lower() in MEDIA_EXTENSIONS and p.is_file())
    if not paths:
        ap.error(f"no media files in {args.input}")
    res = bench(paths, args.backend, args.model, args.adapter, args.repeats)
    md = to_markdown(res)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(md, encoding="utf-8")
    emit(md)
    return 0
