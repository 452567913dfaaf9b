"""The one interface both scorers implement (docs/architecture.md, "The scorer interface")."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from omni_mer.core.clip import Clip
from omni_mer.core.config import MODALITIES
from omni_mer.evidence.types import Evidence
from omni_mer.core.labels import LABELS

ALL_MODALITIES: frozenset[str] = frozenset(MODALITIES)


def check_keep(keep: frozenset[str]) -> frozenset[str]:
    bad = set(keep) - ALL_MODALITIES
    if bad:
        raise ValueError(f"unknown modalities {sorted(bad)}; valid: {', '.join(MODALITIES)}")
    return frozenset(keep)


class Scorer(ABC):
    """score(clip, evidence, keep) -> probabilities over LABELS using only the modalities in ``keep``."""

    name: str = "base"

    @abstractmethod
    def score(self, clip: Clip, evidence: Evidence, keep: frozenset[str]) -> np.ndarray:
        """Return a float64 array of len(LABELS) summing to 1."""

    def prior(self) -> np.ndarray:
        """The distribution used when nothing is known (also the label of files that fail)."""
        return np.full(len(LABELS), 1.0 / len(LABELS))

    def prior_label(self) -> str:
        return LABELS[int(np.argmax(self.prior()))]

    def generate(self, clip: Clip, evidence: Evidence) -> str | None:
        """A model-written ``<think>…</think><answer>…</answer>``, or None when the scorer cannot write one."""
        return None

    def version(self) -> str:
        return self.name
