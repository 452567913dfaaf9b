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


# --- minor: fatal output errors are one line, exit 2 ---------------------------------------------------------------

def _predict_cli(argv: list[str], capsys) -> tuple[int, str]:
    from omni_mer.cli import run_command

    rc = run_command("predict", argv, prog="test_script.py")
    return rc, capsys.readouterr().err


def test_output_path_that_is_a_file_is_one_line_exit_2(tmp_path, capsys):
    _clips(tmp_path / "in", ["a.mp4"])
    (tmp_path / "res").write_text("I am a file")
    for out in (tmp_path / "res", tmp_path / "res" / "sub"):
        rc, err = _predict_cli(["--input", str(tmp_path / "in"), "--output", str(out), "--no-supplements",
                                "--backend", "lite", "--workers", "0"], capsys)
        assert rc == 2 and "Traceback" not in err, err
        line = [ln for ln in err.splitlines() if ln.startswith("test_script.py: error:")]
        assert len(line) == 1 and str(out) in line[0], err


def test_output_disk_full_mid_run_is_one_line_exit_2_and_resumable(tmp_path, capsys, monkeypatch):
    from omni_mer.batch import predict

    _clips(tmp_path / "in", ["a.mp4", "b.mp4", "c.mp4"])
    real, calls = predict.write_predictions, []

    def full_after_one(out, recs):
        calls.append(1)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(out / "label_prediction.csv"))
        return real(out, recs)

    monkeypatch.setattr(predict, "write_predictions", full_after_one)
    argv = ["--input", str(tmp_path / "in"), "--output", str(tmp_path / "res"), "--no-supplements", "--backend",
            "lite", "--workers", "0"]
    rc, err = _predict_cli(argv, capsys)
    assert rc == 2 and "Traceback" not in err and "No space left" in err and "--resume" in err, err
    monkeypatch.undo()
    rc, err = _predict_cli(argv + ["--resume"], capsys)
    assert rc == 0, err
    assert sorted(r[0] for r in _rows(tmp_path / "res" / "label_prediction.csv")[1:]) == ["a", "b", "c"]
    assert _journal_counts(tmp_path / "res") == {"a": 1, "b": 1, "c": 1}  # nothing finished was redone


def _userns_ro_bind_works() -> bool:
    if not _userns_tmpfs_works():
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount --bind /tmp /tmp && mount -o remount,bind,ro /tmp "
                            "&& ! touch /tmp/.omni-mer-ro-probe 2>/dev/null && echo ok"],
                           capture_output=True, text=True, timeout=30)
    return "ok" in probe.stdout


@pytest.mark.skipif(not _userns_ro_bind_works(), reason="needs unprivileged user+mount namespaces (unshare -rm)")
def test_read_only_output_is_one_line_exit_2(tmp_path):
    _clips(tmp_path / "in", ["a.mp4"])
    res = tmp_path / "res"
    res.mkdir()
    job = (f"mount --bind {res} {res} && mount -o remount,bind,ro {res} && exec {sys.executable} "
           f"{ROOT / 'test_script.py'} --input {tmp_path / 'in'} --output {res} --no-supplements --backend lite")
    done = subprocess.run(["unshare", "-rm", "sh", "-c", job], cwd=ROOT, env=_env(), capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "Read-only file system" in done.stderr, done.stderr[-3000:]
    assert done.stderr.strip().splitlines()[-1].startswith("test_script.py: error:")


# --- minor: dot-files, two video streams, formula IDs, absolute paths in reasons -----------------------------------

def test_hidden_files_get_a_log_line_and_no_row(tmp_path, caplog):
    import logging

    from omni_mer.batch.predict import list_inputs

    _clips(tmp_path, ["a.mp4"])
    (tmp_path / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    shutil.copy(tmp_path / "a.mp4", tmp_path / "._a.mp4")
    with caplog.at_level(logging.INFO, logger="omni_mer.batch.predict"):
        items = list_inputs(tmp_path)
    assert [it.id for it in items] == ["a"]
    msgs = [r.getMessage() for r in caplog.records]
    assert any(".DS_Store" in m and "hidden" in m for m in msgs), msgs
    assert any("._a.mp4" in m and "hidden" in m for m in msgs), msgs


def test_two_video_streams_decode_the_default_one(tmp_path):
    from omni_mer.media import decode, probe
    from tests.media_makers import write_two_video_streams

    for ext in (".mkv", ".mp4"):
        p = write_two_video_streams(tmp_path / f"two{ext}")
        clip = decode(p)
        assert clip.frames.shape[1:3] == (24, 32), (ext, clip.frames.shape)  # stream 1, the default
        assert clip.frames[..., 2].mean() > 150 and clip.frames[..., 0].mean() < 100  # blue, not red
        assert probe(p) is not None


FORMULA_IDS = ["=1+1", "+cmd", "-2+3", "@SUM(A1)", "\t=x", "\r\n@x", " =x", "=HYPERLINK(\"http://x\",\"y\")"]


def test_formula_ids_are_defused_in_errors_and_reports_but_exact_in_label_prediction(tmp_path):
    from omni_mer.report.files import write_results
    from omni_mer.report.html import write_index_html

    recs = {i: {"id": i, "label": "NEUT", "error": {"stage": "decode", "reason": f"=bad {i}"}} for i in FORMULA_IDS}
    recs["ok=1"] = {"id": "ok=1", "label": "WPOS", "error": None, "language": "en", "transcript": "=2+2 said"}
    recs["=t"] = {"id": "=t", "label": "WPOS", "error": None, "language": "en", "transcript": "fine"}
    write_results(tmp_path, tmp_path, recs)
    assert sorted(r[0] for r in _rows(tmp_path / "label_prediction.csv")[1:]) == sorted(recs)  # exact
    for row in _rows(tmp_path / "errors.csv")[1:]:
        assert row[0].startswith("'") and row[0][1:] in FORMULA_IDS, row
        assert row[2].startswith("'="), row
    trans = {r[0]: r for r in _rows(tmp_path / "transcription_results.csv")[1:]}
    assert set(trans) == {"ok=1", "'=t"} and trans["ok=1"][2] == "'=2+2 said"
    entries = [{"id": i, "file": i + ".mp4", "label": r["label"], "error": r["error"]} for i, r in recs.items()]
    page = write_index_html(tmp_path / "sup", entries).read_bytes().decode("utf-8")  # keep \r as written
    import html

    for i in FORMULA_IDS:
        assert f"<td>{html.escape(i)}</td>" not in page and f"<td>{html.escape(chr(39) + i)}</td>" in page, i


def test_error_reasons_carry_no_absolute_paths(tmp_path):
    from tests.media_makers import write_empty, write_text_as_video

    inp, outside = tmp_path / "in", tmp_path / "outside"
    inp.mkdir()
    write_empty(inp / "empty.mp4")
    write_text_as_video(inp / "notes.mp4")
    _clips(outside, ["secret.mp4"])
    os.symlink(outside / "secret.mp4", inp / "link.mp4")
    (inp / "dir.mp4").mkdir()
    cfg = PredictConfig(input=inp, output=tmp_path / "res", supplements=None, backend="lite", workers=0)
    run(cfg)
    errors = {r["ID"]: r["reason"] for r in _dict_rows(tmp_path / "res" / "errors.csv")}
    assert set(errors) == {"empty", "notes", "link", "dir"}
    for rid, reason in errors.items():
        assert str(tmp_path) not in reason and str(tmp_path.resolve()) not in reason, (rid, reason)
    assert errors["empty"].startswith("empty.mp4:")
    assert "../outside/secret.mp4" in errors["link"]
