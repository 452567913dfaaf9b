"""Issue 16: file names and journal damage that used to kill the batch or corrupt label_prediction.csv.

Non-UTF-8 names, a carriage return in a name, colliding stems (a.mp4 / a.mkv / a.mp4.mkv) and a damaged resume
journal: every file still gets exactly one row, the CSV reads back one row per file, and --resume never crashes."""

from __future__ import annotations

import csv
import json
import logging
import os
import sys
from pathlib import Path

import pytest

from omni_mer.core.labels import LABELS
from omni_mer.batch.journal import Journal
from omni_mer.report.files import write_results
from omni_mer.batch.predict import PredictConfig, list_inputs, run
from tests.bad_inputs import _video

pytestmark = pytest.mark.timeout(300)

needs_bytes_names = pytest.mark.skipif(sys.platform in ("darwin", "win32"),
                                       reason="the file system must accept arbitrary bytes in names")


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def _bytes_name(d: Path, name: bytes) -> None:
    with open(os.path.join(os.fsencode(d), name), "wb") as f:
        f.write(b"not a video")


# --- 1. non-UTF-8 file names ---------------------------------------------------------------------------------------

@needs_bytes_names
def test_non_utf8_name_gets_an_escaped_utf8_id(tmp_path):
    _bytes_name(tmp_path, b"caf\xe9.mp4")
    (item,) = list_inputs(tmp_path)
    assert item.id == "caf\\xe9"
    item.id.encode("utf-8")  # representable
    assert os.path.exists(item.path)  # the path still opens the file
    (item,) = list_inputs(tmp_path, id_with_ext=True)
    assert item.id == "caf\\xe9.mp4"


@needs_bytes_names
def test_journal_never_crashes_on_a_non_utf8_name(tmp_path):
    j = Journal(tmp_path / "rank0.jsonl")
    j.append({"id": "x", "file": os.fsdecode(b"caf\xe9.mp4"), "label": "NEUT", "error": None})
    assert j.load()["x"]["label"] == "NEUT"


