"""Flags for the text-head commands: TrlParser over a config dataclass (``--config recipe.yaml`` + flag overrides,
kebab-case first, the snake-case YAML-key spelling works too), with a bad value reported as one line naming it
instead of a traceback."""

from __future__ import annotations

import argparse
import sys
from typing import TypeVar

T = TypeVar("T")


def parse_config(cls: type[T], argv: list[str] | None, prog: str, description: str | None = None) -> T:
    """An instance of dataclass ``cls`` from ``argv``; exits 2 with ``prog: error: ...`` on a bad value."""
    from trl import TrlParser

    first = (description or "").strip().splitlines()[0] if description else None
    parser = TrlParser(cls, prog=prog, description=first)
    parser.add_argument("--config", metavar="RECIPE.yaml", default=argparse.SUPPRESS,
                        help="YAML whose keys set the defaults; flags given here override it")
    def is_negation(action) -> bool:  # HfArgumentParser's --no_<field> twin of a bool field that defaults to True
        return f"--no_{action.dest}" in action.option_strings

    positive = {a.dest: a for a in parser._actions if a.option_strings and not is_negation(a)}
    for action in parser._actions:  # kebab-case first in usage and help, like every other omni-mer command
        action.option_strings.sort(key=lambda opt: "_" in opt)
        if is_negation(action) and action.dest in positive:
            # a switch that is on by default: its --no- twin turns it off (parsing reads the dest's default from
            # the positive flag, so hiding this one's default changes the help only)
            action.help, action.default = f"turn {positive[action.dest].option_strings[0]} off", argparse.SUPPRESS
    # a bad value is one line naming it after a short usage line, not the whole usage block (--help keeps it)
    parser.format_usage = lambda: f"usage: {prog} [flags] (--help lists them)\n"
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        (cfg,) = parser.parse_args_and_config(args)
    except FileNotFoundError as exc:
        parser.error(f"{exc.filename}: no such file" if exc.filename else str(exc))
    except ValueError as exc:
        parser.error(str(exc))  # SystemExit(2) with one line on stderr
    return cfg
