"""Face detection on real footage: Haar vs CenterFace (analysis) vs the fail-closed blur, and time per frame.

Frames: up to 12 evenly spaced frames of every video in ../shared/data/clips (real talking heads; each frame holds
a face), decoded as the batch job decodes them (MediaConfig()). Variants made in memory from each frame whose face
CenterFace finds at full size (the reference box; face_variants carries it through each transform): tilted 25° and
45°, lying (90°), upside-down (180°), small (the face 40 px and 24 px wide in a frame of the same size), stretched
4:3 -> 16:9, and two people (the frame next to one of another clip). A face counts as found when a detected box and
the reference box each hold the other's centre; for the blur, when a blurred box does, or the frame was pixelated
whole or not saved.

    PYTHONPATH=$PWD .venv/bin/python scripts/face_detection_bench.py [--clips ../shared/data/clips] [--frames 12]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from omni_mer.core.config import MediaConfig
from omni_mer.evidence import face_variants as fv
from omni_mer.evidence.anonymize import anonymize_frames
from omni_mer.evidence.detector import get_detector
from omni_mer.evidence.face import FaceAnalyzer, haar_faces
from omni_mer.media import decode

ROOT = Path(__file__).resolve().parents[1]


def variants(frame, box, other, other_box):
    out = {"original": (frame, [box]),
           "tilted 25°": fv.tilted(frame, box, 25), "tilted 45°": fv.tilted(frame, box, 45),
           "lying (90°)": fv.turned(frame, box, 1), "upside-down": fv.turned(frame, box, 2),
           "small, 40 px face": fv.small(frame, box, 40), "small, 24 px face": fv.small(frame, box, 24),
           "stretched 4:3→16:9": fv.stretched(frame, box)}
    if other is not None:
        out["two people"] = fv.two_faces(frame, box, other, other_box)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=Path, default=ROOT.parent / "shared" / "data" / "clips")
    ap.add_argument("--frames", type=int, default=12, help="frames per clip (FaceAnalyzer's max_frames)")
    args = ap.parse_args(argv)
    paths = sorted(p for p in args.clips.glob("*.mp4"))
    if not paths:
        ap.error(f"no .mp4 clips in {args.clips}")
    det = get_detector()
    analyzer = FaceAnalyzer(max_frames=args.frames)
    clips = []
    t_track, n_track = 0.0, 0
    for p in paths:
        clip = decode(p, MediaConfig())
        idx = np.unique(np.linspace(0, len(clip.frames) - 1, min(args.frames, len(clip.frames))).round().astype(int))
        frames = [clip.frames[i] for i in idx]
        t = time.perf_counter()
        analyzer.track_faces(frames)
        t_track += time.perf_counter() - t
        n_track += len(frames)
        refs = [det.raw(f, side=max(f.shape[:2]), threshold=0.5) for f in frames]
        clips.append((p.name, frames, [r[0].box if r else None for r in refs]))

    counts: dict[str, dict[str, list[int]]] = {}
    times = {"haar": [], "centerface": [], "blur": []}
    for ci, (name, frames, boxes) in enumerate(clips):
        oname, oframes, oboxes = clips[(ci + 1) % len(clips)]
        for k, (frame, box) in enumerate(zip(frames, boxes)):
            if box is None:
                for m in ("haar", "centerface", "blur"):
                    counts.setdefault("original", {}).setdefault(m, [0, 0])[1] += 1
                continue
            other = oframes[k % len(oframes)] if oboxes[k % len(oboxes)] is not None else None
            for vname, (img, truth) in variants(frame, box, other, oboxes[k % len(oboxes)]).items():
                c = counts.setdefault(vname, {m: [0, 0] for m in ("haar", "centerface", "blur")})
                t = time.perf_counter()
                haar = haar_faces(img, "auto")
                times["haar"].append(time.perf_counter() - t)
                t = time.perf_counter()
                cf = [f.box for f in det.raw(img)]
                times["centerface"].append(time.perf_counter() - t)
                t = time.perf_counter()
                safe, report = anonymize_frames([img])
                times["blur"].append(time.perf_counter() - t)
                verdict = report.verdicts[0]
                for g in truth:
                    c["haar"][0] += any(fv.hit(b, g) for b in haar)
                    c["centerface"][0] += any(fv.hit(b, g) for b in cf)
                    c["blur"][0] += (verdict.method in ("whole-frame", "dropped")
                                     or any(fv.hit(b, g) or fv.hit(g, b) for b in verdict.boxes))
                    for m in c:
                        c[m][1] += 1
    print(f"{len(clips)} clips, {n_track} frames; {os.cpu_count()} CPUs\n")
    print("| view | faces | Haar (default+alt2) | CenterFace (analysis, 320 px) | fail-closed blur |")
    print("|---|---|---|---|---|")
    for vname, c in counts.items():
        n = c["haar"][1]
        print(f"| {vname} | {n} | " + " | ".join(f"{c[m][0] / max(n, 1):.1%}" for m in ("haar", "centerface", "blur"))
              + " |")
    print()
    print(f"time per frame: Haar {1000 * np.mean(times['haar']):.1f} ms, CenterFace 320 px "
          f"{1000 * np.mean(times['centerface']):.1f} ms, analysis track (1 detection + window tracking) "
          f"{1000 * t_track / max(n_track, 1):.1f} ms, fail-closed blur {1000 * np.mean(times['blur']):.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
