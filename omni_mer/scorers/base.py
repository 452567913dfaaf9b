"""The one interface both scorers implement (docs/architecture.md, "The scorer interface")."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from omni_mer.core.clip import Clip
from omni_mer.core.config import MODALITIES
from omni_mer.evidence.types import Evidence
from omni_mer.core.labels import LABELS

ALL_MODALITIES: frozenset[str] = frozenset(MODALITIES)


def label_tails(tokenizer, think: str) -> tuple[list[int], list[list[int]]]:
    """(shared prefix ids, per-label remainder ids) of ``<think>{think}</think><answer>LABEL`` for teacher-forced
    label scoring. Qwen's BPE merges ``>`` with the following letters, so each label's tail is tokenised whole."""
    from omni_mer.core.answer import answer_prefix

    seqs = [tokenizer(answer_prefix(think) + label, add_special_tokens=False)["input_ids"] for label in LABELS]
    n = 0
    while all(len(s) > n for s in seqs) and len({s[n] for s in seqs}) == 1:
        n += 1
    rests = [s[n:] for s in seqs]
    if any(not r for r in rests):
        raise ValueError("a label's tokens are a prefix of another label's; cannot score labels")
    return seqs[0][:n], rests


def tail_logprobs(inner, lm_head, out, rests: list[list[int]], pad_id: int, prompt_len: int,
                  position_ids=None, attention_mask=None) -> np.ndarray:
    """Each label's summed log-probability of its remainder tokens ``rests`` after a prefill: (batch, len(rests)).

    ``out`` is the inner model's output on the prompts + shared tail (hidden states and KV cache, ``prompt_len``
    positions, every prompt ending at the last one); the remainders of all prompts run as one batched forward on
    that cache. ``attention_mask`` (batch, prompt_len) marks padding inside the prompts; ``position_ids(prompt_len,
    rows, k)`` gives the remainders' positions (rows = batch × len(rests), prompt-major), e.g. after padding or for
    Qwen2.5-Omni's 3-D rope. Only the needed positions get vocabulary logits."""
    import torch

    first = torch.log_softmax(lm_head(out.last_hidden_state[:, -1]).float(), dim=-1)
    batch, n = first.shape[0], len(rests)
    scores = first[:, [r[0] for r in rests]].double().cpu().numpy()
    longest = max(len(r) for r in rests)
    if longest > 1:
        device = out.last_hidden_state.device
        past = out.past_key_values
        k = longest - 1
        past.batch_repeat_interleave(n)  # row b * n + i: prompt b, label i
        cont = torch.full((n, k), int(pad_id), dtype=torch.long)
        for i, r in enumerate(rests):
            if len(r) > 1:
                cont[i, : len(r) - 1] = torch.tensor(r[:-1])
        cont = cont.repeat(batch, 1)
        head = (torch.ones((batch, prompt_len), dtype=torch.long) if attention_mask is None
                else attention_mask.to("cpu", torch.long))
        mask = torch.cat([head.repeat_interleave(n, dim=0), torch.ones((batch * n, k), dtype=torch.long)], dim=1)
        extra = {} if position_ids is None else {"position_ids": position_ids(prompt_len, batch * n, k)}
        out2 = inner(input_ids=cont.to(device), attention_mask=mask.to(device), past_key_values=past,
                     use_cache=False, **extra)
        logp = torch.log_softmax(lm_head(out2.last_hidden_state).float(), dim=-1).view(batch, n, k, -1)
        for i, r in enumerate(rests):
            for j in range(1, len(r)):
                scores[:, i] += logp[:, i, j - 1, r[j]].double().cpu().numpy()
    return scores


def check_keep(keep: frozenset[str]) -> frozenset[str]:
    bad = set(keep) - ALL_MODALITIES
    if bad:
        raise ValueError(f"unknown modalities {sorted(bad)}; valid: {', '.join(MODALITIES)}")
    return frozenset(keep)


class Scorer(ABC):
    """score(clip, evidence, keep) -> probabilities over LABELS using only the modalities in ``keep``."""

    name: str = "base"

    @abstractmethod
    def score(self, clip: Clip, evidence: Evidence, keep: frozenset[str]) -> np.ndarray:
        """Return a float64 array of len(LABELS) summing to 1."""

    def score_coalitions(self, clip: Clip, evidence: Evidence, keeps: Sequence[frozenset[str]]) -> list[np.ndarray]:
        """``score`` for each coalition in ``keeps`` (explanations need all 8); a scorer overrides it to batch."""
        return [self.score(clip, evidence, keep) for keep in keeps]

    def prior(self) -> np.ndarray:
        """The distribution used when nothing is known (also the label of files that fail)."""
        return np.full(len(LABELS), 1.0 / len(LABELS))

    def prior_label(self) -> str:
        return LABELS[int(np.argmax(self.prior()))]

    def generate(self, clip: Clip, evidence: Evidence) -> str | None:
        """A model-written ``<think>…</think><answer>…</answer>``, or None when the scorer cannot write one."""
        return None

    def version(self) -> str:
        return self.name
