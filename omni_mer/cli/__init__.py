"""`omni-mer` console script: the dispatcher. Each subcommand lives in its own module with its own parser and
``main(argv)``; COMMANDS maps a name to that module. Nothing in the package imports this module (printing and
user errors live in omni_mer.core.console); tests/test_layout.py checks that.
"""

from __future__ import annotations

import importlib
import sys
from typing import Callable, Sequence

from omni_mer import __version__
from omni_mer.core.console import emit, setup_logging, user_error
from omni_mer.core.errors import OmniMerError

COMMANDS: dict[str, tuple[str, str]] = {
    "prepare": ("omni_mer.data.manifest", "build one manifest from CMU-MOSEI / CH-SIMS v2 / extra files"),
    "predict": ("omni_mer.batch.predict", "label a folder of videos (same flags as test_script.py)"),
    "evaluate": ("omni_mer.eval.evaluate", "metrics, faithfulness and noise robustness"),
    "calibrate": ("omni_mer.scorers.calibrate", "fit the lite scorer's fusion on labelled clips"),
    "train-text": ("omni_mer.texthead.train", "train the text sentiment head on labelled transcripts"),
    "eval-text": ("omni_mer.texthead.evaluate", "text head metrics per dataset, cross-lingual, with ASR noise"),
    "bench": ("omni_mer.eval.bench", "per-stage speed and memory"),
    "train": ("omni_mer.train.run", "LoRA SFT / GRPO (same flags as train_grpo.py; use accelerate launch to scale)"),
    "tiny-model": ("omni_mer.omni.tiny", "write a tiny random Qwen2.5-Omni thinker + offline processor"),
    "tiny-llm": ("omni_mer.llm.model", "write a tiny random Qwen2 causal LM (for --backend llm smoke runs)"),
    "train-llm": ("omni_mer.train.llm", "TRL SFT / GRPO of the text-only Qwen2.5 on transcripts (docs/llm.md)"),
    "eval-llm": ("omni_mer.train.llm_eval", "the llm scorer on fixed held-out test subsets (docs/llm.md)"),
    "demo": ("omni_mer.demo.app", "Gradio chat demo"),
}

# Errors that are the user's, not a bug: reported as one line naming the bad value, exit status 2.
USER_ERRORS: tuple[type[BaseException], ...] = (OmniMerError, FileNotFoundError, NotADirectoryError)


def usage() -> str:
    lines = ["usage: omni-mer <command> [options]", "       omni-mer help <command> | --help | --version", "",
             "commands:"]
    lines += [f"  {name:<11} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "`omni-mer <command> --help` lists a command's options."]
    return "\n".join(lines)


def guarded(prog: str, fn: Callable[[list[str]], int | None], argv: Sequence[str]) -> int:
    """Run ``fn(argv)``; a user error becomes one line on stderr and exit status 2 instead of a traceback."""
    try:
        return int(fn(list(argv)) or 0)
    except USER_ERRORS as exc:
        return user_error(prog, exc)


def run_command(name: str, argv: Sequence[str], prog: str | None = None) -> int:
    """Run subcommand ``name`` with ``argv`` (``prog``: the name its usage and errors show, e.g. test_script.py)."""
    module = importlib.import_module(COMMANDS[name][0])
    setup_logging()
    if prog is None:
        return guarded(f"omni-mer {name}", module.main, argv)
    return guarded(prog, lambda a: module.main(a, prog=prog), argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        emit(usage(), stderr=True)
        return 2
    name, rest = argv[0], argv[1:]
    if name in ("-h", "--help"):
        emit(usage())
        return 0
    if name in ("-V", "--version"):
        emit(f"omni-mer {__version__}")
        return 0
    if name == "help":
        if not rest:
            emit(usage())
            return 0
        name, rest = rest[0], ["--help"]
    if name not in COMMANDS:
        return user_error("omni-mer", f"unknown command {name!r}; valid: {', '.join(COMMANDS)}, help")
    return run_command(name, rest)


if __name__ == "__main__":
    sys.exit(main())
