"""Everything written to disk: the CSVs (atomically), the resume journal and the per-video supplements."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
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
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _csv_text(header: list[str], rows: list[list]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


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


class Journal:
    """Append-only JSONL of finished files, fsynced per line; a torn last line (kill -9) is ignored."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> dict[str, dict]:
        done: dict[str, dict] = {}
        if not self.path.is_file():
            return done
        with open(self.path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                try:
                    rec = json.loads(line)
                except ValueError:
                    log.warning("%s:%d: ignoring a torn line (interrupted run)", self.path, n)
                    continue
                done[rec["id"]] = rec
        return done

    def reset(self) -> None:
        if self.path.exists():
            self.path.unlink()

    def append(self, rec: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = (json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8")
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
    from omni_mer.pipeline import thumbnail_indices, thumbnails

    out = inside(Path(supplements_dir), Path(supplements_dir) / safe_dirname(analysis.id))
    out.mkdir(parents=True, exist_ok=True)
    ev, clip = analysis.evidence, analysis.clip
    atomic_write_text(out / "transcript.txt", (ev.transcript.strip() + "\n") if ev.transcript.strip() else "")
    atomic_write_text(out / "transcript.srt", srt(ev.segments))

    idx = thumbnail_indices(clip, max_frames)
    frames = thumbnails(clip, n=max_frames, blur=blur)
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
    expl["frames_blurred"] = bool(blur)
    atomic_write_text(out / "explanation.json", json.dumps(expl, ensure_ascii=False, indent=2))
    pick = [int(k) for k in np.unique(np.linspace(0, len(frames) - 1, num=min(4, len(frames))).round())] if frames else []
    expl["thumbnail_times"] = [float(clip.frame_times[idx[k]]) for k in pick]
    render_explanation_png(expl, clip, out / "explanation.png", thumbnails=[frames[k] for k in pick])
    return out