@needs_bytes_names
def test_batch_with_a_non_utf8_name_writes_every_row_and_resumes(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    _video(inp / "good.mp4", seconds=1.0)
    _bytes_name(inp, b"caf\xe9.mp4")
    cfg = PredictConfig(input=inp, output=tmp_path / "res", supplements=tmp_path / "sup", backend="lite", workers=0)
    run(cfg)
    rows = _rows(tmp_path / "res" / "label_prediction.csv")
    assert rows[0] == ["ID", "Label"] and sorted(r[0] for r in rows[1:]) == ["caf\\xe9", "good"]
    assert all(r[1] in LABELS for r in rows[1:])
    cfg.resume = True
    run(cfg)
    assert _rows(tmp_path / "res" / "label_prediction.csv") == rows


# --- 2. journal damage ---------------------------------------------------------------------------------------------

def test_journal_skips_and_reports_every_bad_line(tmp_path, caplog):
    p = tmp_path / "rank0.jsonl"
    good = {"id": "ok", "label": "WPOS", "error": None}
    lines = [
        json.dumps(good).encode(),
        b"[1, 2, 3]",  # not a dict
        b'"just a string"',
        json.dumps({"label": "NEUT"}).encode(),  # no id
        json.dumps({"id": "nolabel"}).encode(),  # no label
        json.dumps({"id": 7, "label": "NEUT"}).encode(),  # id not a string
        json.dumps({"id": "bogus", "label": "HAPPY"}).encode(),  # not one of LABELS
        json.dumps({"id": "baderr", "label": "NEUT", "error": "x"}).encode(),  # error not a dict
        b"\xff\xfe garbage",  # not UTF-8
        json.dumps({"id": "zh", "label": "NEUT", "transcript": "今天很好"}, ensure_ascii=False).encode()[:-5],
    ]
    p.write_bytes(b"\n".join(lines))  # the last line is cut inside a Chinese character
    with caplog.at_level(logging.WARNING, logger="omni_mer.batch.journal"):
        done = Journal(p).load()
    assert list(done) == ["ok"]
    warned = [r.getMessage() for r in caplog.records]
    for n in range(2, len(lines) + 1):
        assert any(f"{p}:{n}:" in m for m in warned), (n, warned)
    j = Journal(p)
    j.append({"id": "after", "label": "SNEG", "error": None})
    assert set(j.load()) == {"ok", "after"}


def test_journal_path_that_is_a_directory(tmp_path, caplog):
    p = tmp_path / "rank0.jsonl"
    p.mkdir()
    with caplog.at_level(logging.WARNING, logger="omni_mer.batch.journal"):
        assert Journal(p).load() == {}
    assert any(str(p) in r.getMessage() for r in caplog.records)
    j = Journal(p)
    j.append({"id": "a", "label": "NEUT", "error": None})  # moved aside, not crashed on
    assert set(j.load()) == {"a"}
    p2 = tmp_path / "other.jsonl"
    p2.mkdir()
    Journal(p2).reset()
    assert not p2.exists()


def test_resume_on_a_damaged_journal_redoes_bad_entries(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    for n in ("a", "b", "c"):
        _video(inp / f"{n}.mp4", seconds=1.0)
    res = tmp_path / "res"
    cfg = PredictConfig(input=inp, output=res, supplements=None, backend="lite", workers=0)
    run(cfg)
    truth = _rows(res / "label_prediction.csv")
    journal = res / ".progress" / "rank0.jsonl"
    recs = [json.loads(line) for line in journal.read_text(encoding="utf-8").splitlines()]
    recs[0]["label"] = "BOGUS"
    del recs[1]["id"]
    journal.write_bytes(b"\n".join(json.dumps(r, ensure_ascii=False).encode() for r in recs)
                        + b"\n[]\n" + '{"id": "z", "transcript": "中'.encode()[:-1])
    cfg.resume = True
    run(cfg)
    rows = _rows(res / "label_prediction.csv")
    assert rows == truth
    assert "BOGUS" not in (res / "label_prediction.csv").read_text(encoding="utf-8")
    # and a journal that became a directory
    journal.unlink()
    journal.mkdir()
    run(cfg)
    assert _rows(res / "label_prediction.csv") == truth


# --- 3. carriage return / newline in a name ------------------------------------------------------------------------

@pytest.mark.parametrize("rid", ["a\rb", "a\nb", "a\r\nb", "\r", 'q"\r'])
def test_ids_with_line_breaks_read_back_as_one_row(tmp_path, rid):
    recs = {rid: {"id": rid, "label": "NEUT", "error": {"stage": "decode", "reason": f"bad {rid}"}},
            "plain": {"id": "plain", "label": "WPOS", "error": None, "language": "en", "transcript": "x\ry"}}
    write_results(tmp_path, tmp_path, recs)
    rows = _rows(tmp_path / "label_prediction.csv")
    assert rows == [["ID", "Label"], *sorted([[rid, "NEUT"], ["plain", "WPOS"]])]
    assert _rows(tmp_path / "errors.csv")[1] == [rid, "decode", f"bad {rid}"]
    assert _rows(tmp_path / "transcription_results.csv")[1] == ["plain", "en", "x\ry"]


def test_simple_ids_stay_unquoted(tmp_path):
    write_results(tmp_path, None, {"b": {"id": "b", "label": "WPOS"}, "a": {"id": "a", "label": "NEUT"}})
    assert (tmp_path / "label_prediction.csv").read_bytes() == b"ID,Label\na,NEUT\nb,WPOS\n"


# --- 4. injective IDs ----------------------------------------------------------------------------------------------

def test_colliding_stems_and_names_get_distinct_ids(tmp_path):
    for n in ("a.mp4", "a.mkv", "a.mp4.mkv", "b.mp4", "b.mp4.mkv", "c", "c.wav", "d.mp4"):
        (tmp_path / n).write_bytes(b"x")
    items = list_inputs(tmp_path)
    ids = {it.path.name: it.id for it in items}
    assert len(set(ids.values())) == len(items) == 8
    assert ids == {"a.mp4": "a.mp4", "a.mkv": "a.mkv", "a.mp4.mkv": "a.mp4.mkv", "b.mp4": "b",
                   "b.mp4.mkv": "b.mp4.mkv", "c": "c", "c.wav": "c.wav", "d.mp4": "d"}
    assert [it.id for it in items] == sorted(ids.values())
    assert [it.id for it in list_inputs(tmp_path)] == [it.id for it in items]  # deterministic


@needs_bytes_names
def test_escaped_name_colliding_with_a_literal_name_stays_distinct(tmp_path):
    _bytes_name(tmp_path, b"caf\xe9.mp4")
    (tmp_path / "caf\\xe9.mp4").write_bytes(b"x")  # literally backslash-x-e-9
    for ext in (False, True):
        items = list_inputs(tmp_path, id_with_ext=ext)
        assert len({it.id for it in items}) == 2, [it.id for it in items]
        assert all(it.id.encode("utf-8") for it in items)
