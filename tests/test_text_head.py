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
    assert len(err.strip().splitlines()) == 2  # a short usage line and the error, not the whole usage block
    with pytest.raises(SystemExit) as e:
        cli_main(["train-text", "--help"])
    help_text = capsys.readouterr().out
    # a switch on by default: its --no- twin says what it does, not the switch's own help with "default: False"
    no_flag = help_text[help_text.index("--no-use-translations, --no_use_translations"):].split("\n  --")[0]
    assert "turn --use-translations off" in no_flag and "default" not in no_flag


def test_train_text_checks_the_data_and_the_fused_heads_before_training(tables, tmp_path, capsys, monkeypatch):
    import shutil

    import omni_mer.texthead.train as train_mod

    def must_not_train(*a, **k):
        raise AssertionError("train-text trained before finding the bad input")

    monkeypatch.setattr(train_mod, "train_head", must_not_train)
    no_zh_valid = tmp_path / "no_zh_valid"
    shutil.copytree(tables, no_zh_valid)
    meta = no_zh_valid / "SIMSv2" / "meta.csv"
    meta.write_text("".join(line for line in meta.read_text(encoding="utf-8").splitlines(keepends=True)
                            if not line.rstrip().endswith(",valid")), encoding="utf-8")
    assert cli_main(["train-text", "--data", str(no_zh_valid), "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "the zh validation pool (SIMSv2 valid" in err and "0 rows" in err and "Traceback" not in err
    broken = tmp_path / "broken_head"
    broken.mkdir()
    (broken / "head.json").write_text("{}", encoding="utf-8")
    assert cli_main(["train-text", "--data", str(tables), "--out", str(tmp_path / "b"), "--fuse-with",
                     str(broken)]) == 2
    err = capsys.readouterr().err
    assert f"--fuse-with {str(broken)!r}" in err and "not a valid text head" in err and "retrain it" in err
    # SIMS v1 is not loaded by default, but a --train-datasets naming it loads it (it used to be ignored)
    assert cli_main(["train-text", "--data", str(tables), "--out", str(tmp_path / "c"), "--train-datasets",
                     "sims", "--train-languages", "zh"]) == 2
    assert "--train-datasets 'sims': no SIMS table (SIMS/ under --data" in capsys.readouterr().err
    with_sims = tmp_path / "with_sims"
    shutil.copytree(tables, with_sims)
    _write(with_sims / "SIMS" / "label.csv", ["video_id", "clip_id", "text", "label", "annotation", "mode"],
           [["s", f"{i:04d}", POS_ZH[i % 5], 0.8, "x", "train"] for i in range(5)])
    cfg = train_mod.TrainTextConfig(data=str(with_sims), train_datasets="sims,sims2")
    examples = load_corpus(cfg.data, datasets=train_mod.corpus_datasets(cfg))
    assert train_mod.preflight(cfg, examples) == []
    assert len(select(examples, split="train", datasets=["sims"])) == 5


def test_the_model_card_names_the_command_that_trained_the_head():
    from dataclasses import asdict

    from omni_mer.texthead.args import parse_config
    from omni_mer.texthead.card import train_command
    from omni_mer.texthead.train import TrainTextConfig

    assert train_command(asdict(TrainTextConfig()), "D", "OUT") == "omni-mer train-text --data D --out OUT"
    changed = asdict(TrainTextConfig(finetune_layers=4, seed=0, use_translations=False, language_feature=True,
                                     language_weights="zh=1.5"))
    command = train_command(changed, "D", "OUT")
    assert "--no-use-translations" in command and "--finetune-layers 4" in command
    parsed = asdict(parse_config(TrainTextConfig, command.split()[2:], prog="omni-mer train-text"))
    assert {k: v for k, v in parsed.items() if k not in ("data", "out")} == \
        {k: v for k, v in changed.items() if k not in ("data", "out")}


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
    # auxiliary rows (here 6 more in English) weigh aux_scale each against their language's dataset rows, and the
    # languages keep their shares (the scale used to be applied after the balance, shrinking English's share)
    aux = [TextExample(id=f"a{i}", dataset="sst5", lang="en", text=f"a{i}", label5=LABELS[i % 5], score=0.0,
                       valence=0.0, split="train", translated=False) for i in range(5)]
    w = _weights(rows + aux, TrainTextConfig(aux_datasets="sst5", aux_scale=0.3))
    is_aux = np.asarray([e.dataset == "sst5" for e in rows + aux])
    assert w[np.r_[zh, np.zeros(len(aux), bool)]].sum() / w.sum() == pytest.approx(0.5)
    assert w[is_aux].mean() / w[:6].mean() == pytest.approx(0.3)


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


@pytest.mark.skipif(not (DEFAULT_HEAD_DIR / "head.json").is_file(), reason="no shipped text head")
def test_the_default_train_text_recipe_is_the_shipped_heads():
    """`omni-mer train-text --data D --out DIR` (the documented reproduction) trains with the shipped head's recipe."""
    from dataclasses import asdict

    from omni_mer.texthead.train import TrainTextConfig

    saved = TextHead.load(DEFAULT_HEAD_DIR).meta["config"]
    defaults = asdict(TrainTextConfig())
    assert set(saved) <= set(defaults)
    assert {k: v for k, v in saved.items() if v != defaults[k]} == {}


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


# --- an LLM's hidden states as the encoder, the fused head, which shipped head is read ----------------------------

@pytest.fixture(scope="module")
def tiny_llm(tmp_path_factory) -> Path:
    from omni_mer.llm.model import build_tiny_llm

    return build_tiny_llm(tmp_path_factory.mktemp("tiny-llm") / "model", layers=3)


def test_llm_encoder_is_the_hidden_state_after_its_layer(tiny_llm):
    import torch

    from omni_mer.llm.model import load_llm
    from omni_mer.texthead.llm_encoder import LLMEncoder, frame

    enc = LLMEncoder(str(tiny_llm), layer=2, dtype="float32")
    texts = ["I love it", "我很生气", "a much longer sentence, so that the others in its batch are padded"]
    v = enc.encode(texts)
    assert v.shape == (3, 32) and v.dtype == np.float32
    net, tok = load_llm(tiny_llm, dtype="float32")
    for text, row in zip(texts, v):  # one at a time through the whole model: the same vector at hidden_states[2]
        with torch.inference_mode():
            h = net.model(**tok(frame(text), return_tensors="pt"), output_hidden_states=True).hidden_states[2]
        np.testing.assert_allclose(row, h[0, -1].numpy(), rtol=1e-4, atol=1e-5)
    assert frame("我很生气").startswith("句子") and frame("I love it").startswith("Sentence")
    assert enc.id.startswith("llm:") and "layer2" in enc.id and enc.cache_id == enc.id + "/float32"
    with pytest.raises(ValueError, match="3 decoder layers"):
        LLMEncoder(str(tiny_llm), layer=4)


def test_standardisation_folds_into_the_first_layer():
    from omni_mer.texthead.train import fold_standardization

    head = _toy_head()
    rng = np.random.default_rng(4)
    x, mu, sd = rng.normal(size=(6, 4)) * 30, rng.normal(size=4) * 10, rng.uniform(1, 50, size=4)
    expected = head.logits((x - mu) / sd)
    np.testing.assert_allclose(fold_standardization(head, mu, sd).logits(x), expected, rtol=1e-4, atol=1e-4)


class _NoiseEncoder:
    id, dim = "noise", 4

    def encode(self, texts):
        return np.asarray([np.random.default_rng(sum(map(ord, t))).normal(size=4) for t in texts], np.float32)


def test_fused_head_weighs_the_informative_member_and_round_trips(tables, tmp_path):
    from omni_mer.texthead.fused import FusedTextHead, fit_fusion, load_text_head, weight_grid

    assert len(weight_grid(2, 0.1)) == 11 and all(sum(w) == pytest.approx(1) for w in weight_grid(3, 0.25))
    bag, noise = _bag_head(), _toy_head()
    examples = load_corpus(tables)
    weights, cal, obj = fit_fusion([bag, noise], examples, [_BagEncoder().encode, _NoiseEncoder().encode])
    alone = [fit_fusion([m], examples, [e])[2] for m, e in ((bag, _BagEncoder().encode),
                                                               (noise, _NoiseEncoder().encode))]
    for lang in ("en", "zh"):  # the fusion keeps the word-count member's reading; noise alone reads far less
        assert weights[lang][0] > 0 and obj[lang] >= alone[0][lang] - 1e-9 and obj[lang] > alone[1][lang] + 0.1
    assert weight_grid(2, 0.1)[0] == (0.0, 1.0)  # on ties the grid's first: the least weight on member 0
    bag.save(tmp_path / "bag")
    noise.save(tmp_path / "noise")
    bag, noise = TextHead.load(tmp_path / "bag"), TextHead.load(tmp_path / "noise")
    fused = FusedTextHead([bag, noise], ["../bag", "../noise"], weights, cal, meta={"valid_objective": obj})
    fused.save(tmp_path / "fused")
    back = load_text_head(tmp_path / "fused")
    texts = ["I love this", "我很讨厌这个", "nothing much"]
    emb = np.concatenate([_BagEncoder().encode(texts), _NoiseEncoder().encode(texts)], axis=1)
    langs = ["en", "zh", "en"]
    np.testing.assert_allclose(back.logits(emb, langs), fused.logits(emb, langs), rtol=1e-6)
    p = back.probs(back.logits(emb[:1], "en"), "en")[0]
    assert p.argmax() >= 3 and np.isclose(p.sum(), 1)
    assert back.prior_logits("zh").shape == (5,) and back.dim == 6 and " + " in back.encoder_id
    with pytest.raises(ValueError, match="6-wide"):
        back.logits(emb[:, :5], "en")
    TextHead(**{**bag.__dict__, "b2": bag.b2 + 1.0}).save(tmp_path / "bag")  # a member retrained after the fusion
    with pytest.raises(ValueError, match="changed since the fusion"):
        load_text_head(tmp_path / "fused")


def test_train_text_on_llm_states_fused_with_another_head(tables, tiny_llm, tmp_path, capsys):
    from omni_mer.texthead.encoder import E5_ID
    from omni_mer.texthead.fused import FusedTextHead, load_text_head

    rng = np.random.default_rng(0)
    cal = {lang: LanguageCalibration((0.0,) * 5, 1.0) for lang in ("en", "zh")}
    for name in ("e5head", "e5head2"):  # two heads on frozen e5: the fused head embeds with e5 once
        TextHead(w1=rng.normal(size=(384, 8)).astype(np.float32), b1=np.zeros(8, np.float32),
                 w2=rng.normal(size=(8, 5)).astype(np.float32), b2=np.zeros(5, np.float32), calibration=cal,
                 encoder_id=E5_ID).save(tmp_path / name)
    out, cache = tmp_path / "fused", tmp_path / "emb.sqlite"
    assert cli_main(["train-text", "--data", str(tables), "--out", str(out), "--cache", str(cache),
                     "--encoder", str(tiny_llm), "--encoder-layer", "2", "--finetune-layers", "0", "--epochs", "3",
                     "--hidden-size", "16", "--max-train-per-dataset", "20",
                     "--fuse-with", f"{tmp_path / 'e5head'},{tmp_path / 'e5head2'}", "--threads", "1"]) == 0
    head = load_text_head(out)
    assert isinstance(head, FusedTextHead) and head.member_paths == ["../e5head", "../e5head2", "member"]
    member = head.members[2]
    assert member.meta["encoder_spec"] == {"kind": "llm", "model": str(tiny_llm), "layer": 2}
    assert member.encoder_id.startswith("llm:model-") and "/layer2/" in member.encoder_id  # folder name + digest
    assert member.meta["n_train"] < 3 * N_ROWS // 2  # 20 source rows per dataset (and their translations)
    assert all(sum(w) == pytest.approx(1.0) for w in head.weights.values())
    assert "MOSEI" in json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert (out / "member" / "metrics.json").is_file() and "fused" in (out / "README.md").read_text(encoding="utf-8")
    assert f"--head {out.as_posix()} " in (out / "README.md").read_text(encoding="utf-8")  # measures itself
    capsys.readouterr()
    assert cli_main(["eval-text", "--data", str(tables), "--split", "test", "--out", str(tmp_path / "ev"),
                     "--head", str(out), "--cache", str(cache), "--threads", "1"]) == 0
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text(encoding="utf-8"))
    assert m["crosslingual"]["head"].startswith("the fused head's member") and "SIMSv2/asr_noise" in m

    # another member retrained: the fused head refuses it until --keep-member refits the fusion on the kept member
    member_bytes = (out / "member" / "head.npz").read_bytes()
    TextHead(w1=rng.normal(size=(384, 8)).astype(np.float32), b1=np.zeros(8, np.float32),
             w2=rng.normal(size=(8, 5)).astype(np.float32), b2=np.zeros(5, np.float32), calibration=cal,
             encoder_id=E5_ID).save(tmp_path / "e5head2")
    with pytest.raises(ValueError, match="changed since the fusion"):
        load_text_head(out)
    refit = ["train-text", "--data", str(tables), "--out", str(out), "--cache", str(cache), "--encoder", str(tiny_llm),
             "--encoder-layer", "2", "--finetune-layers", "0", "--epochs", "3", "--hidden-size", "16",
             "--max-train-per-dataset", "20", "--fuse-with", f"{tmp_path / 'e5head'},{tmp_path / 'e5head2'}",
             "--threads", "1", "--keep-member"]
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:  # a member of another recipe is not reused
        cli_main([*refit, "--hidden-size", "32"])
    assert e.value.code == 2 and "--hidden-size 16, here 32" in capsys.readouterr().err
    assert cli_main(refit) == 0
    refitted = load_text_head(out)
    assert (out / "member" / "head.npz").read_bytes() == member_bytes  # the member was not retrained
    assert refitted.members[1].digest != head.members[1].digest and refitted.member_paths == head.member_paths


def test_train_text_rejects_fine_tuning_a_frozen_llm_encoder(tables, capsys):
    with pytest.raises(SystemExit) as e:
        cli_main(["train-text", "--data", str(tables), "--encoder", "qwen2.5-coder-1.5b", "--finetune-layers", "2"])
    assert e.value.code == 2 and "--finetune-layers 0" in capsys.readouterr().err


def test_shipped_head_choice(tmp_path, monkeypatch):
    from omni_mer.core.errors import ModelNotFoundError
    from omni_mer.texthead import shipped
    from omni_mer.texthead.fused import FusedTextHead

    monkeypatch.delenv(shipped.TEXT_HEAD_ENV, raising=False)
    assert shipped.text_head_dir("e5") == shipped.E5_HEAD_DIR
    with pytest.raises(ValueError, match="auto, e5, fused"):
        shipped.text_head_dir("best")
    # a fused head whose LLM member is not set up: auto falls back to e5, asking for it by name is an error
    needs = _toy_head()
    needs.meta = {"encoder_spec": {"kind": "llm", "model": str(tmp_path / "absent-llm"), "layer": 1}}
    needs.save(tmp_path / "llm-member")
    _toy_head().save(tmp_path / "e5-member")
    members = [TextHead.load(tmp_path / "e5-member"), TextHead.load(tmp_path / "llm-member")]
    cal = {lang: LanguageCalibration((0.0,) * 5, 1.0) for lang in ("en", "zh")}
    FusedTextHead(members, ["../e5-member", "../llm-member"], {"en": [0.5, 0.5], "zh": [0.5, 0.5]}, cal
                  ).save(tmp_path / "fused")
    monkeypatch.setattr(shipped, "FUSED_HEAD_DIR", tmp_path / "fused")
    assert shipped.head_llm_models(tmp_path / "fused") == [str(tmp_path / "absent-llm")]
    assert shipped.text_head_dir() == shipped.E5_HEAD_DIR
    with pytest.raises(ModelNotFoundError, match="setup.sh --llm"):
        shipped.text_head_dir("fused")
    monkeypatch.setenv(shipped.TEXT_HEAD_ENV, str(tmp_path / "e5-member"))
    assert shipped.text_head_dir() == tmp_path / "e5-member"
    # a member retrained after the fusion: auto falls back to e5, the explicit choice names the problem
    monkeypatch.delenv(shipped.TEXT_HEAD_ENV)
    tiny = tmp_path / "tiny-config"
    tiny.mkdir()
    (tiny / "config.json").write_text(json.dumps({"num_hidden_layers": 2, "hidden_size": 8}), encoding="utf-8")
    needs.meta = {"encoder_spec": {"kind": "llm", "model": str(tiny), "layer": 1}}  # "set up": a model folder
    needs.save(tmp_path / "llm-member")
    assert shipped.text_head_dir() == shipped.E5_HEAD_DIR
    with pytest.raises(ValueError, match="changed since the fusion"):
        shipped.text_head_dir("fused")


def test_llm_encoder_ids_tell_model_folders_apart(tmp_path):
    from omni_mer.texthead.llm_encoder import LLMEncoder

    ids = []
    for seed in (0, 1):
        folder = tmp_path / str(seed) / "model"  # same folder name, other checkpoint
        folder.mkdir(parents=True)
        (folder / "config.json").write_text(json.dumps({"num_hidden_layers": 2, "hidden_size": 8, "seed": seed}),
                                            encoding="utf-8")
        ids.append(LLMEncoder(str(folder), layer=1).id)
    assert ids[0] != ids[1] and all(i.startswith("llm:model-") for i in ids)


def test_fuse_with_inside_out_is_refused(tables, tmp_path, capsys):
    _toy_head().save(tmp_path / "out" / "member")
    with pytest.raises(SystemExit) as e:
        cli_main(["train-text", "--data", str(tables), "--out", str(tmp_path / "out"), "--encoder", "some-llm",
                  "--finetune-layers", "0", "--fuse-with", str(tmp_path / "out" / "member")])
    assert e.value.code == 2 and "lies in --out" in capsys.readouterr().err
    _toy_head().save(tmp_path / "other")
    with pytest.raises(SystemExit) as e:
        cli_main(["train-text", "--data", str(tables), "--out", str(tmp_path / "out"), "--encoder", "some-llm",
                  "--finetune-layers", "0", "--fuse-with", f"{tmp_path / 'other'},{tmp_path / 'other'}/"])
    assert e.value.code == 2 and "named twice" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli_main(["train-text", "--data", str(tables), "--out", str(tmp_path / "out"), "--encoder", "some-llm",
                  "--finetune-layers", "0", "--fuse-with", f"{tmp_path / 'other'},"])
    assert e.value.code == 2 and "an empty entry" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli_main(["train-text", "--data", str(tables), "--out", str(tmp_path / "out"), "--keep-member"])
    assert e.value.code == 2 and "give --fuse-with too" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # nothing trained in --out/member yet
        cli_main(["train-text", "--data", str(tables), "--out", str(tmp_path / "new"), "--encoder", "some-llm",
                  "--finetune-layers", "0", "--fuse-with", str(tmp_path / "other"), "--keep-member"])
    assert e.value.code == 2 and "no trained head in" in capsys.readouterr().err


def test_concat_encoder_runs_a_shared_encoder_once(tmp_path):
    from omni_mer.texthead.encoder import CachedEmbedder, ConcatEncoder

    class Counting:
        def __init__(self, id_, dim):
            self.id, self.dim, self.calls = id_, dim, 0

        def encode(self, texts):
            self.calls += 1
            return np.asarray([[len(t) * 10.0 + self.dim + k for k in range(self.dim)] for t in texts], np.float32)

    a, b, a_again = Counting("a", 2), Counting("b", 3), Counting("a", 2)
    enc = ConcatEncoder([b, a, a_again])
    out = enc.encode(["x", "yy"])
    assert out.shape == (2, 7) and enc.dim == 7 and enc.id == "b + a + a" and enc.slots == [0, 1, 1]
    assert out[1].tolist() == [23, 24, 25, 22, 23, 22, 23] and (a.calls, b.calls, a_again.calls) == (1, 1, 0)
    cached = CachedEmbedder(tmp_path / "emb.sqlite", enc, progress=False)  # the cached path lays slots out alike
    assert len(cached.caches) == 2 and np.array_equal(cached(["x", "yy"]), out) and np.array_equal(
        cached(["x", "yy"]), out) and (a.calls, b.calls) == (2, 2)  # the second call read the cache
    cached.close()


def test_predict_takes_a_text_head_choice_and_rejects_a_bad_one(tmp_path, capsys):
    from omni_mer.batch.predict import build_parser, config_from_args

    assert config_from_args(build_parser().parse_args(["--text-head", "e5"])).text_head == "e5"
    with pytest.raises(SystemExit) as e:
        cli_main(["predict", "--input", str(tmp_path), "--output", str(tmp_path / "out"), "--text-head", "best"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "auto, e5, fused" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_shipped_fused_head_matches_the_shipped_e5_head():
    """The fused head names the e5 head by digest: retraining that head without refitting the fusion fails here."""
    from omni_mer.texthead.fused import FusedTextHead
    from omni_mer.texthead.shipped import FUSED_HEAD_DIR, head_llm_models

    head = FusedTextHead.load(FUSED_HEAD_DIR)  # refuses a member whose digest changed since the fusion
    assert (FUSED_HEAD_DIR / head.member_paths[0]).resolve() == DEFAULT_HEAD_DIR.resolve()
    assert head_llm_models(FUSED_HEAD_DIR) == ["qwen2.5-coder-1.5b"]


def _llm_ready(name: str) -> bool:
    from omni_mer.core.errors import ModelNotFoundError
    from omni_mer.llm.model import resolve_model_dir

    try:
        return resolve_model_dir(name).is_dir()
    except ModelNotFoundError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not _llm_ready("qwen2.5-coder-1.5b"), reason="the 1.5B is not set up (setup.sh --llm)")
def test_shipped_fused_head_reads_polarity_in_both_languages():
    from omni_mer.texthead.encoder import encoder_for
    from omni_mer.texthead.fused import load_text_head
    from omni_mer.texthead.shipped import text_head_dir

    head = load_text_head(text_head_dir("fused"))
    enc = encoder_for(head)
    for lang, pos, neg in (("en", POS_EN[0], NEG_EN[0]), ("zh", POS_ZH[0], NEG_ZH[0])):
        p, _ = head.predict(enc.encode([pos, neg]), lang)
        assert LABELS[p[0].argmax()] in ("WPOS", "SPOS") and LABELS[p[1].argmax()] in ("WNEG", "SNEG")


@pytest.mark.parametrize("recipe", sorted(p.name for p in (Path(__file__).resolve().parents[1] / "recipes" / "text")
                                          .glob("*.yaml")))
def test_every_text_recipe_parses(recipe, monkeypatch):
    from omni_mer.texthead.args import parse_config
    from omni_mer.texthead.train import TrainTextConfig

    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root)  # recipes name their paths from the repository root
    cfg = parse_config(TrainTextConfig, ["--config", f"recipes/text/{recipe}"], prog="omni-mer train-text")
    assert cfg.uses_llm_encoder and cfg.finetune_layers == 0
    assert all((root / f / "head.json").is_file() for f in cfg.fuse_with_list)  # what it fuses is shipped
    assert (root / cfg.out / ("fused.json" if cfg.fuse_with else "head.json")).is_file()  # and so is what it trains
