import csv
import os

import pytest

from omni_mer.evidence.types import Segment
from omni_mer.batch.journal import Journal
from omni_mer.report.files import inside, safe_dirname, srt, write_results
from omni_mer.batch.predict import PredictConfig, list_inputs


def test_journal_ignores_a_torn_last_line_and_appends_cleanly(tmp_path):
    j = Journal(tmp_path / "rank0.jsonl")
    j.append({"id": "a", "label": "NEUT"})
    with open(j.path, "a") as f:
        f.write('{"id": "b", "lab')  # what a kill -9 mid-write leaves
    assert set(j.load()) == {"a"}
    j.append({"id": "c", "label": "WPOS"})
    assert set(j.load()) == {"a", "c"}


@pytest.mark.parametrize("name", ["../../etc/passwd", "..", ".", "-rf", "a/b", "名字 with space", "\x00x"])
def test_safe_dirname_never_escapes(tmp_path, name):
    d = safe_dirname(name)
    assert "/" not in d and d not in (".", "..") and not d.startswith("-")
    inside(tmp_path, tmp_path / d)


def test_inside_refuses_escape(tmp_path):
    with pytest.raises(ValueError, match="outside"):
        inside(tmp_path / "sub", tmp_path / "other")


def test_results_csv_sorted_one_row_per_id_and_quoted(tmp_path):
    recs = {
        "b": {"id": "b", "label": "WPOS", "error": None, "language": "en", "transcript": "hi"},
        'a,"x': {"id": 'a,"x', "label": "NEUT", "error": {"stage": "decode", "reason": "empty"}},
    }
    write_results(tmp_path, tmp_path, recs)
    rows = list(csv.reader(open(tmp_path / "label_prediction.csv")))
    assert rows == [["ID", "Label"], ['a,"x', "NEUT"], ["b", "WPOS"]]
    errs = list(csv.reader(open(tmp_path / "errors.csv")))
    assert errs[1] == ['a,"x', "decode", "empty"]
    assert not [p for p in os.listdir(tmp_path) if ".tmp" in p]


def test_srt_format():
    out = srt([Segment(0.0, 1.5, "hello"), Segment(61.25, 62.0, "world")])
    assert "1\n00:00:00,000 --> 00:00:01,500\nhello" in out
    assert "00:01:01,250 --> 00:01:02,000" in out


def test_list_inputs_ids_collisions_hidden_and_dirs(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"x")
    (tmp_path / "a.wav").write_bytes(b"x")
    (tmp_path / ".hidden.mp4").write_bytes(b"x")
    (tmp_path / "dir.mp4").mkdir()
    (tmp_path / "notes").mkdir()
    items = {it.id: it for it in list_inputs(tmp_path)}
    assert set(items) == {"a.mp4", "a.wav", "dir"}
    assert items["dir"].problem and "directory" in items["dir"].problem
    assert [it.id for it in list_inputs(tmp_path, id_with_ext=True)] == ["a.mp4", "a.wav", "dir.mp4"]


def test_config_validation_names_bad_values():
    with pytest.raises(ValueError, match="'gpu' is not one of auto, lite, omni"):
        PredictConfig(backend="gpu")
    with pytest.raises(ValueError, match="--adapter"):
        PredictConfig(backend="lite", adapter="x")
