"""The bad-input suite: every awkward file the organizers might drop into Test_Data, built from tests.media_makers.

Shared by tests/test_bad_inputs.py and scripts/robustness.py (which times each one and writes docs/robustness.md).

    CASES: list[BadInput]                      every case, in a stable order
    build_suite(input_dir, outside_dir, include_slow=False, names=None) -> dict[name, BadInput]
        writes each case's entry into ``input_dir`` (the symlink case also writes its target into ``outside_dir``)

A BadInput has ``name``, ``entry`` (the file/dir name it creates in the input folder), ``build(input_dir,
outside_dir)``, ``expect``: "ok" (must be analysed without error), "error" (must be an errors.csv row), "any"
(either is fine: e.g. a truncated file the decoder may partly salvage) or "skip" (no row, a log line: hidden
files), ``slow`` and a short ``note``.

    HOSTILE_RUNS: list[HostileRun]             the issue-16 cases that are whole runs, not one input file (a full
        disk, a signal, an edited video on --resume, a damaged journal, ...): what broke before, what happens now,
        and the tests that show it; scripts/robustness.py runs those tests and writes the verdicts
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from tests import media_makers as syn

SR = 16_000


@dataclass(frozen=True)
class BadInput:
    name: str
    entry: str
    build: Callable[[Path, Path], Path]
    expect: str  # "ok" | "error" | "any" | "skip"
    note: str
    slow: bool = False

    @property
    def id(self) -> str:
        """The CSV ID predict.list_inputs gives the entry (stem, without --id-with-ext)."""
        return Path(self.entry).stem


def _speechy(seconds: float, seed: int = 0) -> np.ndarray:
    """A voiced-sounding signal (a gliding tone with syllable-rate bursts plus a little noise)."""
    t = np.arange(int(round(seconds * SR))) / SR
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.5 * t)
    voiced = 0.25 * np.sin(2 * np.pi * np.cumsum(f0) / SR) * (np.sin(2 * np.pi * 4 * t) > -0.3)
    return (voiced + syn.noise(seconds, SR, 0.01, seed)).astype(np.float32)


def _video(path: Path, seconds: float = 2.0, fps: float = 5.0, size=(48, 64), audio="speech", **kw) -> Path:
    n = max(1, int(round(seconds * fps)))
    frames = syn.moving_face_frames(n, size=size)
    a = None
    if audio == "speech":
        a = _speechy(n / fps)
    elif audio == "silence":
        a = syn.silence(n / fps)
    return syn.write_video(path, frames, fps, audio=a, **kw)


def _zero(d: Path, o: Path) -> Path:
    return syn.write_empty(d / "empty.mp4")


def _text(d: Path, o: Path) -> Path:
    return syn.write_text_as_video(d / "notes.mp4")


def _truncated(d: Path, o: Path) -> Path:
    src = _video(o / "full_for_truncation.mp4", seconds=4.0)
    return syn.write_truncated(src, d / "truncated.mp4", 0.5)


def _truncated_faststart(d: Path, o: Path) -> Path:
    src = _video(o / "full_for_truncation_fs.mp4", seconds=4.0, faststart=True)
    return syn.write_truncated(src, d / "truncated_faststart.mp4", 0.5)


def _no_audio(d: Path, o: Path) -> Path:
    return _video(d / "no_audio.mp4", audio=None)


def _silent(d: Path, o: Path) -> Path:
    return _video(d / "silent_audio.mp4", audio="silence")


def _audio_only(d: Path, o: Path) -> Path:
    return syn.write_audio(d / "audio_only.wav", _speechy(2.0))


def _gif(d: Path, o: Path) -> Path:
    return syn.write_video(d / "animated.gif", syn.moving_face_frames(6, size=(48, 64)), 5.0)


def _one_frame(d: Path, o: Path) -> Path:
    return syn.write_video(d / "one_frame.mp4", syn.moving_face_frames(1, size=(48, 64)), 1.0, audio=_speechy(1.0))


def _long(seconds: float, name: str) -> Callable[[Path, Path], Path]:
    def build(d: Path, o: Path) -> Path:
        # Tiny frames at 1 fps keep writing it fast; the audio is real (not silent) so ASR/prosody see it all.
        n = int(seconds)
        frames = np.repeat(syn.moving_face_frames(10, size=(32, 32)), int(np.ceil(n / 10)), axis=0)[:n]
        audio = syn.noise(seconds, SR, amplitude=0.02, seed=1) + np.tile(_speechy(10.0), int(np.ceil(seconds / 10)))[
            : int(seconds * SR)]
        return syn.write_video(d / name, frames, 1.0, audio=audio)

    return build


def _uhd(d: Path, o: Path) -> Path:
    img = syn.moving_face_frames(2, size=(2160, 3840))
    return syn.write_video(d / "uhd_4k.mp4", img, 2.0, audio=_speechy(1.0))


def _vertical(d: Path, o: Path) -> Path:
    return _video(d / "vertical.mp4", size=(640, 360))


def _vfr(d: Path, o: Path) -> Path:
    times = np.cumsum(np.r_[0.0, np.random.default_rng(3).uniform(0.03, 0.5, 11)])
    frames = syn.moving_face_frames(len(times), size=(48, 64))
    return syn.write_video(d / "variable_fps.mp4", frames, 10.0, audio=_speechy(float(times[-1]) + 0.5),
                           frame_times=times)


def _named(name: str) -> Callable[[Path, Path], Path]:
    def build(d: Path, o: Path) -> Path:
        return _video(d / name, seconds=1.0)

    return build


def _symlink_out(d: Path, o: Path) -> Path:
    target = _video(o / "secret_outside.mp4", seconds=1.0)
    link = d / "link_outside.mp4"
    os.symlink(target.resolve(), link)
    return link


def _hidden(d: Path, o: Path) -> Path:
    p = d / ".DS_Store"
    p.write_bytes(b"\0\0\0\1Bud1" + bytes(64))  # what macOS Finder leaves in every folder it opens
    return p


def _two_streams(d: Path, o: Path) -> Path:
    return syn.write_two_video_streams(d / "two_video_streams.mkv")


def _dir_video(d: Path, o: Path) -> Path:
    p = d / "folder_named.mp4"
    p.mkdir()
    _video(p / "inner.mp4", seconds=1.0)  # a real video inside must not be picked up either
    return p


# Names a careless implementation would turn into paths outside the output folders, options, or shell code.
NASTY_NAMES = (
    "clip with spaces.mp4",
    "视频 测试 ünïcødé.mp4",
    "-leading-dash.mp4",
    "--help.mp4",
    "a..%2F..%2Fescape.mp4",
    "a\\..\\..\\b.mp4",
    "$(touch pwned);rm -rf x|y&.mp4",
    "x" * 200 + ".mp4",
    "=HYPERLINK(1).mp4",
    "@SUM(A1).mp4",
    # supplement folder names that used to collide or take the report's place (issue 16.4)
    "a,b.mp4",
    "a_b.mp4",
    "index.html.mp4",
    "transcription_results.csv.mp4",
    "folders.json.mp4",
    "y" * 160 + "1.mp4",
    "y" * 160 + "2.mp4",
)

CASES: list[BadInput] = [
    BadInput("zero_byte", "empty.mp4", _zero, "error", "0-byte file"),
    BadInput("text_as_mp4", "notes.mp4", _text, "error", "plain text named .mp4"),
    BadInput("truncated", "truncated.mp4", _truncated, "any", "mp4 cut at half (index at the end)"),
    BadInput("truncated_faststart", "truncated_faststart.mp4", _truncated_faststart, "any",
             "mp4 cut at half (index first, as streamed files are)"),
    BadInput("no_audio", "no_audio.mp4", _no_audio, "ok", "mp4 with no audio track"),
    BadInput("silent_audio", "silent_audio.mp4", _silent, "ok", "digital-silence audio track"),
    BadInput("audio_only", "audio_only.wav", _audio_only, "ok", "audio-only file (.wav)"),
    BadInput("gif", "animated.gif", _gif, "ok", "animated GIF, no audio"),
    BadInput("one_frame", "one_frame.mp4", _one_frame, "ok", "video with a single frame"),
    BadInput("long_60s", "long_60s.mp4", _long(60.0, "long_60s.mp4"), "ok", "60 s video (short stand-in for 10 min)"),
    BadInput("long_10min", "long_10min.mp4", _long(600.0, "long_10min.mp4"), "ok", "10-minute video", slow=True),
    BadInput("uhd_4k", "uhd_4k.mp4", _uhd, "ok", "3840x2160 frames (2 frames)"),
    BadInput("vertical", "vertical.mp4", _vertical, "ok", "vertical 360x640 video"),
    BadInput("variable_fps", "variable_fps.mp4", _vfr, "ok", "variable frame rate (30-500 ms gaps)"),
    *[BadInput(f"name_{i}", n, _named(n), "ok", f"file name {n[:40]!r}") for i, n in enumerate(NASTY_NAMES)],
    BadInput("symlink_outside", "link_outside.mp4", _symlink_out, "error", "symlink to a video outside the folder"),
    BadInput("dir_named_video", "folder_named.mp4", _dir_video, "error", "directory named like a video"),
    BadInput("hidden_file", ".DS_Store", _hidden, "skip", "hidden file (.DS_Store): no row, a log line"),
    BadInput("two_video_streams", "two_video_streams.mkv", _two_streams, "ok",
             "two video streams, the second flagged default"),
]


@dataclass(frozen=True)
class HostileRun:
    case: str
    before: str
    now: str
    tests: tuple[str, ...]  # pytest node ids (a function id covers all its parameters)


_N = "tests/test_names.py::"
_S = "tests/test_batch_safety.py::"
_D = "tests/test_detector.py::"
HOSTILE_RUNS: list[HostileRun] = [
    HostileRun("file name not valid UTF-8 (`b'caf\\xe9.mp4'`)",
               "`Journal.append` raised UnicodeEncodeError: no CSV, `--resume` died again",
               "a row with ID `caf\\xe9` (each undecodable byte `\\xNN`, each backslash `\\\\`; reversible, "
               "`predict.unescape_name`); journal, CSVs, log and report stay UTF-8",
               (_N + "test_non_utf8_name_gets_an_escaped_utf8_id", _N + "test_journal_never_crashes_on_a_non_utf8_name",
                _N + "test_batch_with_a_non_utf8_name_writes_every_row_and_resumes")),
    HostileRun("journal tail cut inside a UTF-8 character, non-dict line, line without `id`/`label`, label not "
               "one of LABELS", "`--resume` crashed (UnicodeDecodeError / TypeError / KeyError); a bogus label was "
               "copied into the CSV", "the line is skipped with a warning `journal:line: why`; that file is redone",
               (_N + "test_journal_skips_and_reports_every_bad_line",
                _N + "test_resume_on_a_damaged_journal_redoes_bad_entries")),
    HostileRun("journal path is a directory", "IsADirectoryError",
               "warned, moved aside to `rankN.jsonl.damaged<time>`, files redone",
               (_N + "test_journal_path_that_is_a_directory",)),
    HostileRun("`\\r` or `\\n` in a file name", "`\\r` written unquoted: readers saw two rows",
               "fields with `,` `\"` `\\r` `\\n` are quoted; csv.reader reads one row per file; simple IDs stay "
               "unquoted (`ID,Label` exact)",
               (_N + "test_ids_with_line_breaks_read_back_as_one_row", _N + "test_simple_ids_stay_unquoted")),
    HostileRun("`a.mp4`, `a.mkv`, `a.mp4.mkv` in one folder", "IDs `a.mp4` twice: 3 files, 2 rows",
               "IDs `a.mp4`, `a.mkv`, `a.mp4.mkv`: a file keeps its stem only when no other file shares it or is "
               "named it (`~2`.. only if an escaped name equals a literal one); injective, deterministic "
               "(`predict.assign_ids`)",
               (_N + "test_colliding_stems_and_names_get_distinct_ids",
                _N + "test_escaped_name_colliding_with_a_literal_name_stays_distinct")),
    HostileRun("supplement folders: `a,b` / `a_b`, `a ` / `a`, names sharing a 150-char prefix, IDs `index.html`, "
               "`transcription_results.csv`, `folders.json`",
               "one folder for both (each overwrote the other); a folder where index.html must go: exit 1, no report",
               "`report.files.supplement_dirname`: readable IDs are their folder, other characters `%XX`, reserved "
               "root names and Windows device names encoded, names over 200 bytes cut to a head + `~` + 16 hex of "
               "SHA-256; `Test_Supplements/folders.json` maps folder -> ID; the report links the same names",
               (_N + "test_supplement_folder_names_are_injective_plain_and_safe",
                _N + "test_colliding_ids_get_their_own_folders_and_the_report")),
    HostileRun("full disk (ENOSPC) or uncreatable `--supplements`, injected and on a real 160 KiB tmpfs",
               "the required CSV died with the supplements: exit 1 after 3 of 6 rows",
               "label_prediction.csv/errors.csv are written first and on their own; each supplements write is "
               "guarded; each file's failure is an errors.csv row (stage `write`, its own label kept); exit 0",
               (_S + "test_full_supplements_disk_never_touches_the_required_csv",
                _S + "test_real_full_filesystem_on_supplements")),
    HostileRun("SIGTERM / SIGINT to the parent PID of `python test_script.py`",
               "an orphaned worker (~600 MB) and the resource tracker stayed alive; the CSV stopped where it was",
               "the signal is held while a journal line/CSV is written, the workers are killed (and die with the "
               "parent even on SIGKILL: PR_SET_PDEATHSIG), the CSVs are rewritten from the journal, exit 128+N; "
               "no process of the job survives; `--resume` finishes without redoing a file",
               (_S + "test_signal_to_the_parent_takes_everything_down_and_keeps_the_rows",)),
    HostileRun("`--resume` after a video was replaced or edited in place (same size and time stamp)",
               "the stale label was kept, silently (matched on ID only)",
               "each journal line holds size, mtime and SHA-256 of the first/last 256 KiB; a changed file is redone "
               "with a log line; a line without a hash (older journal) is redone with a log line",
               (_S + "test_resume_redoes_an_edited_video",
                _S + "test_resume_redoes_journal_lines_without_a_content_hash")),
    HostileRun("`--resume` after the supplements could not be written", "never retried",
               "files with an errors.csv `write` row are redone", (_S + "test_resume_retries_write_stage_failures",)),
    HostileRun("`--output` is a file, under a file, read-only, or fills up mid-run", "a raw traceback",
               "one line `test_script.py: error: cannot write the results to --output ...: why` and exit 2; mid-run "
               "it adds that the finished files are in the journal for `--resume`",
               (_S + "test_output_path_that_is_a_file_is_one_line_exit_2",
                _S + "test_output_disk_full_mid_run_is_one_line_exit_2_and_resumable",
                _S + "test_read_only_output_is_one_line_exit_2")),
    HostileRun("hidden files (`.DS_Store`, `._a.mp4`)", "no row and no log line",
               "no row (they are not videos) and a log line `skipping hidden file`",
               (_S + "test_hidden_files_get_a_log_line_and_no_row",)),
    HostileRun("two video streams, the second flagged default", "stream 0 decoded",
               "the default stream is decoded (the first one when none is flagged)",
               (_S + "test_two_video_streams_decode_the_default_one",)),
    HostileRun("IDs / reasons / transcripts starting with `=` `+` `-` `@` (also after spaces, tabs, line breaks)",
               "verbatim in every CSV a spreadsheet opens",
               "label_prediction.csv keeps IDs exact (the scorer's file); errors.csv, transcription_results.csv and "
               "index.html put a `'` in front (`report.files.spreadsheet_text`)",
               (_S + "test_formula_ids_are_defused_in_errors_and_reports_but_exact_in_label_prediction",)),
    HostileRun("absolute paths in errors.csv reasons", "the machine's full input paths (and a symlink's target)",
               "files named relative to the input folder (`empty.mp4: ...`, `symlink to ../outside/x.mp4`), "
               "supplements paths relative to the supplements folder",
               (_S + "test_error_reasons_carry_no_absolute_paths",)),
    # issue 16 items 2 and 10, fixed with the face work (issue 15; docs/face.md, docs/privacy.md)
    HostileRun("a face tilted 25°, lying, upside-down, stretched 4:3→16:9, small (24–40 px), or a second person",
               "only the Haar cascade ran on saved frames: such faces stayed sharp in `frames/` and "
               "`explanation.png` while `frames_blurred` was true",
               "every saved frame goes through CenterFace upright and turned, boxes of the clip's other frames, "
               "whole-frame pixelation when unsure, not saved when still unsafe; `frames_blurred` true only then, "
               "`frames_privacy` counts what was done (docs/face.md)",
               (_D + "test_blur_hides_every_real_face_in_hard_views", _D + "test_unsure_or_missing_detector_fails_closed",
                _D + "test_frames_blurred_tells_the_truth")),
    HostileRun("onnxruntime telemetry",
               "onnxruntime 1.32 wrote a device id and an event database to "
               "`~/.cache/Microsoft/DeveloperTools/.onnxruntime/` on every run",
               "`ORT_DISABLE_TELEMETRY=1` set by `import omni_mer`; matplotlib's and jieba's caches moved into "
               "`~/.cache/omni-mer`; a fresh-HOME run writes nothing else",
               ("tests/test_privacy.py::test_nothing_written_outside_outputs_in_a_fresh_home",)),
]


def build_suite(input_dir: Path, outside_dir: Path, include_slow: bool = False,
                names: list[str] | None = None) -> dict[str, BadInput]:
    """Write the chosen cases into ``input_dir``; return {name: case} of those written."""
    input_dir, outside_dir = Path(input_dir), Path(outside_dir)
    input_dir.mkdir(parents=True, exist_ok=True)
    outside_dir.mkdir(parents=True, exist_ok=True)
    chosen = {}
    for case in CASES:
        if (names is not None and case.name not in names) or (case.slow and not include_slow and names is None):
            continue
        case.build(input_dir, outside_dir)
        chosen[case.name] = case
    return chosen
