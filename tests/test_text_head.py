"""The text head: dataset adapters for text-only tables, the head's output and calibration, its save/load, the word
cues, the lite fusion in head mode, the train-text / eval-text commands (on a tiny table tree written here), and the
shipped head (polarity in both languages; its recorded metrics against the real tables when ../shared/data is here)."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from omni_mer.cli import main as cli_main
from omni_mer.data.manifest import build_manifest, read_manifest, text_table_roots
from omni_mer.data.mer2023 import read_mer2023
from omni_mer.data.mosei import read_mosei, read_sims
from omni_mer.core.labels import LABELS, from_mer2023
from omni_mer.texthead.calibrate import fit_calibration, objective
from omni_mer.texthead.corpus import load_corpus, select
from omni_mer.texthead.cues import occlusion, split_units
from omni_mer.texthead.head import DEFAULT_HEAD_DIR, LanguageCalibration, TextHead
from omni_mer.texthead.noise import asr_noise

SHARED_TEXT = Path(__file__).resolve().parents[2] / "shared" / "data" / "text"

POS_EN = ["I really love this, it is wonderful", "what a great and happy day", "this is excellent work, thank you",
          "I am so pleased with the result", "fantastic, I enjoyed every minute"]
NEG_EN = ["I hate this, it is terrible", "what an awful and sad day", "this is horrible, I am angry",
          "I am so disappointed with the result", "disgusting, I regret every minute"]
POS_ZH = ["我非常喜欢这个，太棒了", "今天真开心，一切都很好", "这个结果让我很满意", "谢谢你，我太高兴了", "真是美好的一天"]
N_ROWS = 100  # per table: 25 valid rows per language, enough for a calibration
NEG_ZH = ["我非常讨厌这个，太糟糕了", "今天真难过，一切都很差", "这个结果让我很失望", "我很生气，别再来了", "真是糟透的一天"]


def _write(path: Path, header: list[str], rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> Path:
    """A tiny tree in the ../shared/data/text layout: MOSEI (en), SIMSv2 (zh), MER2023 (zh) and translations."""
    root = tmp_path_factory.mktemp("text")
    mosei, sims2, mer, trans = [], [], [], []
    for i in range(N_ROWS):
        split = ["train", "train", "valid", "test"][i % 4]
        k, pos = i // 4 % 5, i % 3 != 0
        mosei.append([f"v{i}", str(i), POS_EN[k] if pos else NEG_EN[k], 2.4 if pos else -2.4, "x", split])
        sims2.append([f"z{i}", f"{i:04d}", POS_ZH[k] if pos else NEG_ZH[k], 0.8 if pos else -0.8, "", "", "",
                      "x", split])
        trans.append([f"z{i}_{i:04d}", POS_ZH[k] if pos else NEG_ZH[k], POS_EN[k] if pos else NEG_EN[k]])
    for i in range(12):
        mer.append([f"sample_{i}", ["train", "test1", "test2", "test3"][i % 4], POS_ZH[i % 5], POS_EN[i % 5],
                    "happy", "" if i % 4 == 3 else 4.0])
    _write(root / "MOSEI" / "label.csv", ["video_id", "clip_id", "text", "label", "annotation", "mode"], mosei)
    _write(root / "SIMSv2" / "meta.csv", ["video_id", "clip_id", "text", "label", "label_T", "label_A", "label_V",
                                          "annotation", "mode"], sims2)
    _write(root / "MER2023" / "label.csv", ["name", "split", "text_zh", "text_en", "emotion", "valence"], mer)
    _write(root / "translations" / "SIMSv2.csv", ["name", "chinese", "english"], trans)
    return root


# --- adapters -----------------------------------------------------------------------------------------------------

def test_tables_without_raw_are_text_only_records(tables):
    records, problems = read_mosei(tables / "MOSEI")
    assert len(records) == N_ROWS and not problems  # no missing-video problem per row
    assert all(r.text_only and r.path is None and r.text for r in records)
    assert {r.split for r in records} == {"train", "valid", "test"}


def test_raw_folder_present_still_reports_missing_videos(tables, tmp_path):
    import shutil

    root = tmp_path / "MOSEI"
    shutil.copytree(tables / "MOSEI", root)
    (root / "Raw").mkdir()
    records, problems = read_mosei(root)
    assert not records and len(problems) == N_ROWS and {p.kind for p in problems} == {"missing_video"}


def test_mer2023_adapter_maps_valence_and_splits(tables):
    records, problems = read_mer2023(tables / "MER2023")
    assert not problems
    assert len(records) == 9  # the 3 test3 rows have no valence and are skipped
    assert {r.split for r in records} == {"train", "test"}
    assert all(r.label5 == "SPOS" and r.translation for r in records)
    assert [from_mer2023(v) for v in (-5, -3.5, -3.25, -0.75, 0, 0.75, 1.0, 3.25, 3.5)] == [
        "SNEG", "SNEG", "WNEG", "NEUT", "NEUT", "NEUT", "WPOS", "WPOS", "SPOS"]
    with pytest.raises(ValueError, match="MER2023"):
        from_mer2023(5.5)


def test_prepare_text_data_counts_text_only_records(tables, tmp_path, capsys):
    out = tmp_path / "m.jsonl"
    assert cli_main(["prepare", "--text-data", str(tables), "--out", str(out)]) == 0
    report = capsys.readouterr().out
    assert f"text-only (no video on disk): {2 * N_ROWS + 9}" in report and "0 problems" in report
    recs = read_manifest(out)
    assert len(recs) == 2 * N_ROWS + 9 and all(r.path is None for r in recs)
    zh = [r for r in recs if r.source == "sims2"]
    assert all(r.translation for r in zh)  # joined from translations/SIMSv2.csv by id


def test_build_manifest_reads_every_root(tables):
    roots = text_table_roots(tables)
    assert set(roots) == {"mosei", "sims2", "mer2023", "translations"}
    records, _ = build_manifest(check_files=False, **roots)
    assert {r.source for r in records} == {"mosei", "sims2", "mer2023"}


def test_sims_v1_reader_uses_sims_grid(tmp_path):
    _write(tmp_path / "SIMS" / "label.csv", ["video_id", "clip_id", "text", "label", "annotation", "mode"],
           [["v", "0001", "好", -0.8, "x", "train"], ["v", "0002", "还行", 0.0, "x", "test"]])
    records, _ = read_sims(tmp_path / "SIMS")
    assert [r.label5 for r in records] == ["SNEG", "NEUT"] and all(r.lang == "zh" for r in records)


def test_corpus_adds_translated_examples(tables):
    ex = load_corpus(tables)
    tr = select(ex, datasets=["sims2"], translated=True)
    assert len(tr) == N_ROWS and all(e.lang == "en" for e in tr)
    assert all(-1 <= e.valence <= 1 for e in ex)
    with pytest.raises(ValueError, match="unknown dataset"):
        load_corpus(tables, datasets=["imdb"])


# --- head, calibration, cues --------------------------------------------------------------------------------------

def _toy_head(dim: int = 4) -> TextHead:
    rng = np.random.default_rng(0)
    cal = {lang: LanguageCalibration((0.2, 0.0, 0.3, 0.0, -0.5), 0.8) for lang in ("en", "zh")}
    return TextHead(w1=rng.normal(size=(dim, 8)).astype(np.float32), b1=np.zeros(8, np.float32),
                    w2=rng.normal(size=(8, 5)).astype(np.float32), b2=np.zeros(5, np.float32), calibration=cal,
                    encoder_id="toy", empty_logits=np.asarray([0.0, 0.1, 1.0, 0.1, 0.0]))


def test_head_output_is_a_distribution_and_tilt_is_ordered():
    head = _toy_head()
    z = head.logits(np.random.default_rng(2).normal(size=(7, 4)))
    p = head.probs(z, "en")
    assert p.shape == (7, 5) and np.allclose(p.sum(1), 1)
    # tilting toward positive moves the expected class up, row by row, and a strong tilt reaches the end classes
    ev = [head.probs(z, "en", tilt) @ np.arange(5) for tilt in (-2.0, 0.0, 2.0)]
    assert np.all(ev[0] < ev[1]) and np.all(ev[1] < ev[2])
    assert head.probs(z, "en", 40.0).argmax(1).tolist() == [4] * 7


def test_head_save_load_roundtrip(tmp_path):
    head = _toy_head()
    head.save(tmp_path / "h")
    back = TextHead.load(tmp_path / "h")
    x = np.random.default_rng(1).normal(size=(3, 4))
    np.testing.assert_allclose(back.logits(x), head.logits(x), rtol=1e-6)
    np.testing.assert_allclose(back.prior_logits(), head.prior_logits(), rtol=1e-6)
    assert back.calibration["zh"] == head.calibration["zh"]
    (tmp_path / "h" / "head.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ValueError, match="not a valid text head"):
        TextHead.load(tmp_path / "h")


def test_calibration_rejects_bad_values():
    with pytest.raises(ValueError, match="5 finite"):
        LanguageCalibration((0.0, 1.0), 1.0)
    with pytest.raises(ValueError, match="temperature"):
        LanguageCalibration((0.0,) * 5, 0.0)


def test_fit_calibration_recovers_a_shifted_prior():
    rng = np.random.default_rng(0)
    y = rng.choice(5, size=2000, p=[0.05, 0.15, 0.5, 0.25, 0.05])
    z = np.eye(5)[y] * 1.0 + rng.normal(scale=1.0, size=(2000, 5)) + np.asarray([2.0, 0, -1.0, 0, 2.0])  # biased
    cal = fit_calibration(z, y)
    assert objective(y, cal.apply(z).argmax(1)) > objective(y, z.argmax(1)) + 0.05


class _BagEncoder:
    """Deterministic sentiment-bearing embedding: counts of a few words (a stand-in for e5 in unit tests)."""

    id = "bag"
    dim = 2
    POS, NEG = ("love", "great", "喜欢", "开心"), ("hate", "awful", "讨厌", "难过")

    def encode(self, texts):
        return np.asarray([[sum(t.count(w) for w in self.POS), sum(t.count(w) for w in self.NEG)] for t in texts],
                          dtype=np.float32)


def _bag_head() -> TextHead:
    # hidden = gelu(3 * counts + 3) ~ 3 + 3 * counts; logits = (pos - neg) * class valence (x 4)
    w1 = np.asarray([[1.0, 0.0], [0.0, 1.0]], np.float32) * 3
    cv = np.asarray([-1.0, -0.5, 0.0, 0.5, 1.0], np.float32) * 4
    w2 = np.stack([cv, -cv]).astype(np.float32)
    cal = {lang: LanguageCalibration((0.0,) * 5, 1.0) for lang in ("en", "zh")}
    return TextHead(w1=w1, b1=np.full(2, 3.0, np.float32), w2=w2, b2=np.zeros(5, np.float32), calibration=cal,
                    encoder_id="bag")


def test_occlusion_cue_changes_when_the_word_is_removed():
    head, enc = _bag_head(), _BagEncoder()
    text = "well I love this but the rest is fine"
    probs, _, scored = occlusion(head, enc, text, "en", max_units=12)
    assert probs.argmax() == 4  # positive
    by_word = {u.text: (drop, effect) for u, drop, effect in scored}
    assert by_word["love"][0] > 0.1 and by_word["love"][1] > 0.1  # removing "love" costs the predicted label
    assert all(abs(v[1]) < 1e-9 for w, v in by_word.items() if w != "love")  # other words do nothing here


def test_occlusion_in_chinese_and_long_transcripts_are_phrased():
    head, enc = _bag_head(), _BagEncoder()
    _, _, scored = occlusion(head, enc, "我真的很讨厌这个地方。", "zh", max_units=12)
    top = max(scored, key=lambda x: abs(x[2]))
    assert "讨厌" in top[0].text and top[2] < 0
    units = split_units(" ".join(f"w{i}" for i in range(30)), "en", max_units=6)
    assert len(units) == 6 and units[0].text.startswith("w0 ")


def test_asr_noise_is_deterministic_and_keeps_language():
    a = asr_noise("我今天非常开心，谢谢你们。", "zh", np.random.default_rng(3), rate=0.5)
    b = asr_noise("我今天非常开心，谢谢你们。", "zh", np.random.default_rng(3), rate=0.5)
    assert a == b and a != "我今天非常开心，谢谢你们。" and "，" not in a
    e = asr_noise("This is Great, really!", "en", np.random.default_rng(0), rate=0.0)
    assert e == "this is great really"


# --- the text evidence and the lite fusion in head mode -----------------------------------------------------------

def _evidence(z, face_valence=1.0):
    from omni_mer.evidence.types import Evidence, ModalityEvidence

    feats = {f"head_z_{lab}": float(v) for lab, v in zip(LABELS, z)}
    text = ModalityEvidence("text", True, valence=0.5, confidence=0.8, features=feats)
    face = ModalityEvidence("visual", True, valence=face_valence, confidence=1.0)
    return Evidence("en", "hi", [], text, ModalityEvidence.absent("audio", "x"), face)


def test_lite_text_only_coalition_is_the_heads_distribution():
    from omni_mer.scorers.lite import TILT_SCALE, LiteScorer

    head = _toy_head()
    z = np.asarray([0.1, 0.4, 0.2, -0.3, 0.0])
    ev = _evidence(z)
    scorer = LiteScorer(text_head=head)
    np.testing.assert_allclose(scorer.score(None, ev, frozenset({"text"})), head.probs(z, "en")[0])
    # a smiling face tilts the head's distribution toward positive
    _, tilt = scorer.head_inputs(ev, frozenset({"text", "visual"}))
    assert tilt == pytest.approx(TILT_SCALE * scorer.head_weights["visual"])
    up = scorer.score(None, ev, frozenset({"text", "visual"})) @ np.arange(5)
    assert up > scorer.score(None, ev, frozenset({"text"})) @ np.arange(5)
    # without the words the valence fusion decides, exactly as without a head (the face alone is not silenced)
    plain = LiteScorer()
    for keep in (frozenset(), frozenset({"visual"})):
        assert not scorer.uses_head(ev, keep)
        np.testing.assert_allclose(scorer.score(None, ev, keep), plain.score(None, ev, keep))
    assert LABELS[int(scorer.score(None, ev, frozenset({"visual"})).argmax())] in ("WPOS", "SPOS")


# --- commands -----------------------------------------------------------------------------------------------------

def test_train_text_and_eval_text_commands(tables, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OMNI_MER_CACHE", str(tmp_path / "cache"))  # the fine-tuned engine files go there
    out, cache = tmp_path / "head", tmp_path / "emb.sqlite"
    # the smallest real fine-tune (one layer, one epoch) keeps this and the cross-lingual conditions fast
    args = ["--data", str(tables), "--out", str(out), "--cache", str(cache), "--epochs", "3", "--hidden-size", "16",
            "--finetune-layers", "1", "--finetune-epochs", "1"]
    assert cli_main(["train-text", *args]) == 0
    head = TextHead.load(out)
    assert set(head.calibration) == {"en", "zh"} and head.meta["best_epoch"] >= 1
    # e5's top layer is fine-tuned first: the head reads that encoder, shipped next to it
    assert head.encoder is not None and head.encoder_id == head.encoder.id and (out / "encoder.npz").is_file()
    assert head.meta["encoder_finetune"]["tuned_layers"] == [11]
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert {"MOSEI", "SIMSv2", "MER2023"} <= set(metrics) and metrics["MOSEI"]["n"] == N_ROWS // 4
    capsys.readouterr()
    ev_out = tmp_path / "eval"
    assert cli_main(["eval-text", "--data", str(tables), "--split", "test", "--out", str(ev_out), "--head", str(out),
                     "--cache", str(cache)]) == 0
    m = json.loads((ev_out / "metrics.json").read_text(encoding="utf-8"))
    for key in ("MOSEI", "SIMSv2", "SIMSv2/translated", "MOSEI/asr_noise"):
        assert set(m[key]) >= {"acc5", "uar", "mae", "n"}
    assert m["crosslingual"]["encoder"] == "fine-tuned per condition"
    cross = m["crosslingual"]["strict"]
    assert set(cross["acc5"]) == {"en", "zh", "both"} and "zh" in cross["retention"]["en"]


def test_train_text_rejects_bad_values_in_one_line(tables, capsys):
    with pytest.raises(SystemExit) as e:
        cli_main(["train-text", "--data", str(tables), "--train-datasets", "mosei,imdb"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "imdb" in err and "valid:" in err and "Traceback" not in err


def test_language_weights_set_each_languages_share_of_the_loss():
    from omni_mer.texthead.corpus import TextExample
    from omni_mer.texthead.train import TrainTextConfig, _weights

    rows = [TextExample(id=str(i), dataset="mosei" if i < 6 else "sims2", lang="en" if i < 6 else "zh", text=str(i),
                        label5=LABELS[i % 5], score=0.0, valence=0.0, split="train", translated=False)
            for i in range(9)]
    zh = np.asarray([e.lang == "zh" for e in rows])
    for spec, share in (("", 0.5), ("zh=2", 2 / 3), ("en=3,zh=1", 0.25)):
        w = _weights(rows, TrainTextConfig(language_weights=spec))
        assert w[zh].sum() / w.sum() == pytest.approx(share)
    for bad in ("fr=2", "zh=0", "zh", "zh=x"):
        with pytest.raises(ValueError, match="--language-weights"):
            TrainTextConfig(language_weights=bad)
    with pytest.raises(ValueError, match="needs --language-balance"):
        TrainTextConfig(language_weights="zh=2", language_balance=False)


# --- the shipped head on the real tables (skipped without ../shared/data) -----------------------------------------

@pytest.mark.skipif(not (DEFAULT_HEAD_DIR / "head.json").is_file(), reason="no shipped text head")
def test_shipped_head_loads_and_reads_polarity_in_both_languages():
    from omni_mer.texthead.encoder import E5Encoder

    head = TextHead.load(DEFAULT_HEAD_DIR)
    enc = E5Encoder(adapter=head.encoder)
    assert enc.id == head.encoder_id
    for lang, pos, neg in (("en", POS_EN[0], NEG_EN[0]), ("zh", POS_ZH[0], NEG_ZH[0])):
        p, _ = head.predict(enc.encode([pos, neg]), lang)
        assert LABELS[p[0].argmax()] in ("WPOS", "SPOS") and LABELS[p[1].argmax()] in ("WNEG", "SNEG")


def test_prepare_names_a_missing_folder_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        cli_main(["prepare", "--mosei", str(tmp_path / "nowhere"), "--out", str(tmp_path / "m.jsonl")])
    assert e.value.code == 2 and "nowhere: not a folder" in capsys.readouterr().err
    assert not (tmp_path / "m.jsonl").exists()


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_TEXT / "MOSEI" / "label.csv").is_file(), reason="../shared/data/text is absent")
def test_shipped_metrics_match_the_shipped_head(tmp_path):
    """metrics.json next to the shipped head is what the head scores on the real test splits (MOSEI, SIMS v2)."""
    from omni_mer.texthead.evaluate import evaluate_head

    head = TextHead.load(DEFAULT_HEAD_DIR)
    recorded = json.loads((DEFAULT_HEAD_DIR / "metrics.json").read_text(encoding="utf-8"))
    examples = select(load_corpus(SHARED_TEXT), datasets=["mosei", "sims2"])
    got = evaluate_head(head, examples, split="test", cache=tmp_path / "emb.sqlite", noise=False)
    for name in ("MOSEI", "SIMSv2", "SIMSv2/translated"):
        for k in ("acc5", "uar", "n"):
            assert got[name][k] == pytest.approx(recorded[name][k], abs=2e-3), (name, k)
