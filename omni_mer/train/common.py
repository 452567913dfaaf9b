"""Shared trainer machinery for SFT and GRPO: LoRA model loading, accelerate setup, a deterministic resumable
sampler, TensorBoard + console logging, checkpoints, and the final adapter + card.

Runs unchanged on CPU (``accelerate launch --config_file recipes/accelerate/cpu.yaml``), DDP and DeepSpeed ZeRO-2/3.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np

from omni_mer.train.config import TrainConfig
from omni_mer.train.data import TrainData, TrainExample

log = logging.getLogger(__name__)

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


def resolve_dtype(name: str, on_gpu: bool):
    import torch

    if name == "auto":
        return torch.bfloat16 if on_gpu else torch.float32
    return getattr(torch, name)


def load_for_training(cfg: TrainConfig, device=None):
    """``(peft_model, processor)``: the thinker with LoRA on the language model's linear layers only.

    Every base weight (LLM, audio tower, vision tower) is frozen; only LoRA matrices train. ``init_adapter`` (e.g.
    the SFT run) is loaded trainable instead of a fresh LoRA.
    """
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model

    from omni_mer.omni.model import load_thinker

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = resolve_dtype(cfg.dtype, torch.device(device).type == "cuda")
    model, processor = load_thinker(cfg.model_name_or_path, device=device, dtype=dtype)
    for p in model.parameters():
        p.requires_grad_(False)
    if cfg.init_adapter:
        model = PeftModel.from_pretrained(model, cfg.init_adapter, is_trainable=True)
    else:
        lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                          target_modules=cfg.lora_target_regex, bias="none")
        model = get_peft_model(model, lora)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    bad = [n for n in trainable if "lora_" not in n or "audio_tower" in n or ".visual." in n]
    if bad or not trainable:
        raise RuntimeError(f"LoRA must train only the language model; trainable outside it: {bad[:5]}")
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    n_train = sum(p.numel() for n, p in model.named_parameters() if p.requires_grad)
    n_all = sum(p.numel() for p in model.parameters())
    log.info("LoRA r=%d alpha=%d on %d tensors: %.3fM trainable of %.1fM", cfg.lora_r, cfg.lora_alpha,
             len(trainable), n_train / 1e6, n_all / 1e6)
    return model, processor


def reset_rope_cache(model) -> None:
    """Qwen2.5-Omni caches rope deltas between calls; the one reset lives in omni_mer.omni.model."""
    from omni_mer.omni.model import reset_rope_deltas

    reset_rope_deltas(model)


class RunLogger:
    """Console + TensorBoard (``OUTPUT_DIR/runs``) + ``log_history.jsonl``; writes on the main process only."""

    def __init__(self, output_dir: Path, report_to: str, is_main: bool) -> None:
        self.is_main = is_main
        self.history_path = output_dir / "log_history.jsonl"
        self.writer = None
        if is_main and report_to == "tensorboard":
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(output_dir / "runs"))

    def scalars(self, step: int, metrics: dict[str, float]) -> None:
        if not self.is_main:
            return
        shown = " | ".join(f"{k} {v:.4g}" for k, v in metrics.items())
        log.info("step %d | %s", step, shown)
        if self.writer is not None:
            for k, v in metrics.items():
                self.writer.add_scalar(f"train/{k}", v, step)
        with self.history_path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"step": step, **metrics}) + "\n")

    def text(self, step: int, tag: str, text: str) -> None:
        if not self.is_main:
            return
        log.info("step %d | %s:\n%s", step, tag, text)
        if self.writer is not None:
            self.writer.add_text(tag, text.replace("\n", "  \n"), step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()


def latest_checkpoint(output_dir: Path) -> Path | None:
    found = [(int(m.group(1)), p) for p in output_dir.glob("checkpoint-*") if (m := CHECKPOINT_RE.match(p.name))]
    return max(found)[1] if found else None


class BaseTrainer:
    """Optimizer-step loop with gradient accumulation; subclasses implement ``compute_loss(examples)``."""

    stage = "base"

    def __init__(self, cfg: TrainConfig, data: TrainData, model=None, processor=None, accelerator=None) -> None:
        import torch
        from accelerate import Accelerator
        from accelerate.utils import set_seed

        self.cfg = cfg
        self.data = data
        self.output_dir = Path(cfg.output_dir)
        self.accelerator = accelerator or Accelerator(gradient_accumulation_steps=cfg.gradient_accumulation_steps)
        set_seed(cfg.seed)
        if model is None:
            model, processor = load_for_training(cfg, device=self.accelerator.device)
        self.processor = processor
        self.dtype = resolve_dtype(cfg.dtype, self.accelerator.device.type == "cuda")
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        warm = max(0, cfg.warmup_steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: min(1.0, (s + 1) / warm) if warm else 1.0)
        self.world = self.accelerator.num_processes
        self.rank = self.accelerator.process_index
        per_step = cfg.per_device_train_batch_size * self.world * cfg.gradient_accumulation_steps
        self.total_steps = cfg.max_steps if cfg.max_steps > 0 else max(
            1, math.ceil(cfg.num_train_epochs * len(data) / per_step))
        self.step = 0
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.logger = RunLogger(self.output_dir, cfg.report_to, self.accelerator.is_main_process)
        self.final_metrics: dict[str, float] = {}

    # ------------------------------------------------------------------ data
    def micro_batch(self, micro_step: int) -> list[TrainExample]:
        """Examples of one micro-batch on this process; a pure function of the step (so resuming is exact)."""
        n, bs = len(self.data), self.cfg.per_device_train_batch_size
        out = []
        for j in range(bs):
            pos = (micro_step * self.world + self.rank) * bs + j
            epoch, k = divmod(pos, n)
            perm = np.random.default_rng(self.cfg.seed + epoch).permutation(n)
            out.append(self.data[int(perm[k])])
        return out

    # ------------------------------------------------------------------ loop
    def compute_loss(self, examples: list[TrainExample], step: int):
        raise NotImplementedError

    def train(self) -> dict[str, float]:
        """Run to ``total_steps`` optimizer steps (resuming when configured); save the final adapter + card."""
        import torch

        cfg, acc = self.cfg, self.accelerator
        self._maybe_resume()
        ga = cfg.gradient_accumulation_steps
        t_start = time.perf_counter()
        while self.step < self.total_steps:
            sums: dict[str, float] = {}
            t0 = time.perf_counter()
            for micro in range(ga):
                examples = self.micro_batch(self.step * ga + micro)
                with acc.accumulate(self.model):
                    self.model.train()
                    loss, metrics = self.compute_loss(examples, self.step)
                    if not torch.isfinite(loss):
                        raise FloatingPointError(f"non-finite loss {loss.item()} at step {self.step}")
                    acc.backward(loss)
                    if acc.sync_gradients and cfg.max_grad_norm > 0:
                        metrics["grad_norm"] = float(acc.clip_grad_norm_(
                            [p for p in self.model.parameters() if p.requires_grad], cfg.max_grad_norm))
                    self.optimizer.step()
                    if acc.sync_gradients:
                        self.scheduler.step()
                    self.optimizer.zero_grad()
                metrics["loss"] = float(loss.detach())
                for k, v in metrics.items():
                    sums[k] = sums.get(k, 0.0) + float(v) / ga
            self.step += 1
            sums["lr"] = self.scheduler.get_last_lr()[0]
            sums["step_seconds"] = time.perf_counter() - t0
            self.final_metrics = sums
            if self.step % cfg.logging_steps == 0 or self.step == self.total_steps:
                self.logger.scalars(self.step, sums)
            if cfg.save_steps > 0 and self.step % cfg.save_steps == 0 and self.step < self.total_steps:
                self.save_checkpoint()
        self.final_metrics["train_seconds"] = time.perf_counter() - t_start
        self.final_metrics["steps"] = self.step
        self.save_final()
        self.logger.close()
        return self.final_metrics

    # ------------------------------------------------------------------ checkpoints
    def _deepspeed(self) -> bool:
        return self.accelerator.state.deepspeed_plugin is not None

    def save_checkpoint(self) -> Path:
        """``OUTPUT_DIR/checkpoint-<step>``: adapter, optimizer, scheduler, step (DeepSpeed: accelerate state)."""
        import torch

        acc = self.accelerator
        ckpt = self.output_dir / f"checkpoint-{self.step}"
        acc.wait_for_everyone()
        if self._deepspeed():
            acc.save_state(str(ckpt))
        elif acc.is_main_process:
            ckpt.mkdir(parents=True, exist_ok=True)
            acc.unwrap_model(self.model).save_pretrained(str(ckpt / "adapter"))
            torch.save({"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()},
                       ckpt / "optimizer.pt")
        if acc.is_main_process:
            (ckpt / "trainer_state.json").write_text(json.dumps({"step": self.step, "stage": self.stage}))
            self._rotate()
            log.info("saved checkpoint %s", ckpt)
        acc.wait_for_everyone()
        return ckpt

    def _rotate(self) -> None:
        found = sorted((int(m.group(1)), p) for p in self.output_dir.glob("checkpoint-*")
                       if (m := CHECKPOINT_RE.match(p.name)))
        for _, p in found[: max(0, len(found) - self.cfg.save_total_limit)]:
            shutil.rmtree(p, ignore_errors=True)

    def _maybe_resume(self) -> None:
        import torch
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        spec = self.cfg.resume_from_checkpoint
        if not spec:
            return
        ckpt = latest_checkpoint(self.output_dir) if spec in ("latest", "true", "True") else Path(spec)
        if ckpt is None:
            log.warning("resume_from_checkpoint=%s but no checkpoint in %s; starting fresh", spec, self.output_dir)
            return
        state_file = ckpt / "trainer_state.json"
        if not state_file.is_file():
            raise FileNotFoundError(f"{ckpt} is not a checkpoint (no trainer_state.json)")
        if self._deepspeed():
            self.accelerator.load_state(str(ckpt))
        else:
            weights = load_file(str(ckpt / "adapter" / "adapter_model.safetensors"))
            set_peft_model_state_dict(self.accelerator.unwrap_model(self.model), weights)
            opt = torch.load(ckpt / "optimizer.pt", map_location="cpu", weights_only=False)
            self.optimizer.load_state_dict(opt["optimizer"])
            self.scheduler.load_state_dict(opt["scheduler"])
        self.step = int(json.loads(state_file.read_text())["step"])
        log.info("resumed from %s at step %d", ckpt, self.step)

    def save_final(self) -> Path:
        """Final adapter in OUTPUT_DIR (loads with omni_mer.omni.model.load_thinker(..., adapter=OUTPUT_DIR)),
        the resolved recipe, metrics.json and the README card."""
        import yaml

        from omni_mer.train.cards import write_card

        acc = self.accelerator
        acc.wait_for_everyone()
        state = acc.get_state_dict(self.model)
        if acc.is_main_process:
            unwrapped = acc.unwrap_model(self.model)
            unwrapped.save_pretrained(str(self.output_dir), state_dict=state)
            (self.output_dir / "recipe.yaml").write_text(yaml.safe_dump(self.cfg.to_dict(), allow_unicode=True,
                                                                         sort_keys=False), encoding="utf-8")
            metrics = {k: float(v) for k, v in self.final_metrics.items()}
            (self.output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
            write_card(self.output_dir, self.cfg, metrics, self.data.summary())
            log.info("final adapter saved to %s", self.output_dir)
        acc.wait_for_everyone()
        return self.output_dir


def env_threads() -> None:
    """Keep CPU runs polite on shared machines unless the user set OMP_NUM_THREADS."""
    import torch

    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
