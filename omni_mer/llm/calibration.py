"""Per-language calibration of the llm scorer's label scores: class biases + a temperature, the text head's fit
(texthead/calibrate.py), on validation rows.

A small LoRA-tuned LLM can read a transcript and still put most of its label mass on one class (docs/llm.md: the
CPU run of 2026-12-06 put NEUT first for 884 of 900 held-out rows); the biases move that prior, the temperature its
confidence, and both are fitted on the validation split, never on test. ``omni-mer eval-llm --split valid
--datasets mosei sims2 --fit-calibration FILE`` fits it (MOSEI valid for English, SIMS v2 valid for Mandarin); the
scorer reads ``<adapter>/label_calibration.json`` when present (``calibration="auto"``), or a given file.

Public API:
    CALIBRATION_FILE
    resolve_calibration(choice, adapter) -> Path | None       load_calibration(path) -> {language: LanguageCalibration}
    fit_label_calibration(scores, gold, languages) -> {language: LanguageCalibration}
    save_calibration(calibration, path, meta) -> Path          apply_calibration(calibration, scores, languages)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from omni_mer.core.labels import LABELS
from omni_mer.texthead.head import LanguageCalibration

CALIBRATION_FILE = "label_calibration.json"
FORMAT = 1
CHOICES = ("auto", "none")  # or a file


def resolve_calibration(choice: str | None, adapter: str | None) -> Path | None:
    """The calibration file ``choice`` names: "auto" (or None) = ``<adapter>/label_calibration.json`` when it exists,
    "none" = no calibration, else a file that must exist."""
    if choice in (None, "auto"):
        path = Path(adapter) / CALIBRATION_FILE if adapter else None
        return path if path is not None and path.is_file() else None
    if choice == "none":
        return None
    if not Path(choice).is_file():
        raise FileNotFoundError(f"label calibration {choice!r}: no such file (valid: {', '.join(CHOICES)} or a "
                                f"{CALIBRATION_FILE} written by eval-llm --fit-calibration)")
    return Path(choice)


def load_calibration(path: str | Path) -> dict[str, LanguageCalibration]:
    """{language: LanguageCalibration} from a file ``save_calibration`` wrote; ValueError naming the file otherwise."""
    try:
        info = json.loads(Path(path).read_text(encoding="utf-8"))
        if info.get("format") != FORMAT or tuple(info.get("labels", ())) != LABELS:
            raise ValueError(f"format {info.get('format')!r} / labels {info.get('labels')}: this code reads format "
                             f"{FORMAT} over {list(LABELS)}")
        return {lang: LanguageCalibration(**c) for lang, c in info["calibration"].items()}
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: not a label calibration ({type(exc).__name__}: {exc})") from exc


def fit_label_calibration(scores: np.ndarray, gold: list[str], languages: list[str]) -> dict[str, LanguageCalibration]:
    """One calibration per language present, fitted on that language's rows of ``scores`` (n, 5: the scorer's raw
    label log-probabilities) against their gold labels."""
    from omni_mer.texthead.calibrate import fit_calibration

    z, y = np.asarray(scores, dtype=np.float64), np.asarray([LABELS.index(g) for g in gold])
    out = {}
    for lang in dict.fromkeys(languages):
        idx = [i for i, la in enumerate(languages) if la == lang]
        out[lang] = fit_calibration(z[idx], y[idx])
    return out


def save_calibration(calibration: dict[str, LanguageCalibration], path: str | Path, meta: dict) -> Path:
    """Write ``calibration`` (and ``meta``: what it was fitted on) as JSON at ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    info = {"format": FORMAT, "labels": list(LABELS),
            "calibration": {lang: {"bias": list(c.bias), "temperature": c.temperature} for lang, c in calibration.items()},
            "meta": meta}
    path.write_text(json.dumps(info, indent=1, ensure_ascii=False), encoding="utf-8")
    return path


def apply_calibration(calibration: dict[str, LanguageCalibration], scores: np.ndarray,
                      languages: list[str]) -> np.ndarray:
    """Calibrated log-probabilities (n, 5) of raw label ``scores``, each row under its language's calibration (the
    text heads' ``calibrated_probs``); a language without one is an error naming the calibrated ones."""
    from omni_mer.texthead.head import calibrated_probs

    z = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    return np.log(np.clip(calibrated_probs(calibration, z, list(languages)), 1e-12, 1.0))
