"""`omni-mer` console script: each subcommand lives in its own module with its own parser."""

from __future__ import annotations

import importlib
import logging
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "prepare": ("omni_mer.data.manifest", "build one manifest from CMU-MOSEI / CH-SIMS v2 / extra files"),
    "predict": ("omni_mer.predict", "label a folder of videos (same flags as test_script.py)"),
    "evaluate": ("omni_mer.evaluate", "metrics, faithfulness and noise robustness"),
    "calibrate": ("omni_mer.scorers.calibrate", "fit the lite scorer's fusion on labelled clips"),
    "train-text": ("omni_mer.texthead.train", "train the text sentiment head on labelled transcripts"),
    "eval-text": ("omni_mer.texthead.evaluate", "text head metrics per dataset, cross-lingual, with ASR noise"),
    "bench": ("omni_mer.bench", "per-stage speed and memory"),
    "train": ("omni_mer.train.run", "LoRA SFT / GRPO (same flags as train_grpo.py; use accelerate launch to scale)"),
    "tiny-model": ("omni_mer.omni.tiny", "write a tiny random Qwen2.5-Omni thinker + offline processor"),
    "demo": ("omni_mer.demo", "Gradio chat demo"),
}


def emit(text: str) -> None:
    """A subcommand's report for the user on stdout (logs go to stderr); the one place the package prints."""
    print(text, flush=True)


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: omni-mer <command> [options]\n\ncommands:")
        for name, (_, help_) in COMMANDS.items():
            print(f"  {name:<11} {help_}")
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"omni-mer: unknown command {name!r}; valid: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    setup_logging()
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
