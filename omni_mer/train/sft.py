"""LoRA SFT (cold start) of the Qwen2.5-Omni thinker on TRL's ``SFTTrainer``: teacher-force the grounded rationale +
GOLD label, loss on the assistant turn only.

No trainer subclass is needed: TRL's SFTTrainer forwards every collated key into the model (its fused LM head runs
the thinker's own multimodal backbone), so the only piece of ours is the data collator. It builds the processor
inputs of prompt + target with the recipe's one MediaConfig (video, audio, ``use_audio_in_video``) and the labels
(-100 everywhere but the assistant turn: assistant-only loss by construction). The dataset rows are TrainData
indices (``row``); clips are decoded when their batch is collated.
"""

from __future__ import annotations

import logging
from typing import Sequence

from omni_mer.omni.inputs import build_inputs
from omni_mer.train.data import TrainData, TrainExample

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


def sft_batch(processor, examples: TrainExample | Sequence[TrainExample], media):
    """Processor inputs of prompt + target (``target<|im_end|>``) and the assistant-only labels, left-padded.

    The clips of one batch must share ``use_audio_in_video`` (build_inputs raises naming the problem otherwise:
    use per_device_train_batch_size 1 with gradient accumulation when a dataset mixes clips with and without audio)."""
    exs = [examples] if isinstance(examples, TrainExample) else list(examples)
    keeps = [ex.keep for ex in exs]
    inputs = build_inputs(processor, [ex.clip for ex in exs], [ex.messages for ex in exs], media, keeps,
                          suffix=[ex.target + END_OF_TURN for ex in exs])
    inputs["labels"] = assistant_labels(inputs["input_ids"], inputs["attention_mask"], processor.tokenizer)
    return inputs


def sft_dataset(data: TrainData):
    """A ``datasets.Dataset`` of SFT rows (``row`` = TrainData index, ``id``) for TRL's SFTTrainer."""
    from datasets import Dataset

    return Dataset.from_list([{"row": i, "id": clip_id} for i, clip_id in enumerate(data.ids())])


class OmniSFTCollator:
    """TRL data collator: rows → the thinker's inputs with video/audio features and assistant-only labels."""

    def __init__(self, processor, data: TrainData, max_length: int | None = None) -> None:
        self.processor = processor
        self.data = data
        self.max_length = max_length

    def __call__(self, rows: list[dict]) -> dict:
        examples = [self.data[int(r["row"])] for r in rows]
        batch = sft_batch(self.processor, examples, self.data.media)
        length = int(batch["input_ids"].shape[1])
        if self.max_length and length > self.max_length:  # a multimodal prompt cannot be cut: say so
            raise ValueError(f"SFT sequence of {[ex.id for ex in examples]} is {length} tokens > max_length="
                             f"{self.max_length}; raise max_length or lower max_frames / max_audio_seconds")
        return dict(batch)
