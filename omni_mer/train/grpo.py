"""GRPO with verifiable rewards, in a compact own loop that carries video + audio everywhere.

Why not TRL's GRPOTrainer: in TRL 1.16 it passes no video/audio features into the loss and reference forwards and
never passes ``use_audio_in_video`` to generate (docs/training.md, Qwen2.5-Omni facts): the loss would silently train on text only. Here one
batch dict — input_ids, attention_mask, pixel_values_videos, video_grid_thw, video_second_per_grid,
input_features, feature_attention_mask, use_audio_in_video, exactly as omni_mer.omni.inputs.build_inputs made it —
feeds generation, the policy forward and the reference forward (the same model with the LoRA adapter disabled).

Per prompt: G completions are sampled, scored by the reward registry (weighted sum), turned into group-normalised
advantages, and the clipped surrogate with a k3 KL penalty to the reference is minimised (``loss_type`` "grpo":
mean over each completion's tokens, then over completions; "dapo": mean over all tokens).
"""

from __future__ import annotations

import contextlib
import json
import logging

from omni_mer.omni.inputs import build_inputs, suppress_token_ids, to_device
from omni_mer.omni.model import base_thinker
from omni_mer.train.common import BaseTrainer, reset_rope_cache
from omni_mer.train.data import TrainExample
from omni_mer.train.rewards import combine_rewards

log = logging.getLogger(__name__)

# Keys of a build_inputs batch that are repeated per sample when a prompt is expanded to G completions.
FEATURE_KEYS = ("pixel_values_videos", "video_grid_thw", "video_second_per_grid", "input_features",
                "feature_attention_mask")


def repeat_inputs(inputs: dict, g: int) -> dict:
    """A one-prompt batch repeated ``g`` times, multimodal features included (each copy is its own video/audio)."""
    out = {}
    for k, v in inputs.items():
        if k in ("input_ids", "attention_mask", "video_grid_thw", "feature_attention_mask"):
            out[k] = v.repeat(g, 1)
        elif k == "pixel_values_videos":
            out[k] = v.repeat(g, 1)
        elif k == "input_features":
            out[k] = v.repeat(g, 1, 1)
        elif k == "video_second_per_grid":
            out[k] = v.repeat(g)
        else:
            out[k] = v
    return out


@contextlib.contextmanager
def logits_from(model, start: int):
    """Make the model compute logits only for positions ``start:`` (the lm_head sees a slice of the hidden
    states), so a long multimodal prompt never materialises full-vocabulary logits (-1: last position only)."""
    head = base_thinker(model).lm_head

    def pre(_module, args):
        return (args[0][:, start:],) + tuple(args[1:])

    handle = head.register_forward_pre_hook(pre)
    try:
        yield
    finally:
        handle.remove()


def completion_mask(completion_ids, eos_ids: list[int]):
    """1 up to and including the first end-of-sequence token of each row, 0 after."""
    import torch

    is_eos = torch.zeros_like(completion_ids, dtype=torch.bool)
    for e in eos_ids:
        is_eos |= completion_ids == e
    n = completion_ids.shape[1]
    first = torch.where(is_eos.any(1), is_eos.int().argmax(1), torch.full_like(is_eos[:, 0], n, dtype=torch.long))
    idx = torch.arange(n, device=completion_ids.device).unsqueeze(0)
    return (idx <= first.unsqueeze(1)).long()


def completion_logps(model, batch: dict, completion_ids, comp_mask):
    """Per-token log-probabilities of ``completion_ids`` after the prompt in ``batch`` (B, C).

    ``batch`` is the build_inputs dict of the prompt: EVERY multimodal feature in it goes into this forward."""
    import torch

    prompt_len = batch["input_ids"].shape[1]
    feed = dict(batch)
    feed["input_ids"] = torch.cat([batch["input_ids"], completion_ids], dim=1)
    feed["attention_mask"] = torch.cat([batch["attention_mask"], comp_mask.to(batch["attention_mask"].dtype)], dim=1)
    reset_rope_cache(model)
    with logits_from(model, prompt_len - 1):
        logits = model(**feed, use_cache=False).logits[:, :-1]
    logp = torch.log_softmax(logits.float(), dim=-1)
    return logp.gather(-1, completion_ids.unsqueeze(-1)).squeeze(-1)


def grpo_loss(model, batch: dict, completion_ids, comp_mask, advantages, beta: float = 0.04,
              epsilon: float = 0.2, loss_type: str = "grpo", old_logps=None):
    """Clipped GRPO surrogate + beta * k3 KL(policy || reference) for one prompt's G completions.

    The policy and the reference (adapter disabled) both see the full multimodal ``batch``. Returns
    ``(loss, metrics, per_token_logps, ref_per_token_logps or None)``."""
    import torch

    mask = comp_mask.float()
    logps = completion_logps(model, batch, completion_ids, comp_mask)
    old = logps.detach() if old_logps is None else old_logps
    ratio = torch.exp(logps - old)
    adv = advantages.unsqueeze(1).to(logps.dtype)
    per_token = -torch.min(ratio * adv, torch.clamp(ratio, 1 - epsilon, 1 + epsilon) * adv)
    metrics: dict[str, float] = {}
    ref = None
    if beta > 0:
        peft_model = _unwrap(model)
        with torch.no_grad(), peft_model.disable_adapter():
            ref = completion_logps(model, batch, completion_ids, comp_mask)
        delta = ref - logps
        kl = torch.exp(delta) - delta - 1
        per_token = per_token + beta * kl
        metrics["kl"] = float(((kl * mask).sum() / mask.sum().clamp(min=1)).detach())
    else:
        metrics["kl"] = 0.0
    if loss_type == "grpo":
        loss = ((per_token * mask).sum(1) / mask.sum(1).clamp(min=1)).mean()
    else:
        loss = (per_token * mask).sum() / mask.sum().clamp(min=1)
    clipped = ((ratio - 1).abs() > epsilon).float()
    metrics["clip_ratio"] = float(((clipped * mask).sum() / mask.sum().clamp(min=1)).detach())
    return loss, metrics, logps, ref


