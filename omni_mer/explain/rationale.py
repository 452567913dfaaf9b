"""Rationales in the omni model's output format, rendered from cues + Shapley values, and their checker.

Citation convention (shared by the rendered rationales, the SFT targets built from them and the checker):
every cue is quoted verbatim between “…” (English) or 「…」 (Chinese); the transcript snippet is quoted the
same way. Those delimiters are used for nothing else, so a checker can extract every citation and verify it
against the evidence.
"""

from __future__ import annotations

import re

from omni_mer.core.config import MODALITIES
from omni_mer.evidence.types import Cue, Evidence
from omni_mer.core.answer import format_answer, parse_answer, split_answer
from omni_mer.core.i18n import MODALITY_NAMES, language_code
from omni_mer.core.labels import LABEL_NAMES, LABEL_VALENCE

# Both quote styles are accepted in both languages; whichever does not clash with the cue text is used.
_QUOTES = {"en": (("“", "”"), ("「", "」")), "zh": (("「", "」"), ("“", "”"))}
_CITATION_RE = re.compile(r"“([^“”]*)”|「([^「」]*)」")
_LEAN_THRESHOLD = 0.15  # |valence| below this reads as neutral
_CONFLICT_THRESHOLD = 0.15  # both sides must lean at least this far for a conflict
_SNIPPET_CHARS = 140
_TOP_CUES = {"text": 3, "audio": 2, "visual": 2}

def quote(text: str, language: str) -> str:
    """Quote ``text`` verbatim with the language's citation marks (the other style if they clash)."""
    for left, right in _QUOTES[language_code(language)]:
        if left not in text and right not in text:
            return f"{left}{text}{right}"
    # Both styles occur inside the text: drop nothing, but this citation cannot be extracted exactly.
    left, right = _QUOTES[language_code(language)][0]
    return f"{left}{text}{right}"


def _lean(valence: float, lang: str) -> str:
    if valence >= _LEAN_THRESHOLD:
        return "positive" if lang == "en" else "积极"
    if valence <= -_LEAN_THRESHOLD:
        return "negative" if lang == "en" else "消极"
    return "neutral" if lang == "en" else "中性"


def _sign(x: float) -> int:
    return 1 if x >= _LEAN_THRESHOLD else (-1 if x <= -_LEAN_THRESHOLD else 0)


def top_cues(evidence: Evidence, modality: str, k: int) -> list[Cue]:
    """The ``k`` cues of a modality with the largest |effect| (ties keep evidence order)."""
    cues = [c for c in evidence.modality(modality).cues if c.text.strip()]
    return sorted(cues, key=lambda c: -abs(c.effect))[:k]


def _fmt_time(c: Cue, lang: str) -> str:
    if lang == "zh":
        return f"{c.start:.1f}–{c.end:.1f}秒"
    return f"{c.start:.1f}–{c.end:.1f} s"


def _cite(c: Cue, lang: str) -> str:
    if any(ch.isdigit() for ch in c.text):  # the cue text already carries its numbers (time, score)
        return quote(c.text, lang)
    return f"{quote(c.text, lang)} ({_fmt_time(c, lang)}, {c.effect:+.2f})" if lang == "en" else (
        f"{quote(c.text, lang)}（{_fmt_time(c, lang)}，{c.effect:+.2f}）"
    )


