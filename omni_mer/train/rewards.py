"""Verifiable rewards for GRPO, in TRL's reward-function signature ``(completions, **columns) -> list[float|None]``.

Columns (one value per completion, repeated across a prompt's G generations, as TRL passes them):
``label`` (gold label), ``language`` ("en"/"zh"), ``evidence`` (Evidence, its dict or its JSON; None = unknown),
``keep`` (modalities the prompt showed) and ``cues_shown`` (the prompt listed the cue tags) for grounding.
``None`` in a returned list means "not applicable to this completion" (TRL semantics); it is skipped when the
rewards are combined. A reward function that raises is never swallowed: ``combine_rewards`` re-raises naming it.
"""

from __future__ import annotations

import json
import math
import re
from typing import Callable, Sequence

from omni_mer.core.config import MODALITIES
from omni_mer.evidence.types import Evidence
from omni_mer.core.answer import parse_answer, rationale_text, split_answer, think_text
from omni_mer.core.i18n import language_code
from omni_mer.core.labels import LABEL_INDEX, LABELS, label_from_text

RewardFn = Callable[..., list]

_CJK_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_RE = re.compile(r"[A-Za-z]")
_SENTENCE_RE = re.compile(r"[^.!?;。！？；\n]+")

# Words that claim something about a modality; a claim about an absent modality is penalised unless negated.
MODALITY_WORDS = {
    "visual": ("face", "facial", "smil", "frown", "expression", "eyebrow", "brow", "grin", "scowl",
               "面部", "表情", "微笑", "皱眉", "笑容", "脸", "眉"),
    "audio": ("voice", "vocal", "tone", "pitch", "loud", "prosod", "intonation", "shout", "whisper",
              "语气", "声音", "语调", "音调", "音量", "嗓音", "语音"),
}
NEGATIONS = ("no ", "not ", "none", "without", "absent", "missing", "n't", "没有", "未", "无", "不")


