"""Reward registry on literal completions: format, accuracy (+ordinal), grounding, language, errors."""

from __future__ import annotations

import pytest

from omni_mer.evidence.types import Cue, Evidence, ModalityEvidence
from omni_mer.train.rewards import (REWARDS, accuracy_reward, combine_rewards, format_reward, get_reward,
                                    grounding_reward, language_reward)


def evidence(face: bool = True, language: str = "en") -> Evidence:
    text = ModalityEvidence("text", True, valence=0.8, cues=[
        Cue("text", 0.0, 1.0, "love", 0.9, effect=0.9, kind="word")])
    audio = ModalityEvidence("audio", True, valence=0.3, cues=[
        Cue("audio", 0.5, 1.5, "pitch rises", 1.2, effect=0.3, kind="pitch")])
    visual = (ModalityEvidence("visual", True, valence=0.6, cues=[
        Cue("visual", 0.0, 2.0, "smile", 0.8, effect=0.6, kind="expression:happy")])
        if face else ModalityEvidence.absent("visual", "no face found"))
    return Evidence(language=language, transcript="I really love this phone", segments=[], text=text,
                    audio=audio, visual=visual)


def test_format_exactly_one_think_then_one_answer():
    good = ["<think>They smile.</think><answer>SPOS</answer>", " <think>x</think>\n<answer> weak positive </answer>\n"]
    bad = [
        "<answer>SPOS</answer>",  # no think
        "<think>x</think>",  # no answer
        "<think>x</think><answer>HAPPY</answer>",  # not a label
        "<think>a</think><think>b</think><answer>SPOS</answer>",  # two thinks
        "<think>x</think><answer>SPOS</answer><answer>SNEG</answer>",  # two answers
        "<answer>SPOS</answer><think>x</think>",  # wrong order
        "<think>x</think><answer>SPOS</answer> trailing text",
        "<think>  </think><answer>SPOS</answer>",  # empty rationale
    ]
    assert format_reward(good) == [1.0, 1.0]
    assert format_reward(bad) == [0.0] * len(bad)
    # TRL's conversational completions are accepted too
    assert format_reward([[{"role": "assistant", "content": good[0]}]]) == [1.0]


def test_accuracy_exact_and_ordinal():
    comps = ["<think>x</think><answer>SPOS</answer>", "<think>x</think><answer>WPOS</answer>",
             "<think>x</think><answer>NEUT</answer>", "no answer"]
    gold = ["SPOS"] * 4
    assert accuracy_reward(comps, label=gold) == [1.0, 0.0, 0.0, 0.0]
    assert accuracy_reward(comps, label=gold, ordinal=True) == [1.0, 0.5, 0.0, 0.0]
    assert get_reward("accuracy_ordinal")(comps, label=gold) == [1.0, 0.5, 0.0, 0.0]
    assert accuracy_reward(comps[:1], label=[None]) == [None]
    with pytest.raises(ValueError, match="HAPPY"):
        accuracy_reward(comps[:1], label=["HAPPY"])


