"""Exact modality Shapley values, explain() and the deletion (faithfulness) test."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from omni_mer.core.clip import Clip
from omni_mer.core.config import MODALITIES
from omni_mer.evidence.types import Cue, Evidence, ModalityEvidence, Segment
from omni_mer.explain import explain
from omni_mer.explain.faithfulness import deletion_test, faithfulness_report
from omni_mer.explain.shapley import COALITIONS, coalition_key, modality_shapley, parse_coalition_key
from omni_mer.core.answer import parse_answer
from omni_mer.core.labels import LABEL_VALENCE, LABELS
from omni_mer.scorers.base import Scorer

ALL = frozenset(MODALITIES)
PRESENT_SETS = [frozenset(c) for r in range(4) for c in itertools.combinations(MODALITIES, r)]


# --- test double: a transparent function of the evidence valences (with a non-additive text×audio term) ---
class ValenceScorer(Scorer):
    name = "test-valence"

    def __init__(self) -> None:
        self.calls: list[frozenset[str]] = []

    def score(self, clip, evidence, keep):
        self.calls.append(frozenset(keep))
        used = [m for m in MODALITIES if m in keep and evidence.modality(m).present]
        w = {"text": 2.0, "audio": 1.0, "visual": 1.5}
        v = sum(w[m] * evidence.modality(m).valence * evidence.modality(m).confidence for m in used)
        if "text" in used and "audio" in used:
            v += 0.8 * evidence.text.valence * evidence.audio.valence
        logits = -np.array([(v - 1.2 * LABEL_VALENCE[lab]) ** 2 for lab in LABELS])
        p = np.exp(logits - logits.max())
        return p / p.sum()


def make_evidence(vals: dict[str, float | None], lang: str = "en") -> Evidence:
    """Hand-made evidence; a None valence marks the modality absent."""
    words = {"en": ["great", "awful", "fine"], "zh": ["太好了", "糟糕", "还行"]}[lang]
    mods = {}
    for k, m in enumerate(MODALITIES):
        v = vals.get(m)
        if v is None:
            mods[m] = ModalityEvidence.absent(m, f"no {m}")
            continue
        cues = [Cue(m, 0.5 * i + k, 0.5 * i + k + 0.4, f"{m}-{words[i]}", v * (1 - 0.2 * i), v * (1 - 0.3 * i),
                    "word" if m == "text" else m) for i in range(3)]
        mods[m] = ModalityEvidence(m, True, float(v), 0.9, cues=cues)
    tr = "I think it was " + words[0] if lang == "en" else "我觉得" + words[0]
    return Evidence(lang, tr if mods["text"].present else "", [Segment(0, 3, tr)], mods["text"], mods["audio"],
                    mods["visual"])


def make_clip(cid: str = "c1", duration: float = 4.0) -> Clip:
    return Clip(Path(f"{cid}.mp4"), cid, np.zeros((2, 8, 8, 3), np.uint8), np.array([0.0, 2.0]), 0.5,
                np.zeros(16000, np.float32), duration, True, True)


# --- an independent reference: average marginal contribution over all orderings ---
def permutation_shapley(v, present):
    players = [m for m in MODALITIES if m in present]
    phi = {m: 0.0 for m in MODALITIES}
    orders = list(itertools.permutations(players))
    for order in orders:
        s = frozenset()
        for m in order:
            phi[m] += (v(s | {m}) - v(s)) / len(orders)
            s = s | {m}
    return phi


def _random_game(seed):
    rng = np.random.default_rng(seed)
    table = {c: float(rng.normal()) for c in COALITIONS}
    return lambda s: table[frozenset(s)]


GAMES = {
    "additive": lambda s: sum({"text": 0.5, "audio": -0.2, "visual": 0.1}[m] for m in s) + 0.3,
    "unanimity": lambda s: 1.0 if s == ALL else 0.0,
    "pairwise": lambda s: 2.0 * ("text" in s and "audio" in s) - 1.0 * ("audio" in s and "visual" in s),
    "square": lambda s: float(len(s)) ** 2,
    **{f"random{seed}": _random_game(seed) for seed in range(5)},
}


@pytest.mark.parametrize("game", list(GAMES))
@pytest.mark.parametrize("present", PRESENT_SETS, ids=lambda p: coalition_key(p) or "none")
def test_efficiency_absent_zero_and_reference(game, present):
    v = GAMES[game]
    queried = []

    def tracked(s):
        queried.append(s)
        return v(s)

    phi = modality_shapley(tracked, present)
    assert set(phi) == set(MODALITIES)
    assert abs(sum(phi.values()) - (v(present) - v(frozenset()))) < 1e-9
    for m in ALL - present:
        assert phi[m] == 0.0
    assert all(s <= present for s in queried), "only coalitions of present modalities may be evaluated"
    assert len(queried) == len(set(queried)) == (2 ** len(present) if present else 0)
    ref = permutation_shapley(v, present)
    for m in MODALITIES:
        assert phi[m] == pytest.approx(ref[m], abs=1e-12)


def test_known_values():
    # Unanimity game: the surplus is split equally; square game: symmetric players.
    phi = modality_shapley(GAMES["unanimity"], ALL)
    assert all(phi[m] == pytest.approx(1 / 3) for m in MODALITIES)
    phi = modality_shapley(GAMES["square"], frozenset({"text", "visual"}))
    assert phi == pytest.approx({"text": 2.0, "audio": 0.0, "visual": 2.0})
    phi = modality_shapley(GAMES["additive"], ALL)  # additive: each gets its own weight
    assert phi == pytest.approx({"text": 0.5, "audio": -0.2, "visual": 0.1})


def test_coalition_keys_round_trip():
    keys = [coalition_key(c) for c in COALITIONS]
    assert len(set(keys)) == 8 and "" in keys and "text+audio" in keys and "text+audio+visual" in keys
    assert all(parse_coalition_key(k) == c for k, c in zip(keys, COALITIONS))
    with pytest.raises(ValueError):
        coalition_key({"smell"})


@pytest.mark.parametrize("vals", [
    {"text": 0.8, "audio": -0.5, "visual": 0.4},
    {"text": -0.9, "audio": -0.2, "visual": None},
    {"text": None, "audio": 0.6, "visual": None},
    {"text": None, "audio": None, "visual": None},
])
def test_explain_properties(vals):
    scorer = ValenceScorer()
    ev = make_evidence(vals)
    e = explain(make_clip(), ev, scorer)
    d = e.to_dict()
    json.dumps(d, ensure_ascii=False)  # serialisable as is
    assert sorted(scorer.calls, key=coalition_key) == sorted(COALITIONS, key=coalition_key)  # 8 calls, 1 each
    assert d["label"] == LABELS[int(np.argmax([d["probs"][lab] for lab in LABELS]))]
    assert abs(sum(d["shapley"].values()) - (d["value_all"] - d["value_none"])) < 1e-6
    assert abs(sum(d["shapley_valence"].values()) - (d["valence_all"] - d["valence_none"])) < 1e-6
    for m in MODALITIES:
        if vals[m] is None:
            assert d["shapley"][m] == 0.0 and d["shapley_valence"][m] == 0.0
            assert d["counterfactual"][m] == d["label"]
    assert set(d["coalitions"]) == {coalition_key(c) for c in COALITIONS}
    for m in MODALITIES:  # counterfactual = argmax of the stored coalition without m
        p = d["coalitions"][coalition_key(ALL - {m})]
        assert d["counterfactual"][m] == LABELS[int(np.argmax(p))]
    assert parse_answer(d["rationale"]) == d["label"]
    assert d["rationale_source"] == "rendered"
    assert d["rationale_check"]["answer_matches"] and d["rationale_check"]["cited_cues_exist"]
    assert d["backend"] == "test-valence" and d["present"] == [m for m in MODALITIES if vals[m] is not None]
    for m in MODALITIES:
        effects = [abs(c["effect"]) for c in d["top_cues"][m]]
        assert effects == sorted(effects, reverse=True)


def test_explain_generated_rationale_kept_or_replaced():
    ev = make_evidence({"text": 0.9, "audio": 0.5, "visual": 0.6})
    label = explain(make_clip(), ev, ValenceScorer()).label
    good = f"<think>The speaker says “text-great” and “face-made-up”.</think><answer>{label}</answer>"
    d = explain(make_clip(), ev, ValenceScorer(), generated=good).to_dict()
    assert d["rationale_source"] == "generated" and d["rationale"] == good
    assert d["rationale_check"]["answer_matches"]
    assert not d["rationale_check"]["cited_cues_exist"]  # the made-up cue is caught
    assert d["rationale_check"]["details"]["missing"] == ["face-made-up"]

    wrong = "SNEG" if label != "SNEG" else "SPOS"
    d = explain(make_clip(), ev, ValenceScorer(), generated=f"<think>x</think><answer>{wrong}</answer>").to_dict()
    assert d["rationale_source"] == "rendered" and parse_answer(d["rationale"]) == label
    assert "fallback_reason" in d["rationale_check"]["details"]
    assert d["generated_rationale"].endswith(f"<answer>{wrong}</answer>")


def test_deletion_rate_and_report(tmp_path):
    rng = np.random.default_rng(7)
    explanations = []
    for i in range(30):
        vals = {m: float(rng.uniform(-1, 1)) for m in MODALITIES}
        if i % 10 == 0:
            vals["visual"] = None
        if i % 15 == 0:
            vals = {"text": 0.5, "audio": None, "visual": None}
        d = explain(make_clip(f"c{i}"), make_evidence(vals), ValenceScorer()).to_dict()
        explanations.append(d)
    res = deletion_test(explanations)
    assert res["n_clips"] == 30
    assert res["n_excluded_lt2_modalities"] == 2
    assert res["n_evaluated"] + res["n_excluded_lt2_modalities"] + res["n_excluded_ties"] == 30
    assert res["deletion_rate"] >= 0.9, res
    # Two present modalities: Shapley order and deletion order coincide exactly.
    for c in res["per_clip"]:
        if c["status"] == "evaluated" and len(c["present"]) == 2:
            assert c["success"]

    # Reversed attributions must fail the test (the test can fail).
    flipped = [{**d, "shapley": {m: -v for m, v in d["shapley"].items()}} for d in explanations]
    assert deletion_test(flipped)["deletion_rate"] <= 0.1

    for d in explanations[:5]:
        (tmp_path / d["id"]).mkdir()
        (tmp_path / d["id"] / "explanation.json").write_text(json.dumps(d), encoding="utf-8")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "explanation.json").write_text("{not json", encoding="utf-8")
    rep = faithfulness_report(tmp_path)
    assert rep["n_clips"] == 5 and len(rep["unreadable"]) == 1
    assert rep["rationale_answer_match_rate"] == 1.0
    assert not math.isnan(rep["deletion_rate"])


def test_evaluate_section(tmp_path):
    import argparse

    from omni_mer.eval.evaluate import EvalContext
    from omni_mer.explain.faithfulness import EVAL_SECTION

    for i, vals in enumerate([{"text": 0.9, "audio": -0.3, "visual": 0.2}, {"text": -0.5, "audio": 0.4, "visual": None}]):
        d = explain(make_clip(f"s{i}"), make_evidence(vals), ValenceScorer()).to_dict()
        (tmp_path / d["id"]).mkdir()
        (tmp_path / d["id"] / "explanation.json").write_text(json.dumps(d), encoding="utf-8")
    parser = argparse.ArgumentParser()
    EVAL_SECTION.add_arguments(parser)
    args = parser.parse_args(["--supplements", str(tmp_path)])
    ctx = EvalContext(args=args, out_dir=tmp_path)
    res = EVAL_SECTION.run(args, ctx)
    assert res["n_clips"] == 2 and res["n_evaluated"] == 2 and res["deletion_rate"] == 1.0
    assert "deletion test" in ctx.markdown[0]
    assert EVAL_SECTION.run(parser.parse_args([]), ctx) is None


class FrameUsingScorer(ValenceScorer):
    """Like the omni model: uses the frames (visual) even when the evidence found no face."""

    def score(self, clip, evidence, keep):
        p = super().score(clip, evidence, keep)
        if "visual" in keep:
            p = 0.7 * p + 0.3 * np.eye(len(LABELS))[0]
        return p / p.sum()


def test_scorer_using_an_absent_modality_is_attributed_not_hidden():
    ev = make_evidence({"text": 0.8, "audio": 0.3, "visual": None})
    d = explain(make_clip(), ev, FrameUsingScorer()).to_dict()
    assert d["present"] == ["text", "audio"] and d["players"] == ["text", "audio", "visual"]
    assert d["shapley"]["visual"] != 0.0 and any("absent" in w for w in d["warnings"])
    assert abs(sum(d["shapley"].values()) - (d["value_all"] - d["value_none"])) < 1e-6
    # A scorer that ignores the absent modality: players == present, visual exactly 0.
    d = explain(make_clip(), ev, ValenceScorer()).to_dict()
    assert d["players"] == ["text", "audio"] and d["shapley"]["visual"] == 0.0 and not d["warnings"]
