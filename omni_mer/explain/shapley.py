"""Exact Shapley values over the three modalities, from the 8 coalitions of a Scorer."""

from __future__ import annotations

import itertools
import math
from typing import Callable, Iterable

from omni_mer.core.config import MODALITIES

# Every subset of MODALITIES, smallest first, each in MODALITIES order.
COALITIONS: tuple[frozenset[str], ...] = tuple(
    frozenset(c) for r in range(len(MODALITIES) + 1) for c in itertools.combinations(MODALITIES, r)
)


def coalition_key(keep: Iterable[str]) -> str:
    """Stable name of a coalition: members in MODALITIES order joined by '+' ('' for the empty one)."""
    members = set(keep)
    bad = members - set(MODALITIES)
    if bad:
        raise ValueError(f"unknown modalities {sorted(bad)}; valid: {', '.join(MODALITIES)}")
    return "+".join(m for m in MODALITIES if m in members)


def parse_coalition_key(key: str) -> frozenset[str]:
    """Inverse of coalition_key (accepts any member order)."""
    members = frozenset(k for k in key.split("+") if k)
    coalition_key(members)  # validates
    return members


def modality_shapley(value_fn: Callable[[frozenset[str]], float], present: frozenset[str]) -> dict:
    """Exact Shapley value of each modality for the game ``value_fn`` restricted to ``present``.

    Only subsets of the present modalities are evaluated (each at most once); absent modalities get
    exactly 0.0, since a scorer ignores them and their marginal contribution is therefore 0.
    Efficiency: the values sum to value_fn(present) - value_fn(frozenset()).
    Returns {"text": φ, "audio": φ, "visual": φ}.
    """
    players = [m for m in MODALITIES if m in set(present)]
    if set(present) - set(MODALITIES):
        raise ValueError(f"unknown modalities {sorted(set(present) - set(MODALITIES))}; valid: {MODALITIES}")
    cache: dict[frozenset[str], float] = {}

    def v(s: frozenset[str]) -> float:
        if s not in cache:
            cache[s] = float(value_fn(s))
        return cache[s]

    n = len(players)
    phi = {m: 0.0 for m in MODALITIES}
    for m in players:
        others = [p for p in players if p != m]
        total = 0.0
        for r in range(len(others) + 1):
            weight = math.factorial(r) * math.factorial(n - r - 1) / math.factorial(n)
            for subset in itertools.combinations(others, r):
                s = frozenset(subset)
                total += weight * (v(s | {m}) - v(s))
        phi[m] = total
    return phi
