"""Harder views of a real face, made from one frame and its face box: tilted, turned over, small, stretched,
two people. Used by the detector and blurring tests and by scripts/face_detection_bench.py (never saved as data).

Every variant returns (image, ground-truth boxes): the face boxes of the source frame carried through the same
geometric transform (the axis-aligned box around the transformed corners).
"""

from __future__ import annotations

import numpy as np

Box = tuple[int, int, int, int]


def _corners(box: Box) -> np.ndarray:
    x, y, w, h = box
    return np.asarray([[x, y], [x + w, y], [x, y + h], [x + w, y + h]], dtype=np.float64)


def _bound(pts: np.ndarray, w: int, h: int) -> Box:
    x0, y0 = np.clip(pts.min(0), 0, [w, h])
    x1, y1 = np.clip(pts.max(0), 0, [w, h])
    return int(x0), int(y0), int(x1 - x0), int(y1 - y0)


def tilted(frame: np.ndarray, box: Box, degrees: float) -> tuple[np.ndarray, list[Box]]:
    """The frame turned ``degrees`` (counter-clockwise) about its centre on a canvas large enough to keep it all."""
    import cv2

    h, w = frame.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    W, H = int(np.ceil(h * sin + w * cos)), int(np.ceil(h * cos + w * sin))
    m[0, 2] += W / 2 - w / 2
    m[1, 2] += H / 2 - h / 2
    out = cv2.warpAffine(np.ascontiguousarray(frame), m, (W, H), borderMode=cv2.BORDER_CONSTANT)
    pts = np.c_[_corners(box), np.ones(4)] @ m.T
    return out, [_bound(pts, W, H)]


def turned(frame: np.ndarray, box: Box, quarter_turns: int) -> tuple[np.ndarray, list[Box]]:
    """np.rot90 by ``quarter_turns`` (1: lying on its side, 2: upside-down)."""
    h, w = frame.shape[:2]
    out = np.ascontiguousarray(np.rot90(frame, k=quarter_turns))
    pts = _corners(box)
    for _ in range(quarter_turns % 4):  # (x, y) in a (h, w) image -> (y, w - x) in the (w, h) rotated one
        pts = np.c_[pts[:, 1], w - pts[:, 0]]
        h, w = w, h
    return out, [_bound(pts, w, h)]


def small(frame: np.ndarray, box: Box, face_px: int, canvas: tuple[int, int] | None = None
          ) -> tuple[np.ndarray, list[Box]]:
    """The frame shrunk so the face is ``face_px`` wide, pasted at the centre of a gray canvas (default: the
    frame's own size): a small, distant face in a normal-sized picture."""
    import cv2

    h, w = frame.shape[:2]
    s = face_px / max(box[2], 1)
    sw, sh = max(1, round(w * s)), max(1, round(h * s))
    tiny = cv2.resize(np.ascontiguousarray(frame), (sw, sh), interpolation=cv2.INTER_AREA)
    H, W = canvas or (h, w)
    out = np.full((H, W, 3), 128, np.uint8)
    ox, oy = (W - sw) // 2, (H - sh) // 2
    x0, y0, x1, y1 = max(0, ox), max(0, oy), min(W, ox + sw), min(H, oy + sh)
    out[y0:y1, x0:x1] = tiny[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
    pts = _corners(box) * s + [ox, oy]
    return out, [_bound(pts, W, H)]


def stretched(frame: np.ndarray, box: Box, factor: float = (16 / 9) / (4 / 3)) -> tuple[np.ndarray, list[Box]]:
    """The frame stretched horizontally (default: a 4:3 picture shown as 16:9)."""
    import cv2

    h, w = frame.shape[:2]
    W = int(round(w * factor))
    out = cv2.resize(np.ascontiguousarray(frame), (W, h), interpolation=cv2.INTER_LINEAR)
    pts = _corners(box) * [factor, 1.0]
    return out, [_bound(pts, W, h)]


def two_faces(a: np.ndarray, box_a: Box, b: np.ndarray, box_b: Box) -> tuple[np.ndarray, list[Box]]:
    """Two frames side by side at the height of the first (two people in one picture)."""
    import cv2

    h = a.shape[0]
    s = h / b.shape[0]
    b2 = cv2.resize(np.ascontiguousarray(b), (max(1, round(b.shape[1] * s)), h))
    out = np.concatenate([np.ascontiguousarray(a), b2], axis=1)
    pb = _corners(box_b) * s + [a.shape[1], 0]
    W = out.shape[1]
    return out, [_bound(_corners(box_a), W, h), _bound(pb, W, h)]


def hit(found: Box, truth: Box) -> bool:
    """A detection matches a ground-truth face when each box holds the other's centre."""
    def inside(p, b):
        return b[0] <= p[0] <= b[0] + b[2] and b[1] <= p[1] <= b[1] + b[3]

    cf = (found[0] + found[2] / 2, found[1] + found[3] / 2)
    ct = (truth[0] + truth[2] / 2, truth[1] + truth[3] / 2)
    return inside(cf, truth) and inside(ct, found)
