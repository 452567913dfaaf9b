"""Dataset adapters on fixtures written in exactly the CMU-MOSEI (MMSA) and CH-SIMS v2 layouts."""

import csv
import json
import logging
from pathlib import Path

import pytest

from tests import media_makers as syn
from omni_mer.data.generic import read_generic
from omni_mer.data.manifest import ManifestRecord, build_manifest, main, read_manifest, write_manifest
from omni_mer.data.mosei import read_mosei
from omni_mer.data.sims2 import read_sims2

MOSEI_HEADER = ["video_id", "clip_id", "text", "label", "annotation", "mode"]
SIMS_HEADER = ["video_id", "clip_id", "text", "label", "label_T", "label_A", "label_V", "annotation", "mode"]


def _video(path: Path) -> None:
    syn.write_video(path, syn.moving_face_frames(3, (32, 32)), 5)


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


@pytest.fixture
def mosei(tmp_path) -> Path:
    root = tmp_path / "MOSEI"
    rows = [
        ["--qXJuDtHPw", "0", "I really loved this movie", 2.6667, "Positive", "train"],  # line 2: SPOS
        ["--qXJuDtHPw", "1", "it was okay", 0.0, "Neutral", "valid"],  # line 3
        ["-3g5yACwYnA", "2", "terrible plot", -2.0, "Negative", "test"],  # line 4: SNEG edge
        ["-3g5yACwYnA", "3", "not great", -0.6667, "Negative", "test"],  # line 5: WNEG
        ["-3g5yACwYnA", "4", "missing on disk", 1.0, "Positive", "test"],  # line 6: video missing
        ["-3g5yACwYnA", "5", "bad score", "abc", "Positive", "train"],  # line 7: not a number
        ["-3g5yACwYnA", "6", "out of range", 3.5, "Positive", "train"],  # line 8: out of range
        ["-3g5yACwYnA", "7", "bad split", 0.5, "Positive", "holdout"],  # line 9: unknown mode
    ]
    for vid, clip, *_ in rows:
        if clip not in ("4",):
            _video(root / "Raw" / vid / f"{clip}.mp4")
    _write_csv(root / "label.csv", MOSEI_HEADER, rows)
    return root


@pytest.fixture
def sims2(tmp_path) -> Path:
    root = tmp_path / "ch-simsv2s"
    rows = [
        ["aqgy3_0001", "0001", "我今天非常开心", 0.8, 1.0, 0.6, 0.4, "Positive", "train"],  # line 2
        ["aqgy3_0001", "0002", "还行吧", 0.0, 0.2, -0.2, 0.0, "Neutral", "test"],  # line 3
        ["aqgy3_0002", "0003", "太失望了", -0.6000001, -0.8, -0.4, -1.0, "Negative", "valid"],  # line 4: noise
        ["aqgy3_0002", "0004", "没有视频", -0.2, -0.2, -0.2, -0.2, "Negative", "test"],  # line 5: missing video
        ["aqgy3_0002", "0005", "坏分数", 1.4, 0.0, 0.0, 0.0, "Positive", "train"],  # line 6: out of range
        ["aqgy3_0002", "0006", "坏单模态", 0.2, "x", 0.0, 0.0, "Positive", "train"],  # line 7: bad label_T
    ]
    for vid, clip, *_ in rows:
        if clip != "0004":
            _video(root / "Raw" / vid / f"{clip}.mp4")
    # SIMS CSVs are often saved by Excel with a BOM.
    with (root / "meta.csv").open("w", newline="", encoding="utf-8-sig") as fh:
        w = csv.writer(fh)
        w.writerow(SIMS_HEADER)
        w.writerows(rows)
    return root


