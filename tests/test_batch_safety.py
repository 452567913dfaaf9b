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


# --- 8. SIGTERM / SIGINT to the parent -----------------------------------------------------------------------------

def _group_members(pgid: int) -> list[tuple[int, str]]:
    """(pid, command) of every live process in process group ``pgid`` (Linux /proc)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            out.append((int(d.name), cmd[:120]))
    return out


def _journal_ids(res: Path) -> list[str]:
    import json

    ids = []
    for p in sorted((res / ".progress").glob("rank*.jsonl")):
        for line in p.read_bytes().splitlines():
            try:
                ids.append(json.loads(line)["id"])
            except ValueError:
                pass
    return ids


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="lists processes through /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_to_the_parent_takes_everything_down_and_keeps_the_rows(tmp_path, sig):
    names = [f"clip_{i:02d}.mp4" for i in range(6)]
    _clips(tmp_path / "in", names)
    res = tmp_path / "res"
    cmd = [sys.executable, str(ROOT / "test_script.py"), "--input", str(tmp_path / "in"), "--output", str(res),
           "--supplements", str(tmp_path / "sup"), "--backend", "lite", "--workers", "1"]
    log = open(tmp_path / "stderr.txt", "wb")  # a file, not a pipe: an orphaned worker would hold a pipe open
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=log)
    try:
        deadline = time.monotonic() + 180
        while len(_journal_ids(res)) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "the job ended before it could be signalled"
        assert len(_journal_ids(res)) >= 2
        os.kill(proc.pid, sig)  # the parent only, as `kill PID` or a scheduler would
        proc.wait(timeout=60)
        err = (tmp_path / "stderr.txt").read_text(encoding="utf-8", errors="replace")
        assert proc.returncode == 128 + sig, (proc.returncode, err[-2000:])
        assert "Traceback" not in err, err[-3000:]
        deadline = time.monotonic() + 15  # the resource tracker exits once its pipe closes
        while _group_members(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _group_members(proc.pid) == [], "processes survived the signal"
        journal = _journal_ids(res)
        assert len(journal) == len(set(journal)) >= 2
        rows = _rows(res / "label_prediction.csv")
        assert rows[0] == ["ID", "Label"] and sorted(r[0] for r in rows[1:]) == sorted(journal)
        assert all(r[1] in LABELS for r in rows[1:])
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        log.close()
    done = subprocess.run(cmd + ["--resume"], cwd=ROOT, env=_env(), capture_output=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = _rows(res / "label_prediction.csv")
    assert sorted(r[0] for r in rows[1:]) == [Path(n).stem for n in names]
    assert sorted(_journal_ids(res)) == [Path(n).stem for n in names], "a finished file was redone or lost"


# --- 9. --resume matches on content, not only on the ID -----------------------------------------------------------

def _journal_counts(res: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for rid in _journal_ids(res):
        counts[rid] = counts.get(rid, 0) + 1
    return counts


def test_resume_redoes_an_edited_video(tmp_path, caplog):
    _clips(tmp_path / "in", ["a.mp4", "b.mp4", "c.mp4"])
    res = tmp_path / "res"
    cfg = PredictConfig(input=tmp_path / "in", output=res, supplements=None, backend="lite", workers=0)
    run(cfg)
    # a: replaced by another video; b: same size and mtime, bytes changed near the end (an in-place edit that
    # restores the timestamp); c: untouched
    _video(tmp_path / "in" / "a.mp4", seconds=2.5)
    b = tmp_path / "in" / "b.mp4"
    st = b.stat()
    data = bytearray(b.read_bytes())
    data[-100] ^= 0xFF
    b.write_bytes(bytes(data))
    os.utime(b, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert b.stat().st_size == st.st_size and b.stat().st_mtime_ns == st.st_mtime_ns
    cfg.resume = True
    import logging

    with caplog.at_level(logging.INFO, logger="omni_mer.batch.predict"):
        run(cfg)
    assert _journal_counts(res) == {"a": 2, "b": 2, "c": 1}
    msgs = " ".join(r.getMessage() for r in caplog.records)
    assert "changed since" in msgs and "a.mp4" in msgs and "b.mp4" in msgs
    assert sorted(r[0] for r in _rows(res / "label_prediction.csv")[1:]) == ["a", "b", "c"]


def test_resume_redoes_journal_lines_without_a_content_hash(tmp_path, caplog):
    import json
    import logging

    _clips(tmp_path / "in", ["a.mp4", "b.mp4"])
    res = tmp_path / "res"
    cfg = PredictConfig(input=tmp_path / "in", output=res, supplements=None, backend="lite", workers=0)
    run(cfg)
    journal = res / ".progress" / "rank0.jsonl"
    recs = [json.loads(line) for line in journal.read_text(encoding="utf-8").splitlines()]
    assert all("content" in r for r in recs)
    recs[0].pop("content")  # a line written before content hashes existed
    journal.write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    cfg.resume = True
    with caplog.at_level(logging.INFO, logger="omni_mer.batch.predict"):
        run(cfg)
    assert _journal_counts(res) == {recs[0]["id"]: 2, recs[1]["id"]: 1}
    assert any("no content hash" in r.getMessage() for r in caplog.records)


def test_resume_retries_write_stage_failures(tmp_path, monkeypatch):
    _clips(tmp_path / "in", ["a.mp4", "b.mp4"])
    sup, res = tmp_path / "sup", tmp_path / "res"
    sup.mkdir()
    _full_disk_under(monkeypatch, sup)
    cfg = PredictConfig(input=tmp_path / "in", output=res, supplements=sup, backend="lite", workers=0)
    run(cfg)
    monkeypatch.undo()
    assert {r["stage"] for r in _dict_rows(res / "errors.csv")} == {"write"}
    cfg.resume = True
    run(cfg)  # the disk has space again
    assert _dict_rows(res / "errors.csv") == []
    assert _journal_counts(res) == {"a": 2, "b": 2}
    manifest = __import__("json").loads((sup / "folders.json").read_text(encoding="utf-8"))
    assert all((sup / f / "explanation.json").is_file() for f in manifest["folders"])
