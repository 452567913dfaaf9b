"""Everything written to disk: the CSVs (atomically), the resume journal and the per-video supplements."""

from __future__ import annotations

import json
import logging
import os
import re
import time
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

PREDICTIONS_CSV = "label_prediction.csv"
ERRORS_CSV = "errors.csv"
JOURNAL = ".progress.jsonl"
TRANSCRIPTIONS_CSV = "transcription_results.csv"


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temp file + fsync + rename: readers never see a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    # backslashreplace: a lone surrogate (a non-UTF-8 file name in a decoder message) must not abort the write
    with open(tmp, "w", encoding="utf-8", errors="backslashreplace", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _csv_field(value) -> str:
    """One CSV field, quoted when it holds a delimiter, a quote or a line break (csv.writer with
    lineterminator="\n" leaves a lone \r unquoted, which every reader takes for a row break)."""
    text = "" if value is None else str(value)
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _csv_text(header: list[str], rows: list[list]) -> str:
    """RFC 4180 fields, "\n" line ends: simple IDs stay unquoted (``ID,Label`` exact), csv.reader reads back one
    row per record whatever the fields hold."""
    return "".join(",".join(_csv_field(v) for v in row) + "\n" for row in [header, *rows])


def safe_dirname(clip_id: str) -> str:
    """A folder name for ``clip_id`` that cannot escape its parent (no separators, no leading dots or dashes)."""
    name = re.sub(r"[^\w.\- ]", "_", clip_id, flags=re.UNICODE).strip()
    name = name.lstrip(".-") or "_"
    return name[:150]


def inside(parent: Path, child: Path) -> Path:
    """``child`` resolved, raising if it is not inside ``parent`` (defence in depth for untrusted names)."""
    parent_r, child_r = parent.resolve(), child.resolve()
    if parent_r != child_r and parent_r not in child_r.parents:
        raise ValueError(f"refusing to write {child} outside {parent}")
    return child_r


def _journal_problem(rec: object) -> str | None:
    """Why a parsed journal line cannot be trusted as a finished file, or None."""
    from omni_mer.labels import LABELS

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


def write_results(output_dir: Path, supplements_dir: Path | None, records: dict[str, dict]) -> None:
    """Rewrite label_prediction.csv, errors.csv and transcription_results.csv from the finished records."""
    ordered = [records[k] for k in sorted(records)]
    atomic_write_text(Path(output_dir) / PREDICTIONS_CSV, _csv_text(["ID", "Label"], [[r["id"], r["label"]] for r in ordered]))
    errs = [[r["id"], r["error"]["stage"], r["error"]["reason"]] for r in ordered if r.get("error")]
    atomic_write_text(Path(output_dir) / ERRORS_CSV, _csv_text(["ID", "stage", "reason"], errs))
    if supplements_dir is not None:
        rows = [[r["id"], r.get("language", ""), r.get("transcript", "")] for r in ordered if not r.get("error")]
        atomic_write_text(Path(supplements_dir) / TRANSCRIPTIONS_CSV, _csv_text(["ID", "language", "transcript"], rows))


def _srt_time(t: float) -> str:
    ms = int(round(max(t, 0.0) * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


def srt(segments) -> str:
    blocks = [f"{i}\n{_srt_time(s.start)} --> {_srt_time(s.end)}\n{s.text.strip()}\n"
              for i, s in enumerate(segments, 1) if s.text.strip()]
    return "\n".join(blocks)


def write_supplements(analysis, supplements_dir: Path, blur: bool = True, save_audio: bool = False,
                      max_frames: int = 8) -> Path:
    """Test_Supplements/<ID>/: transcript.txt/.srt, frames/ (faces blurred by default), explanation.json/.png."""
    from PIL import Image

    from omni_mer.explain.plots import render_explanation_png
    from omni_mer.pipeline import saved_frames

    out = inside(Path(supplements_dir), Path(supplements_dir) / safe_dirname(analysis.id))
    out.mkdir(parents=True, exist_ok=True)
    ev, clip = analysis.evidence, analysis.clip
    atomic_write_text(out / "transcript.txt", (ev.transcript.strip() + "\n") if ev.transcript.strip() else "")
    atomic_write_text(out / "transcript.srt", srt(ev.segments))

    idx, frames, privacy = saved_frames(clip, n=max_frames, blur=blur)
    frame_dir = out / "frames"
    if frame_dir.is_dir():
        for old in frame_dir.glob("*.jpg"):
            old.unlink()
    if frames:
        frame_dir.mkdir(exist_ok=True)
        for i, frame in zip(idx, frames):
            Image.fromarray(frame).save(frame_dir / f"frame_{clip.frame_times[i]:07.2f}s.jpg", quality=85)
    if save_audio and clip.has_audio and len(clip.audio):
        import soundfile as sf

        sf.write(out / "audio.wav", clip.audio, clip.sample_rate)

    expl = dict(analysis.explanation)
    # true only when every saved frame went through the fail-closed blur (frames it could not make safe are not saved)
    expl["frames_blurred"] = bool(blur) and (privacy is not None or not frames)
    if privacy is not None:
        expl["frames_privacy"] = privacy.to_dict()
    atomic_write_text(out / "explanation.json", json.dumps(expl, ensure_ascii=False, indent=2))
    pick = [int(k) for k in np.unique(np.linspace(0, len(frames) - 1, num=min(4, len(frames))).round())] if frames else []
    expl["thumbnail_times"] = [float(clip.frame_times[idx[k]]) for k in pick]
    render_explanation_png(expl, clip, out / "explanation.png", thumbnails=[frames[k] for k in pick])
    return out
