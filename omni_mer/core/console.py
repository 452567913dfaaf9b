"""What the user sees on the console: a command's report (stdout), a one-line user error (stderr), the log format.

The one place the package prints. Library modules (subcommand mains included) import these from here; the CLI
dispatcher (omni_mer.cli) uses them too and is imported by nothing in the package.
"""

from __future__ import annotations

import logging
import sys

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def emit(text: str, stderr: bool = False) -> None:
    """A subcommand's report for the user on stdout (``stderr``: a usage message on stderr; logs go there too);
    the one place the package prints."""
    print(text, file=sys.stderr if stderr else sys.stdout, flush=True)


def user_error(prog: str, message: object) -> int:
    """Report a user error as ``PROG: error: MESSAGE`` on stderr (argparse's style); return the exit status 2."""
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
    return 2


def setup_logging(level: str = "INFO") -> None:
    """Log records to stderr as ``time LEVEL logger: message`` (a no-op when logging is configured already)."""
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), format=LOG_FORMAT, datefmt="%H:%M:%S")
