"""The llm backend on a tiny random Qwen2 (real Qwen2.5 tokenizer): weights setup, prompt + cue tags, the scorer's
cached teacher-forced label scoring against a plain forward, the pipeline/explanations, and the grounding of SFT
targets. The real 0.5B is exercised by tests/test_llm_train.py's slow test."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from omni_mer.core.clip import Clip
from omni_mer.core.errors import ModelNotFoundError
from omni_mer.evidence.types import Cue, Evidence, ModalityEvidence
from omni_mer.core.labels import LABELS
from omni_mer.llm import weights
from omni_mer.llm.prompt import cue_citations, cue_tag, grounded_target, llm_user_text, shown_cues
from omni_mer.train.rewards import format_reward, grounding_reward

ALL = frozenset({"text", "audio", "visual"})


def head_text(language: str = "en") -> ModalityEvidence:
    """Text evidence as the trained text head leaves it (omni_mer.evidence.text): class probabilities and word cues."""
    probs = dict(zip(LABELS, (0.02, 0.03, 0.15, 0.5, 0.3)))
    words = [("loved", 0.45), ("this movie", 0.05), ("really", -0.02)]
    cues = [Cue("text", 0.4, 0.8, w, 0.1, effect=e, kind="word") for w, e in words]
    return ModalityEvidence("text", True, valence=0.5, confidence=0.4, cues=cues,
                            features={f"head_p_{lab}": p for lab, p in probs.items()})


def evidence(face: bool = True, language: str = "en", reading: bool = False) -> Evidence:
    audio = ModalityEvidence("audio", True, valence=0.3, cues=[
        Cue("audio", 1.2, 2.0, "higher pitch at 1.2–2.0 s", 1.5, effect=0.3, kind="pitch"),
        Cue("audio", 3.0, 3.9, "long pause 3.0–3.9 s", 0.9, effect=-0.1, kind="pause")])
    visual = (ModalityEvidence("visual", True, valence=0.6, cues=[
        Cue("visual", 0.0, 1.5, "smiling 0.0–1.5 s", 0.8, effect=0.6, kind="expression:happy")])
        if face else ModalityEvidence.absent("visual", "no face found"))
    return Evidence(language=language, transcript="I really loved this movie, it was great.", segments=[],
                    text=head_text(language) if reading else ModalityEvidence("text", True), audio=audio,
                    visual=visual)


# ------------------------------------------------------------------------------------------ weights
def _fake_spec(tmp_path: Path, chunks: list[bytes]) -> tuple[weights.WeightSpec, Path]:
    site = tmp_path / "site"
    for i, data in enumerate(chunks, start=1):
        d = site / f"fake_part{i}" / "data"
        d.mkdir(parents=True)
        (d / f"part{i:02d}.bin").write_bytes(data)
    joined = b"".join(chunks)
    spec = weights.WeightSpec(name="fake", packages=tuple(f"fake-part{i}==1" for i in range(1, len(chunks) + 1)),
                              size=len(joined), sha256=hashlib.sha256(joined).hexdigest(), upstream="test")
    return spec, site


def test_parts_join_in_order_and_bad_sizes_or_hashes_leave_nothing(tmp_path):
    spec, site = _fake_spec(tmp_path, [b"a" * 10, b"b" * 7, b"c" * 3])
    parts = weights.find_parts(site, spec)
    assert [p.name for p in parts] == ["part01.bin", "part02.bin", "part03.bin"]
    out = weights.join_parts(parts, spec, tmp_path / "cache" / "model.gguf")
    assert out.read_bytes() == b"a" * 10 + b"b" * 7 + b"c" * 3
    for bad in (weights.WeightSpec(**{**spec.__dict__, "size": spec.size + 1}),
                weights.WeightSpec(**{**spec.__dict__, "sha256": "0" * 64})):
        target = tmp_path / "bad" / "model.gguf"
        with pytest.raises(ModelNotFoundError, match="expected"):
            weights.join_parts(parts, bad, target)
        assert not any(target.parent.iterdir())  # no partial or temporary file left
    (site / "fake_part2" / "data" / "part02.bin").unlink()
    with pytest.raises(ModelNotFoundError, match="fake-part2"):
        weights.find_parts(site, spec)


def test_pinned_specs_and_a_missing_setup_names_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("OMNI_MER_CACHE", str(tmp_path))
    for spec in weights.MODELS.values():
        assert len(spec.sha256) == 64 and spec.size > 100_000_000 and all("==" in p for p in spec.packages)
    with pytest.raises(ModelNotFoundError, match="setup.sh --llm"):
        weights.llm_model_dir("qwen2.5-coder-0.5b")
    with pytest.raises(ValueError, match="qwen2.5-coder-0.5b"):
        weights.llm_model_dir("nope")
    assert weights.model_root().is_relative_to(tmp_path)


# ------------------------------------------------------------------------------------------ prompt
def test_prompt_shows_only_kept_modalities_and_tags_round_trip():
    ev = evidence()
    full = llm_user_text(ev, ALL, "en")
    assert "[voice · pitch · 1.2–2.0 s]" in full and "[face · expression:happy · 0.0–1.5 s]" in full
    assert "I really loved" in full
    text_only = llm_user_text(ev, frozenset({"text"}), "en")
    assert "voice" not in text_only.split("Given:")[1] and "pitch" not in text_only.split("Given:")[1]
    no_text = llm_user_text(ev, frozenset({"audio"}), "en")
    assert "I really loved" not in no_text and "[voice · pitch" in no_text and "smiling" not in no_text
    zh = llm_user_text(evidence(language="zh"), ALL, "zh")
    assert "[语音 · pitch · 1.2–2.0 秒]" in zh
    tags = cue_citations(full.split("Given:")[1] + " [语音 · pause · 3.0–3.9 秒]")
    assert [(t.modality, t.kind, t.start, t.end) for t in tags] == [
        ("audio", "pitch", 1.2, 2.0), ("audio", "pause", 3.0, 3.9), ("visual", "expression:happy", 0.0, 1.5),
        ("audio", "pause", 3.0, 3.9)]
    assert cue_tag(ev.audio.cues[0], "zh") == "[语音 · pitch · 1.2–2.0 秒]"


def test_prompt_shows_the_text_heads_reading_with_the_text_only():
    """The text head's probabilities (label order) and its strongest words, when the text is kept and the head read
    it; nothing of it without the text, with text_reading=False, or for text evidence the head did not read."""
    ev = evidence(reading=True)
    full = llm_user_text(ev, ALL, "en", text_reading=True)
    assert "Text model's reading (often right, not always): SNEG 2% · WNEG 3% · NEUT 15% · WPOS 50% · SPOS 30%" in full
    assert "Words it leans on: “loved” (+0.45); “this movie” (+0.05); “really” (-0.02)" in full
    zh = llm_user_text(evidence(language="zh", reading=True), ALL, "zh", text_reading=True)
    assert "文本模型的判读（多半正确，并非总对）：SNEG 2% · WNEG 3% · NEUT 15% · WPOS 50% · SPOS 30%" in zh and "「loved」（+0.45）" in zh
    for shown in (llm_user_text(ev, frozenset({"audio", "visual"}), "en", text_reading=True),
                  llm_user_text(ev, ALL, "en", text_reading=False), llm_user_text(evidence(), ALL, "en")):
        assert "reading" not in shown and "leans on" not in shown
    assert llm_user_text(ev, ALL, "en", text_reading=False) == llm_user_text(evidence(), ALL, "en")
    assert llm_user_text(ev, ALL, "en") == llm_user_text(evidence(), ALL, "en")  # off unless asked


def test_sft_target_quotes_the_heads_word_toward_the_gold_polarity():
    """With head_quote (a prompt showing the reading): the head's strongest word toward the gold polarity; the first
    clause for NEUT, for a word that pushes too little (below MIN_QUOTE_EFFECT), or without head_quote."""
    ev = evidence(reading=True)
    first = "“I really loved this movie”"
    assert "“loved”" in grounded_target(ev, ALL, "WPOS", "en", head_quote=True)  # the strongest positive word
    assert first in grounded_target(ev, ALL, "WNEG", "en", head_quote=True)  # "really" pushes only -0.02
    assert first in grounded_target(ev, ALL, "NEUT", "en", head_quote=True)
    assert first in grounded_target(ev, ALL, "WPOS", "en")  # off by default (the omni path)
    ev.text.cues[0] = Cue("text", 0.4, 0.8, "really loved this movie, it was", 0.1, effect=0.6, kind="phrase")
    assert "“this movie”" in grounded_target(ev, ALL, "WPOS", "en", head_quote=True)  # longer than a clause: next


def test_the_scorer_shows_the_reading_only_to_adapters_trained_with_it(tmp_path, tiny_llm):
    import yaml

    from omni_mer.llm.model import RECIPE_FILE, adapter_text_reading
    from omni_mer.scorers.llm import LLMScorer

    assert not adapter_text_reading(None) and not adapter_text_reading(tmp_path)  # zero-shot; no recipe
    for name, script, want in (("old", {"stage": "sft"}, False), ("without", {"text_reading": False}, False),
                               ("with", {"text_reading": True}, True)):
        (tmp_path / name).mkdir()
        (tmp_path / name / RECIPE_FILE).write_text(yaml.safe_dump({"script": script}))
        assert adapter_text_reading(tmp_path / name) is want, name
    from omni_mer.llm.model import text_reading_mismatch

    assert text_reading_mismatch(tmp_path / "with", True) is None
    assert "pass --text-reading true" in text_reading_mismatch(tmp_path / "with", False)
    assert "or it has none); pass --text-reading false" in text_reading_mismatch(tmp_path, True)
    from omni_mer.llm.model import load_llm

    model, tok = load_llm(tiny_llm, dtype="float32")
    ev = evidence(reading=True)
    assert not LLMScorer(model=model, tokenizer=tok).text_reading  # zero-shot: not unless asked
    shown = LLMScorer(model=model, tokenizer=tok, adapter=str(tmp_path / "with"))
    assert shown.text_reading and tok.decode(shown.prompt_ids(ev, ALL, "en")).count("Text model's reading") == 1
    hidden = LLMScorer(model=model, tokenizer=tok, adapter=str(tmp_path / "old"))  # its recipe: trained without
    assert not hidden.text_reading and "Text model's reading" not in tok.decode(hidden.prompt_ids(ev, ALL, "en"))


def test_a_reading_adapter_given_unread_text_says_so_once(tmp_path, tiny_llm, caplog):
    """Lexicon-fallback evidence (no trained head set up) has no reading to show: the scorer warns once instead of
    silently showing the transcript alone to an adapter trained with the reading."""
    import logging

    import yaml

    from omni_mer.llm.model import RECIPE_FILE, load_llm
    from omni_mer.llm.prompt import text_reading_missing
    from omni_mer.scorers.llm import LLMScorer

    assert text_reading_missing(evidence(), ALL) and not text_reading_missing(evidence(reading=True), ALL)
    assert not text_reading_missing(evidence(), frozenset({"audio", "visual"}))  # no transcript shown
    (tmp_path / RECIPE_FILE).write_text(yaml.safe_dump({"script": {"text_reading": True}}))
    model, tok = load_llm(tiny_llm, dtype="float32")
    scorer = LLMScorer(model=model, tokenizer=tok, adapter=str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="omni_mer.scorers.llm"):
        scorer.label_logprobs(evidence(reading=True), ALL, "en")  # builds the cached prompt head first
        scorer.prompt_ids(evidence(reading=True), ALL, "en")
        assert not caplog.records
        for _ in range(3):
            scorer.prompt_ids(evidence(), ALL, "en")
    assert len(caplog.records) == 1 and "has none (no trained text head read it" in caplog.records[0].getMessage()


def test_an_adapter_given_another_text_heads_reading_is_told_which_head_it_read(tmp_path, tiny_llm, caplog,
                                                                                monkeypatch):
    """An adapter records the digest of the head whose reading it was trained on; the scorer warns when the pipeline's
    head is another one (naming the --text-head choice that fits), and a GRPO stage on top refuses it."""
    import logging

    import yaml

    from omni_mer.core.errors import ConfigError
    from omni_mer.llm.model import RECIPE_FILE, adapter_text_head, load_llm, text_head_mismatch
    from omni_mer.scorers.llm import LLMScorer
    from omni_mer.texthead.head import head_digest
    from omni_mer.texthead.shipped import E5_HEAD_DIR, TEXT_HEAD_ENV
    from omni_mer.train.llm import LLMTrainArgs, check_init_adapter

    monkeypatch.setenv(TEXT_HEAD_ENV, "e5")
    e5 = head_digest(E5_HEAD_DIR)
    for name, digest in (("e5", e5), ("other", "0123456789ab")):
        (tmp_path / name).mkdir()
        (tmp_path / name / RECIPE_FILE).write_text(yaml.safe_dump({"script": {"text_reading": True},
                                                                   "text_head": {"head": "TextHead", "digest": digest}}))
    assert adapter_text_head(tmp_path / "e5") == e5 and adapter_text_head(tmp_path) is None
    assert text_head_mismatch(tmp_path / "e5") is None and text_head_mismatch(None) is None
    assert "set OMNI_MER_TEXT_HEAD=e5 (`omni-mer predict` / test_script.py: --text-head e5)" in text_head_mismatch(
        tmp_path / "e5", "fffff")
    why = text_head_mismatch(tmp_path / "other")
    assert f"text head 0123456789ab, but the text head in use is {e5}" in why and "retrain the adapter" in why
    model, tok = load_llm(tiny_llm, dtype="float32")
    with caplog.at_level(logging.WARNING, logger="omni_mer.scorers.llm"):
        LLMScorer(model=model, tokenizer=tok, adapter=str(tmp_path / "e5"))
        assert not caplog.records
        LLMScorer(model=model, tokenizer=tok, adapter=str(tmp_path / "other"))
    assert [r.getMessage() for r in caplog.records] == [why]
    check_init_adapter(LLMTrainArgs(stage="grpo", init_adapter=str(tmp_path / "e5"), text_reading=True))
    with pytest.raises(ConfigError, match="retrain the adapter on this one \\(both stages must read one head\\)"):
        check_init_adapter(LLMTrainArgs(stage="grpo", init_adapter=str(tmp_path / "other"), text_reading=True))


@pytest.mark.parametrize("keep", [ALL, frozenset({"text"}), frozenset({"text", "audio"}), frozenset({"visual"})])
@pytest.mark.parametrize("face", [True, False])
@pytest.mark.parametrize("language", ["en", "zh"])
@pytest.mark.parametrize("reading", [False, True])
def test_sft_targets_cite_only_what_the_prompt_shows(keep, face, language, reading):
    ev = evidence(face=face, language=language, reading=reading)
    for label in LABELS:
        target = grounded_target(ev, keep, label, language, head_quote=reading)
        assert format_reward([target]) == [1.0]
        assert target.endswith(f"<answer>{label}</answer>")
        r = grounding_reward([target], evidence=[ev], keep=[",".join(keep)])[0]
        shown = shown_cues(ev, keep)
        cited = "text" in keep or shown
        assert r == (1.0 if cited else 0.0), (target, r)


# ------------------------------------------------------------------------------------------ scorer
@pytest.fixture(scope="module")
def tiny_llm(tmp_path_factory):
    from omni_mer.llm.model import build_tiny_llm

    return build_tiny_llm(tmp_path_factory.mktemp("tiny-llm") / "model")


@pytest.fixture(scope="module")
def scorer(tiny_llm):
    from omni_mer.scorers.llm import LLMScorer

    return LLMScorer(str(tiny_llm), max_new_tokens=8, dtype="float32")  # exact comparisons on any CPU


def _plain_label_logprobs(scorer, ev, keep, lang) -> np.ndarray:
    """Each label's summed log-probability from one full forward per label (no cache, no shared prefix)."""
    import torch

    from omni_mer.core.answer import SCORE_THINK, answer_prefix

    ids = scorer.prompt_ids(ev, keep, lang)
    out = []
    for label in LABELS:
        tail = scorer.tokenizer(answer_prefix(SCORE_THINK) + label, add_special_tokens=False)["input_ids"]
        x = torch.tensor([ids + tail])
        with torch.no_grad():
            logp = torch.log_softmax(scorer.model(input_ids=x).logits[0].float(), -1)
        n = len(ids)
        shared = len(scorer._tails[0])
        out.append(sum(float(logp[n + j - 1, tail[j]]) for j in range(shared, len(tail))))
    return np.asarray(out)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_cached_label_scoring_equals_a_plain_forward(scorer, lang):
    ev = evidence(language=lang)
    for keep in (ALL, frozenset({"text"}), frozenset()):
        got = scorer.label_logprobs(ev, keep, lang)
        assert scorer.timings["cached_tokens"] > 20  # the shared head came from the prefix cache
        np.testing.assert_allclose(got, _plain_label_logprobs(scorer, ev, keep, lang), atol=3e-5)


