"""kill -9 the real batch job (`python test_script.py`) at random points, then --resume: no duplicate, no dropped
row, and label_prediction.csv parseable after every kill."""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from omni_mer.core.labels import LABELS
from tests.bad_inputs import _video

ROOT = Path(__file__).resolve().parents[1]
N_CLIPS = 6
KILLS = 4
SEED = 1234

pytestmark = pytest.mark.timeout(300)


def _cmd(d: Path, resume: bool) -> list[str]:
    cmd = [sys.executable, str(ROOT / "test_script.py"), "--input", str(d / "in"), "--output", str(d / "res"),
           "--supplements", str(d / "sup"), "--backend", "lite", "--workers", "1"]
    return cmd + (["--resume"] if resume else [])


def _env() -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", MPLBACKEND="Agg")
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    return env


def _check_csv(res: Path, expected: set[str]) -> list[str]:
    """The CSV (when it exists yet) parses, has the header, valid labels, no duplicates, only known IDs."""
    path = res / "label_prediction.csv"
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["ID", "Label"], rows[:1]
    ids = [r[0] for r in rows[1:]]
    assert all(len(r) == 2 and r[1] in LABELS for r in rows[1:]), rows
    assert len(ids) == len(set(ids)), f"duplicate rows: {ids}"
    assert set(ids) <= expected
    return ids


def _journal_ids(res: Path) -> list[str]:
    ids = []
    for p in sorted((res / ".progress").glob("rank*.jsonl")):
        for line in p.read_text(encoding="utf-8").splitlines():
            try:
                ids.append(json.loads(line)["id"])
            except ValueError:
                pass  # a torn last line from the kill
    return ids


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the job, then its worker processes (same process group, started by this test)."""
    try:
        os.kill(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def test_kill9_then_resume_never_duplicates_or_drops(tmp_path):
    rng = random.Random(SEED)
    (tmp_path / "in").mkdir()
    names = [f"clip_{i:02d}.mp4" for i in range(N_CLIPS)]
    for i, n in enumerate(names):
        _video(tmp_path / "in" / n, seconds=1.0 + 0.5 * (i % 2))
    expected = {Path(n).stem for n in names}

    seen_done: list[int] = []
    for k in range(KILLS):
        proc = subprocess.Popen(_cmd(tmp_path, resume=k > 0), cwd=ROOT, env=_env(), start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        before = len(set(_journal_ids(tmp_path / "res"))) if k else 0
        # Kill at a random point: either a random delay (often while models load), or just after a random number
        # of further files finished (mid-file, mid-CSV-rewrite).
        if rng.random() < 0.4:
            deadline = time.monotonic() + rng.uniform(0.5, 8.0)
            while time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.05)
        else:
            target = before + rng.randint(1, 2)
            deadline = time.monotonic() + 60
            while (len(set(_journal_ids(tmp_path / "res"))) < target and proc.poll() is None
                   and time.monotonic() < deadline):
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.3))
        _kill_group(proc)
        ids = _check_csv(tmp_path / "res", expected)
        journal = _journal_ids(tmp_path / "res")
        assert len(journal) == len(set(journal)), f"journal has duplicates after kill {k}: {journal}"
        # Every row in the CSV is a finished (journaled) file.
        assert set(ids) <= set(journal)
        seen_done.append(len(set(journal)))
        print(f"kill {k}: {len(ids)} rows in the CSV, {seen_done[-1]} journaled")

    done = subprocess.run(_cmd(tmp_path, resume=True), cwd=ROOT, env=_env(), capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    ids = _check_csv(tmp_path / "res", expected)
    assert sorted(ids) == sorted(expected), f"dropped: {expected - set(ids)}"
    journal = _journal_ids(tmp_path / "res")
    assert sorted(journal) == sorted(expected), "a finished file was analysed twice or lost"
    errors = list(csv.DictReader(open(tmp_path / "res" / "errors.csv", encoding="utf-8")))
    assert errors == [], errors
    # Progress was made across the kills (otherwise the test did not exercise resuming).
    assert seen_done == sorted(seen_done)
    assert max(seen_done) >= 1