def test_mosei(mosei):
    records, problems = read_mosei(mosei)
    by_id = {r.id: r for r in records}
    assert set(by_id) == {"--qXJuDtHPw_0", "--qXJuDtHPw_1", "-3g5yACwYnA_2", "-3g5yACwYnA_3"}
    r = by_id["--qXJuDtHPw_0"]
    assert (r.label5, r.lang, r.split, r.source, r.text) == ("SPOS", "en", "train", "mosei", "I really loved this movie")
    assert r.score == pytest.approx(2.6667) and Path(r.path).is_file() and Path(r.path).is_absolute()
    assert Path(r.path) == (mosei / "Raw" / "--qXJuDtHPw" / "0.mp4").resolve()
    assert [by_id[i].label5 for i in ("--qXJuDtHPw_1", "-3g5yACwYnA_2", "-3g5yACwYnA_3")] == ["NEUT", "SNEG", "WNEG"]
    assert [by_id[i].split for i in ("--qXJuDtHPw_1", "-3g5yACwYnA_2")] == ["valid", "test"]
    kinds = {(p.line, p.kind) for p in problems}
    assert kinds == {(6, "missing_video"), (7, "bad_row"), (8, "bad_row"), (9, "bad_row")}
    msgs = {p.line: p.message for p in problems}
    assert "'abc'" in msgs[7] and "3.5" in msgs[8] and "holdout" in msgs[9]
    assert "4.mp4" in msgs[6]
    assert all(p.file.endswith("label.csv") for p in problems)


def test_sims2(sims2):
    records, problems = read_sims2(sims2)
    by_id = {r.id: r for r in records}
    assert set(by_id) == {"aqgy3_0001_0001", "aqgy3_0001_0002", "aqgy3_0002_0003"}
    r = by_id["aqgy3_0001_0001"]
    assert (r.label5, r.lang, r.split, r.source, r.text) == ("SPOS", "zh", "train", "sims2", "我今天非常开心")
    assert (r.label_T, r.label_A, r.label_V) == ("SPOS", "WPOS", "WPOS")
    assert (r.score_T, r.score_A, r.score_V) == (1.0, 0.6, 0.4)
    r = by_id["aqgy3_0002_0003"]
    assert (r.label5, r.label_T, r.label_A, r.label_V, r.split) == ("WNEG", "SNEG", "WNEG", "SNEG", "valid")
    assert by_id["aqgy3_0001_0002"].label5 == "NEUT"
    assert {(p.line, p.kind) for p in problems} == {(5, "missing_video"), (6, "bad_row"), (7, "bad_row")}


def test_missing_csv_and_bad_header(tmp_path):
    _, problems = read_mosei(tmp_path / "nowhere")
    assert problems[0].kind == "missing_file" and "label.csv" in problems[0].message
    root = tmp_path / "M"
    root.mkdir()
    _write_csv(root / "label.csv", ["video_id", "text"], [["a", "b"]])
    records, problems = read_mosei(root)
    assert records == [] and "clip_id" in problems[0].message and problems[0].line == 1


def test_no_check_files_keeps_missing(mosei):
    records, problems = read_mosei(mosei, check_files=False)
    assert "-3g5yACwYnA_4" in {r.id for r in records}
    assert not any(p.kind == "missing_video" for p in problems)


