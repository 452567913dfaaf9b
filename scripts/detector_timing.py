"""Clean timing of the face stages per frame, for a shared machine: warm-up, repeats, medians, load average.

What is timed, on real frames (../shared/data/clips, decoded as the batch job decodes them; samples/ when the
shared data is absent):
- ``centerface``: one CenterFace pass on a whole frame at the analysis size (detector.DETECT_SIDE, 320 px);
- ``track``: FaceAnalyzer.track_faces over the frames the analysis reads per clip (one whole-frame detection, then
  a window around the last box), per frame;
- ``expression``: the expression network (facex) on one face crop;
- ``blur``: anonymize_frames over the frames the supplements save (8 per clip), per frame, with the detector
  passes it ran per frame.
Each is the median over ``--repeats`` runs after ``--warmup`` runs; the 1-minute load average is printed before
and after (the machine is shared: read absolute times with it, or compare ratios measured in the same run).

    PYTHONPATH=$PWD .venv/bin/python scripts/detector_timing.py [--clips ../shared/data/clips] [--repeats 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

import numpy as np

from omni_mer.core.config import MediaConfig
from omni_mer.evidence.anonymize import anonymize_frames
from omni_mer.evidence.detector import DETECT_SIDE, get_detector
from omni_mer.eval.bench import timed
from omni_mer.evidence.face import FaceAnalyzer, _gray, crop_face
from omni_mer.media import decode
from omni_mer.report.thumbnails import SAVED_FRAMES, pick

ROOT = Path(__file__).resolve().parents[1]


class CountingDetector:
    """The process-wide CenterFace with its passes counted (what the blur costs, independent of the machine)."""

    def __init__(self, det) -> None:
        self.det, self.calls = det, 0

    def raw(self, *args, **kwargs):
        self.calls += 1
        return self.det.raw(*args, **kwargs)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=Path, default=ROOT.parent / "shared" / "data" / "clips")
    ap.add_argument("--max-clips", type=int, default=6, help="clips used (evenly picked from the folder)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0:
        ap.error(f"--repeats {args.repeats} must be >= 1 and --warmup {args.warmup} >= 0")
    folder = args.clips if args.clips.is_dir() else ROOT / "samples"
    paths = sorted(folder.glob("*.mp4"))
    if not paths:
        ap.error(f"no .mp4 clips in {folder}")
    paths = [paths[i] for i in pick(len(paths), args.max_clips)]
    from omni_mer.evidence import anonymize, detector

    det = get_detector()
    analyzer = FaceAnalyzer()
    load_before = os.getloadavg()[0]
    res: dict[str, list[float]] = {"centerface": [], "track": [], "expression": [], "blur": []}
    passes = []
    for p in paths:
        clip = decode(p, MediaConfig())
        read = [clip.frames[i] for i in pick(len(clip.frames), analyzer.max_frames)]
        saved = [clip.frames[i] for i in pick(len(clip.frames), SAVED_FRAMES)]
        res["centerface"].append(timed(lambda: det.raw(read[0], side=DETECT_SIDE), args.warmup, args.repeats))
        res["track"].append(timed(lambda: analyzer.track_faces(read), args.warmup, args.repeats) / len(read))
        box = next((b for b in analyzer.track(read) if b is not None), None)
        if box is not None:
            crop = crop_face(_gray(read[0]), box, size=getattr(analyzer.model, "input_size", 64))[None]
            res["expression"].append(timed(lambda: analyzer.model.predict(crop), args.warmup, args.repeats))
        res["blur"].append(timed(lambda: anonymize_frames(saved), 1, max(3, args.repeats // 5)) / len(saved))
        counting = CountingDetector(det)
        original = detector.get_detector
        detector.get_detector = lambda: counting
        try:
            anonymize.anonymize_frames(saved)
        finally:
            detector.get_detector = original
        passes.append(counting.calls / len(saved))
    load_after = os.getloadavg()[0]
    print(f"{len(paths)} clips from {folder.name}/ ({', '.join(p.stem for p in paths)}); {os.cpu_count()} CPUs; "
          f"load average (1 min) {load_before:.2f} before, {load_after:.2f} after; "
          f"median of {args.repeats} after {args.warmup} warm-up, then the median over clips\n")
    print("| what | ms per frame |")
    print("|---|---|")
    names = {"centerface": f"CenterFace, one whole-frame pass at {DETECT_SIDE} px",
             "track": f"analysis track ({analyzer.max_frames} frames a clip: one detection, then windows)",
             "expression": f"expression network ({getattr(analyzer.model, 'name', '?')}), one face",
             "blur": f"fail-closed blur of the saved frames ({SAVED_FRAMES} a clip)"}
    for k, v in res.items():
        if v:
            print(f"| {names[k]} | {1000 * statistics.median(v):.1f} |")
    print(f"| detector passes per saved frame (blur) | {np.mean(passes):.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
