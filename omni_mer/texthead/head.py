"""The text head at inference: embedding -> 5 class logits -> per-language calibration -> 5-class distribution.

The network is a one-hidden-layer MLP shared by both languages, so that a Chinese and an English transcript of the
same meaning get the same logits. What differs per language is the calibration: a bias per class and a temperature,
fitted on that language's validation rows (``omni-mer train-text``, texthead/calibrate.py), because MOSEI and
CH-SIMS v2 annotators use the five classes with different frequencies. The classes are ordered: training smooths
targets onto the ordinal neighbours (an optional expected-valence regression measured no better), and the fusion
tilts the distribution along the class valences (``tilt``). Inference is numpy only (no torch import in the default job).

Files (``save``/``load``): ``head.npz`` (weights, float32) and ``head.json`` (encoder id, calibration, provenance);
with a fine-tuned encoder also ``encoder.npz`` + ``encoder.json`` (texthead/encoder.py's EncoderAdapter).

Public API:
    LanguageCalibration(bias, temperature)        .apply(logits) -> probs
    TextHead(w1, b1, w2, b2, calibration, encoder_id, meta)
        .logits(emb) -> (n, 5)   .probs(logits, lang, tilt=0) -> (n, 5)   .predict(emb, lang) -> (probs, logits)
        .prior_logits(lang=None) -> (5,)  .save(dir)   TextHead.load(dir)
    DEFAULT_HEAD_DIR             omni_mer/texthead/model (committed, package data)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from omni_mer.core.i18n import LANGUAGES
from omni_mer.core.labels import LABELS
from omni_mer.core.ordinal import CLASS_VALENCE

# shipped inside the package (weights ~0.4 MB + model card), so a wheel install has it too
DEFAULT_HEAD_DIR = Path(__file__).resolve().parent / "model"
FORMAT_VERSION = 2
N_CLASSES = len(LABELS)


def softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


@dataclass
class LanguageCalibration:
    """One language's class biases and temperature on the head's logits, fitted on its validation rows."""

    bias: tuple[float, ...]
    temperature: float

    def __post_init__(self) -> None:
        bias = tuple(float(b) for b in self.bias)
        if len(bias) != N_CLASSES or not np.all(np.isfinite(bias)):
            raise ValueError(f"calibration bias {self.bias} must be {N_CLASSES} finite numbers")
        if not self.temperature > 0:
            raise ValueError(f"calibration temperature {self.temperature} must be > 0")
        self.bias = bias

    def apply(self, logits: np.ndarray, tilt: np.ndarray | float = 0.0) -> np.ndarray:
        """Probabilities of ``(logits + bias) / T``, tilted by ``tilt`` x class valence (another modality's pull)."""
        z = (np.atleast_2d(logits) + np.asarray(self.bias)) / self.temperature
        z = z + np.asarray(tilt, dtype=np.float64).reshape(-1, 1) * CLASS_VALENCE[None, :]
        return softmax(z)


def head_digest(folder: str | Path) -> str | None:
    """Short hash of a head's weights AND calibration (head.npz + head.json [+ encoder.npz]; a fused head: its
    fused.json, which holds its members' digests); None when the folder has no head."""
    import hashlib

    if (Path(folder) / "fused.json").is_file():
        from omni_mer.texthead.fused import fused_digest

        return fused_digest(folder)
    files = [Path(folder) / "head.npz", Path(folder) / "head.json"]
    if not all(f.is_file() for f in files):
        return None
    files += [f for f in [Path(folder) / "encoder.npz"] if f.is_file()]
    return hashlib.sha1(b"".join(f.read_bytes() for f in files)).hexdigest()[:12]


def row_languages(lang: str | list[str] | None, n: int) -> list[str]:
    """One language of LANGUAGES per row: ``lang`` given once for all ``n`` rows, or one per row."""
    langs = [lang] * n if lang is None or isinstance(lang, str) else list(lang)
    if len(langs) != n or any(la not in LANGUAGES for la in langs):
        raise ValueError(f"the text head needs a language in {LANGUAGES} per row (got {lang!r})")
    return langs


def calibration_of(calibration: dict[str, LanguageCalibration], lang: str | None) -> LanguageCalibration:
    """``lang``'s entry of a {language: LanguageCalibration}; ValueError naming the calibrated languages."""
    if lang not in calibration:
        raise ValueError(f"no calibration for language {lang!r}; valid: {', '.join(calibration)}")
    return calibration[lang]


def calibrated_probs(calibration: dict[str, LanguageCalibration], logits: np.ndarray, lang: str | list[str] | None,
                     tilt: np.ndarray | float = 0.0) -> np.ndarray:
    """Probabilities of ``logits`` under ``lang``'s calibration, or each row's own (a list: rows grouped by
    language); the text heads and the llm scorer's label calibration read their scores through it."""
    if lang is None or isinstance(lang, str):
        return calibration_of(calibration, lang).apply(logits, tilt)
    z = np.atleast_2d(logits)
    langs = row_languages(lang, len(z))
    tilts = np.broadcast_to(np.asarray(tilt, dtype=np.float64).reshape(-1), (len(z),))
    out = np.empty(z.shape, dtype=np.float64)
    for la in dict.fromkeys(langs):
        idx = [i for i, x in enumerate(langs) if x == la]
        out[idx] = calibration_of(calibration, la).apply(z[idx], tilts[idx])
    return out


def head_inputs(emb: np.ndarray, lang: str | list[str] | None, language_feature: bool) -> np.ndarray:
    """The head's input rows: the embeddings, plus a one-hot of the language (LANGUAGES order) when used."""
    x = np.atleast_2d(np.asarray(emb, dtype=np.float32))
    if not language_feature:
        return x
    langs = row_languages(lang, len(x))
    onehot = np.asarray([[la == k for k in LANGUAGES] for la in langs], dtype=np.float32)
    return np.concatenate([x, onehot], axis=1)


def _gelu(x: np.ndarray) -> np.ndarray:
    # tanh approximation; the trainer uses the same (torch GELU(approximate="tanh"))
    return 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * x ** 3)))


