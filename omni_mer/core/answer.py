"""THE answer format: ``<think>rationale</think><answer>LABEL</answer>``.

Both scorers write it, training targets use it, the prompts ask for it, the chat, the rewards and the report read
it. Everything that writes or reads the tags does it here.

Public API:
    ANSWER_FORMAT                     the format as the prompts and docs show it
    SCORE_THINK                       the rationale label scoring teacher-forces (empty)
    label_only_answer(label)          -> "<think></think><answer>LABEL</answer>" (what label scoring reads)
    format_answer(rationale, label)   -> "<think>…</think><answer>LABEL</answer>"
    answer_prefix(think)              -> "<think>…</think><answer>" (what a scorer teacher-forces before the label)
    parse_answer(text)                -> the label of the last <answer>, or None
    split_answer(text)                -> (think, answer) of exactly one <think> then one <answer>, or None
    think_text(text)                  -> the inside of the first <think> (to the end when unclosed), or ''
    rationale_text(text)              -> the rationale as plain text: the <think> part, or the text minus <answer>
"""

from __future__ import annotations

import re

from omni_mer.core.labels import LABEL_INDEX, LABELS, label_from_text

ANSWER_FORMAT = "<think>…</think><answer>LABEL</answer>"
# The scorers' label scores read the answer after this rationale: empty, the cheapest condition that is the same for
# every clip. The llm's label-only SFT targets (label_only_answer) train exactly that reading.
SCORE_THINK = ""

_ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.IGNORECASE | re.DOTALL)
_THINK_RE = re.compile(r"<think>(.*?)(?:</think>|$)", re.DOTALL)
_WELL_FORMED_RE = re.compile(r"^\s*<think>(?P<think>.*?)</think>\s*<answer>(?P<answer>.*?)</answer>\s*$", re.DOTALL)
_ANSWER_PART_RE = re.compile(r"<answer>.*?(</answer>|$)", re.DOTALL)


def format_answer(rationale: str, label: str) -> str:
    """The one output format of both scorers and of training targets."""
    if label not in LABEL_INDEX:
        raise ValueError(f"unknown label {label!r}; valid labels are {', '.join(LABELS)}")
    return f"{answer_prefix(rationale.strip())}{label}</answer>"


def label_only_answer(label: str) -> str:
    """The answer label scoring reads, whole: ``<think>{SCORE_THINK}</think><answer>LABEL</answer>``."""
    return format_answer(SCORE_THINK, label)  # SCORE_THINK has no surrounding space for format_answer to strip


def answer_prefix(think: str) -> str:
    """The answer up to the label: ``<think>{think}</think><answer>`` (``think`` as given, not stripped)."""
    return f"<think>{think}</think><answer>"


def parse_answer(text: str | None) -> str | None:
    """The label inside the last ``<answer>…</answer>`` of ``text``, or None when there is no valid one."""
    if not text:
        return None
    matches = _ANSWER_RE.findall(text)
    if not matches:
        return None
    return label_from_text(matches[-1])


def split_answer(text: str | None) -> tuple[str, str] | None:
    """(think, answer) when ``text`` is exactly one ``<think>…</think>`` followed by exactly one
    ``<answer>…</answer>`` and nothing else (white space around them aside); else None."""
    if not text or any(text.count(tag) != 1 for tag in ("<think>", "</think>", "<answer>", "</answer>")):
        return None
    m = _WELL_FORMED_RE.match(text)
    return (m.group("think"), m.group("answer")) if m else None


def think_text(text: str) -> str:
    """The rationale inside the first ``<think>`` (to the end when unclosed); '' when there is none."""
    m = _THINK_RE.search(text or "")
    return m.group(1).strip() if m else ""


def rationale_text(text: str) -> str:
    """The rationale as plain text: the ``<think>`` part, or (no tags) the whole text minus any
    ``<answer>…</answer>``."""
    text = text or ""
    if "<think>" in text:
        return think_text(text)
    return _ANSWER_PART_RE.sub(" ", text).strip()