def test_the_8_coalitions_batched_equal_one_plain_forward_each(scorer):
    """Explanations score the 8 coalitions in batches on the cached head: every row must equal its own unpadded,
    uncached forward, and so must each row of one batch padded to the longest (the padding sits between the cached
    head and each suffix)."""
    from omni_mer.explain.shapley import COALITIONS

    ev = evidence(face=False)  # the face line differs in length from the voice cue lines
    clip = Clip.from_audio(np.zeros(16000, np.float32), clip_id="c", language="en")
    got = scorer.score_coalitions(clip, ev, COALITIONS)
    assert scorer.timings["prompts"] == 8 and scorer.timings["cached_tokens"] > 20
    want = [_plain_label_logprobs(scorer, ev, keep, "en") for keep in COALITIONS]
    for p, w in zip(got, want):
        w = np.exp(w - w.max())
        np.testing.assert_allclose(p, w / w.sum(), atol=3e-5)
    shared = list(scorer._tails[0])
    seqs = [scorer.prompt_ids(ev, keep, "en") + shared for keep in COALITIONS]
    assert len({len(s) for s in seqs}) > 2  # real padding in the one batch below
    got_one_batch, cached = scorer._ids_logprobs(seqs, "en")
    assert cached > 20
    np.testing.assert_allclose(got_one_batch, np.stack(want), atol=3e-5)


