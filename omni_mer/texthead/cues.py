"""Word cues from the text head itself, by occlusion: remove a word (or phrase) and measure what the head loses.

For each unit u of the transcript, the transcript without u, and u alone, are embedded and scored by the same head:
  - ``drop`` = p(predicted label | full) - p(predicted label | without u): how much u supports the decision;
  - ``effect`` = tanh(half of u's contribution to the head's positive-vs-negative log-odds), in [-1, 1]: the
    direction u pushes the polarity, where the contribution is the mean of u's last marginal (full minus without
    u, i.e. occlusion) and its first marginal (u alone minus nothing said) — the two ends of u's Shapley average.
    Occlusion alone misleads on a sentence embedding (removing "love this" from a gushing sentence can make the
    rest read even more positive); log-odds, not probabilities, so a word still shows its push when the verdict is
    already saturated.
Units are words (English) or jieba words (Chinese). A long transcript is cut into at most ``max_units``
contiguous phrases (boundaries moved onto punctuation where one is a word away), so the cost stays at
``2 * max_units + 1`` embeddings per clip (the lone units are short), computed in one batch.

Public API:
    Unit(text, char_start, char_end)
    split_units(text, lang, max_units) -> list[Unit]
    occlusion(head, encoder, text, lang, max_units=5) -> (probs, logits, list[(Unit, drop, effect)])
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np


_WORD_EN = re.compile(r"[A-Za-z0-9]+(?:['’][A-Za-z]+)*")
_CLAUSE_END = re.compile(r"[,.!?;:，。！？；：、…]")
_PUNCT_ONLY = re.compile(r"^[\s,.!?;:，。！？；：、…\"'“”‘’()（）\[\]-]*$")


@dataclass(frozen=True)
class Unit:
    text: str
    char_start: int
    char_end: int


def _words(text: str, lang: str) -> list[Unit]:
    if lang == "zh":
        from omni_mer.evidence.text import tokenizer_zh

        out, cursor = [], 0
        for tok in tokenizer_zh().lcut(text):
            i = text.find(tok, cursor)
            i = cursor if i < 0 else i
            cursor = i + len(tok)
            if not _PUNCT_ONLY.match(tok):
                out.append(Unit(tok, i, i + len(tok)))
        return out
    return [Unit(m.group(0), m.start(), m.end()) for m in _WORD_EN.finditer(text)]


def split_units(text: str, lang: str, max_units: int = 5) -> list[Unit]:
    """Words of ``text``, merged into at most ``max_units`` contiguous phrases when there are more."""
    if max_units < 1:
        raise ValueError(f"max_units={max_units} must be >= 1")
    words = _words(text, lang)
    if len(words) <= max_units:
        return words
    bounds = np.linspace(0, len(words), max_units + 1).round().astype(int)
    ends_clause = [bool(_CLAUSE_END.search(text[w.char_end:w.char_end + 1])) for w in words]
    for j in range(1, len(bounds) - 1):  # a boundary after word b-1; prefer one that ends a clause
        b = bounds[j]
        for cand in (b, b - 1, b + 1):
            if bounds[j - 1] < cand < bounds[j + 1] and ends_clause[cand - 1]:
                bounds[j] = cand
                break
    out = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        if b > a:
            cs, ce = words[a].char_start, words[b - 1].char_end
            out.append(Unit(text[cs:ce], cs, ce))
    return out


def _without(text: str, u: Unit, lang: str) -> str:
    joiner = "" if lang == "zh" else " "
    return re.sub(r"\s+", " ", (text[:u.char_start].rstrip() + joiner + text[u.char_end:].lstrip())).strip()


def occlusion(head, encoder, text: str, lang: str, max_units: int = 5):
    """The head's probs and logits for ``text`` and, per unit, (unit, drop, effect) — see the module docstring."""
    units = split_units(text, lang, max_units)
    n = len(units)
    variants = [text] + [_without(text, u, lang) or " " for u in units] + [u.text for u in units]
    emb = encoder.encode(variants)
    probs, z = head.predict(emb, lang)
    k = int(probs[0].argmax())
    lo = _polarity_log_odds(np.log(probs))
    lo_empty = _polarity_log_odds(np.log(head.probs(head.prior_logits(lang), lang)))[0]
    scored = []
    for i, u in enumerate(units):
        contribution = 0.5 * ((lo[0] - lo[1 + i]) + (lo[1 + n + i] - lo_empty))
        scored.append((u, float(probs[0, k] - probs[1 + i, k]), float(np.tanh(contribution / 2))))
    return probs[0], z[0], scored


def _polarity_log_odds(logp: np.ndarray) -> np.ndarray:
    """log P(WPOS or SPOS) - log P(SNEG or WNEG) per row of log-probabilities."""
    return np.logaddexp(logp[:, 3], logp[:, 4]) - np.logaddexp(logp[:, 0], logp[:, 1])
