"""Per-language calibration of the head's logits (class biases + temperature), fitted on validation rows.

Two steps, both on the validation logits of one language:
1. biases + temperature by maximum likelihood (proper probabilities for that language's class frequencies);
2. one logit adjustment ``bias -= alpha * T * log(class frequency)`` with ``alpha`` in [0, 1] chosen to maximise
   the selection objective ``(Acc-5 + UAR) / 2`` of the argmax label — the label the product writes — so that NEUT
   vs weak vs strong is decided where the validation data put it, not by hand-set cut points. Acc-5 alone lets the
   majority classes swallow the rare strong ones; UAR alone over-predicts them. One parameter, not five: moving
   each bias on its own overfitted the few hundred validation rows (test objective below the uncalibrated logits).

Public API:
    objective(y, pred) -> float                       (Acc-5 + UAR) / 2
    fit_calibration(logits, y) -> LanguageCalibration
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from omni_mer.eval.metrics import metrics_from_confusion
from omni_mer.texthead.head import N_CLASSES, LanguageCalibration, softmax


def objective(y: np.ndarray, pred: np.ndarray) -> float:
    """(Acc-5 + UAR) / 2 (omni_mer.eval.metrics' definitions) of class indices ``pred`` against ``y``."""
    cm = np.zeros((N_CLASSES, N_CLASSES), dtype=np.int64)
    np.add.at(cm, (np.asarray(y), np.asarray(pred)), 1)
    m = metrics_from_confusion(cm)
    return 0.5 * (m["acc5"] + m["uar"])


def _nll_fit(z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    def unpack(x):
        return np.concatenate([[0.0], x[:N_CLASSES - 1]]), float(np.exp(x[-1]))  # bias[0] fixed: softmax shift

    def nll(x):
        b, t = unpack(x)
        p = softmax((z + b) / t)
        return -float(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None)).mean())

    res = minimize(nll, np.zeros(N_CLASSES), method="L-BFGS-B")
    return unpack(res.x)


def fit_calibration(logits: np.ndarray, y: np.ndarray,
                    alphas: np.ndarray = np.linspace(0.0, 1.0, 21)) -> LanguageCalibration:
    """Calibration for validation ``logits`` (n, 5) with gold class indices ``y`` (see the module docstring)."""
    z, y = np.asarray(logits, dtype=np.float64), np.asarray(y, dtype=np.int64)
    if len(z) < 20 or len(np.unique(y)) < 2:
        raise ValueError(f"fit_calibration needs >= 20 rows with >= 2 classes (got {len(z)} rows, "
                         f"{len(np.unique(y))} classes)")
    b, t = _nll_fit(z, y)
    prior = np.maximum(np.bincount(y, minlength=N_CLASSES) / len(y), 1.0 / (10 * len(y)))
    best_score, best_b = -1.0, b
    for a in alphas:
        trial = b - a * t * np.log(prior)
        score = objective(y, ((z + trial) / t).argmax(1))
        if score > best_score + 1e-9:
            best_score, best_b = score, trial
    return LanguageCalibration(bias=tuple(map(float, best_b - best_b.mean())), temperature=float(t))
