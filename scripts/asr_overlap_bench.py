"""Whisper beside the rest against one after the other, interleaved in one process (so both see the same load).

For each clip, in alternating order: ``overlapped`` = Pipeline.analyze (Whisper starts on the decoded audio while
the frames decode, the face and the prosody tracks are read while it runs); ``sequential`` = decode, then Whisper,
then the rest (what Pipeline.analyze did before); ``floor`` = audio decode + Whisper alone (omni-mer bench's ASR-only
floor). Prints each variant's total over all clips and its ratio to the floor's total, with the 1-minute load
average before and after: on the shared machine compare the two ratios of one run, not seconds across runs.

    PYTHONPATH=$PWD .venv/bin/python scripts/asr_overlap_bench.py [--input samples] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from omni_mer.core.config import MEDIA_EXTENSIONS, PROJECT_ROOT, MediaConfig
from omni_mer.media import decode
from omni_mer.pipeline import Pipeline


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", type=Path, default=PROJECT_ROOT / "samples", help="folder of clips")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args(argv)
    paths = sorted(p for p in args.input.iterdir() if p.suffix.lower() in MEDIA_EXTENSIONS and p.is_file())
    if not paths or args.repeats < 1:
        ap.error(f"need media files in {args.input} and --repeats >= 1 (got {args.repeats})")
    media = MediaConfig()
    pipeline = Pipeline.build("lite", media=media)
    pipeline.warm_up()
    pipeline.analyze(paths[0])  # warm-up

    def sequential(p: Path):
        t = time.perf_counter()
        clip = decode(p, media)
        decoded = time.perf_counter() - t
        transcript = pipeline.extractor.transcriber.transcribe(clip) if not clip.audio_is_silent else None
        return pipeline.analyze_clip(clip, timings={"decode": decoded}, transcript=transcript)

    def floor(p: Path) -> None:
        clip = decode(p, media, include_video=False)
        if not clip.audio_is_silent:
            pipeline.extractor.transcriber.transcribe(clip)

    totals = {"overlapped": 0.0, "sequential": 0.0, "floor": 0.0}
    load_before = os.getloadavg()[0]
    for r in range(args.repeats):
        for p in paths:
            order = [("overlapped", pipeline.analyze), ("sequential", sequential)]
            for name, fn in (order if r % 2 == 0 else order[::-1]) + [("floor", floor)]:
                t = time.perf_counter()
                fn(p)
                totals[name] += time.perf_counter() - t
    print(f"{len(paths)} clips x {args.repeats} from {args.input}; {os.cpu_count()} CPUs; load average (1 min) "
          f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after\n")
    print("| variant | total s | / ASR-only floor |")
    print("|---|---|---|")
    for name in ("sequential", "overlapped", "floor"):
        print(f"| {name} | {totals[name]:.2f} | {totals[name] / totals['floor']:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