def _unwrap(model):
    return model.module if hasattr(model, "module") and not hasattr(model, "disable_adapter") else model


def group_advantages(rewards, eps: float = 1e-4):
    """(r - group mean) / (group std + eps) for one prompt's completions."""
    import torch

    r = torch.as_tensor(rewards, dtype=torch.float32)
    return (r - r.mean()) / (r.std(unbiased=False) + eps)


class GRPOTrainer(BaseTrainer):
    """LoRA GRPO over manifest clips; rewards from omni_mer.train.rewards (names + weights from the recipe)."""

    stage = "grpo"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        tok = self.processor.tokenizer
        self.suppress = suppress_token_ids(self.processor)
        gen_eos = base_thinker(self.accelerator.unwrap_model(self.model)).generation_config.eos_token_id
        eos = gen_eos if isinstance(gen_eos, list) else [gen_eos]
        self.eos_ids = sorted({int(e) for e in eos if e is not None} | {tok.convert_tokens_to_ids("<|im_end|>")})
        self.pad_id = tok.pad_token_id

    def generate(self, batch: dict):
        """Sample G completions for the (already repeated) batch; returns (completion_ids, mask)."""
        import torch
        from trl.models.utils import unwrap_model_for_generation

        cfg = self.cfg
        with unwrap_model_for_generation(self.model, self.accelerator) as unwrapped:
            unwrapped.eval()
            reset_rope_cache(unwrapped)
            # only the last position's logits are sampled from: never build them for the whole prompt
            with torch.no_grad(), logits_from(unwrapped, -1):
                out = unwrapped.generate(
                    **batch, do_sample=True, temperature=cfg.temperature, top_p=cfg.top_p,
                    max_new_tokens=cfg.max_completion_length, suppress_tokens=self.suppress,
                    pad_token_id=self.pad_id, eos_token_id=self.eos_ids)
            reset_rope_cache(unwrapped)
            unwrapped.train()
        comp = out[:, batch["input_ids"].shape[1]:]
        if comp.shape[1] == 0:  # every sample ended at once: keep one eos so logps have a position
            comp = torch.full((out.shape[0], 1), self.eos_ids[0], dtype=out.dtype, device=out.device)
        return comp, completion_mask(comp, self.eos_ids)

    def compute_loss(self, examples: list[TrainExample], step: int):
        import torch

        cfg, g = self.cfg, self.cfg.num_generations
        tok = self.processor.tokenizer
        total = 0.0
        sums: dict[str, float] = {}
        samples = []
        for ex in examples:
            one = build_inputs(self.processor, [ex.clip], [ex.messages], cfg.media, ex.keep)
            batch = to_device(repeat_inputs(one, g), self.accelerator.device, self.dtype)
            comp_ids, comp_mask = self.generate(batch)
            texts = tok.batch_decode(comp_ids * comp_mask + self.pad_id * (1 - comp_mask), skip_special_tokens=True)
            cols = {k: [v] * g for k, v in ex.columns().items()}
            rewards, per = combine_rewards(cfg.reward_funcs, cfg.reward_weights, texts, **cols)
            adv = group_advantages(rewards).to(self.accelerator.device)
            loss, metrics, _, _ = grpo_loss(self.model, batch, comp_ids, comp_mask, adv, beta=cfg.beta,
                                         epsilon=cfg.epsilon, loss_type=cfg.loss_type)
            total = total + loss / len(examples)
            metrics["reward"] = float(sum(rewards) / len(rewards))
            metrics["reward_std"] = float(torch.tensor(rewards).std(unbiased=False))
            metrics["completion_length"] = float(comp_mask.sum(1).float().mean())
            for name, values in per.items():
                vals = [float(v) for v in values if v is not None]
                metrics[f"rewards/{name}"] = sum(vals) / len(vals) if vals else 0.0
            for k, v in metrics.items():
                sums[k] = sums.get(k, 0.0) + v / len(examples)
            for i in range(min(cfg.log_completions, g)):
                samples.append({"step": step + 1, "id": ex.id, "gold": ex.label, "reward": rewards[i],
                                **{n: per[n][i] for n in per}, "completion": texts[i]})
        if samples and (step + 1) % cfg.logging_steps == 0 and self.accelerator.is_main_process:
            self.logger.text(step + 1, "completions", "\n\n".join(
                f"[{s['id']} gold={s['gold']} reward={s['reward']:.3f}] {s['completion']}" for s in samples))
            with (self.output_dir / "completions.jsonl").open("a", encoding="utf-8") as fh:
                for s in samples:
                    fh.write(json.dumps(s, ensure_ascii=False) + "\n")
        return total, sums
