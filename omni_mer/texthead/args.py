"""Flags for the text-head commands: TrlParser over a config dataclass (``--config recipe.yaml`` + flag overrides,
kebab or snake case), with a bad value reported as one line naming it instead of a traceback."""

from __future__ import annotations

import sys
from typing import TypeVar

T = TypeVar("T")


def parse_config(cls: type[T], argv: list[str] | None, prog: str, description: str | None = None) -> T:
    """An instance of dataclass ``cls`` from ``argv``; exits 2 with ``prog: error: ...`` on a bad value."""
    from trl import TrlParser

    parser = TrlParser(cls, prog=prog, description=(description or "").strip().splitlines()[0] if description else None)
    try:
        (cfg,) = parser.parse_args_and_config(list(sys.argv[1:] if argv is None else argv))
    except (ValueError, FileNotFoundError) as exc:
        parser.error(str(exc))  # SystemExit(2) with one line on stderr
    return cfg
