"""The batch job on every bad input of the issue (tests/bad_inputs.py): a CSV row each, an errors.csv reason when
it failed, no crash or hang; the per-file time limit; nothing written outside the output folders."""

from __future__ import annotations

import csv
import os
import resource
import time
from pathlib import Path

import numpy as np
import pytest

from omni_mer.core.labels import LABELS
from omni_mer.batch.predict import PredictConfig, run
from tests.bad_inputs import CASES, NASTY_NAMES, _video, build_suite

pytestmark = pytest.mark.timeout(400)
SAMPLES = Path(__file__).resolve().parents[1] / "samples"

DEFAULT_CASES = [c for c in CASES if not c.slow]


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _all_files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() or p.is_symlink()}


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    """Every default case in one input folder, one real batch run (worker process, lite backend)."""
    root = tmp_path_factory.mktemp("bad")
    cases = build_suite(root / "in", root / "outside")
    before = _all_files(root)
    cwd_before = set(os.listdir(Path.cwd()))
    cfg = PredictConfig(input=root / "in", output=root / "res", supplements=root / "sup", backend="lite",
                        workers=1, timeout_s=120)
    t0 = time.monotonic()
    records = run(cfg)
    elapsed = time.monotonic() - t0
    return {
        "root": root, "cases": cases, "records": records, "elapsed": elapsed, "before": before,
        "cwd_before": cwd_before,
        "preds": {r["ID"]: r["Label"] for r in _read_csv(root / "res" / "label_prediction.csv")},
        "pred_rows": _read_csv(root / "res" / "label_prediction.csv"),
        "errors": {r["ID"]: r for r in _read_csv(root / "res" / "errors.csv")},
    }


@pytest.mark.parametrize("case", DEFAULT_CASES, ids=[c.name for c in DEFAULT_CASES])
def test_bad_input_gets_a_row(suite, case):
    assert case.id in suite["preds"], f"no CSV row for {case.entry!r}"
    assert suite["preds"][case.id] in LABELS
    err = suite["errors"].get(case.id)
    if case.expect == "error":
        assert err is not None, f"{case.entry!r} should be reported in errors.csv"
    elif case.expect == "ok":
        assert err is None, f"{case.entry!r} failed: {err}"
    if err is not None:
        assert err["stage"] and len(err["reason"]) > 5
    rec = suite["records"][case.id]
    if err is None:  # analysed: its supplements exist
        from omni_mer.report.files import safe_dirname

        d = suite["root"] / "sup" / safe_dirname(case.id)
        assert (d / "explanation.json").is_file(), f"no supplements for {case.entry!r}"
        assert rec["label"] == suite["preds"][case.id]


def test_specific_reasons(suite):
    e = suite["errors"]
    assert "empty" in e["empty"]["reason"]
    assert "text" in e["notes"]["reason"] or "not a media" in e["notes"]["reason"]
    assert "outside the input folder" in e["link_outside"]["reason"] and e["link_outside"]["stage"] == "input"
    assert "directory" in e["folder_named"]["reason"]
    # The video inside the directory named like a video is not picked up.
    assert "inner" not in suite["preds"]


def test_one_row_per_input_and_nothing_else(suite):
    ids = [r["ID"] for r in suite["pred_rows"]]
    assert len(ids) == len(set(ids)) == len(suite["cases"])
    assert set(ids) == {c.id for c in suite["cases"].values()}


def test_outputs_never_escape_the_output_folders(suite):
    root = suite["root"]
    new = _all_files(root) - suite["before"]
    allowed = (root / "res", root / "sup")
    outside = [p for p in new if not any(a in p.parents for a in allowed)]
    assert not outside, f"written outside the output folders: {outside}"
    # Nothing was created in the working directory either (e.g. by a name executed as a shell command).
    assert set(os.listdir(Path.cwd())) - suite["cwd_before"] == set()
    assert not any(p.name == "pwned" for p in _all_files(root)) and not (Path.cwd() / "pwned").exists()
    # Every supplements folder is a direct child of the supplements root.
    for d in (root / "sup").iterdir():
        assert d.parent == root / "sup"


def test_nasty_names_keep_their_ids(suite):
    for name in NASTY_NAMES:
        assert Path(name).stem in suite["preds"]


def test_per_file_time_limit_kills_a_stuck_file(tmp_path):
    """A file that takes longer than timeout_s gets a 'timeout' row; the next file still runs (fresh worker)."""
    from omni_mer.media import decode
    from tests.media_makers import moving_face_frames, write_video

    d = tmp_path / "in"
    d.mkdir()
    # 60 s of real speech: ASR must decode all of it (many seconds on any CPU), so a 2 s limit always trips,
    # however fast the machine. (Synthetic noise would be dropped by the VAD and finish quickly.)
    speech = decode(SAMPLES / "en_bad_service.mp4").audio
    audio = np.tile(speech, int(np.ceil(60 * 16000 / len(speech))))[: 60 * 16000]
    write_video(d / "long_60s.mp4", moving_face_frames(60, size=(32, 32)), 1.0, audio=audio)
    _video(d / "zz_small.mp4", seconds=1.0)
    cfg = PredictConfig(input=d, output=tmp_path / "res", supplements=None, backend="lite", workers=1,
                        timeout_s=2.0)
    t0 = time.monotonic()
    run(cfg)
    took = time.monotonic() - t0
    preds = {r["ID"]: r["Label"] for r in _read_csv(tmp_path / "res" / "label_prediction.csv")}
    errors = {r["ID"]: r for r in _read_csv(tmp_path / "res" / "errors.csv")}
    assert set(preds) == {"long_60s", "zz_small"}
    assert errors["long_60s"]["stage"] == "timeout"
    # The small file may also hit the 1 s limit on a loaded machine; either way it has a row and a reason.
    if "zz_small" in errors:
        assert errors["zz_small"]["stage"] == "timeout"
    assert took < 180


@pytest.mark.slow
def test_ten_minute_video_is_bounded(tmp_path):
    """A 10-minute video: a row, no error, bounded time and memory (audio is capped at max_audio_seconds)."""
    d = tmp_path / "in"
    build_suite(d, tmp_path / "o", names=["long_10min"])
    cfg = PredictConfig(input=d, output=tmp_path / "res", supplements=tmp_path / "sup", backend="lite",
                        workers=1, timeout_s=300)
    t0 = time.monotonic()
    run(cfg)
    took = time.monotonic() - t0
    preds = {r["ID"]: r["Label"] for r in _read_csv(tmp_path / "res" / "label_prediction.csv")}
    errors = _read_csv(tmp_path / "res" / "errors.csv")
    assert preds.get("long_10min") in LABELS and not errors
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    assert took < 300 and peak_mb < 4000
