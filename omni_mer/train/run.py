"""Entry used by train_grpo.py: parse recipe + flags, build the data, run the stage's trainer."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

from omni_mer.cli import emit
from omni_mer.train.config import TrainConfig
from omni_mer.train.data import ExtractFn, TrainData, load_records, select_records

log = logging.getLogger(__name__)


def parse_config(argv: Sequence[str] | None = None) -> TrainConfig:
    """TrainConfig from ``--config recipe.yaml`` plus command-line overrides (validated; errors name valid values)."""
    from trl import TrlParser

    parser = TrlParser((TrainConfig,))
    (cfg,) = parser.parse_args_and_config(list(argv) if argv is not None else None)
    return cfg


def default_extract_fn(cfg: TrainConfig) -> ExtractFn | None:
    """The lite evidence extractor (ASR, text, prosody, face) for ``evidence: extract``; None for ``transcript``."""
    if cfg.evidence == "transcript":
        return None
    from omni_mer.evidence.extract import EvidenceExtractor

    return EvidenceExtractor().extract


def build_data(cfg: TrainConfig, extract_fn: ExtractFn | None = None) -> TrainData:
    """TrainData of the recipe's split and languages, evidence cached under cache_dir (default OUTPUT_DIR/cache)."""
    records = select_records(load_records(cfg.manifest), cfg.train_split, cfg.train_langs, cfg.max_train_samples)
    if not records:
        raise ValueError(f"no records in {cfg.manifest} for split={cfg.train_split!r} langs={cfg.train_langs}")
    cache = Path(cfg.cache_dir) if cfg.cache_dir else Path(cfg.output_dir) / "cache"
    return TrainData(records, cfg.media, cfg.keep_set, cache, extract_fn)


def train(cfg: TrainConfig, extract_fn: ExtractFn | None = None, use_default_extractor: bool = True) -> dict:
    """Run the configured stage end to end; returns the final metrics (the adapter is in cfg.output_dir)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    cfg.require_paths()
    from omni_mer.train.common import env_threads

    env_threads()
    if extract_fn is None and use_default_extractor:
        extract_fn = default_extract_fn(cfg)
    data = build_data(cfg, extract_fn)
    if cfg.stage == "sft":
        from omni_mer.train.sft import SFTTrainer as Trainer
    else:
        from omni_mer.train.grpo import GRPOTrainer as Trainer
    trainer = Trainer(cfg, data)
    log.info("%s: %d clips, %d optimizer steps, output %s", cfg.stage, len(data), trainer.total_steps, cfg.output_dir)
    metrics = trainer.train()
    if cfg.eval_split:
        from omni_mer.train.crosslingual import evaluate_adapter

        if trainer.accelerator.is_main_process:
            res = evaluate_adapter(cfg.model_name_or_path, cfg.output_dir, cfg.manifest, cfg.eval_split,
                                   media=cfg.media, extract_fn=extract_fn,
                                   cache_dir=Path(cfg.cache_dir or Path(cfg.output_dir) / "cache"))
            log.info("evaluation on split %s: %s", cfg.eval_split, res["summary"])
            metrics.update({f"eval_{k}": float(v) for k, v in res["summary"].items() if v is not None})
            import json

            from omni_mer.train.cards import write_card

            (Path(cfg.output_dir) / "metrics.json").write_text(json.dumps(metrics, indent=2))
            write_card(cfg.output_dir, cfg, metrics, data.summary())
    return metrics


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = parse_config(argv)
    metrics = train(cfg)
    emit(f"{cfg.stage} done: adapter in {cfg.output_dir}; final metrics: "
          + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
    return 0
