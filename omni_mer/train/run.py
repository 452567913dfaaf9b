"""``omni-mer train`` / ``train_grpo.py``: LoRA SFT or GRPO of the Qwen2.5-Omni thinker with TRL.

The recipe style of the llm backend (omni_mer.train.recipe): ``TrlParser((OmniTrainArgs, SFTConfig | GRPOConfig,
ModelConfig))``. SFT runs on TRL's ``SFTTrainer`` with the omni collator (omni_mer.train.sft), GRPO on
``OmniGRPOTrainer`` (omni_mer.train.omni_grpo), both with video, audio and ``use_audio_in_video`` from the one
MediaConfig, rewards from the registry (omni_mer.train.rewards).

    accelerate launch --config_file recipes/accelerate/cpu.yaml train_grpo.py \\
        --config recipes/tiny-cpu/grpo.yaml --model-name-or-path runs/tiny --output-dir checkpoints/tiny-grpo
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Sequence

from omni_mer.core.console import emit
from omni_mer.train.config import OmniTrainArgs
from omni_mer.train.data import ExtractFn, TrainData, load_records, select_records
from omni_mer.train.label_only import label_only_rows
from omni_mer.train.recipe import parse_recipe, plain_items, reward_functions

log = logging.getLogger(__name__)


def parse(argv: Sequence[str] | None = None, prog: str = "omni-mer train"):
    """``(OmniTrainArgs, SFTConfig | GRPOConfig, ModelConfig)`` from ``--config recipe.yaml`` plus flags.

    Raises ConfigError (one line naming the bad value) for a bad recipe or value; argparse exits 2 on a bad flag."""
    import sys

    from omni_mer.core.errors import ConfigError

    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        raise ConfigError("nothing to train: give --config RECIPE.yaml (e.g. recipes/tiny-cpu/grpo.yaml) and "
                          "--model-name-or-path DIR; --help lists every option")
    return parse_recipe(args, OmniTrainArgs, prog,
                        "LoRA SFT / GRPO (TRL) on the Qwen2.5-Omni thinker from a recipe",
                        "Example: omni-mer train --config recipes/tiny-cpu/grpo.yaml --model-name-or-path runs/tiny "
                        "--output-dir checkpoints/tiny-grpo (docs/training.md)", default_stage="grpo")


def default_extract_fn(script: OmniTrainArgs) -> ExtractFn | None:
    """The lite evidence extractor (ASR, text, prosody, face) for ``evidence: extract``; None for ``transcript``."""
    if script.evidence == "transcript":
        return None
    from omni_mer.evidence.extract import EvidenceExtractor

    return EvidenceExtractor().extract


def build_data(script: OmniTrainArgs, output_dir: str, extract_fn: ExtractFn | None = None,
               seed: int = 0) -> TrainData:
    """TrainData of the recipe's split and languages, evidence cached under cache_dir (default OUTPUT_DIR/cache);
    ``seed`` (the trainer's) draws the label-only SFT clips."""
    records = select_records(load_records(script.manifest), script.train_split, script.train_langs,
                             script.max_train_samples)
    if not records:
        raise ValueError(f"no records in {script.manifest} for split={script.train_split!r} "
                         f"langs={script.train_langs}")
    cache = Path(script.cache_dir) if script.cache_dir else Path(output_dir) / "cache"
    return TrainData(records, script.media, script.keep_set, cache, extract_fn,
                     label_only=label_only_rows(len(records), script.label_only_share, seed))


def make_trainer(script: OmniTrainArgs, train_cfg, model_cfg, data: TrainData):
    """The TRL trainer of the stage: SFTTrainer + the omni collator, or OmniGRPOTrainer."""
    from omni_mer.train.common import check_lora_placement, load_policy

    model, processor, peft_config = load_policy(model_cfg, script.init_adapter, device=train_cfg.device)
    if script.stage == "sft":
        from trl import SFTTrainer

        from omni_mer.train.sft import OmniSFTCollator, sft_dataset

        # the dataset rows are TrainData indices the collator turns into model inputs: keep them, skip TRL's
        # text tokenisation (there is no text column to tokenise)
        train_cfg.remove_unused_columns = False
        train_cfg.dataset_kwargs = {**(train_cfg.dataset_kwargs or {}), "skip_prepare_dataset": True}
        trainer = SFTTrainer(model=model, args=train_cfg, train_dataset=sft_dataset(data),
                             data_collator=OmniSFTCollator(processor, data, train_cfg.max_length),
                             processing_class=processor, peft_config=peft_config)
    else:
        from omni_mer.train.omni_grpo import OmniGRPOTrainer, grpo_dataset

        trainer = OmniGRPOTrainer(model=model, reward_funcs=reward_functions(script.reward_funcs), args=train_cfg,
                                  train_dataset=grpo_dataset(data), processing_class=processor,
                                  peft_config=peft_config, data=data)
    check_lora_placement(trainer.model)
    return trainer


def train(script: OmniTrainArgs, train_cfg, model_cfg, extract_fn: ExtractFn | None = None,
          use_default_extractor: bool = True) -> dict:
    """Run the configured stage end to end; returns the final metrics (the adapter is in output_dir)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    script.require_paths(model_cfg.model_name_or_path, train_cfg.output_dir)
    import yaml

    from omni_mer.train.cards import write_card
    from omni_mer.train.common import env_threads

    env_threads()
    if extract_fn is None and use_default_extractor:
        extract_fn = default_extract_fn(script)
    data = build_data(script, train_cfg.output_dir, extract_fn, train_cfg.seed)
    trainer = make_trainer(script, train_cfg, model_cfg, data)
    out = Path(train_cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    plugin = trainer.accelerator.state.deepspeed_plugin
    log.info("%s: %d clips, output %s; accelerate %s on %d process(es)%s", script.stage, len(data), out,
             trainer.accelerator.distributed_type, trainer.accelerator.num_processes,
             f", DeepSpeed ZeRO stage {plugin.zero_stage}" if plugin else "")
    result = trainer.train(resume_from_checkpoint=train_cfg.resume_from_checkpoint)
    trainer.save_model(str(out))
    metrics = {k: float(v) for k, v in result.metrics.items() if isinstance(v, (int, float))}
    metrics["steps"] = float(trainer.state.global_step)
    if script.eval_split and trainer.accelerator.is_main_process:
        from omni_mer.train.crosslingual import evaluate_adapter

        res = evaluate_adapter(model_cfg.model_name_or_path, str(out), script.manifest, script.eval_split,
                               media=script.media, extract_fn=extract_fn,
                               cache_dir=Path(script.cache_dir or out / "cache"))
        log.info("evaluation on split %s: %s", script.eval_split, res["summary"])
        metrics.update({f"eval_{k}": float(v) for k, v in res["summary"].items() if v is not None})
    if trainer.accelerator.is_main_process:
        (out / "log_history.json").write_text(json.dumps(trainer.state.log_history, indent=1))
        recipe = {"script": script.to_dict(), "model": plain_items(model_cfg), "train": plain_items(train_cfg)}
        (out / "recipe.yaml").write_text(yaml.safe_dump(recipe, allow_unicode=True, sort_keys=False), encoding="utf-8")
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        write_card(out, script, train_cfg, model_cfg, metrics, data.summary())
    return metrics


def main(argv: Sequence[str] | None = None, prog: str = "omni-mer train") -> int:
    """``omni-mer train`` / ``train_grpo.py``: parse, check the paths (before any heavy import), train."""
    script, train_cfg, model_cfg = parse(argv, prog)
    script.require_paths(model_cfg.model_name_or_path, train_cfg.output_dir)
    metrics = train(script, train_cfg, model_cfg)
    emit(f"{script.stage} done: adapter in {train_cfg.output_dir}; final metrics: "
         + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
    return 0
