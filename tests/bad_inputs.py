"""The bad-input suite: every awkward file the organizers might drop into Test_Data, built from tests.media_makers.

Shared by tests/test_bad_inputs.py and scripts/robustness.py (which times each one and writes docs/robustness.md).

    CASES: list[BadInput]                      every case, in a stable order
    build_suite(input_dir, outside_dir, include_slow=False, names=None) -> dict[name, BadInput]
        writes each case's entry into ``input_dir`` (the symlink case also writes its target into ``outside_dir``)

A BadInput has ``name``, ``entry`` (the file/dir name it creates in the input folder), ``build(input_dir,
outside_dir)``, ``expect``: "ok" (must be analysed without error), "error" (must be an errors.csv row) or "any"
(either is fine: e.g. a truncated file the decoder may partly salvage), ``slow`` and a short ``note``.
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
    expect: str  # "ok" | "error" | "any"
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
