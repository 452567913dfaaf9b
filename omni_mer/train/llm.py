"""``omni-mer train-llm``: LoRA SFT then GRPO of the text-only Qwen2.5 on real transcripts, with TRL.

As open-r1 does: one recipe YAML parsed by ``TrlParser((LLMTrainArgs, SFTConfig | GRPOConfig, ModelConfig))`` (every
key also a flag; ``--stage`` picks the TRL config class), TRL's ``SFTTrainer`` (``assistant_only_loss``: the loss is
on the assistant turn only) and ``GRPOTrainer`` with the project's reward registry (omni_mer.train.rewards; a
reward that fails raises, naming itself). Data: omni_mer.train.llm_data (the same prompt the llm scorer builds).

GRPO after SFT (``init_adapter``): the SFT adapter is merged into the base weights and a fresh LoRA is trained on
top, so TRL's reference model (the same weights with the adapter disabled) is the SFT policy and the logged KL is
the distance from it. The GRPO folder records the merged adapter in ``omni_mer_base_adapter.json``;
omni_mer.llm.model.load_llm applies it before the GRPO adapter.

    omni-mer train-llm --config recipes/llm/qwen2.5-0.5b-cpu/sft.yaml
    omni-mer train-llm --config recipes/llm/qwen2.5-0.5b-cpu/grpo.yaml --init-adapter runs/llm05/sft
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from omni_mer.core.errors import ConfigError
from omni_mer.llm.model import BASE_ADAPTER_FILE, RECIPE_FILE
from omni_mer.train.recipe import STAGES, parse_recipe, plain_items, reward_functions

log = logging.getLogger(__name__)

DEFAULT_DATASETS = ["mosei", "sims2", "mer2023"]


@dataclass
class LLMTrainArgs:
    """The project's keys of a train-llm recipe (TRL's SFTConfig / GRPOConfig and ModelConfig hold the rest)."""

    stage: str = field(default="sft", metadata={"help": f"training stage ({', '.join(STAGES)})"})
    data_dir: str = field(default="../shared/data/text", metadata={"help": "folder of the labelled transcript tables"})
    train_datasets: list[str] = field(default_factory=lambda: list(DEFAULT_DATASETS),
                                      metadata={"help": "datasets trained on (omni_mer.texthead.corpus.DATASETS)"})
    train_per_dataset: int = field(default=200, metadata={"help": "train rows per dataset (seeded shuffle, first N)"})
    row_seed: int = field(default=0, metadata={"help": "seed of the row selection"})
    class_balance: float = field(default=0.0, metadata={
        "help": "train rows drawn with class shares proportional to frequency^(1 - this), per dataset: 0 = a plain "
                "shuffle, 0.5 = square root, 1 = uniform; in [0, 1]. 0.5 and 1 did worse than 0 on the 0.5B "
                "(docs/llm.md §4)"})
    label_only_share: float = field(default=0.0, metadata={
        "help": "SFT: share of the rows whose target is the label-only answer <think></think><answer>LABEL</answer> "
                "(what label scoring reads; omni_mer.train.llm_data.sft_records); in [0, 0.5)"})
    text_reading: bool = field(default=False, metadata={
        "help": "prompts show the shipped text head's reading of each transcript (its class probabilities and the "
                "words it leans on; omni_mer.train.llm_data.read_text); the adapter's recipe records it and the llm "
                "scorer follows it. Off in the recipes: it did not help the 0.5B (docs/llm.md §4)"})
    init_adapter: str | None = field(default=None, metadata={"help": "GRPO: the SFT adapter, merged before training"})
    reward_funcs: list[str] = field(default_factory=lambda: ["format", "accuracy_ordinal", "grounding", "language"],
                                    metadata={"help": "GRPO rewards (omni_mer.train.rewards.REWARDS)"})

    def __post_init__(self) -> None:
        from omni_mer.texthead.corpus import DATASETS
        from omni_mer.train.rewards import REWARDS

        if self.stage not in STAGES:
            raise ConfigError(f"stage={self.stage!r} is not valid; valid values: {', '.join(STAGES)}")
        if isinstance(self.train_datasets, str):
            self.train_datasets = [s for s in self.train_datasets.replace(",", " ").split() if s]
        if isinstance(self.reward_funcs, str):
            self.reward_funcs = [s for s in self.reward_funcs.replace(",", " ").split() if s]
        for d in self.train_datasets:
            if d not in DATASETS:
                raise ConfigError(f"train_datasets: {d!r} is not valid; valid values: {', '.join(DATASETS)}")
        for r in self.reward_funcs:
            if r not in REWARDS:
                raise ConfigError(f"reward_funcs: {r!r} is not valid; valid rewards: {', '.join(REWARDS)}")
        from omni_mer.train.label_only import check_label_only_share

        check_label_only_share(self.label_only_share, self.stage)
        cb = self.class_balance
        if isinstance(cb, bool) or not isinstance(cb, (int, float)) or not 0.0 <= cb <= 1.0:
            raise ConfigError(f"class_balance={cb!r} is not valid; valid values: a number in [0, 1] "
                              "(0 = the datasets' own class mix, 1 = uniform)")
        self.class_balance = float(cb)
        if self.train_per_dataset < 1:
            raise ConfigError(f"train_per_dataset={self.train_per_dataset} must be >= 1")


def parse(argv: Sequence[str] | None = None, prog: str = "omni-mer train-llm"):
    """(LLMTrainArgs, SFTConfig | GRPOConfig, ModelConfig) from ``--config`` + flags (omni_mer.train.recipe)."""
    script, train_cfg, model_cfg = parse_recipe(
        argv, LLMTrainArgs, prog, "LoRA SFT / GRPO (TRL) of the text-only Qwen2.5 on real transcripts",
        "Example: omni-mer train-llm --config recipes/llm/qwen2.5-0.5b-cpu/sft.yaml (docs/llm.md)")
    if not model_cfg.model_name_or_path:
        raise ConfigError("model_name_or_path is required: a converted Qwen2 folder, a registered name such as "
                          "qwen2.5-coder-0.5b (after `bash scripts/setup.sh --llm`) or `omni-mer tiny-llm` output")
    return script, train_cfg, model_cfg


def check_init_adapter(script: LLMTrainArgs) -> None:
    """ConfigError unless ``init_adapter`` (when set) is a train-llm output trained on the same prompt as this run
    (``text_reading``, and the same text head's reading). Checked when training starts: a recipe names the folder an
    earlier stage will write."""
    if not script.init_adapter:
        return
    from omni_mer.llm.model import text_head_mismatch, text_reading_mismatch

    if not (Path(script.init_adapter) / RECIPE_FILE).is_file():
        raise ConfigError(f"init_adapter={script.init_adapter!r}: no {RECIPE_FILE} there (a train-llm output folder "
                          "is needed: its recipe says which prompt it was trained on)")
    why = text_reading_mismatch(script.init_adapter, script.text_reading)
    if why:
        raise ConfigError(f"{why} (both stages must see one prompt)")
    why = text_head_mismatch(script.init_adapter) if script.text_reading else None
    if why:
        raise ConfigError(f"{why} (both stages must read one head)")


def _load_policy(model_cfg, script: LLMTrainArgs):
    """The base model in the recipe's ``dtype`` (``auto``/unset: fp32 on CPU, bf16 on GPU), with ``init_adapter``
    merged into it when given."""
    import torch

    from omni_mer.llm.model import cpu_has_native_bf16, default_device, load_llm

    dtype = None if model_cfg.dtype in (None, "auto") else getattr(torch, model_cfg.dtype)
    if dtype == torch.bfloat16 and torch.device(default_device()).type == "cpu" and not cpu_has_native_bf16():
        log.warning("dtype bfloat16 on a CPU without native bf16 (no avx512_bf16/amx_bf16): emulated, slower than "
                    "fp32; set dtype: float32 and bf16: false in the recipe (docs/llm.md §4)")
    model, tokenizer = load_llm(model_cfg.model_name_or_path, script.init_adapter, dtype=dtype)
    if script.init_adapter:
        model = model.merge_and_unload()
    model.train()
    return model, tokenizer


def use_trainable_chat_template(tokenizer, conversations: Sequence[list[dict]]) -> bool:
    """Give ``tokenizer`` TRL's Qwen2.5 chat template when its own is one TRL cannot mark for the assistant-only loss
    but renders every one of ``conversations`` to the same text; True when it did.

    TRL's SFTTrainer patches only templates it knows with ``{% generation %}`` markers. The Qwen2.5-Coder-1.5B GGUF
    ships a variant of Qwen2.5's template (its tool-call example is written with doubled braces) that it does not
    know, so SFT stopped with "The chat template is not training-compatible"; without tools the two render the same
    tokens. A template that renders any conversation differently is left alone (TRL's error then stands)."""
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers, qwen2_5_chat_template

    own = tokenizer.chat_template
    if not own or not isinstance(own, str) or not conversations or has_generation_markers(own):
        return False  # named templates (a dict) and marked ones: SFTTrainer judges them itself
    try:
        get_training_chat_template(tokenizer)
        return False  # one TRL knows (Qwen2.5's itself among them): it patches it
    except ValueError:
        pass

    def render(template: str) -> list[str]:
        # the whole conversation (what SFT trains) and its prompt (what label scoring and GRPO render)
        return [text for c in conversations for text in (
            tokenizer.apply_chat_template(c, tokenize=False, chat_template=template),
            tokenizer.apply_chat_template(c[:-1], tokenize=False, add_generation_prompt=True, chat_template=template))]

    if render(own) != render(qwen2_5_chat_template):
        log.warning("chat template: the model's own is not one TRL can mark for the assistant-only loss and renders the "
                    "training conversations differently from Qwen2.5's; it is kept (TRL's error follows)")
        return False
    log.info("chat template: the model's own renders the %d training conversations as Qwen2.5's does; training with "
             "TRL's Qwen2.5 template, which TRL marks for the assistant-only loss", len(conversations))
    tokenizer.chat_template = qwen2_5_chat_template
    return True


def train(script: LLMTrainArgs, train_cfg, model_cfg) -> dict:
    """Run the stage; returns the final metrics. The adapter, tokenizer, log history and recipe land in output_dir."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import yaml
    from trl import GRPOTrainer, SFTTrainer, get_peft_config

    from omni_mer.train.llm_data import grpo_records, load_rows, read_text, sft_records, to_dataset

    check_init_adapter(script)
    peft_config = get_peft_config(model_cfg)
    if peft_config is None:
        raise ConfigError("use_peft must be true: only LoRA adapters are trained (the base weights stay frozen)")
    rows = load_rows(script.data_dir, "train", script.train_datasets, script.train_per_dataset, script.row_seed,
                     script.class_balance)
    reading = None
    if script.text_reading:
        rows, reading = read_text(rows)
        log.info("text head %s (%s) read %d rows, %.3f s each", reading["head"], reading["digest"], len(rows),
                 reading["seconds_per_row"])
    model, tokenizer = _load_policy(model_cfg, script)
    out = Path(train_cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if script.stage == "sft":
        records = sft_records(rows, script.label_only_share, script.row_seed)
        if train_cfg.assistant_only_loss:
            use_trainable_chat_template(tokenizer, [r["messages"] for r in records])
        trainer = SFTTrainer(model=model, args=train_cfg, train_dataset=to_dataset(records),
                             processing_class=tokenizer, peft_config=peft_config)
    else:
        trainer = GRPOTrainer(model=model, reward_funcs=reward_functions(script.reward_funcs), args=train_cfg,
                              train_dataset=to_dataset(grpo_records(rows)), processing_class=tokenizer,
                              peft_config=peft_config)
    log.info("%s: %d rows (%s), output %s", script.stage, len(rows), ", ".join(script.train_datasets), out)
    plugin = trainer.accelerator.state.deepspeed_plugin
    log.info("accelerate: %s on %d process(es)%s", trainer.accelerator.distributed_type,
             trainer.accelerator.num_processes, f", DeepSpeed ZeRO stage {plugin.zero_stage}" if plugin else "")
    result = trainer.train(resume_from_checkpoint=train_cfg.resume_from_checkpoint)
    trainer.save_model(str(out))
    if trainer.accelerator.is_main_process:
        tokenizer.save_pretrained(str(out))
        if script.init_adapter:
            (out / BASE_ADAPTER_FILE).write_text(json.dumps({"merged_adapter": str(Path(script.init_adapter))}))
        (out / "log_history.json").write_text(json.dumps(trainer.state.log_history, indent=1))
        recipe = {"script": vars(script), "model": plain_items(model_cfg), "train": plain_items(train_cfg),
                  "text_head": reading}
        (out / RECIPE_FILE).write_text(yaml.safe_dump(recipe, allow_unicode=True, sort_keys=False), encoding="utf-8")
    metrics = dict(result.metrics)
    metrics["rows"] = len(rows)
    return metrics


def main(argv: Sequence[str] | None = None, prog: str = "omni-mer train-llm") -> int:
    from omni_mer.core.console import emit

    script, train_cfg, model_cfg = parse(argv, prog)
    metrics = train(script, train_cfg, model_cfg)
    emit(f"{script.stage} done: adapter in {train_cfg.output_dir}; "
         + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items() if isinstance(v, (int, float))))
    return 0
