"""Issue 16: the batch job never loses a row: a full supplements disk, SIGTERM/SIGINT, edited videos on --resume,
fatal output errors, dot-files, spreadsheet formulas, absolute paths in errors.csv.

Each test here failed before its fix (see docs/robustness.md, "Hostile runs")."""

from __future__ import annotations

import builtins
import csv
import errno
import io
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from omni_mer.batch.predict import PredictConfig, run
from omni_mer.core.labels import LABELS
from tests.bad_inputs import _video

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(300)


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def _dict_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _env() -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", MPLBACKEND="Agg")
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    return env


def _clips(d: Path, names: list[str], seconds: float = 1.0) -> None:
    d.mkdir(parents=True, exist_ok=True)
    for n in names:
        _video(d / n, seconds=seconds)


# --- 7. a full disk (any write failure) on --supplements -----------------------------------------------------------

def _full_disk_under(monkeypatch, root: Path) -> list[str]:
    """Every write under ``root`` fails with ENOSPC (open for writing, os.open, mkdir), as on a full disk."""
    root = str(root.resolve())
    hits: list[str] = []

    def under(p) -> bool:
        try:
            p = os.path.abspath(os.fsdecode(p))
        except TypeError:
            return False  # a file descriptor
        return p == root or p.startswith(root + os.sep)

    def enospc(p):
        hits.append(str(p))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(p))

    real_open, real_os_open, real_mkdir = builtins.open, os.open, os.mkdir

    def fake_open(file, mode="r", *a, **kw):
        if any(c in mode for c in "wax+") and under(file):
            enospc(file)
        return real_open(file, mode, *a, **kw)

    def fake_os_open(path, flags, *a, **kw):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and under(path):
            enospc(path)
        return real_os_open(path, flags, *a, **kw)

    def fake_mkdir(path, *a, **kw):
        if under(path) and not os.path.isdir(path):
            enospc(path)
        return real_mkdir(path, *a, **kw)

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_open)
    monkeypatch.setattr(os, "open", fake_os_open)
    monkeypatch.setattr(os, "mkdir", fake_mkdir)
    return hits


@pytest.mark.parametrize("sup_exists", [True, False], ids=["sup-full", "sup-uncreatable"])
def test_full_supplements_disk_never_touches_the_required_csv(tmp_path, monkeypatch, sup_exists):
    names = [f"c{i}.mp4" for i in range(3)]
    _clips(tmp_path / "in", names)
    sup = tmp_path / "sup"
    if sup_exists:
        sup.mkdir()
    hits = _full_disk_under(monkeypatch, sup)
    cfg = PredictConfig(input=tmp_path / "in", output=tmp_path / "res", supplements=sup, backend="lite", workers=0)
    records = run(cfg)  # must not raise
    monkeypatch.undo()
    assert hits, "the injected failure was never hit"
    rows = _rows(tmp_path / "res" / "label_prediction.csv")
    assert rows[0] == ["ID", "Label"] and sorted(r[0] for r in rows[1:]) == ["c0", "c1", "c2"]
    assert all(r[1] in LABELS for r in rows[1:])
    errors = {r["ID"]: r for r in _dict_rows(tmp_path / "res" / "errors.csv")}
    assert set(errors) == {"c0", "c1", "c2"}
    assert all(e["stage"] == "write" and "No space left" in e["reason"] for e in errors.values()), errors
    # the label is the analysis' own, not the fallback: only the supplements failed
    assert all(records[k]["label"] == r[1] for r in rows[1:] for k in [r[0]])
    if sup.exists():
        assert not [p for p in sup.rglob("*") if ".tmp" in p.name], "temp files left behind"


def _userns_tmpfs_works() -> bool:
    if not shutil.which("unshare") or sys.platform != "linux":
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=16k tmpfs /tmp && echo ok"],
                           capture_output=True, text=True, timeout=30)
    return probe.returncode == 0 and "ok" in probe.stdout


@pytest.mark.skipif(not _userns_tmpfs_works(), reason="needs unprivileged user+mount namespaces (unshare -rm)")
def test_real_full_filesystem_on_supplements(tmp_path):
    """A real 160 KiB tmpfs as --supplements (mounted in a user namespace, no root): it fills after about one
    clip; the job exits 0 with every row, the write failures are in errors.csv."""
    names = [f"c{i}.mp4" for i in range(4)]
    _clips(tmp_path / "in", names)
    sup = tmp_path / "sup"
    sup.mkdir()
    job = (f"mount -t tmpfs -o size=160k tmpfs {sup} && exec {sys.executable} {ROOT / 'test_script.py'} "
           f"--input {tmp_path / 'in'} --output {tmp_path / 'res'} --supplements {sup} --backend lite "
           f"--workers 1")
    done = subprocess.run(["unshare", "-rm", "sh", "-c", job], cwd=ROOT, env=_env(), capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = _rows(tmp_path / "res" / "label_prediction.csv")
    assert sorted(r[0] for r in rows[1:]) == ["c0", "c1", "c2", "c3"]
    assert all(r[1] in LABELS for r in rows[1:])
    errors = _dict_rows(tmp_path / "res" / "errors.csv")
    assert errors and all(e["stage"] == "write" and "No space left" in e["reason"] for e in errors), errors
