"""Word cues from the text head itself, by occlusion: remove a word (or phrase) and measure what the head loses.

For each unit u of the transcript, the transcript without u is embedded and scored by the same head:
  - ``drop`` = p(predicted label | full) - p(predicted label | without u): how much u supports the decision;
  - ``effect`` = valence(full) - valence(without u), in [-1, 1]: the direction u pushes the valence.
Units are words (English) or jieba words (Chinese). A long transcript is cut into at most ``max_units``
contiguous phrases, so the cost stays at ``max_units + 1`` embeddings per clip, computed in one batch.

Public API:
    Unit(text, char_start, char_end)
    split_units(text, lang, max_units) -> list[Unit]
    occlusion(head, encoder, text, lang, max_units=6) -> (probs, logits, list[(Unit, drop, effect)])
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from omni_mer.ordinal import expected_valence

_WORD_EN = re.compile(r"[A-Za-z0-9]+(?:['’][A-Za-z]+)*")
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


def split_units(text: str, lang: str, max_units: int = 6) -> list[Unit]:
    """Words of ``text``, merged into at most ``max_units`` contiguous phrases when there are more."""
    if max_units < 1:
        raise ValueError(f"max_units={max_units} must be >= 1")
    words = _words(text, lang)
    if len(words) <= max_units:
        return words
    bounds = np.linspace(0, len(words), max_units + 1).round().astype(int)
    out = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        if b > a:
            cs, ce = words[a].char_start, words[b - 1].char_end
            out.append(Unit(text[cs:ce], cs, ce))
    return out


def _without(text: str, u: Unit, lang: str) -> str:
    joiner = "" if lang == "zh" else " "
    return re.sub(r"\s+", " ", (text[:u.char_start].rstrip() + joiner + text[u.char_end:].lstrip())).strip()


def occlusion(head, encoder, text: str, lang: str, max_units: int = 6):
    """The head's probs and logits for ``text`` and, per unit, (unit, drop, effect) — see the module docstring."""
    units = split_units(text, lang, max_units) if len(_words(text, lang)) > 1 else []
    variants = [text] + [_without(text, u, lang) or " " for u in units]
    emb = encoder.encode(variants)
    probs, z = head.predict(emb, lang)
    k = int(probs[0].argmax())
    val = expected_valence(probs)
    scored = [(u, float(probs[0, k] - probs[i + 1, k]), float(val[0] - val[i + 1])) for i, u in enumerate(units)]
    return probs[0], z[0], scored
