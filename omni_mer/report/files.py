"""Everything the write stage puts on disk: the CSVs (atomically) and the per-video supplements (the batch job's
resume journal is omni_mer.batch.journal)."""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path


from omni_mer.report.thumbnails import PICTURE_FRAMES, SAVED_FRAMES, pick, safe_frames, saved_indices

log = logging.getLogger(__name__)

PREDICTIONS_CSV = "label_prediction.csv"
ERRORS_CSV = "errors.csv"
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
                      max_frames: int = SAVED_FRAMES) -> Path:
    """Test_Supplements/<ID>/: transcript.txt/.srt, frames/ (faces blurred by default), explanation.json/.png."""
    from PIL import Image

    from omni_mer.report.plots import render_explanation_png

    out = inside(Path(supplements_dir), Path(supplements_dir) / safe_dirname(analysis.id))
    out.mkdir(parents=True, exist_ok=True)
    ev, clip = analysis.evidence, analysis.clip
    atomic_write_text(out / "transcript.txt", (ev.transcript.strip() + "\n") if ev.transcript.strip() else "")
    atomic_write_text(out / "transcript.srt", srt(ev.segments))

    # blurred once (fail-closed; unsafe frames left out): frames/ and the picture share them
    idx, frames, privacy = safe_frames(clip, saved_indices(clip, max_frames), blur=blur)
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
    shown = pick(len(idx), PICTURE_FRAMES)  # the picture's frames, as thumbnails.picture_indices picks them
    expl["thumbnail_times"] = [float(clip.frame_times[idx[k]]) for k in shown]
    render_explanation_png(expl, clip, out / "explanation.png", thumbnails=[frames[k] for k in shown])
    return out
