"""Stopping the batch job cleanly: SIGTERM/SIGINT become ``JobInterrupted`` in the parent, held back while a journal
line or a CSV is being written; workers die with their parent, whatever killed it."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from contextlib import contextmanager

from omni_mer.core.errors import JobInterrupted

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
PR_SET_PDEATHSIG = 1  # linux/prctl.h


class StopSignals:
    """While active (``with StopSignals() as stop:``), SIGTERM and SIGINT raise ``JobInterrupted`` in the main
    thread; inside ``stop.critical()`` the signal is held and raised when the block ends, so a journal append and
    the CSV rewrite that follows it are never cut in half. A second signal while stopping is logged and ignored:
    the cleanup (kill the workers, rewrite the CSVs) takes well under a second. Outside the main thread (where
    Python cannot install handlers) this is a no-op."""

    def __init__(self) -> None:
        self.pending: int | None = None
        self.stopping = False
        self._depth = 0
        self._old: dict[int, object] = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()

    def _handler(self, signum: int, frame) -> None:
        if self.stopping:
            log.warning("%s received while already stopping; finishing the cleanup", signal.Signals(signum).name)
            return
        if self._depth:
            self.pending = signum
            return
        self.stopping = True
        raise JobInterrupted(signum)

    @contextmanager
    def critical(self):
        """A block a stop signal must not interrupt (it is raised right after the block)."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if not self._depth and self.pending is not None and not self.stopping:
            signum, self.pending = self.pending, None
            self.stopping = True
            raise JobInterrupted(signum)


def die_with_parent(parent_pid: int) -> None:
    """In a worker: ask the kernel (Linux prctl PR_SET_PDEATHSIG) to SIGKILL this process when its parent dies,
    even by SIGKILL, so no orphaned worker (hundreds of MB, holding the output pipes) outlives the job. Elsewhere
    the parent's own shutdown is what stops the workers."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
                log.warning("prctl(PR_SET_PDEATHSIG) failed: %s", os.strerror(ctypes.get_errno()))
        except (OSError, AttributeError) as exc:
            log.warning("cannot tie the worker to its parent (%s); it stops when the parent stops it", exc)
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)
