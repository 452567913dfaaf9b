"""Everything the write stage puts on disk: the CSVs (atomically) and the per-video supplements (the batch job's
resume journal is omni_mer.batch.journal)."""

from __future__ import annotations

import json
import logging
import os
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
    try:
        with open(tmp, "w", encoding="utf-8", errors="backslashreplace", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # a full disk mid-write: leave the old file, not a half-written temp beside it
        tmp.unlink(missing_ok=True)
        raise


def _csv_field(value) -> str:
    """One CSV field, quoted when it holds a delimiter, a quote or a line break (csv.writer with
    lineterminator="\n" leaves a lone \r unquoted, which every reader takes for a row break)."""
    text = "" if value is None else str(value)
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


SPREADSHEET_FORMULA_START = ("=", "+", "-", "@")


def spreadsheet_text(value) -> str:
    """``value`` as text a spreadsheet shows instead of evaluating: one starting with ``= + - @`` (after any
    leading spaces, tabs or line breaks, which spreadsheets skip) gets a ``'`` in front (OWASP's CSV-injection
    defence). Used for errors.csv, transcription_results.csv and index.html; label_prediction.csv keeps every ID
    exact (the organizers' scorer reads it, not a spreadsheet)."""
    text = "" if value is None else str(value)
    return "'" + text if text.lstrip(" \t\r\n").startswith(SPREADSHEET_FORMULA_START) else text


def _csv_text(header: list[str], rows: list[list]) -> str:
    """RFC 4180 fields, "\n" line ends: simple IDs stay unquoted (``ID,Label`` exact), csv.reader reads back one
    row per record whatever the fields hold."""
    return "".join(",".join(_csv_field(v) for v in row) + "\n" for row in [header, *rows])


FOLDERS_JSON = "folders.json"
INDEX_HTML = "index.html"
# Names the supplements root holds itself: no per-video folder may take them (compared case-insensitively, as on
# macOS/Windows), nor a Windows device name.
SUPPLEMENTS_RESERVED = (INDEX_HTML, TRANSCRIPTIONS_CSV, FOLDERS_JSON)
_WINDOWS_DEVICES = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
DIRNAME_MAX_BYTES = 200  # under every file system's 255-byte name limit
_DIGEST_HEX = 16


def _plain_char(c: str) -> bool:
    """Kept as itself in a folder name: ASCII letters, digits, ``_ . -`` and space, and non-ASCII letters/digits."""
    return (c.isascii() and (c.isalnum() or c in "_.- ")) or (not c.isascii() and c.isalnum())


def _pct(c: str) -> str:
    return "".join(f"%{b:02X}" for b in c.encode("utf-8", "surrogatepass"))


def supplement_dirname(clip_id: str) -> str:
    """The folder of ``clip_id`` under Test_Supplements: the one naming rule for per-video folders.

    Injective (distinct IDs never share a folder) and readable: an ID made of letters, digits, ``_ . -`` and
    spaces is its own folder name; every other character (``,`` ``/`` ``\\`` ``%`` ``~`` combining marks, ...)
    becomes ``%XX`` per UTF-8 byte, as does a leading ``.``/``-``/space, a trailing ``.``/space, and the first
    character of a name the root holds itself (``index.html``, ``transcription_results.csv``, ``folders.json``,
    case-insensitively) or of a Windows device name. Percent-encoding is reversible, so distinct IDs give distinct
    names. A name longer than DIRNAME_MAX_BYTES keeps its head and ends in ``~`` + 16 hex digits of the ID's
    SHA-256: no untruncated name holds a ``~`` (it is encoded), so the two kinds never meet, and two long IDs meet
    only on a 64-bit hash collision. folders.json in the root maps each folder back to its ID."""
    if clip_id == "":
        return "~empty~"
    chars = [c if _plain_char(c) else _pct(c) for c in clip_id]
    if clip_id[0] in ".- ":
        chars[0] = _pct(clip_id[0])
    if clip_id[-1] in ". ":
        chars[-1] = _pct(clip_id[-1])
    name = "".join(chars)
    if name.casefold() in {r.casefold() for r in SUPPLEMENTS_RESERVED} or name.split(".")[0].casefold() in _WINDOWS_DEVICES:
        chars[0] = _pct(clip_id[0])
        name = "".join(chars)
    if len(name.encode("utf-8")) <= DIRNAME_MAX_BYTES:
        return name
    import hashlib

    digest = hashlib.sha256(clip_id.encode("utf-8", "surrogatepass")).hexdigest()[:_DIGEST_HEX]
    head, size = [], 0
    for piece in chars:  # whole characters (and whole %XX groups) only
        size += len(piece.encode("utf-8"))
        if size > DIRNAME_MAX_BYTES - 1 - _DIGEST_HEX:
            break
        head.append(piece)
    return "".join(head) + "~" + digest


def write_folder_manifest(supplements_dir: Path, ids) -> Path:
    """``supplements_dir``/folders.json: {"folders": {folder: ID}} for ``ids``, the way back from a folder name."""
    folders = {supplement_dirname(i): i for i in sorted(ids)}
    path = Path(supplements_dir) / FOLDERS_JSON
    atomic_write_text(path, json.dumps({"folders": folders}, ensure_ascii=False, indent=1))
    return path


def inside(parent: Path, child: Path) -> Path:
    """``child`` resolved, raising if it is not inside ``parent`` (defence in depth for untrusted names)."""
    parent_r, child_r = parent.resolve(), child.resolve()
    if parent_r != child_r and parent_r not in child_r.parents:
        raise ValueError(f"refusing to write {child} outside {parent}")
    return child_r


def write_predictions(output_dir: Path, records: dict[str, dict]) -> None:
    """Rewrite the required label_prediction.csv (IDs exact) and errors.csv (IDs and reasons through
    ``spreadsheet_text``) in ``output_dir`` from the finished records."""
    ordered = [records[k] for k in sorted(records)]
    atomic_write_text(Path(output_dir) / PREDICTIONS_CSV, _csv_text(["ID", "Label"], [[r["id"], r["label"]] for r in ordered]))
    errs = [[spreadsheet_text(r["id"]), r["error"]["stage"], spreadsheet_text(r["error"]["reason"])]
            for r in ordered if r.get("error")]
    atomic_write_text(Path(output_dir) / ERRORS_CSV, _csv_text(["ID", "stage", "reason"], errs))


def write_transcriptions(supplements_dir: Path, records: dict[str, dict]) -> None:
    """Rewrite ``supplements_dir``/transcription_results.csv from the finished records (analysed files only)."""
    ordered = [records[k] for k in sorted(records)]
    rows = [[spreadsheet_text(r["id"]), r.get("language", ""), spreadsheet_text(r.get("transcript", ""))]
            for r in ordered
            if not r.get("error") or r["error"].get("stage") == "write"]
    atomic_write_text(Path(supplements_dir) / TRANSCRIPTIONS_CSV, _csv_text(["ID", "language", "transcript"], rows))


def write_results(output_dir: Path, supplements_dir: Path | None, records: dict[str, dict]) -> None:
    """Rewrite label_prediction.csv, errors.csv and (with ``supplements_dir``) transcription_results.csv, the
    required ones first (the batch job calls the two halves separately so a supplements failure cannot touch them)."""
    write_predictions(output_dir, records)
    if supplements_dir is not None:
        write_transcriptions(supplements_dir, records)


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

    out = inside(Path(supplements_dir), Path(supplements_dir) / supplement_dirname(analysis.id))
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
