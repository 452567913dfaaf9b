"""The ordinal (cumulative-logit) link of the lite valence fusion (a latent score -> 5 classes), and the class
valences that the text head's training, cues and fusion tilt use.

    P(y <= k) = sigmoid((theta_k - s) / temperature),   k = SNEG..WPOS (four increasing thresholds)
"""

from __future__ import annotations

import numpy as np

from omni_mer.core.labels import LABEL_VALENCE, LABELS

# ordinal valence of each class scaled to [-1, 1], in LABELS order
CLASS_VALENCE = np.asarray([LABEL_VALENCE[label] / 2.0 for label in LABELS])


def ordinal_probs(s: np.ndarray, thresholds: np.ndarray, temperature: float) -> np.ndarray:
    """Cumulative-logit probabilities, shape (len(s), 5); rows sum to 1."""
    s = np.asarray(s, dtype=np.float64).reshape(-1)
    z = np.clip((np.asarray(thresholds, dtype=np.float64)[None, :] - s[:, None]) / temperature, -60.0, 60.0)
    cum = 1.0 / (1.0 + np.exp(-z))
    cum = np.concatenate([np.zeros((len(s), 1)), cum, np.ones((len(s), 1))], axis=1)
    p = np.clip(np.diff(cum, axis=1), 1e-9, None)
    return p / p.sum(axis=1, keepdims=True)


def expected_valence(probs: np.ndarray) -> np.ndarray:
    """Expected class valence in [-1, 1] of each row of 5-class probabilities."""
    return np.asarray(probs) @ CLASS_VALENCE