def test_inference_dtype_is_bf16_only_where_the_cpu_computes_it_natively(tmp_path, monkeypatch):
    import torch

    from omni_mer.llm import model as llm_model

    with_bf16, without = tmp_path / "bf16", tmp_path / "plain"
    with_bf16.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 avx512_vnni\n")
    without.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_vnni\n")
    assert llm_model.cpu_has_native_bf16(with_bf16) and not llm_model.cpu_has_native_bf16(without)
    assert not llm_model.cpu_has_native_bf16(tmp_path / "missing")  # not Linux: fp32
    monkeypatch.setattr(llm_model, "cpu_has_native_bf16", lambda: False)
    assert llm_model.inference_dtype("auto", "cpu") is torch.float32
    monkeypatch.setattr(llm_model, "cpu_has_native_bf16", lambda: True)
    assert llm_model.inference_dtype("auto", "cpu") is torch.bfloat16
    assert llm_model.inference_dtype("float32", "cpu") is torch.float32
    with pytest.raises(ValueError, match="float16.*valid values are auto, float32, bfloat16"):
        llm_model.inference_dtype("float16")


def test_bfloat16_scoring_stays_close_to_float32(tiny_llm, scorer):
    import torch

    from omni_mer.explain.shapley import COALITIONS
    from omni_mer.scorers.llm import LLMScorer

    bf16 = LLMScorer(str(tiny_llm), max_new_tokens=8, dtype="bfloat16")
    assert next(bf16.model.parameters()).dtype == torch.bfloat16
    ev = evidence()
    clip = Clip.from_audio(np.zeros(16000, np.float32), clip_id="c", language="en")
    got, want = bf16.score_coalitions(clip, ev, COALITIONS), scorer.score_coalitions(clip, ev, COALITIONS)
    for p, q in zip(got, want):
        assert p.dtype == np.float64 and abs(p.sum() - 1) < 1e-9
        np.testing.assert_allclose(p, q, atol=0.05)


