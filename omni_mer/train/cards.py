"""The small README card saved next to a trained adapter: base model, data, recipe, metrics."""

from __future__ import annotations

import json
from pathlib import Path

from omni_mer.train.config import OmniTrainArgs

_RECIPE_KEYS = ("stage", "lora_r", "lora_alpha", "lora_dropout", "learning_rate", "max_steps", "num_train_epochs",
                "per_device_train_batch_size", "gradient_accumulation_steps", "num_generations", "beta",
                "epsilon", "loss_type", "reward_funcs", "reward_weights", "max_completion_length", "temperature",
                "fps", "max_frames", "max_side", "use_audio_in_video", "keep", "train_langs", "label_only_share",
                "seed")


def card_text(script: OmniTrainArgs, train_cfg, model_cfg, metrics: dict, data_summary: dict) -> str:
    """Markdown of the card (script: the omni keys; train_cfg: TRL's SFTConfig/GRPOConfig; model_cfg: ModelConfig)."""
    cfg = script
    name = train_cfg.run_name or Path(train_cfg.output_dir).name
    trainer = "TRL SFTTrainer" if script.stage == "sft" else "TRL GRPOTrainer (omni_mer.train.omni_grpo)"
    lines = [
        f"# omni-mer LoRA adapter: {name}",
        "",
        f"- **Stage**: {cfg.stage.upper()} with {trainer} (LoRA on the Qwen2.5-Omni thinker's language model; audio "
        "and vision towers frozen)",
        f"- **Base model**: `{model_cfg.model_name_or_path}`" + (f" (initial adapter `{cfg.init_adapter}`)"
                                                                 if cfg.init_adapter else ""),
        f"- **Data**: `{cfg.manifest}` split `{cfg.train_split}`, languages {', '.join(cfg.train_langs)}: "
        f"{data_summary.get('n', 0)} clips; per language {json.dumps(data_summary.get('langs', {}))}; "
        f"per label {json.dumps(data_summary.get('labels', {}))}"
        + (f"; {data_summary['label_only']} with the label-only SFT target" if data_summary.get("label_only") else ""),
        f"- **Evidence**: {cfg.evidence}",
        "",
        "## Load",
        "",
        "```",
        f"python test_script.py --backend omni --model {model_cfg.model_name_or_path} --adapter {train_cfg.output_dir}",
        "```",
        "",
        "## Recipe",
        "",
        "| key | value |",
        "|---|---|",
    ]
    d = {**vars(model_cfg), **train_cfg.to_dict(), **cfg.to_dict()}
    lines += [f"| {k} | {d[k]} |" for k in _RECIPE_KEYS if k in d]
    lines += ["", "Full resolved recipe: `recipe.yaml`.", "", "## Final metrics", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v:.4g} |" for k, v in metrics.items()]
    return "\n".join(lines) + "\n"


def write_card(output_dir: str | Path, script: OmniTrainArgs, train_cfg, model_cfg, metrics: dict,
               data_summary: dict) -> Path:
    """Write OUTPUT_DIR/README.md (replacing the generic card TRL/peft write)."""
    path = Path(output_dir) / "README.md"
    path.write_text(card_text(script, train_cfg, model_cfg, metrics, data_summary), encoding="utf-8")
    return path