class CalibratedHead:
    """What every text head shares: class logits (``logits``, the subclass's) read through a calibration per
    language (``self.calibration``: {language: LanguageCalibration})."""

    calibration: dict[str, LanguageCalibration]

    def logits(self, emb: np.ndarray, lang: str | list[str] | None = None) -> np.ndarray:
        raise NotImplementedError

    def calibration_for(self, lang: str | None) -> LanguageCalibration:
        return calibration_of(self.calibration, lang)

    def probs(self, logits: np.ndarray, lang: str | list[str] | None,
              tilt: np.ndarray | float = 0.0) -> np.ndarray:
        """Calibrated probabilities of ``logits`` under ``lang``'s calibration, or each row's own (a list)."""
        return calibrated_probs(self.calibration, logits, lang, tilt)

    def predict(self, emb: np.ndarray, lang: str | None) -> tuple[np.ndarray, np.ndarray]:
        z = self.logits(emb, lang)
        return self.probs(z, lang), z


@dataclass
class TextHead(CalibratedHead):
    w1: np.ndarray  # (dim, hidden)
    b1: np.ndarray  # (hidden,)
    w2: np.ndarray  # (hidden, 5)
    b2: np.ndarray  # (5,)
    calibration: dict[str, LanguageCalibration]
    encoder_id: str
    meta: dict = field(default_factory=dict)
    empty_logits: np.ndarray = field(default_factory=lambda: np.zeros(N_CLASSES))  # the head on an empty transcript
    language_feature: bool = False  # the input also carries a one-hot of the transcript's language
    digest: str = "unsaved"  # short hash of the files it was loaded from (names the head in explanations)
    encoder: object = None  # texthead.encoder.EncoderAdapter when the head was trained on a fine-tuned encoder

    def __post_init__(self) -> None:
        missing = [lang for lang in LANGUAGES if lang not in self.calibration]
        if missing:
            raise ValueError(f"text head has no calibration for {missing}; need all of {LANGUAGES}")
        if self.w1.ndim != 2 or self.b1.shape != (self.w1.shape[1],) or self.w2.shape != (self.w1.shape[1], N_CLASSES) \
                or self.b2.shape != (N_CLASSES,):
            raise ValueError(f"text head weight shapes disagree: w1 {self.w1.shape}, b1 {self.b1.shape}, "
                             f"w2 {self.w2.shape}, b2 {self.b2.shape}")
        if self.encoder is not None and self.encoder.id != self.encoder_id:
            raise ValueError(f"text head was trained on {self.encoder_id!r}; its encoder adapter is {self.encoder.id!r}")

    @property
    def dim(self) -> int:
        return int(self.w1.shape[0])

    def logits(self, emb: np.ndarray, lang: str | list[str] | None = None) -> np.ndarray:
        """Uncalibrated class logits of each embedding row, (n, 5); ``lang`` (one or one per row) when the head
        takes the language as an input."""
        x = head_inputs(emb, lang, self.language_feature)
        h = _gelu(x @ self.w1 + self.b1)
        return (h @ self.w2 + self.b2).astype(np.float64)

    @property
    def encoder_spec(self) -> dict | None:
        """How to build an LLM encoder this head reads (``{"kind": "llm", "model", "layer"}``); None for e5."""
        spec = self.meta.get("encoder_spec")
        return spec if spec and spec.get("kind") == "llm" else None

    def prior_logits(self, lang: str | None = None) -> np.ndarray:
        """The logits of "nothing said": the head's own reading of an empty transcript (the coalitions without text).
        ``lang`` is accepted for the fused head's interface; this head's reading does not depend on it."""
        return np.asarray(self.empty_logits, dtype=np.float64)

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(folder / "head.npz", w1=self.w1.astype(np.float32), b1=self.b1.astype(np.float32),
                 w2=self.w2.astype(np.float32), b2=self.b2.astype(np.float32),
                 empty_logits=np.asarray(self.empty_logits, dtype=np.float32))
        info = {"format": FORMAT_VERSION, "encoder": self.encoder_id, "labels": list(LABELS),
                "calibration": {k: asdict(v) for k, v in self.calibration.items()},
                "language_feature": self.language_feature, "meta": self.meta}
        tmp = folder / "head.json.tmp"
        tmp.write_text(json.dumps(info, indent=2, ensure_ascii=False), encoding="utf-8")
        tmp.replace(folder / "head.json")
        (folder / "fused.json").unlink(missing_ok=True)  # a stale fused head would shadow this one (fused.py)
        if self.encoder is not None:
            self.encoder.save(folder)
        else:
            for name in ("encoder.npz", "encoder.json"):  # a stale adapter must never pair with this head
                (folder / name).unlink(missing_ok=True)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "TextHead":
        from omni_mer.texthead.encoder import EncoderAdapter

        folder = Path(folder)
        try:
            info = json.loads((folder / "head.json").read_text(encoding="utf-8"))
            if info.get("format") != FORMAT_VERSION:
                raise ValueError(f"format {info.get('format')!r}, this code reads {FORMAT_VERSION}")
            if tuple(info.get("labels", ())) != LABELS:
                raise ValueError(f"labels {info.get('labels')} differ from {list(LABELS)}")
            with np.load(folder / "head.npz") as z:
                w1, b1, w2, b2, empty = z["w1"], z["b1"], z["w2"], z["b2"], z["empty_logits"]
            cal = {k: LanguageCalibration(**v) for k, v in info["calibration"].items()}
            return cls(w1=w1, b1=b1, w2=w2, b2=b2, calibration=cal, encoder_id=info["encoder"],
                       meta=info.get("meta", {}), empty_logits=empty.astype(np.float64),
                       language_feature=bool(info.get("language_feature", False)), digest=head_digest(folder),
                       encoder=EncoderAdapter.load(folder))
        except (OSError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{folder}: not a valid text head (head.json / head.npz: {type(exc).__name__}: {exc}); "
                             "retrain it with `omni-mer train-text` or restore the folder") from exc
