"""Training and held-out rows for the text-only LLM, from the real labelled transcripts (../shared/data/text).

Rows come from the text head's corpus reader (omni_mer.texthead.corpus: the datasets' own splits, native
transcripts only). Each row is one transcript as the llm scorer sees a clip with only its text: an Evidence whose
transcript is the row's text (voice and face absent: the corpus has no audio or video), prompted with
``keep = {"text"}`` through omni_mer.llm.prompt, so training and inference build the very same prompt. With
:func:`read_text` (``--text-reading`` of train-llm and eval-llm; off by default) the row's text evidence is what the
pipeline's TextAnalyzer gives a clip (the shipped text head's probabilities and word cues), which the prompt shows.

- SFT rows (TRL conversational "messages"): system + user + the grounded target (omni_mer.llm.prompt.
  grounded_target: a verbatim quote of the shown transcript, the GOLD label), or, for a seeded ``label_only_share``
  of the rows, the label-only answer ``<think></think><answer>LABEL</answer>`` (omni_mer.core.answer.
  label_only_answer): the very sequence the scorer's label scoring teacher-forces, which rationale targets alone
  never train (docs/llm.md: after rationale-only SFT the generated answers gained 13 points, the label scores none).
- GRPO rows (TRL conversational "prompt") with the reward columns ``label``, ``language``, ``evidence`` (JSON),
  ``keep`` and ``cues_shown`` (omni_mer.train.rewards).
- Held-out rows: a FIXED subset of the TEST splits (seeded shuffle per dataset, first N), ids recorded.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from omni_mer.core.answer import label_only_answer
from omni_mer.evidence.types import Evidence, ModalityEvidence
from omni_mer.llm.prompt import grounded_target, llm_messages
from omni_mer.train.label_only import label_only_rows

log = logging.getLogger(__name__)

TEXT_KEEP = frozenset({"text"})
NO_MEDIA = "transcript only (no audio or video in the corpus)"


@dataclass(frozen=True)
class TranscriptRow:
    id: str
    dataset: str
    lang: str
    text: str
    label: str
    # read_text's: the text head's reading (shown by the prompt); None: the bare transcript
    text_evidence: ModalityEvidence | None = field(default=None, compare=False)


def transcript_evidence(text: str, language: str, text_evidence: ModalityEvidence | None = None) -> Evidence:
    """The Evidence of a transcript alone: text present (``text_evidence`` when given: the TextAnalyzer's), voice and
    face absent."""
    return Evidence(language=language, transcript=text, segments=[],
                    text=text_evidence if text_evidence is not None else ModalityEvidence("text", True),
                    audio=ModalityEvidence.absent("audio", NO_MEDIA), visual=ModalityEvidence.absent("visual", NO_MEDIA))


def row_evidence(row: TranscriptRow) -> Evidence:
    """The Evidence the prompt of ``row`` is built from."""
    return transcript_evidence(row.text, row.lang, row.text_evidence)


def read_text(rows: Sequence[TranscriptRow], analyzer=None) -> tuple[list[TranscriptRow], dict]:
    """``rows`` with their text evidence from ``analyzer`` (default: the pipeline's TextAnalyzer with the shipped
    text head, texthead/shipped.py's choice), and which head read them (``{"head", "digest", "seconds_per_row"}``).

    The head was trained on these datasets' train splits: on train rows its reading is more often right than on
    held-out rows (e5 head, 300 rows each: MOSEI 0.633 train / 0.520 valid Acc-5, SIMS v2 0.523 / 0.390;
    docs/llm.md)."""
    import time
    from dataclasses import replace

    from tqdm.auto import tqdm

    if analyzer is None:
        from omni_mer.evidence.text import TextAnalyzer

        analyzer = TextAnalyzer()
    if analyzer.head is None:
        from omni_mer.core.errors import ModelNotFoundError

        raise ModelNotFoundError("text_reading needs the trained text head, but the TextAnalyzer has none (its "
                                 "lexicon fallback has no class probabilities to show)")
    t0 = time.perf_counter()
    out = [replace(r, text_evidence=analyzer.analyze_text(r.text, r.lang))
           for r in tqdm(rows, desc="text head", unit="row", disable=not rows or not log.isEnabledFor(logging.INFO))]
    info = {"head": type(analyzer.head).__name__, "digest": analyzer.head.digest,
            "seconds_per_row": round((time.perf_counter() - t0) / max(len(rows), 1), 3)}
    return out, info


def balanced_order(labels: Sequence[str], order: Sequence[int]) -> list[int]:
    """``order`` (a shuffle of row indices) re-dealt round-robin over the labels (each label's rows in their shuffled
    order, labels in LABELS order), so any prefix holds the classes as evenly as the rows allow."""
    from collections import Counter

    from omni_mer.core.labels import LABEL_INDEX

    seen: Counter = Counter()
    key = {}  # (round, label index): round r holds each class's r-th row in the shuffle
    for i in order:
        key[int(i)] = (seen[labels[i]], LABEL_INDEX[labels[i]])
        seen[labels[i]] += 1
    return sorted(key, key=key.__getitem__)


def class_quotas(counts: dict[str, int], n: int, power: float) -> dict[str, int]:
    """Rows per class among ``n``: class c's share is proportional to ``counts[c] ** (1 - power)`` (0 = the rows' own
    mix, 0.5 = the square root of it, 1 = uniform), capped at the rows it has, the rest shared among the others;
    whole rows by largest remainder, ties to the earlier label in LABELS order."""
    from omni_mer.core.labels import LABEL_INDEX, LABELS

    quota = {c: 0 for c in LABELS}
    active = [c for c in LABELS if counts.get(c, 0) > 0]
    left = min(n, sum(counts.get(c, 0) for c in active))
    while active and left > 0:
        weight = {c: counts[c] ** (1.0 - power) for c in active}
        total = sum(weight.values())
        ideal = {c: left * weight[c] / total for c in active}
        full = [c for c in active if ideal[c] >= counts[c]]
        if full:  # these classes give all they have; share what is left among the others
            for c in full:
                quota[c] = counts[c]
                left -= counts[c]
            active = [c for c in active if c not in full]
            continue
        for c in active:
            quota[c] = int(ideal[c])
        rest = left - sum(quota[c] for c in active)
        # largest remainder first; remainders equal up to float noise tie, and go in LABELS order
        for c in sorted(active, key=lambda c: (-round(ideal[c] - int(ideal[c]), 9), LABEL_INDEX[c]))[:rest]:
            quota[c] += 1
        break
    return quota


def class_balanced_take(labels: Sequence[str], order: Sequence[int], n: int, power: float) -> list[int]:
    """``n`` rows of ``order`` (a shuffle of row indices) with the class shares of ``class_quotas``: each class's
    first rows in the shuffle, dealt round-robin over the classes (``balanced_order``)."""
    from collections import Counter

    quota = class_quotas(Counter(labels[i] for i in order), n, power)
    taken: Counter = Counter()
    picked = []
    for i in order:
        if taken[labels[i]] < quota[labels[i]]:
            taken[labels[i]] += 1
            picked.append(int(i))
    return balanced_order(labels, picked)


def load_rows(data: str | Path, split: str, datasets: Sequence[str], per_dataset: int | None,
              seed: int = 0, class_balance: float = 0.0) -> list[TranscriptRow]:
    """``per_dataset`` rows of each dataset's ``split`` (native transcripts), a seeded shuffle's first N, in
    dataset order; None = all rows. ``class_balance`` > 0 (training rows only, never the held-out subsets): the N
    rows are drawn with class shares proportional to frequency ** (1 - class_balance) within each dataset
    (``class_balanced_take``; 1 = uniform, as far as the rows allow): the strong classes are rare, e.g. 110 SNEG
    and 47 SPOS of the 900 held-out rows."""
    from omni_mer.texthead.corpus import load_corpus, select

    corpus = load_corpus(data, datasets=list(datasets))
    out: list[TranscriptRow] = []
    for name in datasets:
        rows = [e for e in select(corpus, split=split, datasets=[name], translated=False) if e.text.strip()]
        if not rows:
            raise ValueError(f"{data}: no {split} rows for dataset {name!r}")
        order = np.random.default_rng(seed).permutation(len(rows))
        if class_balance > 0:
            take = class_balanced_take([e.label5 for e in rows], order,
                                       len(rows) if per_dataset is None else per_dataset, class_balance)
        else:
            take = order if per_dataset is None else order[:per_dataset]
        out += [TranscriptRow(rows[i].id, name, rows[i].lang, " ".join(rows[i].text.split()), rows[i].label5)
                for i in take]
    return out


def row_prompt(row: TranscriptRow) -> list[dict]:
    return llm_messages(row_evidence(row), TEXT_KEEP, row.lang, text_reading=row.text_evidence is not None)


def sft_records(rows: Sequence[TranscriptRow], label_only_share: float = 0.0, seed: int = 0) -> list[dict]:
    """TRL conversational language-modelling rows; SFTConfig(assistant_only_loss=True) trains the last turn only.

    The same prompt either way: the model tells the two targets apart by its own first step (an empty rationale or
    not), so greedy generation keeps writing rationales while the share stays well below one half. Sampled
    generation (GRPO) does open with an empty rationale at about that share, and GRPO's format, grounding and
    language rewards give those completions 0 (docs/llm.md §4)."""
    short = label_only_rows(len(rows), label_only_share, seed)
    out = []
    for i, r in enumerate(rows):
        target = (label_only_answer(r.label) if i in short else
                  grounded_target(row_evidence(r), TEXT_KEEP, r.label, r.lang,
                                  head_quote=r.text_evidence is not None))
        out.append({"messages": row_prompt(r) + [{"role": "assistant", "content": target}]})
    return out


def grpo_records(rows: Sequence[TranscriptRow]) -> list[dict]:
    """TRL conversational prompt rows with the reward columns."""
    return [{"prompt": row_prompt(r), "label": r.label, "language": r.lang,
             "evidence": json.dumps(row_evidence(r).to_dict(), ensure_ascii=False),
             "keep": ",".join(sorted(TEXT_KEEP)), "cues_shown": True, "id": r.id} for r in rows]


def to_dataset(records: list[dict]):
    """A ``datasets.Dataset`` (what TRL's trainers take)."""
    from datasets import Dataset

    return Dataset.from_list(records)