def test_generic_csv_and_jsonl(tmp_path):
    clips = tmp_path / "clips"
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        _video(clips / name)
    _write_csv(tmp_path / "extra.csv", ["path", "label", "score", "score_scale", "language", "text", "split"], [
        ["clips/a.mp4", "weakly positive", "", "", "en", "nice", "train"],  # line 2
        ["clips/b.mp4", "", "-0.8", "sims", "zh", "", ""],  # line 3
        ["clips/c.mp4", "", "2.5", "mosei", "English", "", "test"],  # line 4
        ["clips/gone.mp4", "NEUT", "", "", "en", "", ""],  # line 5: missing video
        ["clips/a.mp4", "", "1.0", "", "en", "", ""],  # line 6: score without scale
        ["clips/a.mp4", "HAPPY", "", "", "en", "", ""],  # line 7: unknown label
        ["clips/a.mp4", "NEUT", "", "", "fr", "", ""],  # line 8: unsupported language
    ])
    records, problems = read_generic(tmp_path / "extra.csv")
    assert [(r.id, r.label5, r.lang, r.split) for r in records] == [
        ("a", "WPOS", "en", "train"), ("b", "SNEG", "zh", None), ("c", "SPOS", "en", "test")]
    assert records[0].path == str((clips / "a.mp4").resolve()) and records[0].text == "nice"
    assert {(p.line, p.kind) for p in problems} == {(5, "missing_video"), (6, "bad_row"), (7, "bad_row"), (8, "bad_row")}

    lines = [json.dumps({"path": str(clips / "a.mp4"), "label": "SPOS", "lang": "zh", "id": "j1"}), "not json",
             "", json.dumps({"path": "clips/b.mp4", "score": 0.2, "score_scale": "sims", "language": "zh"})]
    (tmp_path / "extra.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    records, problems = read_generic(tmp_path / "extra.jsonl")
    assert [(r.id, r.label5) for r in records] == [("j1", "SPOS"), ("b", "WPOS")]
    assert [(p.line, p.kind) for p in problems] == [(2, "bad_row")]


def test_manifest_round_trip(tmp_path):
    recs = [ManifestRecord("a", "/x/a.mp4", "en", "WPOS", 1.0, "hi", "train", "mosei"),
            ManifestRecord("b", "/x/b.mp4", "zh", "SNEG", -1.0, "太差", "test", "sims2", "SNEG", "WNEG", "NEUT")]
    path = write_manifest(recs, tmp_path / "m.jsonl")
    assert "太差" in path.read_text(encoding="utf-8")
    assert read_manifest(path) == recs
    with pytest.raises(ValueError):
        ManifestRecord("c", "/x", "en", "HAPPY")
    path.write_text(path.read_text() + "{broken\n")
    with pytest.raises(ValueError, match=":3"):
        read_manifest(path)


def test_prepare_cli(mosei, sims2, tmp_path, caplog, capsys):
    extra = tmp_path / "extra.jsonl"
    _video(tmp_path / "mine.mp4")
    extra.write_text(json.dumps({"path": "mine.mp4", "label": "NEUT", "language": "en", "split": "test"}) + "\n")
    out = tmp_path / "out" / "manifest.jsonl"
    with caplog.at_level(logging.WARNING):
        rc = main(["--mosei", str(mosei), "--sims2", str(sims2), "--extra", str(extra), "--out", str(out),
                   "--problems", str(tmp_path / "problems.txt")])
    assert rc == 0
    records = read_manifest(out)
    assert len(records) == 4 + 3 + 1
    assert {r.source for r in records} == {"mosei", "sims2", "extra"}
    assert {r.split for r in records} == {"train", "valid", "test"}
    printed = capsys.readouterr().out
    assert "8 records" in printed and "7 problems" in printed
    assert "label.csv:6" in caplog.text and "meta.csv:5" in caplog.text and "missing_video" in caplog.text
    assert len((tmp_path / "problems.txt").read_text().splitlines()) == 7


def test_duplicate_ids_reported(mosei, tmp_path):
    _video(tmp_path / "--qXJuDtHPw_0.mp4")
    extra = tmp_path / "dup.jsonl"
    extra.write_text(json.dumps({"path": "--qXJuDtHPw_0.mp4", "label": "NEUT", "language": "en"}) + "\n")
    records, problems = build_manifest(mosei=mosei, extra=[extra])
    assert sum(r.id == "--qXJuDtHPw_0" for r in records) == 1
    assert any(p.kind == "duplicate_id" for p in problems)


def test_generic_reads_the_manifests_own_label5_key():
    """`prepare --extra samples/meta/manifest.jsonl` used to reject every row (a score without score_scale)."""
    samples_manifest = Path(__file__).resolve().parents[1] / "samples" / "meta" / "manifest.jsonl"
    records, problems = read_generic(samples_manifest)
    assert len(records) == 6 and not problems
    assert {r.label5 for r in records} == {"SPOS", "SNEG", "NEUT"} and all(r.score is not None for r in records)
