"""The five polarity classes and every mapping into them. The only place labels live (the answer format that
carries a label is omni_mer.core.answer)."""

from __future__ import annotations

import math
import re

LABELS: tuple[str, ...] = ("SNEG", "WNEG", "NEUT", "WPOS", "SPOS")
LABEL_INDEX: dict[str, int] = {label: i for i, label in enumerate(LABELS)}
# Ordinal valence of each class, used for expected valence and ordinal metrics.
LABEL_VALENCE: dict[str, float] = {"SNEG": -2.0, "WNEG": -1.0, "NEUT": 0.0, "WPOS": 1.0, "SPOS": 2.0}
LABEL_NAMES: dict[str, dict[str, str]] = {
    "en": {
        "SNEG": "strongly negative",
        "WNEG": "weakly negative",
        "NEUT": "neutral",
        "WPOS": "weakly positive",
        "SPOS": "strongly positive",
    },
    "zh": {"SNEG": "强烈消极", "WNEG": "轻微消极", "NEUT": "中性", "WPOS": "轻微积极", "SPOS": "强烈积极"},
}

MOSEI_RANGE = (-3.0, 3.0)
SIMS_RANGE = (-1.0, 1.0)
MER2023_RANGE = (-5.0, 5.0)
_SIMS_GRID_TOL = 1e-4


def _check_score(score: object, valid: tuple[float, float], dataset: str) -> float:
    if isinstance(score, bool):
        raise ValueError(f"{dataset} score {score!r} is not a number; valid range is [{valid[0]}, {valid[1]}]")
    if not isinstance(score, (int, float)):
        try:
            value = float(score)  # numpy scalars, numeric strings from CSV
        except (TypeError, ValueError):
            raise ValueError(
                f"{dataset} score {score!r} is not a number; valid range is [{valid[0]}, {valid[1]}]"
            ) from None
    else:
        value = float(score)
    if math.isnan(value) or not valid[0] <= value <= valid[1]:
        raise ValueError(f"{dataset} score {score!r} is out of range; valid range is [{valid[0]}, {valid[1]}]")
    return value


def from_mosei(score: float) -> str:
    """Map a CMU-MOSEI sentiment score in [-3, 3] to one of LABELS.

    [-3,-2] SNEG, (-2,-0.5] WNEG, (-0.5,0.5) NEUT, [0.5,2) WPOS, [2,3] SPOS.
    """
    s = _check_score(score, MOSEI_RANGE, "CMU-MOSEI")
    if s <= -2.0:
        return "SNEG"
    if s <= -0.5:
        return "WNEG"
    if s < 0.5:
        return "NEUT"
    if s < 2.0:
        return "WPOS"
    return "SPOS"


def from_sims(score: float) -> str:
    """Map a CH-SIMS v2 score in [-1, 1] to one of LABELS.

    Grid values: {-1,-0.8} SNEG, {-0.6,-0.4,-0.2} WNEG, {0} NEUT, {0.2,0.4,0.6} WPOS, {0.8,1} SPOS.
    Float noise snaps to the grid; values between grid points are binned by the midpoints.
    """
    s = _check_score(score, SIMS_RANGE, "CH-SIMS v2")
    snapped = round(s * 5) / 5
    if abs(s - snapped) <= _SIMS_GRID_TOL:
        s = snapped
    if s <= -0.7:
        return "SNEG"
    if s <= -0.1:
        return "WNEG"
    if s < 0.1:
        return "NEUT"
    if s < 0.7:
        return "WPOS"
    return "SPOS"


def from_mer2023(valence: float) -> str:
    """Map a MER2023 valence in [-5, 5] to one of LABELS: scaled by 3/5 onto the CMU-MOSEI scale, then MOSEI's bins.

    In valence units: [-5,-3.33] SNEG, (-3.33,-0.83] WNEG, (-0.83,0.83) NEUT, [0.83,3.33) WPOS, [3.33,5] SPOS.
    """
    v = _check_score(valence, MER2023_RANGE, "MER2023")
    return from_mosei(max(MOSEI_RANGE[0], min(MOSEI_RANGE[1], v * 3.0 / 5.0)))


def _normalise(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", name.strip().lower())


_ALIASES: dict[str, str] = {}
for _label in LABELS:
    _ALIASES[_normalise(_label)] = _label
    for _lang in LABEL_NAMES:
        _ALIASES[_normalise(LABEL_NAMES[_lang][_label])] = _label
_ALIASES.update(
    {
        "strong negative": "SNEG", "weak negative": "WNEG", "weak positive": "WPOS", "strong positive": "SPOS",
        "neutral": "NEUT", "neu": "NEUT", "强烈负面": "SNEG", "轻微负面": "WNEG", "轻微正面": "WPOS",
        "强烈正面": "SPOS", "弱消极": "WNEG", "弱积极": "WPOS", "强消极": "SNEG", "强积极": "SPOS",
    }
)


def label_from_text(text: str) -> str | None:
    """Return the label a short string names (code, English or Chinese name), else None."""
    key = _normalise(text).strip(" .。!！\"'`*")
    return _ALIASES.get(key)
