"""Entry used by train_grpo.py: parse recipe + flags, build the data, run the stage's trainer."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Sequence

from omni_mer.core.console import emit
from omni_mer.core.errors import ConfigError
from omni_mer.train.config import TrainConfig
from omni_mer.train.data import ExtractFn, TrainData, load_records, select_records

log = logging.getLogger(__name__)


def build_parser(prog: str = "omni-mer train"):
    """The TrlParser of TrainConfig: every field a flag, shown kebab-case first (``--output-dir``; the YAML-key
    spelling ``--output_dir`` works too), plus ``--config`` (which TrlParser handles itself) so --help lists it."""
    import argparse

    from trl import TrlParser

    parser = TrlParser((TrainConfig,), prog=prog, description="LoRA SFT / GRPO on the Qwen2.5-Omni thinker from a recipe",
                       epilog="Example: omni-mer train --config recipes/tiny-cpu/grpo.yaml "
                              "--model-name-or-path runs/tiny --output-dir checkpoints/tiny-grpo (docs/training.md)")
    parser.add_argument("--config", metavar="RECIPE.yaml", default=argparse.SUPPRESS,
                        help="recipe YAML whose keys set the defaults (e.g. recipes/tiny-cpu/grpo.yaml); "
                             "flags given here override it")
    for action in parser._actions:  # kebab-case first in usage and help, like every other omni-mer command
        action.option_strings.sort(key=lambda opt: "_" in opt)
    return parser


def parse_config(argv: Sequence[str] | None = None, prog: str = "omni-mer train") -> TrainConfig:
    """TrainConfig from ``--config recipe.yaml`` plus command-line overrides (validated; errors name valid values).

    Raises ConfigError (one line naming the bad value) for a bad recipe or value; argparse exits 2 on a bad flag.
    """
    import yaml

    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        raise ConfigError("nothing to train: give --config RECIPE.yaml (e.g. recipes/tiny-cpu/grpo.yaml) and "
                          "--model-name-or-path DIR; --help lists every option")
    # TrlParser only recognises the spaced form; "--config=X" would otherwise be silently ignored
    args = [part for a in args for part in (a.split("=", 1) if a.startswith("--config=") else [a])]
    if "--config" in args and args.index("--config") == len(args) - 1:
        raise ConfigError("--config needs a recipe YAML path (e.g. recipes/tiny-cpu/grpo.yaml)")
    recipe = args[args.index("--config") + 1] if "--config" in args else None
    if recipe is not None and not Path(recipe).is_file():
        raise ConfigError(f"--config {recipe!r}: no such recipe file")
    parser = build_parser(prog)
    try:
        cfg, *_ = parser.parse_args_and_config(args)
    except ConfigError:
        raise
    except (ValueError, TypeError, yaml.YAMLError) as exc:  # a recipe TrlParser cannot read: bad key, not a mapping
        where = f"--config {recipe!r}: " if recipe else ""
        raise ConfigError(f"{where}{' '.join(str(exc).split())}") from exc
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


def main(argv: Sequence[str] | None = None, prog: str = "omni-mer train") -> int:
    """``omni-mer train`` / ``train_grpo.py``: parse, check the paths (before any heavy import), train."""
    cfg = parse_config(argv, prog)
    cfg.require_paths()
    metrics = train(cfg)
    emit(f"{cfg.stage} done: adapter in {cfg.output_dir}; final metrics: "
          + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
    return 0