def _snippet(transcript: str) -> tuple[str, bool]:
    t = " ".join(transcript.split())
    if len(t) <= _SNIPPET_CHARS:
        return t, False
    cut = t[:_SNIPPET_CHARS]
    if " " in cut[_SNIPPET_CHARS // 2:]:  # cut at a word boundary for spaced languages
        cut = cut[: cut.rfind(" ")]
    return cut, True


def _said(evidence: Evidence, lang: str) -> str:
    m = evidence.text
    if not m.present:
        reason = f" ({m.reason})" if m.reason else ""
        return (f"What was said: no usable speech was found{reason}, so the words give no cue."
                if lang == "en" else f"说了什么：没有可用的语音内容{reason}，因此文字不提供线索。")
    parts = []
    snippet, cut = _snippet(evidence.transcript)
    ell = "…" if cut else ""
    if snippet:
        end = "" if (snippet[-1] in ".!?。！？" and not cut) else ("." if lang == "en" else "。")
        parts.append(f"What was said: {quote(snippet, lang)}{ell}{end}" if lang == "en"
                     else f"说了什么：{quote(snippet, lang)}{ell}{end}")
    else:
        parts.append("What was said:" if lang == "en" else "说了什么：")
    cues = top_cues(evidence, "text", _TOP_CUES["text"])
    if cues:
        cites = ", ".join(_cite(c, lang) for c in cues) if lang == "en" else "、".join(_cite(c, lang) for c in cues)
        parts.append(f"Key words: {cites}." if lang == "en" else f"关键词：{cites}。")
    parts.append(f"The words lean {_lean(m.valence, lang)} (valence {m.valence:+.2f})." if lang == "en"
                 else f"文字倾向{_lean(m.valence, lang)}（效价 {m.valence:+.2f}）。")
    return " ".join(parts) if lang == "en" else "".join(parts)


def _modality_sentence(evidence: Evidence, modality: str, lang: str) -> str:
    m = evidence.modality(modality)
    head = {
        "en": {"audio": "How it was said", "visual": "What the face did"},
        "zh": {"audio": "怎么说的", "visual": "面部表情"},
    }[lang][modality]
    if not m.present:
        reason = f" ({m.reason})" if m.reason else ""
        if lang == "en":
            what = "no face was visible" if modality == "visual" else "no usable voice was found"
            kind = "facial" if modality == "visual" else "vocal"
            return f"{head}: {what}{reason}, so there are no {kind} cues."
        what = "未检测到人脸" if modality == "visual" else "没有可用的语音"
        kind = "面部" if modality == "visual" else "语音"
        return f"{head}：{what}{reason}，因此没有{kind}线索。"
    cues = top_cues(evidence, modality, _TOP_CUES[modality])
    lean = _lean(m.valence, lang)
    if lang == "en":
        cites = (", ".join(_cite(c, lang) for c in cues) + "; ") if cues else ""
        return f"{head}: {cites}overall the {MODALITY_NAMES[lang][modality]} leans {lean} (valence {m.valence:+.2f})."
    cites = ("、".join(_cite(c, lang) for c in cues) + "；") if cues else ""
    return f"{head}：{cites}{MODALITY_NAMES[lang][modality]}整体倾向{lean}（效价 {m.valence:+.2f}）。"


def _mattered(evidence: Evidence, shapley: dict | None, label: str, lang: str) -> str:
    present = [m for m in MODALITIES if evidence.modality(m).present]
    if not present:
        return ("Which mattered most: no modality carried evidence, so the answer falls back to the prior."
                if lang == "en" else "哪个模态最重要：没有任何模态提供证据，答案采用先验。")
    names = LABEL_NAMES[lang][label]
    if shapley is not None:
        # "Mattered most" = moved the label's probability the most, in either direction (signs are listed).
        ranked = sorted(present, key=lambda m: -abs(float(shapley.get(m, 0.0))))
        if lang == "en":
            vals = ", ".join(f"{m} {float(shapley.get(m, 0.0)):+.3f}" for m in ranked)
            return (f"Which mattered most: the {MODALITY_NAMES[lang][ranked[0]]} (Shapley contribution to the "
                    f"probability of {names}: {vals}).")
        vals = "，".join(f"{MODALITY_NAMES[lang][m]} {float(shapley.get(m, 0.0)):+.3f}" for m in ranked)
        return f"哪个模态最重要：{MODALITY_NAMES[lang][ranked[0]]}（对{names}概率的Shapley贡献：{vals}）。"
    # No attribution (e.g. SFT targets built with the gold label): rank by the evidence strength instead.
    ranked = sorted(present, key=lambda m: -abs(evidence.modality(m).valence) * max(evidence.modality(m).confidence, 1e-3))
    if lang == "en":
        return f"Which mattered most: the {MODALITY_NAMES[lang][ranked[0]]} carries the strongest evidence."
    return f"哪个模态最重要：{MODALITY_NAMES[lang][ranked[0]]}提供的证据最强。"


def conflicts(evidence: Evidence) -> list[tuple[str, str]]:
    """Pairs of present modalities whose valences lean in opposite directions."""
    present = [m for m in MODALITIES if evidence.modality(m).present]
    out = []
    for i, a in enumerate(present):
        for b in present[i + 1:]:
            if _sign(evidence.modality(a).valence) * _sign(evidence.modality(b).valence) < 0:
                out.append((a, b))
    return out


def _join(names: list[str], lang: str) -> str:
    if lang == "zh":
        return "和".join(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _conflict(evidence: Evidence, label: str, lang: str) -> str:
    if not conflicts(evidence):
        return ""
    present = [m for m in MODALITIES if evidence.modality(m).present]
    pos = [MODALITY_NAMES[lang][m] for m in present if _sign(evidence.modality(m).valence) > 0]
    neg = [MODALITY_NAMES[lang][m] for m in present if _sign(evidence.modality(m).valence) < 0]
    lv = LABEL_VALENCE[label]
    names = LABEL_NAMES[lang][label]
    if lang == "en":
        s = (f"Conflict: the {_join(pos, lang)} {'leans' if len(pos) == 1 else 'lean'} positive while the "
             f"{_join(neg, lang)} {'leans' if len(neg) == 1 else 'lean'} negative; ")
        if lv > 0:
            return s + f"the answer ({names}) sides with the {_join(pos, lang)}."
        if lv < 0:
            return s + f"the answer ({names}) sides with the {_join(neg, lang)}."
        return s + "they roughly cancel out, so the answer is neutral."
    s = f"冲突：{_join(pos, lang)}倾向积极，而{_join(neg, lang)}倾向消极；"
    if lv > 0:
        return s + f"答案（{names}）与{_join(pos, lang)}一致。"
    if lv < 0:
        return s + f"答案（{names}）与{_join(neg, lang)}一致。"
    return s + "两者大致抵消，因此答案为中性。"


def render_rationale(evidence: Evidence, shapley: dict | None, label: str, language: str) -> str:
    """A readable ``<think>…</think><answer>label</answer>`` from the evidence (and Shapley values when given).

    Covers what was said, how it was said, what the face did, which modality mattered most, conflicts and
    absent modalities; every cue is quoted verbatim (see module docstring). Works with ``shapley=None`` so
    training can render targets for the gold label.
    """
    lang = language_code(language)
    parts = [
        _said(evidence, lang),
        _modality_sentence(evidence, "audio", lang),
        _modality_sentence(evidence, "visual", lang),
        _mattered(evidence, shapley, label, lang),
        _conflict(evidence, label, lang),
    ]
    names = LABEL_NAMES[lang][label]
    parts.append(f"Overall the clip is {names}." if lang == "en" else f"综合判断：{names}。")
    body = ("\n" if lang == "en" else "\n").join(p for p in parts if p)
    return format_answer(body, label)


def citations(rationale: str) -> list[str]:
    """Every span the rationale quotes with the citation marks “…” or 「…」."""
    return [a or b for a, b in _CITATION_RE.findall(rationale or "")]


def _norm(s: str) -> str:
    return " ".join(s.split()).casefold()


def check_rationale(rationale: str | None, evidence: Evidence, label: str) -> dict:
    """Check a rendered or generated rationale: the answer equals ``label`` and every citation exists.

    A citation exists when it is the text of a cue of a present modality, or a verbatim part of the
    transcript (whitespace and case are normalised). Returns {answer_matches, cited_cues_exist, details}.
    """
    answer = parse_answer(rationale)
    well_formed = split_answer(rationale) is not None
    present = evidence.present
    cue_texts = {_norm(c.text): c.modality for c in evidence.cues if c.text.strip()}
    transcript = _norm(evidence.transcript or "")
    cited = citations(rationale or "")
    missing, absent_modality = [], []
    n_cue = n_transcript = 0
    for c in cited:
        key = _norm(c)
        if key in cue_texts:
            if cue_texts[key] not in present:
                absent_modality.append(c)  # cites a cue of a modality reported absent
            n_cue += 1
        elif key and key in transcript:
            n_transcript += 1
        else:
            missing.append(c)
    details = {
        "answer": answer,
        "label": label,
        "well_formed": well_formed,
        "n_citations": len(cited),
        "n_cue_citations": n_cue,
        "n_transcript_citations": n_transcript,
        "missing": missing,
        "absent_modality_citations": absent_modality,
    }
    return {
        "answer_matches": answer == label,
        "cited_cues_exist": not missing and not absent_modality,
        "details": details,
    }
