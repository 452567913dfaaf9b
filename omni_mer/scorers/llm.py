"""The llm scorer: a text-only Qwen2.5 causal LM (+ LoRA) behind the Scorer interface (``--backend llm``).

The prompt (omni_mer.llm.prompt) holds the transcript and the timed voice/face cues as text, only for the modalities
in ``keep``. Label scoring is the omni scorer's method: the assistant turn is teacher-forced as
``<think>{score_think}</think><answer>`` and each label's probability is the softmax over the five labels of the
summed log-probabilities of its tokens. Qwen's BPE merges ``>`` with the following letters, so the tail
``<think>…</think><answer>LABEL`` is tokenised whole per label; the shared token prefix runs once and only the
per-label remainders run as a second forward on its KV cache.

Prefix cache: the system turn and the head of every user turn are the same for every clip and every coalition of
the explanation (8 per clip), so their KV cache is computed once per scorer and reused (copied) by each call.

``generate`` writes ``<think>…</think><answer>…</answer>`` greedily; an invalid answer falls back to label scoring
(``last_results[i].fallback``), as in the omni scorer.
"""

from __future__ import annotations

import copy
import logging
import time

import numpy as np

from omni_mer.core.clip import Clip
from omni_mer.evidence.types import Evidence
from omni_mer.core.answer import parse_answer
from omni_mer.core.labels import LABELS
from omni_mer.llm.prompt import llm_messages
from omni_mer.scorers.base import ALL_MODALITIES, Scorer, check_keep, label_tails, tail_logprobs

log = logging.getLogger(__name__)


def _probe_evidence(language: str) -> Evidence:
    """An evidence with every field filled, to find where prompts of ``language`` start to differ."""
    from omni_mer.evidence.types import Cue, ModalityEvidence

    return Evidence(language=language, transcript="x y z", segments=[], text=ModalityEvidence("text", True),
                    audio=ModalityEvidence("audio", True, cues=[Cue("audio", 0.0, 1.0, "x", 0.0, 0.1, "pitch")]),
                    visual=ModalityEvidence("visual", True, cues=[Cue("visual", 0.0, 1.0, "x", 0.0, 0.1, "x")]))


