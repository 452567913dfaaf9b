"""The batch job's resume journal: one fsynced JSON line per finished file, read back without ever crashing."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from omni_mer.core.labels import LABELS

log = logging.getLogger(__name__)


def _journal_problem(rec: object) -> str | None:
    """Why a parsed journal line cannot be trusted as a finished file, or None."""
    if not isinstance(rec, dict):
        return f"not a record (a JSON {type(rec).__name__})"
    if not isinstance(rec.get("id"), str):
        return "no string 'id'"
    if rec.get("label") not in LABELS:
        return f"label {rec.get('label')!r} is not one of {', '.join(LABELS)}"
    err = rec.get("error")
    if err is not None and not (isinstance(err, dict) and isinstance(err.get("stage"), str)
                                and isinstance(err.get("reason"), str)):
        return f"malformed 'error' {err!r:.60}"
    return None


class Journal:
    """Append-only JSONL of finished files, fsynced per line.

    Reading never crashes: a torn last line (kill -9), a line that is not UTF-8 or not JSON, a record without a
    string ``id``, with a label outside LABELS or a malformed ``error`` is skipped with a warning naming the file
    and line, so that file is simply redone. A journal path that is not a regular file (a directory) is reported
    and moved aside (``<name>.damaged<time>``) before writing. Records are written as UTF-8 whatever they hold
    (a lone surrogate from a non-UTF-8 file name is written as its JSON ``\\u`` escape)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> dict[str, dict]:
        done: dict[str, dict] = {}
        if not self.path.exists():
            return done
        if not self.path.is_file():
            log.warning("%s: the resume journal is not a regular file; ignoring it (those files are redone)",
                        self.path)
            return done
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            log.warning("%s: cannot read the resume journal (%s); ignoring it", self.path, exc)
            return done
        for n, raw in enumerate(data.split(b"\n"), 1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                log.warning("%s:%d: ignoring a line that is not UTF-8 (torn by an interrupted run?)", self.path, n)
                continue
            except ValueError:
                log.warning("%s:%d: ignoring a line that is not JSON (torn by an interrupted run?)", self.path, n)
                continue
            problem = _journal_problem(rec)
            if problem:
                log.warning("%s:%d: ignoring a journal line: %s (that file is redone)", self.path, n, problem)
                continue
            done[rec["id"]] = rec
        return done

    def _move_aside(self) -> None:
        if self.path.is_symlink() or (self.path.exists() and not self.path.is_file()):
            aside = self.path.with_name(f"{self.path.name}.damaged{time.time_ns()}")
            log.warning("%s: the resume journal is not a regular file; moved it to %s", self.path, aside.name)
            os.replace(self.path, aside)

    def reset(self) -> None:
        self._move_aside()
        if self.path.exists():
            self.path.unlink()

    def append(self, rec: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._move_aside()
        text = json.dumps(rec, ensure_ascii=False)
        try:
            data = (text + "\n").encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates (undecodable file-name bytes): ASCII escapes round-trip
            data = (json.dumps(rec, ensure_ascii=True) + "\n").encode("utf-8")
        # A torn line left by a kill must not swallow this record: start on a fresh line if needed.
        if self.path.is_file() and self.path.stat().st_size:
            with open(self.path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    data = b"\n" + data
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
