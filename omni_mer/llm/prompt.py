"""The text-only LLM's prompt: the transcript and the timed voice/face cues rendered as text, shared by the ``llm``
scorer and training (SFT targets, GRPO prompts, the grounding reward).

The fixed part (task, labels, answer format) comes first and the clip's part (modalities, transcript, cues) last,
so the llm scorer computes the shared head's KV cache once per language and reuses it for every clip and every
coalition of the explanation. Only modalities in ``keep`` are shown. Each shown cue is one line headed by its **tag**
``[voice · pitch · 1.2–2.0 s]`` (Chinese ``[语音 · pitch · 1.2–2.0 秒]``): modality, machine kind and time span, the
three things a citation is matched on (:func:`cue_citations`, used by the grounding reward), so a rationale can be
checked against what its prompt showed, not against formatted strings with numbers the model never saw. Words are
quoted verbatim from the transcript in “…” / 「…」 (omni_mer.explain.rationale's citation marks).

Opt-in (``text_reading``; docs/llm.md §2): with the text kept and read by the trained text head (omni_mer.evidence.
text: the pipeline's default), the prompt also shows that head's reading (its five class probabilities) and the words
it leans on (its occlusion cues, with their signed effect): the text evidence as text, like the voice and face cues
(:func:`text_reading_lines`).

The prompt texts are package data (``omni_mer/prompt_texts/llm_system.txt``, ``llm_user_en.txt``,
``llm_user_zh.txt``), read through omni_mer.omni.prompts.load_prompt like every other prompt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from omni_mer.core.i18n import language_code
from omni_mer.evidence.types import Cue, Evidence, ModalityEvidence
from omni_mer.core.answer import format_answer
from omni_mer.core.labels import LABEL_NAMES, LABEL_VALENCE, LABELS
from omni_mer.omni.prompts import label_list, load_prompt

CUE_MODALITIES = ("audio", "visual")  # the modalities whose cues are listed (text is the transcript itself)
MAX_CUES = {"audio": 4, "visual": 4}
MAX_TEXT_CUES = 3  # the text head's strongest words shown with its reading
MIN_QUOTE_EFFECT = 0.05  # a head word quoted by an SFT target pushes at least this much toward the gold polarity
_NAMES = {
    "en": {"audio": "voice", "visual": "face", "text": "the transcript",
           "audio_info": "voice cues", "visual_info": "face cues", "none": "nothing but this instruction (give your best guess)",
           "sep": "; ", "unit": "s", "transcript": 'Transcript: "{t}"', "no_transcript": "No transcript is given.",
           "cues_head": {"audio": "Voice cues:", "visual": "Face cues:"},
           "reading": "Text model's reading (often right, not always): {p}", "leans": "Words it leans on: {w}",
           "absent": {"audio": "Voice: no usable voice was found{r}.", "visual": "Face: no face was visible{r}."}},
    "zh": {"audio": "语音", "visual": "面部", "text": "转写文本", "audio_info": "语音线索",
           "visual_info": "面部线索", "none": "除本指令外没有任何信息（请给出最可能的判断）",
           "sep": "；", "unit": "秒", "transcript": "转写文本：“{t}”", "no_transcript": "没有提供转写文本。",
           "cues_head": {"audio": "语音线索：", "visual": "面部线索："},
           "reading": "文本模型的判读（多半正确，并非总对）：{p}", "leans": "它依据的词：{w}",
           "absent": {"audio": "语音：没有可用的语音{r}。", "visual": "面部：未检测到人脸{r}。"}},
}
_MODALITY_OF = {"voice": "audio", "face": "visual", "语音": "audio", "面部": "visual"}
_TAG_RE = re.compile(r"\[\s*(voice|face|语音|面部)\s*·\s*([^\]·]+?)\s*·\s*(\d+(?:\.\d+)?)\s*[–\-~]\s*"
                     r"(\d+(?:\.\d+)?)\s*(?:s|秒)\s*\]")
TIME_TOLERANCE_S = 0.05  # rounding of the shown times (one decimal)


def prompt_language(language: str | None) -> str:
    """The prompt language of a clip language (omni_mer.core.i18n.language_code: "en" for anything not known)."""
    return language_code(language)


_lang = prompt_language


def cue_tag(cue: Cue, language: str) -> str:
    """``[voice · pitch · 1.2–2.0 s]``: the tag a cue is shown and cited by."""
    lang = _lang(language)
    w = _NAMES[lang]
    kind = cue.kind or "cue"
    return f"[{w[cue.modality]} · {kind} · {cue.start:.1f}–{cue.end:.1f} {w['unit']}]"


@dataclass(frozen=True)
class CueCitation:
    """A tag found in a rationale: modality ("audio"/"visual"), kind and time span."""

    modality: str
    kind: str
    start: float
    end: float


def cue_citations(text: str) -> list[CueCitation]:
    """Every cue tag in ``text`` (either language's spelling)."""
    out = []
    for m in _TAG_RE.finditer(text or ""):
        a, b = float(m.group(3)), float(m.group(4))
        out.append(CueCitation(_MODALITY_OF[m.group(1)], m.group(2).strip(), min(a, b), max(a, b)))
    return out


def shown_cues(evidence: Evidence, keep: frozenset[str]) -> list[Cue]:
    """The cues the prompt lists: of kept, present voice/face modalities, strongest first, at most MAX_CUES each."""
    out = []
    for m in CUE_MODALITIES:
        ev = evidence.modality(m)
        if m not in keep or not ev.present:
            continue
        cues = sorted((c for c in ev.cues if c.text.strip()), key=lambda c: -abs(c.effect))
        out += cues[:MAX_CUES[m]]
    return out


def cites_shown_cue(citation: CueCitation, cues: list[Cue]) -> bool:
    """A citation is grounded when a shown cue has its modality and kind and overlaps its time span."""
    return any(c.modality == citation.modality and (c.kind or "cue") == citation.kind
               and c.start <= citation.end + TIME_TOLERANCE_S and citation.start <= c.end + TIME_TOLERANCE_S
               for c in cues)


def head_probabilities(text: ModalityEvidence) -> dict[str, float] | None:
    """The trained text head's class probabilities carried by the text evidence (``head_p_<LABEL>`` features), or
    None when the text was not read by the head (the lexicon fallback, a bare transcript)."""
    probs = {lab: text.features.get(f"head_p_{lab}") for lab in LABELS}
    if not text.present or any(v is None for v in probs.values()):
        return None
    return {lab: float(v) for lab, v in probs.items()}


def head_cues(evidence: Evidence) -> list[Cue]:
    """The text head's word/phrase cues the prompt shows: strongest effect first, at most MAX_TEXT_CUES, each a span
    of the transcript (empty when the text head did not read it)."""
    if head_probabilities(evidence.text) is None:
        return []
    shown = " ".join((evidence.transcript or "").split())  # as the prompt shows it
    cues = [c for c in evidence.text.cues if c.text.strip() and " ".join(c.text.split()) in shown]
    return sorted(cues, key=lambda c: -abs(c.effect))[:MAX_TEXT_CUES]


def text_reading_lines(evidence: Evidence | None, keep: frozenset[str], language: str) -> list[str]:
    """The text head's reading (probabilities in label order) and the words it leans on, when the text is kept and
    the head read it; else no lines."""
    if not _transcript_shown(evidence, keep):
        return []
    probs = head_probabilities(evidence.text)
    if probs is None:
        return []
    lang = _lang(language)
    w = _NAMES[lang]
    lines = [w["reading"].format(p=" · ".join(f"{lab} {round(100 * p):d}%" for lab, p in probs.items()))]
    cues = head_cues(evidence)
    if cues:
        paren = "（{:+.2f}）" if lang == "zh" else " ({:+.2f})"
        words = w["sep"].join(_quote(" ".join(c.text.split()), lang) + paren.format(c.effect) for c in cues)
        lines.append(w["leans"].format(w=words))
    return lines


def text_reading_missing(evidence: Evidence | None, keep: frozenset[str]) -> bool:
    """True when the prompt shows a transcript that the trained text head did not read (the lexicon fallback), so a
    prompt meant to carry the reading carries none."""
    return bool(_transcript_shown(evidence, keep)) and head_probabilities(evidence.text) is None


def _transcript_shown(evidence: Evidence | None, keep: frozenset[str]) -> str:
    if evidence is None or "text" not in keep:
        return ""
    return " ".join((evidence.transcript or "").split())


def llm_user_text(evidence: Evidence | None, keep: frozenset[str], language: str | None = None,
                  text_reading: bool = False) -> str:
    """The user turn: the kept modalities, the transcript, the text head's reading (when the evidence has it and
    ``text_reading``), the cue lists (or why a modality is absent), labels."""
    lang = _lang(language or (evidence.language if evidence is not None else None))
    w = _NAMES[lang]
    transcript = _transcript_shown(evidence, keep)
    present, lines = [], text_reading_lines(evidence, keep, lang) if text_reading else []
    if transcript:
        present.append(w["text"])
    for m in CUE_MODALITIES:
        if m not in keep or evidence is None:
            continue
        ev = evidence.modality(m)
        if not ev.present:
            lines.append(w["absent"][m].format(r=f" ({ev.reason})" if ev.reason else ""))
            continue
        present.append(w[f"{m}_info"])
        cues = [c for c in shown_cues(evidence, keep) if c.modality == m]
        lines.append(w["cues_head"][m])
        lines += [f"- {cue_tag(c, lang)} {c.text.strip()}" for c in cues] or ["- " + ("(none)" if lang == "en"
                                                                                    else "（无）")]
    example = f"[{w['audio']} · pitch · 1.2–2.0 {w['unit']}]"
    return load_prompt(f"llm_user_{lang}").format(
        modalities=w["sep"].join(present) if present else w["none"],
        transcript=w["transcript"].format(t=transcript) if transcript else w["no_transcript"],
        cues="\n".join(lines),
        labels=label_list(lang),
        example_tag=example,
    ).rstrip()


def llm_messages(evidence: Evidence | None, keep: frozenset[str], language: str | None = None,
                 text_reading: bool = False) -> list[dict]:
    """Chat messages (plain-string content, the text-only Qwen2.5 chat format) of one clip."""
    return [{"role": "system", "content": load_prompt("llm_system")},
            {"role": "user", "content": llm_user_text(evidence, keep, language, text_reading)}]


def _quote(span: str, lang: str) -> str:
    return f"「{span}」" if lang == "zh" else f"“{span}”"


def _first_clause(transcript: str, lang: str) -> str:
    """A short verbatim span of the transcript to quote: its first clause, at most 8 words / 12 characters."""
    clause = re.split(r"[,.!?;:，。！？；：、…“”「」\"]", transcript)[0].strip() or transcript.strip()
    if lang == "zh":
        return clause[:12]
    return " ".join(clause.split()[:8])


def _target_span(evidence: Evidence, transcript: str, valence: float, lang: str, head_quote: bool) -> str:
    """What the target quotes: with ``head_quote``, the text head's strongest shown word pushing toward the gold
    polarity (by at least MIN_QUOTE_EFFECT, no longer than a first clause, without citation marks); else the
    transcript's first clause."""
    if head_quote and valence:
        for c in head_cues(evidence):
            span = " ".join(c.text.split())
            if (c.effect * valence > 0 and abs(c.effect) >= MIN_QUOTE_EFFECT and _first_clause(span, lang) == span
                    and not re.search(r"[“”「」\"]", span)):
                return span
    return _first_clause(transcript, lang)


def grounded_target(evidence: Evidence, keep: frozenset[str], label: str, language: str | None = None,
                    cue_tags: bool = True, head_quote: bool = False) -> str:
    """The SFT target: a short rationale citing only what the prompt shows, ending in the GOLD ``label``.

    It quotes a verbatim span of the shown transcript (with ``head_quote``, for a prompt that shows the text head's
    reading: the head's strongest shown word toward the gold polarity; else the first clause), cites the shown
    voice/face cues by their tags (strongest first, two each), says so when a kept modality is absent, and names the
    label. ``cue_tags=False`` is for a prompt that lists no cues (the omni model hears and sees the clip itself): a
    present modality is then described by the lean of its evidence, without citing anything the prompt did not show.
    """
    lang = _lang(language or evidence.language)
    w = _NAMES[lang]
    parts = []
    transcript = _transcript_shown(evidence, keep)
    v = LABEL_VALENCE[label]
    lean = ("positive" if v > 0 else "negative" if v < 0 else "neutral") if lang == "en" else (
        "积极" if v > 0 else "消极" if v < 0 else "中性")
    if transcript:
        q = _quote(_target_span(evidence, transcript, v, lang, head_quote), lang)
        parts.append(f"The words {q} read {lean}." if lang == "en" else f"原话{q}听起来{lean}。")
    cues = shown_cues(evidence, keep)
    for m in CUE_MODALITIES:
        if m not in keep:
            continue
        if not evidence.modality(m).present:
            parts.append(f"No {w[m]} cues." if lang == "en" else f"没有{w[m]}线索。")
            continue
        if not cue_tags:
            mv = evidence.modality(m).valence
            ml = ("positive" if mv >= 0.15 else "negative" if mv <= -0.15 else "neutral") if lang == "en" else (
                "积极" if mv >= 0.15 else "消极" if mv <= -0.15 else "中性")
            parts.append(f"The {w[m]} leans {ml}." if lang == "en" else f"{w[m]}倾向{ml}。")
            continue
        tags = [cue_tag(c, lang) for c in cues if c.modality == m][:2]
        if tags:
            parts.append(f"The {w[m]}: {', '.join(tags)}." if lang == "en" else f"{w[m]}：{'、'.join(tags)}。")
    name = LABEL_NAMES[lang][label]
    parts.append(f"Overall: {name}." if lang == "en" else f"综合判断：{name}。")
    return format_answer((" " if lang == "en" else "").join(parts), label)