class LLMScorer(Scorer):
    """Scorer backed by a local text-only Qwen2 causal LM (optionally with a LoRA adapter)."""

    name = "llm"

    def __init__(self, model_path: str | None = None, adapter: str | None = None, max_new_tokens: int = 96,
                 device=None, dtype=None, score_think: str = "", batch_size: int = 4, model=None,
                 tokenizer=None) -> None:
        if model is not None and tokenizer is not None:
            self.model, self.tokenizer = model, tokenizer
        else:
            from omni_mer.llm.model import load_llm

            self.model, self.tokenizer = load_llm(model_path, adapter, device=device, dtype=dtype)
        self.tokenizer.padding_side = "left"
        self.model_path = str(model_path) if model_path else str(getattr(self.model.config, "_name_or_path", ""))
        self.adapter = str(adapter) if adapter else None
        self.max_new_tokens = int(max_new_tokens)
        self.batch_size = max(1, int(batch_size))
        self.score_think = score_think
        self._tails = label_tails(self.tokenizer, score_think)
        self._prefix: dict[str, tuple[list[int], object]] = {}  # language -> (ids, KV cache) of the shared head
        self.last_generation_valid: list[bool] = []
        self.last_results: list = []
        self.timings: dict[str, float] = {}

    # ------------------------------------------------------------------ helpers
    @property
    def device(self):
        return next(self.model.parameters()).device

    def _base(self):
        """The causal LM under any peft wrapper (LoRA layers stay active: peft injects them in place)."""
        return self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model

    def prompt_ids(self, evidence: Evidence | None, keep: frozenset[str], language: str | None = None) -> list[int]:
        """Token ids of the chat prompt (system + user + ``<|im_start|>assistant\\n``)."""
        msgs = llm_messages(evidence, keep, language)
        return list(self.tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True,
                                                       return_dict=True)["input_ids"])

    def _shared_prefix(self, ids: list[int], language: str | None):
        """(length, cache copy) of the cached prompt head of ``language`` when ``ids`` starts with it.

        The head is the token prefix that two very different prompts of that language share (system turn, task,
        labels, format), minus its last token (a BPE merge at the boundary could differ for another clip)."""
        import torch

        from omni_mer.llm.prompt import prompt_language

        lang = prompt_language(language)
        if lang not in self._prefix:
            a = self.prompt_ids(None, frozenset(), lang)
            b = self.prompt_ids(_probe_evidence(lang), ALL_MODALITIES, lang)
            n = 0
            while n < min(len(a), len(b)) and a[n] == b[n]:
                n += 1
            head = a[: max(0, n - 1)]
            cache = None
            if head:
                with torch.inference_mode():
                    cache = self._base().model(input_ids=torch.tensor([head], device=self.device),
                                               use_cache=True).past_key_values
            self._prefix[lang] = (head, cache)
        head, cache = self._prefix[lang]
        if head and len(ids) > len(head) and ids[: len(head)] == head:
            return len(head), copy.deepcopy(cache)
        return 0, None

    # ------------------------------------------------------------------ scoring
    def label_logprobs(self, evidence: Evidence | None, keep: frozenset[str], language: str | None = None) -> np.ndarray:
        """Summed log-probabilities of each label's tokens after the teacher-forced answer prefix (len(LABELS),)."""
        import torch

        keep = check_keep(keep)
        t0 = time.perf_counter()
        shared, rests = self._tails
        ids = self.prompt_ids(evidence, keep, language) + list(shared)
        start, past = self._shared_prefix(ids, language)
        base = self._base()
        with torch.inference_mode():
            x = torch.tensor([ids[start:]], device=self.device)
            out = base.model(input_ids=x, past_key_values=past, use_cache=True)
            scores = tail_logprobs(base.model, base.lm_head, out, rests, self.tokenizer.pad_token_id, len(ids))
        self.timings = {"forward_s": time.perf_counter() - t0, "prompt_tokens": float(len(ids)),
                        "cached_tokens": float(start)}
        return np.asarray(scores, dtype=np.float64)

    def score(self, clip: Clip, evidence: Evidence, keep: frozenset[str]) -> np.ndarray:
        """Probabilities over LABELS (sum 1) using only the modalities in ``keep``."""
        lp = self.label_logprobs(evidence, keep, (evidence.language if evidence else None) or clip.language)
        lp = lp - lp.max()
        p = np.exp(lp)
        return p / p.sum()

    # ------------------------------------------------------------------ generation
    def generate_texts(self, prompts: list[list[int]]) -> list[str]:
        """Greedy completions of token-id prompts, batched with left padding."""
        import torch

        tok = self.tokenizer
        texts: list[str] = []
        for s in range(0, len(prompts), self.batch_size):
            chunk = prompts[s: s + self.batch_size]
            width = max(len(p) for p in chunk)
            ids = torch.full((len(chunk), width), int(tok.pad_token_id), dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for i, p in enumerate(chunk):
                ids[i, width - len(p):] = torch.tensor(p)
                mask[i, width - len(p):] = 1
            with torch.inference_mode():
                out = self.model.generate(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                                          max_new_tokens=self.max_new_tokens, do_sample=False,
                                          pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
            texts += tok.batch_decode(out[:, width:], skip_special_tokens=True)
        return [t.strip() for t in texts]

    def generate_batch(self, clips: list[Clip], evidences: list[Evidence | None],
                       keep: frozenset[str] = ALL_MODALITIES) -> list:
        """Generate ``<think>…</think><answer>…</answer>`` per clip; invalid answers fall back to label scoring."""
        from omni_mer.scorers.omni import GenerationResult

        keep = check_keep(keep)
        t0 = time.perf_counter()
        langs = [(ev.language if ev is not None else None) or c.language for c, ev in zip(clips, evidences)]
        texts = self.generate_texts([self.prompt_ids(ev, keep, lang) for ev, lang in zip(evidences, langs)])
        dt = (time.perf_counter() - t0) / max(1, len(clips))
        results = []
        for clip, ev, text in zip(clips, evidences, texts):
            label = parse_answer(text)
            res = GenerationResult(text=text, label=label or "", valid=label is not None, fallback=False, seconds=dt)
            if label is None:
                probs = self.score(clip, ev, keep)
                res.label, res.fallback, res.probs = LABELS[int(np.argmax(probs))], True, probs
                log.info("%s: generated answer invalid/missing; label from label scoring (%s)", clip.id, res.label)
            results.append(res)
        self.last_results = results
        self.last_generation_valid = [r.valid for r in results]
        return results

    def generate(self, clip: Clip, evidence: Evidence) -> str | None:
        """The generated ``<think>…</think><answer>…</answer>`` text (see ``last_generation_valid``)."""
        return self.generate_batch([clip], [evidence])[0].text

    def version(self) -> str:
        return f"llm:{self.model_path}" + (f"+adapter:{self.adapter}" if self.adapter else "")