def test_many_prompts_group_by_language_and_score_duplicates_once(scorer):
    evs = [evidence(language="en"), evidence(language="zh"), evidence(language="en"), evidence(language="zh")]
    keeps = [ALL, frozenset({"text"}), ALL, frozenset({"audio"})]
    langs = ["en", "zh", "en", "zh"]
    got = scorer.label_logprobs_many(evs, keeps, langs)
    assert got.shape == (4, len(LABELS)) and scorer.timings["forwards_unique"] == 3
    np.testing.assert_array_equal(got[0], got[2])
    for i in range(4):
        np.testing.assert_allclose(got[i], _plain_label_logprobs(scorer, evs[i], keeps[i], langs[i]), atol=3e-5)


def test_scorer_probabilities_depend_on_the_kept_evidence(scorer):
    ev = evidence()
    clip = Clip.from_audio(np.zeros(16000, np.float32), clip_id="c", language="en")
    p_all = scorer.score(clip, ev, ALL)
    assert p_all.shape == (len(LABELS),) and abs(p_all.sum() - 1) < 1e-9
    assert not np.allclose(p_all, scorer.score(clip, ev, frozenset({"text"})))
    assert not np.allclose(p_all, scorer.score(clip, ev, frozenset({"audio", "visual"})))
    with pytest.raises(ValueError, match="valid"):
        scorer.score(clip, ev, frozenset({"smell"}))


