"""The LoRA policy both omni stages train: the Qwen2.5-Omni thinker with LoRA on its language model only.

TRL's trainers do the rest (loop, accelerate/DeepSpeed, logging, checkpoints, resume); see omni_mer.train.run.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def load_policy(model_cfg, init_adapter: str | None = None, device=None):
    """``(model, processor, peft_config)`` for a TRL trainer.

    Without ``init_adapter``: the frozen thinker and the LoRA config from ``ModelConfig`` (TRL wraps the model).
    With it: the adapter loaded trainable (peft_config None; GRPO's reference is then a frozen copy of it). The
    audio and vision towers never get LoRA (checked by ``check_lora_placement`` once the trainer has wrapped it).
    """
    import torch
    from peft import PeftModel
    from trl import get_peft_config

    from omni_mer.core.errors import ConfigError
    from omni_mer.omni.model import load_thinker

    peft_config = get_peft_config(model_cfg)
    if peft_config is None:
        raise ConfigError("use_peft must be true: only LoRA adapters are trained (the base weights stay frozen)")
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = None if model_cfg.dtype in (None, "auto") else model_cfg.dtype
    model, processor = load_thinker(model_cfg.model_name_or_path, device=device, dtype=dtype,
                                    load_in_4bit=bool(model_cfg.load_in_4bit))
    for p in model.parameters():
        p.requires_grad_(False)
    if init_adapter:
        model = PeftModel.from_pretrained(model, init_adapter, is_trainable=True)
        peft_config = None
    model.train()
    return model, processor, peft_config


def check_lora_placement(model) -> None:
    """Raise unless only LoRA matrices of the language model are trainable (the towers stay frozen)."""
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    bad = [n for n in trainable if "lora_" not in n or "audio_tower" in n or ".visual." in n]
    if bad or not trainable:
        raise RuntimeError(f"LoRA must train only the language model; trainable outside it: {bad[:5] or 'nothing'}")
    n_train = sum(p.numel() for n, p in model.named_parameters() if p.requires_grad)
    n_all = sum(p.numel() for p in model.parameters())
    log.info("LoRA on %d tensors: %.3fM trainable of %.1fM", len(trainable), n_train / 1e6, n_all / 1e6)


def env_threads() -> None:
    """Keep CPU runs polite on shared machines unless the user set OMP_NUM_THREADS."""
    import torch

    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