def completion_text(completion) -> str:
    """The text of a completion given as a string or as TRL's conversational ``[{"role", "content"}]``."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return str(completion.get("content", ""))
    if isinstance(completion, (list, tuple)):
        return "".join(completion_text(c) for c in completion)
    raise TypeError(f"completion must be a string or a list of messages, got {type(completion).__name__}")


def _column(columns: dict, name: str, n: int, reward: str) -> list:
    if name not in columns:
        raise KeyError(f"reward {reward!r} needs the column {name!r}; given columns: {sorted(columns)}")
    values = list(columns[name])
    if len(values) != n:
        raise ValueError(f"reward {reward!r}: column {name!r} has {len(values)} values for {n} completions")
    return values


def format_reward(completions: Sequence, **columns) -> list[float]:
    """1.0 for exactly one ``<think>…</think>`` followed by exactly one ``<answer>LABEL</answer>`` and nothing else,
    where LABEL is one of the five labels (code or name); else 0.0."""
    out = []
    for c in completions:
        text = completion_text(c)
        parts = split_answer(text)
        out.append(1.0 if parts and parts[0].strip() and label_from_text(parts[1]) else 0.0)
    return out


def accuracy_reward(completions: Sequence, label: Sequence[str] | None = None, ordinal: bool = False,
                    **columns) -> list[float | None]:
    """1.0 when the answer equals the gold ``label``, else 0.0 (no/invalid answer = 0.0).

    With ``ordinal`` a near miss earns partial credit: 1 - d/2 for a class-index distance d (0.5 one class off,
    0 two or more off). A completion whose gold label is None gets None (not scored)."""
    labels = _column({"label": label} if label is not None else columns, "label", len(completions), "accuracy")
    out: list[float | None] = []
    for c, gold in zip(completions, labels):
        if gold is None:
            out.append(None)
            continue
        if gold not in LABEL_INDEX:
            raise ValueError(f"gold label {gold!r} is not one of {', '.join(LABELS)}")
        pred = parse_answer(completion_text(c))
        if pred is None:
            out.append(0.0)
        elif not ordinal:
            out.append(1.0 if pred == gold else 0.0)
        else:
            d = abs(LABEL_INDEX[pred] - LABEL_INDEX[gold])
            out.append(max(0.0, 1.0 - d / 2.0))
    return out


def accuracy_ordinal_reward(completions: Sequence, **columns) -> list[float | None]:
    """``accuracy`` with ordinal partial credit (see accuracy_reward)."""
    return accuracy_reward(completions, ordinal=True, **columns)


def _as_evidence(ev) -> Evidence | None:
    if ev is None or isinstance(ev, Evidence):
        return ev
    if isinstance(ev, str):  # a dataset column (TRL passes datasets' columns; JSON keeps them flat)
        ev = json.loads(ev)
    if isinstance(ev, dict):
        return Evidence.from_dict(ev)
    raise TypeError(f"evidence must be an Evidence, its dict or its JSON, got {type(ev).__name__}")


def _as_keep(keep) -> frozenset[str]:
    if keep is None:
        return frozenset(MODALITIES)
    if isinstance(keep, str):
        keep = [k for k in keep.replace(",", " ").split() if k]
    bad = set(keep) - set(MODALITIES)
    if bad:
        raise ValueError(f"keep {sorted(bad)} is not a subset of {', '.join(MODALITIES)}")
    return frozenset(keep)


def absent_modality_claims(think: str, evidence: Evidence, keep: frozenset[str] = frozenset(MODALITIES)) -> list[str]:
    """Sentences of ``think`` that describe a modality the prompt did not show (not kept, or reported absent):
    un-negated claims only."""
    claims = []
    for modality, words in MODALITY_WORDS.items():
        if modality in keep and evidence.modality(modality).present:
            continue
        for sentence in _SENTENCE_RE.findall(think):
            low = sentence.lower()
            if any(w in low for w in words) and not any(n in low for n in NEGATIONS):
                claims.append(sentence.strip())
    return claims


def _norm(s: str) -> str:
    return " ".join(s.split()).casefold()


def grounding_details(think: str, evidence: Evidence, keep: frozenset[str], cues_shown: bool) -> dict:
    """Which citations of ``think`` are grounded in what the prompt showed.

    A quoted span (“…” / 「…」) is grounded when the transcript was shown (``text`` kept) and holds it verbatim
    (whitespace and case normalised). A cue tag (``[voice · pitch · 1.2–2.0 s]``, omni_mer.llm.prompt) is grounded
    when ``cues_shown`` and a shown cue has its modality and kind and overlaps its time span. Nothing else counts:
    a citation is never compared with formatted cue strings the model did not see.
    """
    from omni_mer.explain.rationale import citations
    from omni_mer.llm.prompt import cites_shown_cue, cue_citations, shown_cues

    transcript = _norm(evidence.transcript or "") if "text" in keep and evidence.text.present else ""
    quotes = [q for q in citations(think) if q.strip()]
    tags = cue_citations(think)
    shown = shown_cues(evidence, keep) if cues_shown else []
    good_quotes = [q for q in quotes if transcript and _norm(q) in transcript]
    good_tags = [t for t in tags if cites_shown_cue(t, shown)]
    return {"n_citations": len(quotes) + len(tags), "n_grounded": len(good_quotes) + len(good_tags),
            "ungrounded_quotes": [q for q in quotes if q not in good_quotes],
            "ungrounded_tags": [t for t in tags if t not in good_tags],
            "absent_claims": absent_modality_claims(think, evidence, keep)}


def grounding_reward(completions: Sequence, evidence: Sequence | None = None, keep: Sequence | None = None,
                     cues_shown: Sequence | None = None, **columns) -> list[float | None]:
    """Does the rationale cite only what its prompt showed, and claim nothing about modalities it did not? In [-1, 1].

    score = (grounded citations - ungrounded citations) / all citations (0 when nothing is cited; see
    grounding_details), minus 0.5 per un-negated claim about a modality the prompt did not show. Columns:
    ``evidence`` (required; None = not scored), ``keep`` (the modalities in the prompt; default all) and
    ``cues_shown`` (the prompt listed the voice/face cues with their tags, as the llm prompt does; default True).
    """
    n = len(completions)
    evs = _column({"evidence": evidence} if evidence is not None else columns, "evidence", n, "grounding")
    keeps = _column({"keep": keep}, "keep", n, "grounding") if keep is not None else [None] * n
    shown = _column({"cues_shown": cues_shown}, "cues_shown", n, "grounding") if cues_shown is not None else [True] * n
    out: list[float | None] = []
    for c, ev, kp, cs in zip(completions, evs, keeps, shown):
        ev = _as_evidence(ev)
        if ev is None:
            out.append(None)
            continue
        think = think_text(completion_text(c))
        if not think:
            out.append(0.0)
            continue
        d = grounding_details(think, ev, _as_keep(kp), bool(cs))
        k = d["n_citations"]
        score = (2 * d["n_grounded"] - k) / k if k else 0.0
        score -= 0.5 * len(d["absent_claims"])
        out.append(float(min(1.0, max(-1.0, score))))
    return out


def chinese_ratio(text: str) -> float:
    """Share of CJK characters among CJK + Latin letters (0.5 when there are none)."""
    cjk, latin = len(_CJK_RE.findall(text)), len(_LATIN_RE.findall(text))
    return 0.5 if cjk + latin == 0 else cjk / (cjk + latin)


def language_reward(completions: Sequence, language: Sequence[str] | None = None, **columns) -> list[float | None]:
    """Is the rationale written in the clip's language? Share of its letters in that script (0 for no rationale).

    zh: CJK characters / (CJK + Latin letters); en: the complement. Label codes inside <answer> are not counted; a
    completion without <think> tags is read whole (format is the format reward's job), so even an untrained model
    gets a graded signal."""
    langs = _column({"language": language} if language is not None else columns, "language", len(completions),
                    "language")
    out: list[float | None] = []
    for c, lang in zip(completions, langs):
        if lang is None:
            out.append(None)
            continue
        think = rationale_text(completion_text(c))
        if not think or not (_CJK_RE.search(think) or _LATIN_RE.search(think)):
            out.append(0.0)
            continue
        r = chinese_ratio(think)
        out.append(float(r if language_code(lang) == "zh" else 1.0 - r))
    return out


REWARDS: dict[str, RewardFn] = {
    "format": format_reward,
    "accuracy": accuracy_reward,
    "accuracy_ordinal": accuracy_ordinal_reward,
    "grounding": grounding_reward,
    "language": language_reward,
}


def get_reward(name: str) -> RewardFn:
    """The reward function registered as ``name``; ValueError listing the valid names otherwise."""
    try:
        return REWARDS[name]
    except KeyError:
        raise ValueError(f"unknown reward {name!r}; valid rewards: {', '.join(REWARDS)}") from None


def combine_rewards(names: Sequence[str], weights: Sequence[float] | None, completions: Sequence,
                    **columns) -> tuple[list[float], dict[str, list[float | None]]]:
    """Weighted sum of the named rewards per completion (None entries skipped) and each reward's raw values.

    Raises (never swallows) when a reward fails, returns the wrong number of values, or a non-finite value; the
    error names the reward."""
    weights = list(weights) if weights is not None else [1.0] * len(names)
    if len(weights) != len(names):
        raise ValueError(f"{len(names)} rewards {list(names)} but {len(weights)} weights {weights}")
    n = len(completions)
    total = [0.0] * n
    per: dict[str, list[float | None]] = {}
    for name, w in zip(names, weights):
        fn = get_reward(name)
        try:
            values = fn(completions, **columns)
        except Exception as exc:
            raise RuntimeError(f"reward {name!r} failed: {exc}") from exc
        if len(values) != n:
            raise ValueError(f"reward {name!r} returned {len(values)} values for {n} completions")
        for i, v in enumerate(values):
            if v is None:
                continue
            if not math.isfinite(float(v)):
                raise ValueError(f"reward {name!r} returned a non-finite value {v!r} for completion {i}")
            total[i] += w * float(v)
        per[name] = list(values)
    return total, per
