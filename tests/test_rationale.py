"""Rendered rationales: format, answer == label, every citation exists, conflicts, absent modalities."""

from __future__ import annotations

import pytest

from omni_mer.core.config import MODALITIES
from omni_mer.evidence.types import Cue, Evidence, ModalityEvidence, Segment
from omni_mer.explain.rationale import check_rationale, citations, conflicts, render_rationale
from omni_mer.core.answer import parse_answer
from omni_mer.core.labels import LABELS

TEXTS = {
    "en": {"transcript": "Honestly the food was wonderful, but the service was painfully slow and rude.",
           "text": [("wonderful", 0.8), ("painfully slow", -0.6), ("rude", -0.5)],
           "audio": [("pitch rises", 0.4), ("loud voice", -0.3)],
           "visual": [("frown (p=0.74)", -0.7), ("smile (p=0.20)", 0.2)]},
    "zh": {"transcript": "说实话菜很好吃，但是服务太慢了，态度也很差。",
           "text": [("好吃", 0.8), ("太慢", -0.6), ("很差", -0.5)],
           "audio": [("音调升高", 0.4), ("音量偏大", -0.3)],
           "visual": [("皱眉（p=0.74）", -0.7), ("微笑（p=0.20）", 0.2)]},
}


def make_evidence(lang: str, valence: dict[str, float | None]) -> Evidence:
    t = TEXTS[lang]
    mods = {}
    for m in MODALITIES:
        if valence.get(m) is None:
            mods[m] = ModalityEvidence.absent(m, "nothing detected")
            continue
        cues = [Cue(m, 0.6 * i, 0.6 * i + 0.5, txt, eff * 1.5, eff, m) for i, (txt, eff) in enumerate(t[m])]
        mods[m] = ModalityEvidence(m, True, float(valence[m]), 0.8, cues=cues)
    return Evidence(lang, t["transcript"], [Segment(0.0, 4.0, t["transcript"])], mods["text"], mods["audio"],
                    mods["visual"])


SHAP = {"text": 0.21, "audio": -0.04, "visual": 0.07}


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("label", LABELS)
@pytest.mark.parametrize("shapley", [SHAP, None], ids=["shapley", "no-shapley"])
def test_answer_is_label_and_citations_exist(lang, label, shapley):
    ev = make_evidence(lang, {"text": -0.5, "audio": -0.2, "visual": -0.6})
    r = render_rationale(ev, shapley, label, lang)
    assert r.startswith("<think>") and r.endswith(f"</think><answer>{label}</answer>")
    assert parse_answer(r) == label  # also for a gold label the evidence disagrees with
    check = check_rationale(r, ev, label)
    assert check["answer_matches"] and check["cited_cues_exist"], check
    assert check["details"]["well_formed"]
    cited = citations(r)
    # The strongest cue of every present modality is quoted verbatim, and the transcript is quoted.
    for m in MODALITIES:
        top = max(ev.modality(m).cues, key=lambda c: abs(c.effect))
        assert top.text in cited
    assert check["details"]["n_transcript_citations"] == 1
    if shapley is not None:
        assert "+0.210" in r  # the measured contribution appears with its number
    if lang == "zh":
        assert "说了什么" in r and "面部表情" in r and "「" in r
    else:
        assert "What was said" in r and "What the face did" in r


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_conflict_sentence(lang):
    word = "Conflict" if lang == "en" else "冲突"
    disagree = make_evidence(lang, {"text": 0.7, "audio": 0.1, "visual": -0.6})
    assert conflicts(disagree) == [("text", "visual")]
    r = render_rationale(disagree, SHAP, "WPOS", lang)
    assert word in r
    sentence = [s for s in r.split("\n") if word in s][0]
    assert ("sides with the text" in sentence) if lang == "en" else ("与文本一致" in sentence)
    agree = make_evidence(lang, {"text": 0.7, "audio": 0.3, "visual": 0.6})
    assert conflicts(agree) == []
    assert word not in render_rationale(agree, SHAP, "WPOS", lang)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_absent_face_is_stated_not_claimed(lang):
    ev = make_evidence(lang, {"text": 0.6, "audio": 0.2, "visual": None})
    r = render_rationale(ev, {"text": 0.3, "audio": 0.05, "visual": 0.0}, "WPOS", lang)
    assert ("no face was visible" in r) if lang == "en" else ("未检测到人脸" in r)
    for txt, _ in TEXTS[lang]["visual"]:
        assert txt not in r
    assert check_rationale(r, ev, "WPOS")["cited_cues_exist"]
    nothing = make_evidence(lang, {"text": None, "audio": None, "visual": None})
    r = render_rationale(nothing, None, "NEUT", lang)
    assert parse_answer(r) == "NEUT" and citations(r) == []


def test_checker_catches_fabrication_wrong_answer_and_absent_modality():
    ev = make_evidence("en", {"text": 0.6, "audio": 0.2, "visual": -0.4})
    bad = "<think>The face shows “a big grin” and they said “wonderful”.</think><answer>SPOS</answer>"
    c = check_rationale(bad, ev, "WPOS")
    assert not c["answer_matches"] and not c["cited_cues_exist"]
    assert c["details"]["missing"] == ["a big grin"]
    assert not check_rationale("no tags at all", ev, "WPOS")["answer_matches"]
    assert not check_rationale(None, ev, "WPOS")["details"]["well_formed"]
    # Citing a cue of a modality the evidence calls absent is a failure too.
    ev.visual.present = False
    c = check_rationale("<think>「frown (p=0.74)」</think><answer>WPOS</answer>", ev, "WPOS")
    assert not c["cited_cues_exist"] and c["details"]["absent_modality_citations"] == ["frown (p=0.74)"]


def test_quotes_inside_cue_text_and_long_transcript():
    ev = make_evidence("en", {"text": 0.6, "audio": 0.2, "visual": 0.3})
    ev.text.cues[0].text = 'word "wonderful" (VADER +0.57)'
    ev.audio.cues[0].text = "pitch “rises” sharply"  # clashes with the English marks: falls back to 「」
    ev.transcript = " ".join(["this is a rather long transcript"] * 20)
    r = render_rationale(ev, None, "WPOS", "en")
    cited = citations(r)
    assert 'word "wonderful" (VADER +0.57)' in cited and "pitch “rises” sharply" in cited
    snippet = [c for c in cited if c.startswith("this is")][0]
    assert len(snippet) < len(ev.transcript) and snippet in ev.transcript and "…" in r
    assert check_rationale(r, ev, "WPOS")["cited_cues_exist"]


def test_mattered_most_is_the_largest_absolute_contribution():
    from omni_mer.evidence.types import Evidence, ModalityEvidence
    from omni_mer.explain.rationale import render_rationale

    ev = Evidence("en", "", [], ModalityEvidence("text", True, 0.1, 0.5), ModalityEvidence("audio", True, -0.5, 0.5),
                  ModalityEvidence("visual", True, -0.2, 0.5))
    # All three push away from the label: the audio moved it most, not the "least negative" text.
    r = render_rationale(ev, {"text": -0.008, "audio": -0.017, "visual": -0.009}, "NEUT", "en")
    assert "Which mattered most: the voice" in r or "Which mattered most: the audio" in r, r
