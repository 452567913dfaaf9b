"""The label-only share of SFT, for both training paths (the text-only llm, omni_mer.train.llm_data; the omni
model, omni_mer.train.data): a seeded share of the rows target ``<think></think><answer>LABEL</answer>``
(omni_mer.core.answer.label_only_answer), the very sequence label scoring teacher-forces, which rationale targets
alone never train (docs/llm.md §4: rationale-only SFT moved the generated answers 13 points, the label scores none).
"""

from __future__ import annotations

import numpy as np

# At a half or more of label-only targets an empty rationale becomes the likelier first step of greedy generation
# (the prompt is the same for both targets).
MAX_LABEL_ONLY_SHARE = 0.5


def check_label_only_share(share: float, stage: str = "sft") -> None:
    """ConfigError (a ValueError) naming ``share`` unless it is in [0, MAX_LABEL_ONLY_SHARE), and non-zero only for
    the ``sft`` stage (the one check of both recipe parsers)."""
    from omni_mer.core.errors import ConfigError

    if not 0.0 <= share < MAX_LABEL_ONLY_SHARE:
        raise ConfigError(f"label_only_share={share} is not valid: a share in [0, {MAX_LABEL_ONLY_SHARE}) (a half or "
                          "more would make an empty rationale the likelier first step of greedy generation)")
    if share and stage != "sft":
        raise ConfigError(f"label_only_share={share} applies to stage sft only (stage={stage!r})")


def label_only_rows(n: int, share: float, seed: int = 0) -> set[int]:
    """The indices (of ``n`` rows) whose SFT target is the label-only answer: ``round(share * n)`` of them, a seeded
    draw over all rows (not stratified by dataset or label)."""
    check_label_only_share(share)
    k = int(round(share * n))
    return {int(i) for i in np.random.default_rng(seed).permutation(n)[:k]}
