"""The omni scorer: Qwen2.5-Omni thinker (+ LoRA) behind the Scorer interface.

Label scoring (``score``): the prompt holds only the kept modalities (transcript in the prompt = text, audio track =
audio, frames = visual); the assistant turn is teacher-forced as ``<think>{score_think}</think><answer>`` and each
label's probability is the softmax over the five labels of the summed log-probabilities of the label's tokens.
``score_think`` is empty by default: an empty rationale is the cheapest condition that is the same for every clip
and coalition (a generated rationale would leak the other modalities into a coalition's prompt).

Tokenisation detail: Qwen's BPE merges ``>`` with the following letters (``<answer>SNEG`` → ``>S`` ``NEG``), so the
tail ``<think>…</think><answer>LABEL`` is tokenised whole per label; the shared token prefix is prefilled once (with
the multimodal inputs) and only the per-label remainders run as a second, text-only forward on the KV cache.

Generation (``generate`` / ``generate_batch``): plain HF ``generate`` of ``<think>…</think><answer>…</answer>``,
batched with left padding; ``core.answer.parse_answer`` reads the label. Each call stores ``last_generation_valid`` (one
bool per clip, False when the answer was missing/invalid) and ``last_results`` (GenerationResult objects whose
``label`` falls back to label scoring with all modalities when the generated answer is invalid; ``fallback`` True).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from omni_mer.core.clip import Clip
from omni_mer.core.config import MediaConfig
from omni_mer.evidence.types import Evidence
from omni_mer.core.answer import SCORE_THINK, parse_answer
from omni_mer.core.labels import LABELS
from omni_mer.omni.inputs import build_inputs, clip_uses, clip_uses_audio_in_video, suppress_token_ids, to_device
from omni_mer.omni.model import base_thinker, load_thinker, model_id, reset_rope_deltas
from omni_mer.omni.prompts import build_messages
from omni_mer.scorers.base import ALL_MODALITIES, Scorer, check_keep, label_tails, tail_logprobs
from omni_mer.texthead.head import softmax

log = logging.getLogger(__name__)


@dataclass
class GenerationResult:
    """One generated answer. ``label`` is the parsed answer, or the label-scoring argmax when ``fallback``."""

    text: str
    label: str
    valid: bool  # the generated <answer> held a valid label
    fallback: bool  # label came from label scoring
    probs: np.ndarray | None = None  # label-scoring probabilities when fallback was used
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


class OmniScorer(Scorer):
    """Scorer backed by a local Qwen2.5-Omni thinker (optionally with a LoRA adapter)."""

    name = "omni"

    def __init__(
        self,
        model_path: str | None = None,
        adapter: str | None = None,
        media: MediaConfig = MediaConfig(),
        max_new_tokens: int = 128,
        device=None,
        dtype=None,
        load_in_4bit: bool = False,
        batch_size: int = 4,
        score_think: str = SCORE_THINK,
        do_sample: bool = False,
        model=None,
        processor=None,
    ) -> None:
        if model is not None and processor is not None:
            self.model, self.processor = model, processor
        else:
            self.model, self.processor = load_thinker(
                model_path, adapter, device=device, dtype=dtype, load_in_4bit=load_in_4bit
            )
        self.model_path = str(model_path) if model_path else model_id(self.model)
        self.adapter = str(adapter) if adapter else None
        self.media = media
        self.max_new_tokens = int(max_new_tokens)
        self.batch_size = max(1, int(batch_size))
        self.score_think = score_think
        self.do_sample = do_sample
        self._suppress = suppress_token_ids(self.processor)
        self._tails = self._label_tails(score_think)
        self.last_generation_valid: list[bool] = []
        self.last_results: list[GenerationResult] = []
        self.timings: dict[str, float] = {}

    # ------------------------------------------------------------------ helpers
    @property
    def device(self):
        return next(base_thinker(self.model).parameters()).device

    @property
    def dtype(self):
        """Compute dtype for pixel/audio features: the first floating parameter (4-bit weights are uint8)."""
        for p in base_thinker(self.model).parameters():
            if p.is_floating_point():
                return p.dtype
        raise RuntimeError("model has no floating-point parameters")

    def _label_tails(self, think: str) -> tuple[list[int], list[list[int]]]:
        """(shared prefix ids, per-label remainder ids) of ``<think>…</think><answer>LABEL``."""
        return label_tails(self.processor.tokenizer, think)

    def _messages(self, clip: Clip, evidence: Evidence | None, keep: frozenset[str]) -> list[dict]:
        use_video, use_audio = clip_uses(clip, keep)
        language = (evidence.language if evidence is not None else None) or clip.language or "en"
        transcript = evidence.transcript if evidence is not None else None
        return build_messages(language, transcript, keep, use_video, use_audio,
                              use_audio_in_video=self.media.use_audio_in_video)

    # ------------------------------------------------------------------ scoring
    def label_logprobs(self, clip: Clip, evidence: Evidence | None, keep: frozenset[str]) -> np.ndarray:
        """Summed log-probabilities of each label's tokens after the teacher-forced answer prefix (len(LABELS),)."""
        import torch

        keep = check_keep(keep)
        t0 = time.perf_counter()
        inputs = build_inputs(self.processor, [clip], [self._messages(clip, evidence, keep)], self.media, keep)
        t1 = time.perf_counter()
        shared, rests = self._tails
        shared_t = torch.tensor([shared], dtype=torch.long)
        inputs["input_ids"] = torch.cat([inputs["input_ids"], shared_t], dim=1)
        inputs["attention_mask"] = torch.cat([inputs["attention_mask"], torch.ones_like(shared_t)], dim=1)
        base = base_thinker(self.model)
        feed = to_device(inputs, self.device, self.dtype)
        with torch.inference_mode():
            # Inner model: hidden states only, so we never build full-vocabulary logits for every prompt position.
            out = base.model(**feed, use_cache=True)
            delta = base.model.rope_deltas
            delta = torch.zeros((1, 1), dtype=torch.long) if delta is None else delta

            def rope_positions(L: int, n: int, k: int):  # Qwen2.5-Omni's 3-D rope, shifted by the cached deltas
                pos = torch.arange(L, L + k, device=self.device).view(1, 1, -1) + delta.to(self.device).view(1, -1, 1)
                return pos.expand(3, n, k)

            scores = tail_logprobs(base.model, base.lm_head, out, rests, self.processor.tokenizer.pad_token_id,
                                   int(feed["attention_mask"].shape[1]), rope_positions)[0]
        reset_rope_deltas(self.model)  # never leak cached deltas into the next call
        t2 = time.perf_counter()
        self.timings = {"inputs_s": t1 - t0, "forward_s": t2 - t1}
        return np.asarray(scores, dtype=np.float64)

    def score(self, clip: Clip, evidence: Evidence, keep: frozenset[str]) -> np.ndarray:
        """Probabilities over LABELS (sum 1) using only the modalities in ``keep``."""
        return softmax(self.label_logprobs(clip, evidence, keep))

    # ------------------------------------------------------------------ generation
    def generate_batch(self, clips: list[Clip], evidences: list[Evidence | None],
                       keep: frozenset[str] = ALL_MODALITIES) -> list[GenerationResult]:
        """Generate ``<think>…</think><answer>…</answer>`` for each clip (batched, grouped by use_audio_in_video).

        Sets ``last_generation_valid`` and ``last_results``; invalid answers fall back to label scoring.
        """
        keep = check_keep(keep)
        results: list[GenerationResult | None] = [None] * len(clips)
        groups: dict[bool, list[int]] = {}
        for i, clip in enumerate(clips):
            groups.setdefault(clip_uses_audio_in_video(clip, keep, self.media), []).append(i)
        tok = self.processor.tokenizer
        for idx in groups.values():
            for start in range(0, len(idx), self.batch_size):
                chunk = idx[start: start + self.batch_size]
                t0 = time.perf_counter()
                msgs = [self._messages(clips[i], evidences[i], keep) for i in chunk]
                inputs = build_inputs(self.processor, [clips[i] for i in chunk], msgs, self.media, keep)
                texts = tok.batch_decode(self._new_tokens(inputs, self.max_new_tokens), skip_special_tokens=True)
                dt = (time.perf_counter() - t0) / len(chunk)
                for i, text in zip(chunk, texts):
                    label = parse_answer(text)
                    results[i] = GenerationResult(text=text.strip(), label=label or "", valid=label is not None,
                                                  fallback=False, seconds=dt)
        for i, res in enumerate(results):
            assert res is not None
            if not res.valid:
                probs = self.score(clips[i], evidences[i], keep)
                res.label, res.fallback, res.probs = LABELS[int(np.argmax(probs))], True, probs
                log.info("%s: generated answer invalid/missing; label from label scoring (%s)", clips[i].id, res.label)
        self.last_results = [r for r in results if r is not None]
        self.last_generation_valid = [r.valid for r in self.last_results]
        return self.last_results

    def _new_tokens(self, inputs, max_new_tokens: int, do_sample: bool | None = None):
        """The one generate call: the tokens the model adds after each prompt of ``inputs`` (processor output)."""
        import torch

        feed = to_device(inputs, self.device, self.dtype)
        with torch.inference_mode():
            out = self.model.generate(**feed, max_new_tokens=int(max_new_tokens),
                                      do_sample=self.do_sample if do_sample is None else do_sample,
                                      suppress_tokens=self._suppress,
                                      pad_token_id=self.processor.tokenizer.pad_token_id)
        reset_rope_deltas(self.model)
        return out[:, feed["input_ids"].shape[1]:]

    def reply(self, messages: list[dict], max_new_tokens: int | None = None) -> tuple[str, int]:
        """Greedy text reply of the model to text-only chat ``messages`` (e.g. a question about an explanation):
        (text, number of new tokens)."""
        text = self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        inputs = self.processor(text=[text], return_tensors="pt", padding=True)
        new = self._new_tokens(inputs, max_new_tokens or self.max_new_tokens, do_sample=False)[0]
        return self.processor.tokenizer.decode(new, skip_special_tokens=True).strip(), int(new.shape[0])

    def generate(self, clip: Clip, evidence: Evidence) -> str | None:
        """The generated ``<think>…</think><answer>…</answer>`` text (see ``last_generation_valid``)."""
        return self.generate_batch([clip], [evidence])[0].text

    def version(self) -> str:
        return f"omni:{self.model_path}" + (f"+adapter:{self.adapter}" if self.adapter else "")
