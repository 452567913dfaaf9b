"""LoRA SFT (cold start): teacher-force the cue-grounded rationale + GOLD label; loss on the assistant turn only."""

from __future__ import annotations

import logging

from omni_mer.omni.inputs import build_inputs, to_device
from omni_mer.train.common import BaseTrainer, reset_rope_cache
from omni_mer.train.data import TrainExample

log = logging.getLogger(__name__)

END_OF_TURN = "<|im_end|>"


def assistant_labels(input_ids, attention_mask, tokenizer):
    """Labels = input_ids on the assistant turn (after the last ``<|im_start|>assistant\\n``), -100 elsewhere."""
    import torch

    start_id = tokenizer.convert_tokens_to_ids("<|im_start|>")
    head = tokenizer("assistant\n", add_special_tokens=False)["input_ids"]
    labels = torch.full_like(input_ids, -100)
    for i in range(input_ids.shape[0]):
        row = input_ids[i].tolist()
        starts = [j for j, t in enumerate(row) if t == start_id]
        if not starts:
            raise ValueError("no <|im_start|> in the SFT sequence: the chat template did not render a turn")
        begin = starts[-1] + 1 + len(head)
        if row[starts[-1] + 1: begin] != head:
            raise ValueError("the last turn is not the assistant's; cannot mask the prompt")
        labels[i, begin:] = input_ids[i, begin:]
    labels[attention_mask == 0] = -100
    return labels


def sft_batch(processor, example: TrainExample, media):
    """Processor inputs of prompt + target (``target<|im_end|>``) and the assistant-only labels."""
    inputs = build_inputs(processor, [example.clip], [example.messages], media, example.keep,
                          suffix=example.target + END_OF_TURN)
    inputs["labels"] = assistant_labels(inputs["input_ids"], inputs["attention_mask"], processor.tokenizer)
    return inputs


def sft_loss(model, batch: dict):
    """Mean token cross-entropy over the labelled (assistant) positions; multimodal features go in the forward."""
    import torch

    from omni_mer.train.grpo import logits_from

    labels = batch["labels"]
    feed = {k: v for k, v in batch.items() if k != "labels"}
    labelled = (labels != -100).any(0).nonzero()
    start = max(0, int(labelled[0]) - 1) if len(labelled) else labels.shape[1] - 1
    reset_rope_cache(model)
    with logits_from(model, start):  # logits only where a label is predicted
        logits = model(**feed, use_cache=False).logits
    shift_logits = logits[:, :-1].float()
    shift_labels = labels[:, start + 1:].to(shift_logits.device)
    n = (shift_labels != -100).sum()
    loss = torch.nn.functional.cross_entropy(shift_logits.reshape(-1, shift_logits.shape[-1]),
                                             shift_labels.reshape(-1), ignore_index=-100, reduction="sum")
    return loss / n.clamp(min=1), int(n)


class SFTTrainer(BaseTrainer):
    """LoRA SFT on rendered rationales (omni_mer.train.data.sft_target) with the multimodal features."""

    stage = "sft"

    def compute_loss(self, examples: list[TrainExample], step: int):
        total, tokens = 0.0, 0
        for ex in examples:  # one clip at a time: clips may need different use_audio_in_video flags
            batch = to_device(sft_batch(self.processor, ex, self.cfg.media), self.accelerator.device, self.dtype)
            loss, n = sft_loss(self.model, batch)
            total = total + loss / len(examples)
            tokens += n
        return total, {"target_tokens": float(tokens)}
