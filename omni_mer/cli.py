"""`omni-mer` console script: each subcommand lives in its own module with its own parser.

This module is the one place the package prints: ``emit`` (a subcommand's report, stdout) and ``user_error``
(one line on stderr for a user error: a bad value, a missing file; never a traceback).
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Callable, Sequence

from omni_mer import __version__
from omni_mer.errors import OmniMerError

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
    "tiny-llm": ("omni_mer.llm.model", "write a tiny random Qwen2 causal LM (for --backend llm smoke runs)"),
    "train-llm": ("omni_mer.train.llm", "TRL SFT / GRPO of the text-only Qwen2.5 on transcripts (docs/llm.md)"),
    "eval-llm": ("omni_mer.train.llm_eval", "the llm scorer on fixed held-out test subsets (docs/llm.md)"),
    "demo": ("omni_mer.demo", "Gradio chat demo"),
}

# Errors that are the user's, not a bug: reported as one line naming the bad value, exit status 2.
USER_ERRORS: tuple[type[BaseException], ...] = (OmniMerError, FileNotFoundError, NotADirectoryError)


def emit(text: str) -> None:
    """A subcommand's report for the user on stdout (logs go to stderr); the one place the package prints."""
    print(text, flush=True)


def user_error(prog: str, message: object) -> int:
    """Report a user error as ``PROG: error: MESSAGE`` on stderr (argparse's style); return the exit status 2."""
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
    return 2


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


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
        print(usage(), file=sys.stderr)
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
