"""The lite scorer's fusion formulas, each written once (lite.py scores with them, calibrate.py fits them).

Polarity (valence fusion, the coalitions without a text head):

    s = sum_m w_m c_m v_m / (shrink + sum_m w_m c_m)          (v = valence in [-1, 1], c = confidence)

Polarity tilt of the text head's distribution (coalitions with words): ``u = sum_m t_m c_m v_m`` over the kept
audio/visual modalities (``t``: FusionParams.tilt), applied inside the head's calibrated softmax.

Intensity (audio arousal): prosody carries arousal, not polarity (docs/voice.md), so it moves probability between
the strong and the weak class of each side and leaves NEUT and the polarity split alone:

    p'_k ∝ p_k exp(kappa * a * c_a * STRENGTH_k),   STRENGTH = +1 for SNEG/SPOS, -1 for WNEG/WPOS, 0 for NEUT

with ``a`` the audio arousal, ``c_a`` its confidence (``features["arousal_confidence"]``), ``kappa``
FusionParams.intensity. The weights are reliabilities: how far each modality is to be believed for polarity (or
intensity) in each language, fitted and guarded by ``omni-mer calibrate`` (scorers/calibrate.py) and documented with
the measurements behind the defaults in docs/fusion.md.
"""

from __future__ import annotations

import numpy as np

from omni_mer.core.config import MODALITIES
from omni_mer.evidence.types import Evidence
from omni_mer.core.labels import LABEL_VALENCE, LABELS

# +1 strong, -1 weak, 0 neutral (from the label valences: |2| strong, |1| weak)
STRENGTH = np.asarray([{2.0: 1.0, 1.0: -1.0, 0.0: 0.0}[abs(LABEL_VALENCE[label])] for label in LABELS])


def fuse_valence(v: np.ndarray, c: np.ndarray, w: np.ndarray, shrink: float) -> np.ndarray:
    """The valence fusion for rows of per-modality valences ``v`` and confidences ``c`` (absent: c = 0) with
    weights ``w`` (one per column); a 1-D ``v``/``c`` is one clip."""
    v, c, w = np.asarray(v, np.float64), np.asarray(c, np.float64), np.asarray(w, np.float64)
    num = (w * c * v).sum(axis=-1)
    den = shrink + (w * c).sum(axis=-1)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def apply_intensity(probs: np.ndarray, arousal: np.ndarray | float, confidence: np.ndarray | float,
                    kappa: float) -> np.ndarray:
    """Rows of 5-class probabilities shifted between strong and weak classes by the audio arousal."""
    p = np.atleast_2d(np.asarray(probs, np.float64))
    k = (kappa * np.asarray(arousal, np.float64) * np.asarray(confidence, np.float64)).reshape(-1, 1)
    q = p * np.exp(np.clip(k * STRENGTH[None, :], -30, 30))
    q = q / q.sum(axis=1, keepdims=True)
    return q if np.ndim(probs) > 1 else q[0]


def audio_intensity(evidence: Evidence, keep) -> tuple[float, float]:
    """(arousal, arousal confidence) of the audio modality when it is kept and present, else (0, 0)."""
    a = evidence.audio
    if "audio" not in keep or not a.present or a.arousal is None:
        return 0.0, 0.0
    return float(a.arousal), float(a.features.get("arousal_confidence", a.confidence))


def design(evidences: list[Evidence]) -> dict[str, np.ndarray]:
    """Per-clip arrays the fits read: "v", "c" (n, 3) valences/confidences (0 where absent, MODALITIES order),
    "arousal", "arousal_c" (n,) audio arousal and its confidence."""
    n = len(evidences)
    v, c = np.zeros((n, len(MODALITIES))), np.zeros((n, len(MODALITIES)))
    ar, ac = np.zeros(n), np.zeros(n)
    for i, ev in enumerate(evidences):
        for j, m in enumerate(MODALITIES):
            me = ev.modality(m)
            if me.present:
                v[i, j], c[i, j] = me.valence, me.confidence
        ar[i], ac[i] = audio_intensity(ev, MODALITIES)
    return {"v": v, "c": c, "arousal": ar, "arousal_c": ac}
