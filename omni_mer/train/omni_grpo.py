"""GRPO of the Qwen2.5-Omni thinker on TRL's ``GRPOTrainer``: a subclass that carries video, audio and
``use_audio_in_video`` through generation, the policy forward and the reference forward.

What TRL 1.16 already does for us (kept): the sampler that repeats each prompt G times, the reward registry call
and group-normalised advantages, the loss (``loss_type``, clipping, k3 KL with ``beta``), the reference as the same
PEFT model with the adapter disabled (or a frozen ``ref`` copy of an adapter we continue), the fused LM head that
scores only completion tokens, logging, checkpoints, accelerate/DeepSpeed. Its multimodal support is image-only: it
re-runs the processor on dataset *images* for the forwards, passes no ``pixel_values_videos`` / ``input_features``
/ ``use_audio_in_video`` into the log-prob forwards, and its chunked forward only slices image tensors. So four
methods are overridden, each for one reason:

* ``_tokenize_prompts``: the Omni processor call per clip (omni_mer.omni.inputs.clip_inputs with the recipe's one
  MediaConfig: pre-sampled frames with their fps, the audio track, ``use_audio_in_video``), not the text-only chat
  template; each row's video/audio features are kept next to its prompt ids.
* ``_generate_single_turn``: generation per ``use_audio_in_video`` group (the flag is one per forward), with the
  group's collated video/audio features, and logits only for the last position of the prompt.
* ``_get_per_token_logps_and_entropies``: the policy, old-policy and reference forwards with the rows' video/audio
  features and flag (TRL's version would drop them).
* ``_generate_and_score_completions`` / ``_compute_loss``: thin wrappers that bind the batch's features to those
  forwards and carry them in the buffered batch (a per-row list, shuffled and split with it by TRL).

``suppress_tokens`` (the multimodal placeholders a sampled token must never be) goes in through GRPOConfig's
``generation_kwargs``. Rows come from omni_mer.train.data (TrainData): the dataset holds the prompt messages, the
row index and the reward columns; the clip is decoded from the manifest when its row is generated.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass
from typing import Sequence

from trl import GRPOTrainer

from omni_mer.omni.inputs import clip_inputs, collate_media, suppress_token_ids, to_device
from omni_mer.omni.model import base_thinker
from omni_mer.train.data import TrainData, TrainExample

log = logging.getLogger(__name__)

ROW_COLUMN = "row"  # dataset column: index of the TrainData example (its clip, messages and evidence)


@dataclass(frozen=True)
class RowMedia:
    """One prompt row's processor outputs: the prompt token ids, its video/audio features and its flag."""

    prompt_ids: list[int]
    features: dict
    use_audio_in_video: bool


def row_media(processor, example: TrainExample, media) -> RowMedia:
    """The Omni processor inputs of one example's prompt (the same call the omni scorer makes at inference)."""
    out, uav = clip_inputs(processor, example.clip, example.messages, media, example.keep)
    features = {k: v for k, v in out.items() if k not in ("input_ids", "attention_mask")}
    return RowMedia(out["input_ids"][0].tolist(), features, bool(uav))


def grpo_dataset(data: TrainData):
    """A ``datasets.Dataset`` of GRPO rows: ``prompt`` (the chat messages, for TRL and its logs), ``row`` and the
    reward columns (omni_mer.train.rewards: label, language, evidence as JSON, keep, cues_shown=False)."""
    from datasets import Dataset

    rows = []
    for i in range(len(data)):
        ex = data[i]
        cols = ex.columns()
        cols["evidence"] = json.dumps(cols["evidence"].to_dict(), ensure_ascii=False)
        rows.append({"prompt": ex.messages, ROW_COLUMN: i, "id": ex.id, **cols})
    return Dataset.from_list(rows)


def flag_groups(rows: Sequence[RowMedia], indices: Sequence[int]) -> list[tuple[bool, list[int]]]:
    """``indices`` split into runs of equal ``use_audio_in_video`` (in order; one forward per run)."""
    groups: list[tuple[bool, list[int]]] = []
    for i in indices:
        flag = rows[i].use_audio_in_video
        if groups and groups[-1][0] == flag:
            groups[-1][1].append(i)
        else:
            groups.append((flag, [i]))
    return groups


@contextlib.contextmanager
def last_position_logits(model):
    """Make ``model`` compute logits for the last position only (the lm_head sees a slice of the hidden states):
    generation samples from it, and a long multimodal prompt never materialises full-vocabulary logits."""
    head = base_thinker(model).lm_head

    def pre(_module, args):
        return (args[0][:, -1:],) + tuple(args[1:])

    handle = head.register_forward_pre_hook(pre)
    try:
        yield
    finally:
        handle.remove()


