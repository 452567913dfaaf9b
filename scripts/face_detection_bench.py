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
from omni_mer.evidence.anonymize import MIN_SIDE, anonymize_frames
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
    # the hardest cases for the blur's shortcut (turned passes only when the upright pass leaves a hint): turned and small
    for px in (40, 24):
        img, (sbox,) = fv.small(frame, box, px)
        out[f"lying, {px} px face"] = fv.turned(img, sbox, 1)
        out[f"upside-down, {px} px face"] = fv.turned(img, sbox, 2)
    out["tilted 135°"] = fv.tilted(frame, box, 135)
    return out


def upright_score(img, truth, det) -> float:
    """The best score of an upright candidate (at the blur's size) on the face: what the blur's hint test sees."""
    side = max(MIN_SIDE, max(img.shape[:2]))
    return max([f.score for f in det.raw(img, side=side, threshold=0.005) if fv.hit(f.box, truth) or
                fv.hit(truth, f.box)] or [0.0])


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
                c.setdefault("frames", 0)
                c["frames"] += 1
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
                c.setdefault("whole", 0)
                c["whole"] += verdict.method in ("whole-frame", "dropped")
                c.setdefault("turned", 0)
                c["turned"] += getattr(verdict, "turned", True)  # main before the shortcut: always
                c.setdefault("upright", []).extend(upright_score(img, g, det) for g in truth)
                for g in truth:
                    c["haar"][0] += any(fv.hit(b, g) for b in haar)
                    c["centerface"][0] += any(fv.hit(b, g) for b in cf)
                    c["blur"][0] += (verdict.method in ("whole-frame", "dropped")
                                     or any(fv.hit(b, g) or fv.hit(g, b) for b in verdict.boxes))
                    for m in ("haar", "centerface", "blur"):
                        c[m][1] += 1
    print(f"{len(clips)} clips, {n_track} frames; {os.cpu_count()} CPUs\n")
    print("| view | faces | Haar (default+alt2) | CenterFace (analysis, 320 px) | fail-closed blur | blur: whole frame "
          "| blur: turned passes run | lowest upright score on a face |")
    print("|---|---|---|---|---|---|---|---|")
    for vname, c in counts.items():
        n, frames = c["haar"][1], max(c.get("frames", 0), 1)
        print(f"| {vname} | {n} | " + " | ".join(f"{c[m][0] / max(n, 1):.1%}" for m in ("haar", "centerface", "blur"))
              + f" | {c.get('whole', 0) / frames:.1%} | {c.get('turned', 0) / frames:.1%} | "
              f"{min(c.get('upright', [0.0])):.3f} |")
    print()
    print(f"time per frame: Haar {1000 * np.mean(times['haar']):.1f} ms, CenterFace 320 px "
          f"{1000 * np.mean(times['centerface']):.1f} ms, analysis track (1 detection + window tracking) "
          f"{1000 * t_track / max(n_track, 1):.1f} ms, fail-closed blur {1000 * np.mean(times['blur']):.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