def test_pipeline_with_the_llm_backend_explains_unchanged(tiny_llm):
    from omni_mer.pipeline import Pipeline, build_scorer

    s = build_scorer("llm", str(tiny_llm), llm_dtype="float32")  # the same numbers on any CPU
    assert s.name == "llm" and s.version().startswith("llm:")
    pipe = Pipeline(s, extractor=object())  # evidence is given: no extractor runs
    clip = Clip.from_audio(np.zeros(16000, np.float32), clip_id="c", language="en")
    a = pipe.analyze_clip(clip, evidence=evidence())
    assert a.label in LABELS and "<answer>" in a.explanation["rationale"]
    assert len(s.last_results) == 1 and isinstance(s.last_results[0].valid, bool)


def test_llm_backend_is_a_choice_of_predict_and_demo():
    from omni_mer.batch.predict import build_parser

    assert "llm" in next(a for a in build_parser()._actions if "--backend" in a.option_strings).choices
    from omni_mer.pipeline import BACKENDS

    assert "llm" in BACKENDS


def test_predict_takes_the_llm_dtype_and_rejects_a_bad_one(capsys):
    from omni_mer.batch.predict import PredictConfig, build_parser, config_from_args

    args = build_parser().parse_args(["--backend", "llm", "--llm-dtype", "float32"])
    assert config_from_args(args).llm_dtype == "float32"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--llm-dtype", "float16"])
    assert "invalid choice: 'float16'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--llm-dtype 'half' is not one of auto, float32, bfloat16"):
        PredictConfig(llm_dtype="half")


def test_length_batches_keep_padding_within_budget():
    from omni_mer.scorers.llm import length_batches

    lengths = [10, 130, 12, 120, 60, 11, 125, 58]
    batches = length_batches(lengths, lambda n: n, max_rows=8, padding=0.25)
    assert sorted(n for b in batches for n in b) == sorted(lengths)  # every item once
    for b in batches:
        assert len(b) * max(b) <= 1.25 * sum(b)
    assert [len(b) for b in batches] == [3, 2, 3]  # the short, middle and long coalitions apart
    assert length_batches(lengths, lambda n: n, max_rows=2, padding=10.0) == [[10, 11], [12, 58], [60, 120],
                                                                             [125, 130]]