class OmniGRPOTrainer(GRPOTrainer):
    """TRL's GRPOTrainer for the Qwen2.5-Omni thinker: video, audio and ``use_audio_in_video`` reach generation and
    every log-prob forward (policy, old policy, reference). ``data`` is the TrainData the dataset rows index."""

    def __init__(self, *args, data: TrainData, processing_class, **kwargs) -> None:
        train_args = kwargs.get("args")
        if train_args is None:
            raise ValueError("OmniGRPOTrainer needs args= (a GRPOConfig)")
        # placeholders a random or young model may sample would break the next forward
        train_args.generation_kwargs = {**(train_args.generation_kwargs or {}),
                                        "suppress_tokens": suppress_token_ids(processing_class)}
        self.data = data
        self._rollout: list[RowMedia] | None = None  # rows being generated (set by _generate_and_score_completions)
        self._bound: list[RowMedia] | None = None  # rows of the log-prob forwards running now
        super().__init__(*args, processing_class=processing_class, **kwargs)

    # ------------------------------------------------------------------ binding a batch's media to the forwards
    @contextlib.contextmanager
    def _bind(self, rows: list[RowMedia]):
        previous, self._bound = self._bound, rows
        try:
            yield
        finally:
            self._bound = previous

    def _media_on_device(self, rows: Sequence[RowMedia], flag: bool) -> dict:
        model = base_thinker(self.accelerator.unwrap_model(self.model))
        feed = to_device(collate_media([r.features for r in rows]), self.accelerator.device, model.dtype)
        feed["use_audio_in_video"] = flag
        return feed

    # ------------------------------------------------------------------ overrides
    def _generate_and_score_completions(self, inputs):
        if ROW_COLUMN not in inputs[0]:
            raise KeyError(f"OmniGRPOTrainer rows need the {ROW_COLUMN!r} column (omni_mer.train.omni_grpo.grpo_dataset)")
        cache: dict[int, RowMedia] = {}  # a prompt repeated G times is processed once
        rows = []
        for x in inputs:
            i = int(x[ROW_COLUMN])
            if i not in cache:
                cache[i] = row_media(self.processing_class, self.data[i], self.data.media)
            rows.append(cache[i])
        self._rollout = rows
        try:
            with self._bind(rows):
                out = super()._generate_and_score_completions(inputs)
        finally:
            self._rollout = None
        out["omni_media"] = rows  # a per-row list: TRL's shuffle/split of the buffered batch keeps it aligned
        return out

    def _compute_loss(self, model, inputs):
        with self._bind(inputs["omni_media"]):
            return super()._compute_loss(model, inputs)

    def _tokenize_prompts(self, prompts: list):
        rows = self._rollout
        if rows is None or len(rows) != len(prompts):
            raise RuntimeError("OmniGRPOTrainer: prompts reached tokenisation without their clips")
        return [r.prompt_ids for r in rows], None, {"omni_media": rows}

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        rows: list[RowMedia] = multimodal_fields["omni_media"]
        completions: list = [None] * len(prompt_ids)
        logprobs: list | None = None
        unwrapped = self.accelerator.unwrap_model(self.model)
        for flag, idx in flag_groups(rows, range(len(rows))):
            fields = self._media_on_device([rows[i] for i in idx], flag)
            with last_position_logits(unwrapped):
                ids, lps = super()._generate_single_turn([prompt_ids[i] for i in idx], None, fields, num_generations)
            for j, i in enumerate(idx):
                completions[i] = ids[j]
            if lps is not None:
                logprobs = logprobs or [None] * len(prompt_ids)
                for j, i in enumerate(idx):
                    logprobs[i] = lps[j]
        return completions, logprobs

    def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep, batch_size=None,
                                           compute_entropy=False, compute_aux_loss=False, **image_kwargs):
        """Per-token log-probs (and entropies) of the completions, every forward fed the rows' video/audio."""
        import torch

        rows = self._bound
        if rows is None or len(rows) != input_ids.size(0):
            raise RuntimeError(f"OmniGRPOTrainer: a log-prob forward of {input_ids.size(0)} rows has "
                               f"{'no' if rows is None else len(rows)} rows of video/audio features bound")
        images = sorted(k for k, v in image_kwargs.items() if v is not None and k not in ("num_images", "num_tiles"))
        if images:
            raise ValueError(f"OmniGRPOTrainer takes clips, not dataset images (got {images})")
        if compute_aux_loss:
            raise ValueError("the Qwen2.5-Omni thinker is not a mixture of experts: no router aux loss")
        n = input_ids.size(0)
        batch_size = batch_size or n
        logps: list = [None] * n
        entropies: list = [None] * n
        for start in range(0, n, batch_size):
            for flag, idx in flag_groups(rows, range(start, min(start + batch_size, n))):
                sel = torch.tensor(idx, device=input_ids.device)
                ids, mask = input_ids[sel], attention_mask[sel]
                labels = ids.masked_fill(mask == 0, -100)
                labels[:, :-logits_to_keep] = -100  # only the completion tokens are scored
                feed = {"input_ids": ids, "attention_mask": mask, **self._media_on_device([rows[i] for i in idx], flag)}
                with self.accelerator.autocast():
                    out = model(**feed, labels=labels, fused_lm_head=True)
                for j, i in enumerate(idx):
                    logps[i] = out.log_probs[j, -logits_to_keep:]
                    if compute_entropy:
                        entropies[i] = out.entropy[j, -logits_to_keep:]
        return torch.stack(logps), (torch.stack(entropies) if compute_entropy else None), None
