"""Metrics against hand-computed values, and `omni-mer evaluate` end to end."""

import csv
import json

import numpy as np
import pytest

from omni_mer.eval import evaluate
from omni_mer.data.manifest import ManifestRecord, write_manifest
from omni_mer.eval.metrics import (
    classification_metrics,
    confusion_matrix,
    cross_lingual_markdown,
    cross_lingual_table,
    evaluate_labels,
    markdown_summary,
    save_confusion,
)

Y_TRUE = ["SNEG", "SNEG", "WNEG", "NEUT", "WPOS", "SPOS"]
Y_PRED = ["SNEG", "WNEG", "WNEG", "WPOS", "WPOS", "NEUT"]
LANGS = ["en", "en", "en", "zh", "zh", "zh"]


def test_confusion_matrix():
    cm = confusion_matrix(Y_TRUE, Y_PRED)
    expected = np.zeros((5, 5), int)
    for t, p in [(0, 0), (0, 1), (1, 1), (2, 3), (3, 3), (4, 2)]:
        expected[t, p] += 1
    np.testing.assert_array_equal(cm, expected)


def test_hand_computed_metrics():
    m = classification_metrics(Y_TRUE, Y_PRED)
    assert m["n"] == 6
    assert m["acc5"] == pytest.approx(3 / 6)
    # recalls: SNEG 1/2, WNEG 1, NEUT 0, WPOS 1, SPOS 0
    assert m["uar"] == pytest.approx(2.5 / 5)
    # F1: SNEG 2/3, WNEG 2/3 (P 1/2, R 1), NEUT 0, WPOS 2/3, SPOS 0
    assert m["macro_f1"] == pytest.approx(2 / 5)
    assert m["weighted_f1"] == pytest.approx((2 * 2 / 3 + 2 / 3 + 2 / 3) / 6)
    # Acc-2 on the 5 non-neutral clips; the SPOS clip predicted NEUT is wrong.
    assert m["acc2"] == pytest.approx(4 / 5) and m["acc2_n"] == 5
    # ordinal distances 0,1,0,1,0,2
    assert m["mae"] == pytest.approx(4 / 6)
    assert m["per_class"]["WNEG"] == {"support": 1, "predicted": 2, "recall": 1.0, "precision": 0.5,
                                      "f1": pytest.approx(2 / 3)}
    assert m["per_class"]["SPOS"]["precision"] is None


def test_per_language():
    r = evaluate_labels(Y_TRUE, Y_PRED, LANGS)
    assert r["per_language"]["en"]["acc5"] == pytest.approx(2 / 3)
    assert r["per_language"]["zh"]["acc5"] == pytest.approx(1 / 3)
    assert r["per_language"]["zh"]["acc2"] == pytest.approx(1 / 2)  # WPOS right, SPOS->NEUT wrong
    assert r["per_language"]["en"]["mae"] == pytest.approx(1 / 3)
    assert r["overall"]["acc5"] == pytest.approx(0.5)


def test_perfect_and_absent_classes():
    m = classification_metrics(["WPOS", "WPOS", "SNEG"], ["WPOS", "WPOS", "SNEG"])
    # Classes absent from both truth and predictions do not drag macro scores down.
    assert m["acc5"] == m["uar"] == m["macro_f1"] == m["weighted_f1"] == m["acc2"] == 1.0
    assert m["mae"] == 0.0


def test_acc2_reverses_sign():
    m = classification_metrics(["SPOS", "WNEG", "NEUT"], ["WNEG", "WPOS", "SNEG"])
    assert m["acc2"] == 0.0 and m["acc2_n"] == 2  # the NEUT clip is excluded
    assert m["mae"] == pytest.approx((3 + 2 + 2) / 3)


def test_empty_and_invalid():
    m = classification_metrics([], [])
    assert m["n"] == 0 and all(m[k] is None for k in ("acc5", "uar", "macro_f1", "weighted_f1", "acc2", "mae"))
    with pytest.raises(ValueError, match="HAPPY"):
        classification_metrics(["HAPPY"], ["NEUT"])
    with pytest.raises(ValueError):
        classification_metrics(["NEUT"], [])


def test_cross_lingual_table():
    t = cross_lingual_table({("en", "en"): 0.6, ("en", "zh"): 0.3, ("zh", "zh"): 0.5, ("zh", "en"): 0.45})
    assert t["acc"]["en"]["zh"] == 0.3
    assert t["retention"]["en"]["zh"] == pytest.approx(0.6)
    assert t["retention"]["zh"]["en"] == pytest.approx(0.75)
    assert t["retention"]["en"]["en"] == pytest.approx(1.0)
    md = cross_lingual_markdown(t)
    assert "| en | 60.00 | 30.00 (60.0% of in-language) |" in md
    t = cross_lingual_table({("en", "en"): 0.6, ("en", "zh"): 0.3})
    assert t["retention"]["en"]["zh"] is None  # no in-language zh result to compare with


