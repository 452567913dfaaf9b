"""The llm scorer: a text-only Qwen2.5 causal LM (+ LoRA) behind the Scorer interface (``--backend llm``).

The prompt (omni_mer.llm.prompt) holds the transcript, the text head's reading (only for an adapter trained with it)
and the timed voice/face cues as text, only for the modalities in ``keep``. Label scoring is the omni scorer's
method: the assistant turn is teacher-forced as ``<think>{score_think}</think><answer>`` and each label's
probability is the softmax over the five labels of the summed log-probabilities of its tokens. Qwen's BPE merges
``>`` with the following letters, so the tail ``<think>…</think><answer>LABEL`` is tokenised whole per label; the
shared token prefix runs once and only the per-label remainders run as a second forward on its KV cache.

Prefix cache: the system turn and the head of every user turn are the same for every clip and every coalition of
the explanation (8 per clip), so their KV cache is computed once per scorer and reused (copied) by each call.
``score_coalitions`` scores the 8 coalitions in batched forwards on that cache (``label_logprobs_many``: identical
prompts once, prompts of similar length together, suffixes left-padded after the head), instead of 8 calls.

``generate`` writes ``<think>…</think><answer>…</answer>`` greedily; an invalid answer falls back to label scoring
(``last_results[i].fallback``), as in the omni scorer.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Sequence

import numpy as np

from omni_mer.core.clip import Clip
from omni_mer.evidence.types import Evidence
from omni_mer.core.answer import SCORE_THINK, parse_answer
from omni_mer.core.labels import LABELS
from omni_mer.llm.prompt import llm_messages, text_reading_missing
from omni_mer.scorers.base import ALL_MODALITIES, Scorer, check_keep, label_tails, tail_logprobs
from omni_mer.texthead.head import softmax

log = logging.getLogger(__name__)


def _probe_evidence(language: str) -> Evidence:
    """An evidence with every listed field filled, to find where prompts of ``language`` start to differ (the text
    head's reading, when shown, comes after the transcript: past that point)."""
    from omni_mer.evidence.types import Cue, ModalityEvidence

    return Evidence(language=language, transcript="x y z", segments=[], text=ModalityEvidence("text", True),
                    audio=ModalityEvidence("audio", True, cues=[Cue("audio", 0.0, 1.0, "x", 0.0, 0.1, "pitch")]),
                    visual=ModalityEvidence("visual", True, cues=[Cue("visual", 0.0, 1.0, "x", 0.0, 0.1, "x")]))


PADDING_BUDGET = 0.25  # a batch may hold at most this share of padding tokens


def length_batches(items: list, length, max_rows: int, padding: float = PADDING_BUDGET) -> list[list]:
    """``items`` in batches of similar ``length(item)``: shortest first, a batch grows while its padded size
    (rows x longest) stays within ``1 + padding`` times its real tokens and it has at most ``max_rows`` rows.

    The 8 coalition prompts of a clip range from ~10 to ~130 tokens after the cached head; padding them all to the
    longest spent more on padding than batching saved (measured in bf16: 4.8 s batched vs 4.3 s looped)."""
    batches: list[list] = []
    for item in sorted(items, key=length):
        n = length(item)
        b = batches[-1] if batches else None
        if b is not None and len(b) < max_rows and (len(b) + 1) * n <= (1 + padding) * (sum(map(length, b)) + n):
            b.append(item)
        else:
            batches.append([item])
    return batches


class LLMScorer(Scorer):
    """Scorer backed by a local text-only Qwen2 causal LM (optionally with a LoRA adapter)."""

    name = "llm"

    def __init__(self, model_path: str | None = None, adapter: str | None = None, max_new_tokens: int = 96,
                 device=None, dtype=None, score_think: str = SCORE_THINK, batch_size: int = 4, model=None,
                 tokenizer=None, score_batch_size: int = 8, calibration: str | None = "auto",
                 text_reading: bool | None = None) -> None:
        """``text_reading``: whether prompts show the text head's reading; None = as the adapter was trained
        (omni_mer.llm.model.adapter_text_reading; never without an adapter)."""
        if model is not None and tokenizer is not None:
            self.model, self.tokenizer = model, tokenizer
        else:
            from omni_mer.llm.model import load_llm

            # a torch dtype, or one of INFERENCE_DTYPES ("auto": bf16 where the hardware computes it natively)
            self.model, self.tokenizer = load_llm(model_path, adapter, device=device, dtype=dtype or "auto")
        self.tokenizer.padding_side = "left"
        self.model_path = str(model_path) if model_path else str(getattr(self.model.config, "_name_or_path", ""))
        self.adapter = str(adapter) if adapter else None
        from omni_mer.llm.calibration import load_calibration, resolve_calibration
        from omni_mer.llm.model import adapter_text_reading

        # the prompt shows the text head's reading only to an adapter trained so (its recipe.yaml)
        self.text_reading = adapter_text_reading(self.adapter) if text_reading is None else bool(text_reading)
        self._warned_no_reading = False
        if self.text_reading:
            from omni_mer.llm.model import text_head_mismatch

            why = text_head_mismatch(self.adapter)
            if why:
                log.warning("%s", why)

        # label scores per language through a calibration fitted on valid (llm/calibration.py): "auto" reads the
        # adapter's label_calibration.json when there is one
        self.calibration_path = resolve_calibration(calibration, self.adapter)
        self.calibration = load_calibration(self.calibration_path) if self.calibration_path else None
        self.max_new_tokens = int(max_new_tokens)
        self.batch_size = max(1, int(batch_size))  # generation
        self.score_batch_size = max(1, int(score_batch_size))  # label scoring: the 8 coalitions of a clip at once
        self.score_think = score_think
        self._tails = label_tails(self.tokenizer, score_think)
        self._prefix: dict[str, tuple[list[int], object]] = {}  # language -> (ids, KV cache) of the shared head
        self.last_generation_valid: list[bool] = []
        self.last_results: list = []
        self.timings: dict[str, float] = {}

    # ------------------------------------------------------------------ helpers
    @property
    def dtype(self):
        """The torch dtype the model computes in."""
        return next(self.model.parameters()).dtype

    @property
    def device(self):
        return next(self.model.parameters()).device

    def _base(self):
        """The causal LM under any peft wrapper (LoRA layers stay active: peft injects them in place)."""
        return self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model

    def prompt_ids(self, evidence: Evidence | None, keep: frozenset[str], language: str | None = None) -> list[int]:
        """Token ids of the chat prompt (system + user + ``<|im_start|>assistant\\n``)."""
        if self.text_reading and not self._warned_no_reading and text_reading_missing(evidence, keep):
            self._warned_no_reading = True
            log.warning("adapter %s was trained with the text head's reading in its prompts, but a clip's text "
                        "evidence has none (no trained text head read it: the lexicon fallback, or no text "
                        "evidence), so its prompt shows the transcript alone", self.adapter)
        return self._ids(evidence, keep, language)

    def _ids(self, evidence: Evidence | None, keep: frozenset[str], language: str | None) -> list[int]:
        msgs = llm_messages(evidence, keep, language, self.text_reading)
        return list(self.tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True,
                                                       return_dict=True)["input_ids"])

    def _head(self, language: str | None) -> tuple[list[int], object]:
        """(ids, KV cache) of the cached prompt head of ``language``, computed once.

        The head is the token prefix that two very different prompts of that language share (system turn, task,
        labels, format), minus its last token (a BPE merge at the boundary could differ for another clip)."""
        import torch

        from omni_mer.llm.prompt import prompt_language

        lang = prompt_language(language)
        if lang not in self._prefix:
            a = self._ids(None, frozenset(), lang)  # probes, not clips: no reading check
            b = self._ids(_probe_evidence(lang), ALL_MODALITIES, lang)
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
        return self._prefix[lang]

    # ------------------------------------------------------------------ scoring
    def _ids_logprobs(self, seqs: list[list[int]], language: str | None) -> tuple[np.ndarray, int]:
        """Label log-probabilities (len(seqs), len(LABELS)) of prompts of one language, in ONE batched forward, and
        how many of their tokens came from the cached head (0 when a prompt does not start with it).

        The prompts' suffixes after the cached head are left-padded to one width, so the padding sits between the
        head and each suffix: masked out, with each row's positions counting only its real tokens. The labels'
        remainders then run for every prompt at once on that cache (``tail_logprobs``)."""
        import torch

        head, cache = self._head(language)
        if not all(len(ids) > len(head) and ids[: len(head)] == head for ids in seqs):
            head, cache = [], None
        h = len(head)
        tails = [ids[h:] for ids in seqs]
        width = max(len(t) for t in tails)
        pad = int(self.tokenizer.pad_token_id)
        x = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.ones((len(seqs), h + width), dtype=torch.long)
        pos = torch.full((len(seqs), width), h, dtype=torch.long)
        for i, t in enumerate(tails):
            gap = width - len(t)
            x[i, gap:] = torch.tensor(t)
            mask[i, h: h + gap] = 0
            pos[i, gap:] = torch.arange(h, h + len(t))
        ends = torch.tensor([h + len(t) for t in tails])  # each row's next position
        past = None
        if cache is not None:
            past = copy.deepcopy(cache)
            past.batch_repeat_interleave(len(seqs))
        base = self._base()
        n_labels = len(self._tails[1])

        def tail_positions(_prompt_len: int, rows: int, k: int):
            return (ends.repeat_interleave(n_labels).view(rows, 1) + torch.arange(k).view(1, k)).to(self.device)

        with torch.inference_mode():
            out = base.model(input_ids=x.to(self.device), attention_mask=mask.to(self.device),
                             position_ids=pos.to(self.device), past_key_values=past, use_cache=True)
            return tail_logprobs(base.model, base.lm_head, out, self._tails[1], pad, h + width, tail_positions,
                                 attention_mask=mask), h

    def label_logprobs_many(self, evidences: list[Evidence | None], keeps: list[frozenset[str]],
                            languages: list[str | None]) -> np.ndarray:
        """Summed log-probabilities of each label's tokens after the teacher-forced answer prefix, for many prompts
        (len(evidences), len(LABELS)), through the scorer's calibration when it has one (then normalised): identical prompts are scored once, each language's in batched forwards on its
        cached head (``length_batches``: at most ``score_batch_size`` prompts of similar length each)."""
        from omni_mer.llm.prompt import prompt_language

        if not len(evidences) == len(keeps) == len(languages):
            raise ValueError(f"label_logprobs_many needs one keep and one language per evidence (got "
                             f"{len(evidences)} evidences, {len(keeps)} keeps, {len(languages)} languages)")
        if not evidences:
            return np.zeros((0, len(LABELS)))
        t0 = time.perf_counter()
        shared = list(self._tails[0])
        seqs = [self.prompt_ids(ev, check_keep(k), lang) + shared
                for ev, k, lang in zip(evidences, keeps, languages, strict=True)]
        unique: dict[tuple[str, tuple[int, ...]], int] = {}
        for ids, lang in zip(seqs, languages, strict=True):
            unique.setdefault((prompt_language(lang), tuple(ids)), len(unique))
        scores = np.zeros((len(unique), len(LABELS)))
        cached = np.zeros(len(unique))
        for lang in sorted({key[0] for key in unique}):
            keys = [key for key in unique if key[0] == lang]
            head = len(self._head(lang)[0])  # padding is counted on what runs: the suffixes after the cached head
            for chunk in length_batches(keys, lambda key: len(key[1]) - head, self.score_batch_size):
                rows = [unique[key] for key in chunk]
                scores[rows], cached[rows] = self._ids_logprobs([list(key[1]) for key in chunk], lang)
        order = [unique[(prompt_language(lang), tuple(ids))] for ids, lang in zip(seqs, languages, strict=True)]
        self.timings = {"forward_s": time.perf_counter() - t0, "prompts": float(len(seqs)),
                        "forwards_unique": float(len(unique)), "prompt_tokens": float(np.mean([len(x) for x in seqs])),
                        "cached_tokens": float(np.mean(cached[order]))}
        if self.calibration is not None:
            from omni_mer.llm.calibration import apply_calibration

            return apply_calibration(self.calibration, scores[order], [prompt_language(la) for la in languages])
        return scores[order]

    def label_logprobs(self, evidence: Evidence | None, keep: frozenset[str], language: str | None = None) -> np.ndarray:
        """Summed log-probabilities of each label's tokens after the teacher-forced answer prefix (len(LABELS),)."""
        return self.label_logprobs_many([evidence], [keep], [language])[0]

    def score(self, clip: Clip, evidence: Evidence, keep: frozenset[str]) -> np.ndarray:
        """Probabilities over LABELS (sum 1) using only the modalities in ``keep``."""
        return softmax(self.label_logprobs(evidence, keep, (evidence.language if evidence else None) or clip.language))

    def score_coalitions(self, clip: Clip, evidence: Evidence, keeps: Sequence[frozenset[str]]) -> list[np.ndarray]:
        """``score`` of every coalition, batched on the shared prefix cache (explanations: 8; see
        ``label_logprobs_many``)."""
        lang = (evidence.language if evidence else None) or clip.language
        lp = self.label_logprobs_many([evidence] * len(keeps), list(keeps), [lang] * len(keeps))
        return list(softmax(lp))

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
        return (f"llm:{self.model_path}" + (f"+adapter:{self.adapter}" if self.adapter else "")
                + (f"+calibration:{self.calibration_path}" if self.calibration_path else ""))
