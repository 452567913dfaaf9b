"""Follow-up questions about one analysed clip, answered from its explanation (demo chat).

The lite backend answers deterministically: the question is matched to an intent by English/Chinese keywords
("why not positive?", "what did the voice do?", "what did the face show?", "what was said?", "which modality
mattered most?", "how sure are you?", "why?") and the answer is built from the explanation's cues, Shapley values,
counterfactual labels and probabilities. Every number or quote in an answer comes from the explanation, so an
answer can be checked against explanation.json.

The omni backend (``ModelAnswerer``) hands the same facts plus the question to the scorer (``OmniScorer.reply``) and shows its
reply together with the evidence-based answer (a small or untrained model can write nonsense; the evidence answer
keeps the reply grounded).

Public API:
    ChatContext(explanation: dict, transcript: str = "", evidence: dict | None = None)
    detect_intent(question: str) -> Intent
    answer(question: str, ctx: ChatContext | None, lang: str = "en") -> str
    facts(ctx: ChatContext) -> str                 (plain-text summary handed to a model)
    EvidenceAnswerer / ModelAnswerer(scorer)       (.answer(question, ctx, lang) -> str)
    make_answerer(scorer) -> EvidenceAnswerer | ModelAnswerer
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from omni_mer.core.config import MODALITIES
from omni_mer.core.answer import rationale_text
from omni_mer.core.i18n import MODALITY_NAMES, language_code
from omni_mer.core.labels import LABEL_NAMES, LABEL_VALENCE, LABELS

log = logging.getLogger(__name__)

# Target classes of "why not X?" questions. Longer phrases first so "strongly positive" wins over "positive".
_TARGETS: list[tuple[str, frozenset[str]]] = [
    ("strongly positive", frozenset({"SPOS"})), ("very positive", frozenset({"SPOS"})),
    ("weakly positive", frozenset({"WPOS"})), ("slightly positive", frozenset({"WPOS"})),
    ("strongly negative", frozenset({"SNEG"})), ("very negative", frozenset({"SNEG"})),
    ("weakly negative", frozenset({"WNEG"})), ("slightly negative", frozenset({"WNEG"})),
    ("强烈积极", frozenset({"SPOS"})), ("非常积极", frozenset({"SPOS"})), ("轻微积极", frozenset({"WPOS"})),
    ("强烈消极", frozenset({"SNEG"})), ("非常消极", frozenset({"SNEG"})), ("轻微消极", frozenset({"WNEG"})),
    ("positive", frozenset({"WPOS", "SPOS"})), ("happy", frozenset({"WPOS", "SPOS"})),
    ("good", frozenset({"WPOS", "SPOS"})),
    ("negative", frozenset({"SNEG", "WNEG"})), ("sad", frozenset({"SNEG", "WNEG"})),
    ("angry", frozenset({"SNEG", "WNEG"})), ("bad", frozenset({"SNEG", "WNEG"})),
    ("neutral", frozenset({"NEUT"})),
    ("积极", frozenset({"WPOS", "SPOS"})), ("正面", frozenset({"WPOS", "SPOS"})), ("正向", frozenset({"WPOS", "SPOS"})),
    ("开心", frozenset({"WPOS", "SPOS"})), ("高兴", frozenset({"WPOS", "SPOS"})),
    ("消极", frozenset({"SNEG", "WNEG"})), ("负面", frozenset({"SNEG", "WNEG"})), ("负向", frozenset({"SNEG", "WNEG"})),
    ("难过", frozenset({"SNEG", "WNEG"})), ("生气", frozenset({"SNEG", "WNEG"})),
    ("中性", frozenset({"NEUT"})), ("中立", frozenset({"NEUT"})),
] + [(code.lower(), frozenset({code})) for code in LABELS]

_WHY_NOT = re.compile(
    r"why\s+(?:is\s+it\s+|was\s+it\s+|is\s+this\s+|was\s+this\s+)?not\b|why\s+(?:isn'?t|wasn'?t|not)\b|"
    r"why\s+no\b|为什么不|为何不|怎么不是|为啥不|为什么没有|为什么不是"
)
# Ordered: the first intent with a matching pattern wins.
_INTENT_PATTERNS: list[tuple[str, re.Pattern]] = [
    ("most", re.compile(r"which\s+(?:modality|modalities|signal|channel|part|one)|mattered|matter\s+most|most\s+"
                        r"(?:important|influential)|importan|contribut|shapley|weigh|哪个模态|哪种模态|哪一个|最重要|"
                        r"贡献|影响最大|作用最大|最关键")),
    ("audio", re.compile(r"voice|tone|audio|prosod|pitch|sound|loud|acoustic|vocal|how\s+(?:(?:was\s+it|it\s+was|did\s+"
                         r"(?:he|she|they|it))\s+)?(?:said|say|speak|spoken|sound)|语音|声音|语调|音调|语气|音量|怎么说|说话的方式")),
    ("visual", re.compile(r"\bface\b|facial|expression|smil|frown|visual|video|\blook|eyes|表情|面部|脸|画面|视觉|"
                          r"视频|笑|皱眉")),
    ("text", re.compile(r"said|\bsay|words?\b|transcript|\btext\b|spoken|speech|content|what\s+did\s+(?:he|she|they|"
                        r"the\s+speaker)\s+talk|说了什么|说的|内容|文字|文本|转录|讲了|说了|原话|台词")),
    ("confidence", re.compile(r"how\s+(?:sure|confident|certain)|confiden|certain|probabilit|likely|chance|确定|置信|"
                              r"概率|把握|可能性|多大")),
    ("why", re.compile(r"\bwhy\b|explain|reason|because|how\s+did\s+you|为什么|为何|原因|理由|依据|解释|怎么判断")),
    ("help", re.compile(r"help|what\s+can\s+(?:i|you)|帮助|能问|可以问")),
]

_TEXT = {
    "en": {
        "no_clip": "Upload a video (or pick a sample) first; then ask about it.",
        "empty": "Ask a question about the analysed clip, for example: “why not positive?”",
        "help": ("You can ask: **why not positive/negative/neutral?**, **what did the voice do?**, "
                 "**what did the face show?**, **what was said?**, **which modality mattered most?**, "
                 "**how sure are you?**, **why this label?**"),
        "fallback": "I can only answer from this clip's evidence.",
    },
    "zh": {
        "no_clip": "请先上传视频（或选择一个示例），然后再提问。",
        "empty": "请就分析过的片段提问，例如：「为什么不是积极？」",
        "help": ("可以这样问：**为什么不是积极/消极/中性？**、**语音表现如何？**、**面部表情如何？**、"
                 "**说了什么？**、**哪个模态最重要？**、**有多确定？**、**为什么是这个标签？**"),
        "fallback": "我只能根据这个片段的证据回答。",
    },
}


@dataclass
class ChatContext:
    """What the chat knows about the analysed clip: Explanation.to_dict(), the transcript, Evidence.to_dict()."""

    explanation: dict
    transcript: str = ""
    evidence: dict | None = None
    extra: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.explanation.get("label", "NEUT")

    def present(self) -> set[str]:
        if "present" in self.explanation:
            return set(self.explanation["present"])
        if self.evidence:
            return {m for m in MODALITIES if self.evidence.get(m, {}).get("present")}
        return set(MODALITIES)

    def modality(self, m: str) -> dict:
        """The evidence dict of one modality ({} when unknown)."""
        return dict((self.evidence or {}).get(m, {}))

    def cues(self, modality: str) -> list[dict]:
        return [c for c in self.explanation.get("cues", []) if c.get("modality") == modality
                and str(c.get("text", "")).strip()]

    def top_cues(self, modality: str, k: int = 3, sign: int = 0) -> list[dict]:
        """Cues of a modality by |effect|; ``sign`` > 0 keeps only positive effects, < 0 only negative ones."""
        cues = self.cues(modality)
        if sign:
            cues = [c for c in cues if float(c.get("effect", 0.0)) * sign > 0]
        return sorted(cues, key=lambda c: -abs(float(c.get("effect", 0.0))))[:k]


@dataclass(frozen=True)
class Intent:
    name: str  # why_not | most | audio | visual | text | confidence | why | help | unknown | empty
    target: frozenset[str] = frozenset()  # labels of a why_not question


def _find_target(q: str) -> frozenset[str]:
    best: tuple[int, frozenset[str]] | None = None
    for phrase, target in _TARGETS:
        # ASCII phrases need word boundaries ("bad" must not match "badge"); CJK phrases do not have them.
        pat = rf"\b{re.escape(phrase)}\b" if phrase.isascii() else re.escape(phrase)
        m = re.search(pat, q)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), target)
    return best[1] if best else frozenset()


def detect_intent(question: str) -> Intent:
    """Map a question (English or Chinese) to an intent."""
    q = " ".join((question or "").lower().split())
    if not q:
        return Intent("empty")
    if _WHY_NOT.search(q):
        target = _find_target(q[_WHY_NOT.search(q).end():]) or _find_target(q)
        if target:
            return Intent("why_not", target)
    for name, pat in _INTENT_PATTERNS:
        if pat.search(q):
            return Intent(name)
    return Intent("unknown")


# ---------------------------------------------------------------------------------------------- formatting


def label_name(label: str, lang: str) -> str:
    return f"{label} ({LABEL_NAMES[language_code(lang)].get(label, label)})"


def _group_name(target: frozenset[str], lang: str) -> str:
    names = {
        frozenset({"WPOS", "SPOS"}): {"en": "positive", "zh": "积极"},
        frozenset({"SNEG", "WNEG"}): {"en": "negative", "zh": "消极"},
    }
    if target in names:
        return names[target][language_code(lang)]
    return " / ".join(label_name(t, lang) for t in LABELS if t in target)


def _q(text: str, lang: str) -> str:
    return f"“{text}”" if lang == "en" else f"「{text}」"


def _cue(c: dict, lang: str) -> str:
    span = f"{float(c.get('start', 0)):.1f}–{float(c.get('end', 0)):.1f}"
    span = f"{span} s" if lang == "en" else f"{span}秒"
    if lang == "en":
        return f"{_q(str(c.get('text', '')).strip(), lang)} ({span}, {float(c.get('effect', 0.0)):+.2f})"
    return f"{_q(str(c.get('text', '')).strip(), lang)}（{span}，{float(c.get('effect', 0.0)):+.2f}）"


def _join(items: list[str], lang: str) -> str:
    return ("; " if lang == "en" else "；").join(items)


def _absent(ctx: ChatContext, m: str, lang: str) -> str:
    reason = ctx.modality(m).get("reason") or ""
    reason = f" ({reason})" if reason else ""
    if lang == "en":
        what = {"text": "No usable speech was found", "audio": "No usable voice was found",
                "visual": "No face was visible"}[m]
        return f"{what}{reason}, so the {MODALITY_NAMES['en'][m]} gave no evidence for this clip."
    what = {"text": "没有找到可用的语音内容", "audio": "没有可用的语音", "visual": "没有检测到人脸"}[m]
    return f"{what}{reason}，因此{MODALITY_NAMES['zh'][m]}没有为这个片段提供证据。"


def _lean(v: float, lang: str) -> str:
    if v >= 0.15:
        return "positive" if lang == "en" else "积极"
    if v <= -0.15:
        return "negative" if lang == "en" else "消极"
    return "neutral" if lang == "en" else "中性"


def _contribution(ctx: ChatContext, m: str, lang: str) -> str:
    """One sentence: Shapley contribution of a modality and the counterfactual label without it."""
    e = ctx.explanation
    label = ctx.label
    sh = float(e.get("shapley", {}).get(m, 0.0))
    shv = e.get("shapley_valence", {}).get(m)
    cf = e.get("counterfactual", {}).get(m)
    cfp = e.get("counterfactual_probs", {}).get(m)
    if lang == "en":
        s = f"Its Shapley contribution to p({label}) is {sh:+.3f}"
        if shv is not None:
            s += f" (to the expected valence: {float(shv):+.2f})"
        s += "."
        if cf:
            p = f", p({label}) = {float(cfp):.2f}" if cfp is not None else ""
            s += (f" Without the {MODALITY_NAMES['en'][m]} the label would still be {label}{p}." if cf == label
                  else f" Without the {MODALITY_NAMES['en'][m]} the label would change to {label_name(cf, 'en')}{p}.")
        return s
    s = f"它对 p({label}) 的 Shapley 贡献为 {sh:+.3f}"
    if shv is not None:
        s += f"（对期望效价：{float(shv):+.2f}）"
    s += "。"
    if cf:
        p = f"，p({label}) = {float(cfp):.2f}" if cfp is not None else ""
        s += (f"去掉{MODALITY_NAMES['zh'][m]}后标签仍为 {label}{p}。" if cf == label
              else f"去掉{MODALITY_NAMES['zh'][m]}后标签会变为 {label_name(cf, 'zh')}{p}。")
    return s


def _modality_answer(ctx: ChatContext, m: str, lang: str) -> str:
    if m not in ctx.present():
        return _absent(ctx, m, lang)
    key = "en" if lang == "en" else "zh"
    t = _SECTION[key]
    ev = ctx.modality(m)
    cues = ctx.top_cues(m, 3)
    head = t["heads"][m]
    parts = [t["quoted"].format(head, _q(ctx.transcript.strip(), lang)) if m == "text" and ctx.transcript.strip()
             else t["head"].format(head)]
    if cues:
        parts.append(t["words" if m == "text" else "cues"] + _join([_cue(c, lang) for c in cues], lang) + t["end"])
    elif m != "text":
        parts.append(t["no_cue"])
    if "valence" in ev:
        parts.append(t["overall"].format(name=MODALITY_NAMES[key][m],
                                         lean=_lean(float(ev["valence"]), lang), v=float(ev["valence"]),
                                         c=float(ev.get("confidence", 0))))
    parts.append(_contribution(ctx, m, lang))
    return t["sep"].join(parts)


# One modality's section of the chat answer, per language (same structure, the language's own punctuation).
_SECTION = {
    "en": {"heads": {"audio": "How it was said", "visual": "What the face showed", "text": "What was said"},
           "head": "**{}:**", "quoted": "**{}:** {}", "words": "Key words: ", "cues": "Cues: ", "end": ".",
           "no_cue": "No individual cue stood out.",
           "overall": "Overall the {name} leans {lean} (valence {v:+.2f}, confidence {c:.2f}).", "sep": " "},
    "zh": {"heads": {"audio": "怎么说的", "visual": "面部表情", "text": "说了什么"},
           "head": "**{}：**", "quoted": "**{}：**{}", "words": "关键词：", "cues": "线索：", "end": "。",
           "no_cue": "没有特别突出的线索。",
           "overall": "{name}整体倾向{lean}（效价 {v:+.2f}，置信度 {c:.2f}）。", "sep": ""},
}


def _most_answer(ctx: ChatContext, lang: str) -> str:
    e = ctx.explanation
    label = ctx.label
    present = [m for m in MODALITIES if m in ctx.present()]
    if not present:
        return ("No modality carried evidence, so the label is the prior." if lang == "en"
                else "没有任何模态提供证据，因此标签来自先验。")
    sh = {m: float(e.get("shapley", {}).get(m, 0.0)) for m in present}
    ranked = sorted(present, key=lambda m: -sh[m])
    top = ranked[0]
    changes = [m for m in present if e.get("counterfactual", {}).get(m) not in (None, label)]
    if lang == "en":
        vals = ", ".join(f"{MODALITY_NAMES['en'][m]} {sh[m]:+.3f}" for m in ranked)
        s = (f"The **{MODALITY_NAMES['en'][top]}** mattered most. Shapley contributions to p({label}) "
             f"(they sum to {float(e.get('value_all', 0)):.2f} − {float(e.get('value_none', 0)):.2f}): {vals}.")
        if changes:
            s += " Removing the " + " or the ".join(MODALITY_NAMES["en"][m] for m in changes) + " would change the label."
        else:
            s += " Removing any single modality would leave the label unchanged."
        absent = [m for m in MODALITIES if m not in present]
        if absent:
            s += " Absent: " + ", ".join(MODALITY_NAMES["en"][m] for m in absent) + "."
        return s
    vals = "，".join(f"{MODALITY_NAMES['zh'][m]} {sh[m]:+.3f}" for m in ranked)
    s = (f"**{MODALITY_NAMES['zh'][top]}**最重要。对 p({label}) 的 Shapley 贡献"
         f"（总和为 {float(e.get('value_all', 0)):.2f} − {float(e.get('value_none', 0)):.2f}）：{vals}。")
    if changes:
        s += "去掉" + "或".join(MODALITY_NAMES["zh"][m] for m in changes) + "会改变标签。"
    else:
        s += "去掉任何单个模态都不会改变标签。"
    absent = [m for m in MODALITIES if m not in present]
    if absent:
        s += "缺失的模态：" + "、".join(MODALITY_NAMES["zh"][m] for m in absent) + "。"
    return s


def _p(ctx: ChatContext, labels) -> float:
    probs = ctx.explanation.get("probs", {})
    return float(sum(float(probs.get(lab, 0.0)) for lab in labels))


def _why_not_answer(ctx: ChatContext, target: frozenset[str], lang: str) -> str:
    e = ctx.explanation
    label = ctx.label
    tname = _group_name(target, lang)
    p_t, p_l = _p(ctx, target), _p(ctx, [label])
    if label in target:
        head = (f"It is {tname}: the label is {label_name(label, lang)} with p = {p_l:.2f}." if lang == "en"
                else f"它就是{tname}：标签为 {label_name(label, lang)}，p = {p_l:.2f}。")
        return head + (" " if lang == "en" else "") + _most_answer(ctx, lang)
    # Direction from the predicted label towards the target on the valence scale.
    tv = sum(LABEL_VALENCE[t] for t in target) / len(target)
    direction = 1 if tv > LABEL_VALENCE[label] else -1
    present = [m for m in MODALITIES if m in ctx.present()]
    shv = {m: float(e.get("shapley_valence", {}).get(m, 0.0)) for m in present}
    against = sorted([m for m in present if shv[m] * direction < -1e-6], key=lambda m: shv[m] * direction)
    towards = sorted([m for m in present if shv[m] * direction > 1e-6], key=lambda m: -shv[m] * direction)
    cues_against = sorted([c for m in present for c in ctx.top_cues(m, 5, sign=-direction)],
                          key=lambda c: -abs(float(c.get("effect", 0.0))))[:3]
    cf_hits = [m for m in present if e.get("counterfactual", {}).get(m) in target]
    parts: list[str] = []
    if lang == "en":
        parts.append(f"The model gives {tname} p = {p_t:.2f}, against p = {p_l:.2f} for the predicted "
                     f"{label_name(label, lang)}.")
        if against:
            parts.append("Pulling away from " + tname + ": " + ", ".join(
                f"the {MODALITY_NAMES['en'][m]} ({shv[m]:+.2f} expected valence)" for m in against) + ".")
        if towards:
            parts.append("Pulling towards it: " + ", ".join(
                f"the {MODALITY_NAMES['en'][m]} ({shv[m]:+.2f})" for m in towards) + ", but not enough.")
        if cues_against:
            parts.append("Strongest cues against it: " + _join([_cue(c, lang) for c in cues_against], lang) + ".")
        if cf_hits:
            parts.append("Without the " + " or the ".join(MODALITY_NAMES["en"][m] for m in cf_hits) + " the label would be "
                         + ", ".join(label_name(e["counterfactual"][m], lang) for m in cf_hits) + ".")
        else:
            parts.append(f"Removing any single modality would still not give {tname}.")
        return " ".join(parts)
    parts.append(f"模型给{tname}的概率为 {p_t:.2f}，而预测的 {label_name(label, lang)} 为 {p_l:.2f}。")
    if against:
        parts.append(f"把结果拉离{tname}的是：" + "、".join(
            f"{MODALITY_NAMES['zh'][m]}（期望效价 {shv[m]:+.2f}）" for m in against) + "。")
    if towards:
        parts.append("把结果推向它的是：" + "、".join(
            f"{MODALITY_NAMES['zh'][m]}（{shv[m]:+.2f}）" for m in towards) + "，但不够。")
    if cues_against:
        parts.append("最反对它的线索：" + _join([_cue(c, lang) for c in cues_against], lang) + "。")
    if cf_hits:
        parts.append("去掉" + "或".join(MODALITY_NAMES["zh"][m] for m in cf_hits) + "后标签会是 "
                     + "、".join(label_name(e["counterfactual"][m], lang) for m in cf_hits) + "。")
    else:
        parts.append(f"去掉任何单个模态都不会得到{tname}。")
    return "".join(parts)


def _confidence_answer(ctx: ChatContext, lang: str) -> str:
    probs = ctx.explanation.get("probs", {})
    ranked = sorted(LABELS, key=lambda lab: -float(probs.get(lab, 0.0)))
    label = ctx.label
    top, second = ranked[0], ranked[1]
    margin = float(probs.get(top, 0.0)) - float(probs.get(second, 0.0))
    dist = ", ".join(f"{lab} {float(probs.get(lab, 0.0)):.2f}" for lab in LABELS)
    if lang == "en":
        sure = "fairly sure" if margin >= 0.3 else ("somewhat sure" if margin >= 0.1 else "unsure")
        return (f"I am {sure}: p({label}) = {float(probs.get(label, 0.0)):.2f}; the runner-up is "
                f"{label_name(second, lang)} at {float(probs.get(second, 0.0)):.2f} (margin {margin:.2f}). "
                f"All five: {dist}.")
    sure = "比较确定" if margin >= 0.3 else ("有一定把握" if margin >= 0.1 else "不太确定")
    return (f"我{sure}：p({label}) = {float(probs.get(label, 0.0)):.2f}；第二名是 {label_name(second, lang)}，"
            f"{float(probs.get(second, 0.0)):.2f}（差距 {margin:.2f}）。五类概率：{dist}。")


def _why_answer(ctx: ChatContext, lang: str) -> str:
    label = ctx.label
    body = rationale_text(ctx.explanation.get("rationale", ""))
    head = (f"The label is **{label_name(label, lang)}** because:" if lang == "en"
            else f"标签为 **{label_name(label, lang)}**，原因：")
    lines = [f"- {line.strip()}" for line in body.splitlines() if line.strip()]
    if ctx.explanation.get("language") and language_code(ctx.explanation["language"]) != lang:
        note = ("(The rationale is written in the clip's language.)" if lang == "en"
                else "（理由使用片段的语言书写。）")
        lines.append(note)
    return head + "\n" + "\n".join(lines) + "\n\n" + _most_answer(ctx, lang)


def answer(question: str, ctx: ChatContext | None, lang: str = "en") -> str:
    """A deterministic, evidence-grounded answer (markdown) to a follow-up question about the analysed clip."""
    lang = language_code(lang)
    intent = detect_intent(question)
    if intent.name == "empty":
        return _TEXT[lang]["empty"]
    if ctx is None or not ctx.explanation:
        return _TEXT[lang]["no_clip"]
    if intent.name == "why_not":
        return _why_not_answer(ctx, intent.target, lang)
    if intent.name == "most":
        return _most_answer(ctx, lang)
    if intent.name in MODALITIES:
        return _modality_answer(ctx, intent.name, lang)
    if intent.name == "confidence":
        return _confidence_answer(ctx, lang)
    if intent.name == "why":
        return _why_answer(ctx, lang)
    if intent.name == "help":
        return _TEXT[lang]["help"]
    return _TEXT[lang]["fallback"] + " " + _TEXT[lang]["help"]


# ------------------------------------------------------------------------------------------------ answerers


def facts(ctx: ChatContext) -> str:
    """A compact plain-text statement of the explanation, given to a model as the grounding for its reply."""
    e = ctx.explanation
    lines = [f"Predicted label: {ctx.label} ({LABEL_NAMES['en'].get(ctx.label, '')})",
             "Probabilities: " + ", ".join(f"{lab} {float(e.get('probs', {}).get(lab, 0)):.2f}" for lab in LABELS),
             "Present modalities: " + (", ".join(sorted(ctx.present())) or "none")]
    if ctx.transcript.strip():
        lines.append(f"Transcript: {ctx.transcript.strip()}")
    for m in MODALITIES:
        if m not in ctx.present():
            continue
        cues = "; ".join(f"{c['text']} ({float(c['start']):.1f}-{float(c['end']):.1f}s, effect "
                         f"{float(c.get('effect', 0)):+.2f})" for c in ctx.top_cues(m, 3))
        lines.append(f"{m}: Shapley {float(e.get('shapley', {}).get(m, 0)):+.3f}, label without it "
                     f"{e.get('counterfactual', {}).get(m, '?')}; cues: {cues or 'none'}")
    lines.append("Rationale: " + rationale_text(e.get("rationale", "")).replace("\n", " "))
    return "\n".join(lines)


class EvidenceAnswerer:
    """Deterministic answers from the explanation (lite backend, and the omni fallback)."""

    name = "evidence"

    def answer(self, question: str, ctx: ChatContext | None, lang: str = "en") -> str:
        return answer(question, ctx, lang)


class ModelAnswerer(EvidenceAnswerer):
    """Omni backend: the scorer's model answers, given the explanation facts and the question.

    The evidence answer is always shown under the model's reply; any model failure falls back to it alone.
    """

    name = "model"

    def __init__(self, scorer, max_new_tokens: int | None = None) -> None:
        self.scorer = scorer
        # Default: the scorer's own generation budget (a rationale-sized answer).
        self.max_new_tokens = int(max_new_tokens or getattr(scorer, "max_new_tokens", 128))
        self.last_new_tokens = 0  # tokens the model produced for the last answer

    def _generate(self, question: str, ctx: ChatContext, lang: str) -> str:
        reply_lang = "Chinese" if lang == "zh" else "English"
        system = ("You explain a multimodal sentiment prediction. Answer the user's question in "
                  f"{reply_lang}, briefly, using only the facts given.")
        messages = [
            {"role": "system", "content": [{"type": "text", "text": system}]},
            {"role": "user", "content": [{"type": "text", "text": f"Facts:\n{facts(ctx)}\n\nQuestion: {question}"}]},
        ]
        text, self.last_new_tokens = self.scorer.reply(messages, self.max_new_tokens)  # the scorer's inference path
        return text

    def answer(self, question: str, ctx: ChatContext | None, lang: str = "en") -> str:
        grounded = answer(question, ctx, lang)
        intent = detect_intent(question)
        if ctx is None or intent.name in ("empty", "help"):
            return grounded
        try:
            reply = self._generate(question, ctx, language_code(lang))
        except Exception:  # the model is optional here: never lose the evidence answer
            log.exception("model answer failed; using the evidence answer")
            return grounded
        if not reply:
            return grounded
        head = "**Model:** " if language_code(lang) == "en" else "**模型：**"
        tail = "**From the evidence:** " if language_code(lang) == "en" else "**证据：**"
        return f"{head}{reply}\n\n{tail}{grounded}"


def make_answerer(scorer) -> EvidenceAnswerer:
    """ModelAnswerer when the scorer can reply in words (the omni scorer's ``reply``), else EvidenceAnswerer."""
    if getattr(scorer, "name", "") == "omni" and callable(getattr(scorer, "reply", None)):
        return ModelAnswerer(scorer)
    return EvidenceAnswerer()