def test_grounding_matches_what_the_prompt_showed_by_modality_kind_and_time():
    """Issue 18: citations are checked against the prompt (transcript quotes; cue tags by modality, kind and time
    overlap), never against formatted cue strings the model did not see."""
    ev = evidence(face=True)
    cited = ("<think>The words “love this” and [voice · pitch · 0.6–1.4 s], [face · expression:happy · 0.0–2.0 s] "
             "show joy.</think><answer>SPOS</answer>")
    invented = "<think>The word “hate” shows anger.</think><answer>SNEG</answer>"
    nothing = "<think>It is positive.</think><answer>SPOS</answer>"
    assert grounding_reward([cited, invented, nothing], evidence=[ev] * 3) == [1.0, -1.0, 0.0]
    # a tag must agree in modality, kind and time with a shown cue
    for bad in ("[face · expression:sad · 0.0–2.0 s]", "[face · expression:happy · 5.0–6.0 s]",
                "[voice · expression:happy · 0.0–2.0 s]"):
        r = grounding_reward([f"<think>“love” {bad}</think><answer>SPOS</answer>"], evidence=[ev])[0]
        assert r == pytest.approx(0.0), bad
    # the formatted cue strings of the evidence are not citations the model can satisfy
    assert grounding_reward(["<think>a “smile” and “pitch rises”</think><answer>SPOS</answer>"],
                            evidence=[ev]) == [-1.0]
    # the prompt did not list cue tags (cues_shown False) or did not show the face (keep): a tag is not grounded
    tag_only = "<think>[voice · pitch · 0.6–1.4 s]</think><answer>SPOS</answer>"
    assert grounding_reward([tag_only], evidence=[ev], cues_shown=[False]) == [-1.0]
    assert grounding_reward([tag_only], evidence=[ev], keep=["text,visual"])[0] < 0
    # text not shown: a verbatim quote is not grounded either
    assert grounding_reward(["<think>“love this”</think><answer>SPOS</answer>"], evidence=[ev],
                            keep=["audio,visual"]) == [-1.0]
    # Same rationale when no face was found: the face tag is ungrounded and the face claim is penalised.
    no_face = evidence(face=False)
    r_absent = grounding_reward([cited], evidence=[no_face])[0]
    assert r_absent == pytest.approx(1 / 3 - 0.5)  # 2 of 3 citations grounded, one face claim
    claim = "<think>“love” is said and the speaker is smiling.</think><answer>SPOS</answer>"
    negated = "<think>“love” is said; no face was visible, so there are no facial cues.</think><answer>SPOS</answer>"
    r_claim, r_neg = grounding_reward([claim, negated], evidence=[no_face] * 2)
    assert r_claim == pytest.approx(0.5) and r_neg == pytest.approx(1.0)
    # a claim about a modality the prompt did not show (not kept) is penalised like an absent one
    assert grounding_reward([claim], evidence=[ev], keep=["text"])[0] == pytest.approx(0.5)
    # Chinese: a face claim without a face; a quote in 「」
    zh = "<think>他面带微笑，说了「love」。</think><answer>SPOS</answer>"
    assert grounding_reward([zh], evidence=[no_face])[0] == pytest.approx(0.5)
    # Evidence given as a dict (the cache) or JSON (a dataset column) works; None = not scored.
    import json

    assert grounding_reward([cited] * 3, evidence=[ev.to_dict(), json.dumps(ev.to_dict()), None]) == [1.0, 1.0, None]


def test_language_reward_matches_clip_language():
    en = "<think>The speaker sounds happy about the phone.</think><answer>SPOS</answer>"
    zh = "<think>说话人对手机很满意，语气轻快。</think><answer>SPOS</answer>"
    assert language_reward([en, zh], language=["en", "en"]) == [1.0, 0.0]
    assert language_reward([en, zh], language=["zh", "zh"]) == [0.0, 1.0]
    mixed = language_reward(["<think>很好 good</think><answer>SPOS</answer>"], language=["zh"])[0]
    assert 0.0 < mixed < 1.0
    assert language_reward(["<think></think><answer>SPOS</answer>"], language=["en"]) == [0.0]
    # untagged text is read whole, so an untrained model still gets a graded signal
    assert language_reward(["hello 你好吗"], language=["zh"])[0] == pytest.approx(3 / 8)


def test_registry_errors_name_valid_rewards_and_are_never_swallowed():
    with pytest.raises(ValueError) as e:
        get_reward("accurcy")
    for name in REWARDS:
        assert name in str(e.value)
    comps = ["<think>x</think><answer>SPOS</answer>"]
    with pytest.raises(RuntimeError, match="accuracy"):  # missing column -> error names the reward
        combine_rewards(["accuracy"], None, comps, language=["en"])
    with pytest.raises(ValueError, match="weights"):
        combine_rewards(["format", "accuracy"], [1.0], comps, label=["SPOS"])


def test_combine_rewards_weights_and_none():
    comps = ["<think>I love it.</think><answer>SPOS</answer>", "garbage"]
    total, per = combine_rewards(["format", "accuracy", "language"], [1.0, 2.0, 0.5], comps,
                                 label=["SPOS", None], language=["en", "en"])
    assert per["accuracy"] == [1.0, None]
    assert total[0] == pytest.approx(1.0 + 2.0 + 0.5)
    assert total[1] == pytest.approx(0.5 * 1.0)  # format 0, accuracy skipped, "garbage" is English