def test_save_confusion_and_summary(tmp_path):
    cm = confusion_matrix(Y_TRUE, Y_PRED)
    save_confusion(cm, tmp_path / "cm.csv", tmp_path / "cm.png", title="t")
    rows = list(csv.reader((tmp_path / "cm.csv").open()))
    assert rows[0] == ["true\\pred", "SNEG", "WNEG", "NEUT", "WPOS", "SPOS"]
    assert rows[1] == ["SNEG", "1", "1", "0", "0", "0"] and rows[5] == ["SPOS", "0", "0", "1", "0", "0"]
    assert (tmp_path / "cm.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = markdown_summary(evaluate_labels(Y_TRUE, Y_PRED, LANGS))
    assert "| overall | 6 | 50.00 | 50.00 | 40.00 | 44.44 | 80.00 | 0.667 |" in md
    assert "| zh | 3 | 33.33 |" in md


# ------------------------------------------------------------------------------------------ omni-mer evaluate


@pytest.fixture
def manifest(tmp_path):
    recs = [ManifestRecord(f"en{i}", f"/data/en/clip_en{i}.mp4", "en", lab, split="test", source="mosei")
            for i, lab in enumerate(["SNEG", "WNEG", "NEUT", "WPOS"])]
    recs += [ManifestRecord(f"zh{i}", f"/data/zh/视频{i}.mp4", "zh", lab, split="test", source="sims2")
             for i, lab in enumerate(["SPOS", "WPOS", "NEUT"])]
    recs.append(ManifestRecord("tr0", "/data/en/train0.mp4", "en", "NEUT", split="train", source="mosei"))
    return write_manifest(recs, tmp_path / "manifest.jsonl")


def _pred(path, rows):
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["ID", "Label"])
        w.writerows(rows)
    return path


def test_evaluate_reports_unmatched_ids(tmp_path, manifest):
    pred = _pred(tmp_path / "label_prediction.csv", [
        ["en0", "SNEG"], ["en1", "SNEG"], ["clip_en2", "NEUT"],  # matched by file stem
        ["视频0.mp4", "strongly positive"],  # matched by file name (--id-with-ext), long label name
        ["zh1", "banana"],  # unreadable label
        ["ghost", "NEUT"],  # unknown ID
        ["tr0", "NEUT"],  # exists, but in the train split
    ])
    out = tmp_path / "eval"
    assert evaluate.main(["--pred", str(pred), "--manifest", str(manifest), "--out", str(out), "--split", "test"]) == 0
    result = json.loads((out / "metrics.json").read_text())
    run = result["runs"][0]
    m = run["matching"]
    assert m["n_matched"] == 4 and m["n_manifest"] == 7
    assert sorted(m["missing_predictions"]) == ["en3", "zh1", "zh2"]
    assert m["unknown_ids"] == ["ghost"] and m["other_split_ids"] == ["tr0"]
    assert len(m["bad_rows"]) == 1 and "banana" in m["bad_rows"][0] and ":6" in m["bad_rows"][0]
    assert run["overall"]["acc5"] == pytest.approx(3 / 4)
    assert run["per_language"]["zh"]["n"] == 1 and run["per_language"]["en"]["n"] == 3
    summary = (out / "summary.md").read_text()
    assert "ghost" in summary and "en3" in summary and "banana" in summary
    name = run["name"]
    assert (out / f"confusion_{name}.csv").is_file() and (out / f"confusion_{name}.png").is_file()
    assert (out / f"confusion_{name}_zh.csv").is_file()


def test_evaluate_cross_lingual(tmp_path, manifest):
    en_model = _pred(tmp_path / "en_model.csv", [["en0", "SNEG"], ["en1", "WNEG"], ["en2", "NEUT"], ["en3", "NEUT"],
                                                 ["zh0", "NEUT"], ["zh1", "WPOS"], ["zh2", "SNEG"]])
    zh_model = _pred(tmp_path / "zh_model.csv", [["en0", "NEUT"], ["en1", "WNEG"], ["en2", "WPOS"], ["en3", "SPOS"],
                                                 ["zh0", "SPOS"], ["zh1", "WPOS"], ["zh2", "NEUT"]])
    out = tmp_path / "eval"
    evaluate.main(["--pred", str(en_model), "--train-lang", "en", "--pred", str(zh_model), "--train-lang", "zh",
                   "--manifest", str(manifest), "--out", str(out), "--split", "test"])
    cross = json.loads((out / "metrics.json").read_text())["cross_lingual"]
    assert cross["acc"]["en"] == {"en": pytest.approx(3 / 4), "zh": pytest.approx(1 / 3)}
    assert cross["acc"]["zh"] == {"en": pytest.approx(1 / 4), "zh": pytest.approx(1.0)}
    assert cross["retention"]["en"]["zh"] == pytest.approx(1 / 3)
    assert cross["retention"]["zh"]["en"] == pytest.approx((1 / 4) / (3 / 4))
    assert "Cross-lingual" in (out / "summary.md").read_text()


def test_evaluate_optional_section(tmp_path, manifest):
    """The extension point: a registered section adds flags and a result without touching main()."""
    seen = {}

    def add(ap):
        ap.add_argument("--shout", action="store_true")

    def run(args, ctx):
        seen["n_runs"] = len(ctx.runs)
        if not args.shout:
            return None
        ctx.markdown.append("## Shout\n\nHELLO\n")
        return {"records": len(ctx.records)}

    pred = _pred(tmp_path / "p.csv", [["en0", "SNEG"]])
    evaluate.register_section(evaluate.Section("shout", add, run))
    try:
        out = tmp_path / "eval"
        evaluate.main(["--pred", str(pred), "--manifest", str(manifest), "--out", str(out), "--shout"])
        assert json.loads((out / "metrics.json").read_text())["shout"] == {"records": 8}
        assert "HELLO" in (out / "summary.md").read_text() and seen["n_runs"] == 1
    finally:
        evaluate.SECTIONS[:] = [s for s in evaluate.SECTIONS if s.name != "shout"]


def test_evaluate_needs_manifest(tmp_path):
    with pytest.raises(SystemExit):
        evaluate.main(["--pred", str(_pred(tmp_path / "p.csv", [])), "--out", str(tmp_path)])
