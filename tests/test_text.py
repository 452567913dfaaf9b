"""Text evidence: the lexicon + anchor fallback path (head=None: valence, negation, timed cues, absence), and the
trained text head's path (polarity, occlusion word cues with times)."""

from __future__ import annotations

import pytest

from omni_mer.evidence.asr import Transcript
from omni_mer.evidence.text import TextAnalyzer, _normalize
from omni_mer.evidence.types import Segment
from omni_mer.texthead.head import DEFAULT_HEAD_DIR


@pytest.fixture(scope="module")
def analyzer() -> TextAnalyzer:
    return TextAnalyzer(head=None)


@pytest.fixture(scope="module")
def lexicon_only() -> TextAnalyzer:
    return TextAnalyzer(use_embeddings=False)


POSITIVE = [
    ("en", "I absolutely love this. It is wonderful, and it makes me so happy!"),
    ("en", "What a great day, I am really pleased with the results."),
    ("zh", "我今天非常开心，这个结果太好了，我真的很喜欢。"),
    ("zh", "这部电影很精彩，我很满意。"),
]
NEGATIVE = [
    ("en", "This was terrible. I hate how they treated us. What a disappointing mess."),
    ("en", "I am so sad and angry about this awful news."),
    ("zh", "这太糟糕了，我非常失望，真让人难过。"),
    ("zh", "服务很差，我很生气。"),
]


@pytest.mark.parametrize("lang,text", POSITIVE)
def test_positive(analyzer, lang, text):
    ev = analyzer.analyze_text(text, lang)
    assert ev.present and ev.modality == "text"
    assert ev.valence > 0.3, ev
    assert ev.features["lexicon_valence"] > 0 and ev.features["embed_valence"] > 0
    assert 0.5 < ev.confidence <= 1.0
    assert any(c.effect > 0 for c in ev.cues)


@pytest.mark.parametrize("lang,text", NEGATIVE)
def test_negative(analyzer, lang, text):
    ev = analyzer.analyze_text(text, lang)
    assert ev.valence < -0.3, ev
    assert ev.features["lexicon_valence"] < 0 and ev.features["embed_valence"] < 0
    assert any(c.effect < 0 for c in ev.cues)


def test_neutral_is_near_zero(analyzer):
    for lang, text in (("en", "The meeting is on Tuesday at three o'clock, in the second room."),
                       ("zh", "会议在星期二下午三点，在第二个房间。")):
        ev = analyzer.analyze_text(text, lang)
        assert abs(ev.valence) < 0.25, (text, ev)
        assert not [c for c in ev.cues if abs(c.effect) > 0.3]


@pytest.mark.parametrize("lang,plain,negated,word", [
    ("en", "The food was good.", "The food was not good.", "good"),
    ("en", "I love it.", "I don't love it.", "love"),
    ("zh", "我喜欢这个。", "我不喜欢这个。", "喜欢"),
    ("zh", "我很开心。", "我一点也不开心。", "开心"),
    ("zh", "今天很好。", "今天不好。", "好"),
    ("zh", "我很难过。", "别难过。", "难过"),
])
def test_negation_flips(lexicon_only, lang, plain, negated, word):
    a = lexicon_only.analyze_text(plain, lang)
    b = lexicon_only.analyze_text(negated, lang)
    assert a.features["lexicon_valence"] * b.features["lexicon_valence"] < 0, (a, b)
    cue = next(c for c in b.cues if word in c.text)
    assert cue.kind == "phrase"  # the negator is shown with the word
    assert cue.effect * cue.value < 0  # contextual effect opposes the word's lexicon score


def test_booster_strengthens(lexicon_only):
    weak = lexicon_only.analyze_text("我开心。", "zh").cues[0]
    strong = lexicon_only.analyze_text("我非常开心。", "zh").cues[0]
    assert strong.effect > weak.effect > 0


def test_cue_text_format(lexicon_only):
    en = lexicon_only.analyze_text("I love it", "en").cues[0]
    assert en.text == f'"love" ({_normalize(3.2):+.2f})' and en.value == pytest.approx(0.6369, abs=1e-3)
    zh = lexicon_only.analyze_text("我喜欢", "zh").cues[0]
    assert zh.text.startswith("“喜欢”（+") and zh.text.endswith("）")


def test_cue_times_from_words(analyzer):
    words = [(0.0, 0.3, "I"), (0.3, 0.6, "really"), (0.6, 1.0, "love"), (1.0, 1.3, "it,"), (1.6, 1.9, "but"),
             (1.9, 2.2, "the"), (2.2, 2.6, "ending"), (2.6, 2.9, "was"), (2.9, 3.6, "awful.")]
    tr = Transcript(language="en", text="I really love it, but the ending was awful.",
                    segments=[Segment(0.0, 3.6, "I really love it, but the ending was awful.")], words=words,
                    language_probs={"en": 1.0, "zh": 0.0})
    ev = analyzer.analyze(tr, duration=4.0)
    love = next(c for c in ev.cues if "love" in c.text)
    awful = next(c for c in ev.cues if "awful" in c.text)
    assert (love.start, love.end) == (0.6, 1.0)
    assert (awful.start, awful.end) == (2.9, 3.6)
    assert abs(awful.effect) > abs(awful.value)  # VADER's "but" rule weights the clause after "but" up
    assert love.effect < _normalize(3.2)  # ... and the one before it down


def test_cue_times_from_segments_within_clip(analyzer):
    segs = [Segment(0.5, 2.5, "我今天非常开心，"), Segment(3.0, 5.0, "但是结果太糟糕了。")]
    ev = analyzer.analyze_text("".join(s.text for s in segs), "zh", segs, duration=5.5)
    happy = next(c for c in ev.cues if "开心" in c.text)
    bad = next(c for c in ev.cues if "糟糕" in c.text)
    assert 0.5 <= happy.start < happy.end <= 2.5
    assert 3.0 <= bad.start < bad.end <= 5.0
    assert all(0.0 <= c.start <= c.end <= 5.5 for c in ev.cues)
    assert any(c.kind == "sentence" for c in ev.cues)  # per-segment embedding cues


def test_cross_lingual_embedding(analyzer):
    # no lexicon needed: the embedding alone gets the sign, in either language
    v = analyzer.embed_valence(["We won the championship and everyone is celebrating!",
                                "我们赢得了冠军，大家都在庆祝！",
                                "My dog died yesterday and I cannot stop crying.",
                                "我的狗昨天死了，我一直在哭。"])
    assert v[0] > 0.2 and v[1] > 0.2 and v[2] < -0.2 and v[3] < -0.2, v


def test_absent_on_empty(analyzer):
    assert not analyzer.analyze_text("", "en").present
    assert not analyzer.analyze_text("   ", "zh").present
    ev = analyzer.analyze(Transcript.empty("zh"))
    assert not ev.present and ev.confidence == 0.0 and ev.cues == [] and ev.reason


def test_short_text_low_confidence(analyzer):
    short = analyzer.analyze_text("good", "en")
    long = analyzer.analyze_text("This was a really good day and I enjoyed every minute of it.", "en")
    assert short.valence > 0 and short.confidence < long.confidence
    assert short.confidence < 0.5


def test_manifest_transcripts_match_labels(analyzer):
    """The shipped samples' reference transcripts (manifest path, no ASR) get the sign of their gold score."""
    import json
    from pathlib import Path

    manifest = Path(__file__).resolve().parents[1] / "samples" / "meta" / "manifest.jsonl"
    if not manifest.is_file():
        pytest.skip("samples/meta/manifest.jsonl not shipped")
    rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [r for r in rows if r.get("text")]
    assert rows
    for r in rows:
        ev = analyzer.analyze_text(r["text"], r.get("lang", "en"))
        if r["score"] > 0.3:
            assert ev.valence > 0.3, (r, ev.valence)
        elif r["score"] < -0.3:
            assert ev.valence < -0.3, (r, ev.valence)
        else:
            assert abs(ev.valence) < 0.25, (r, ev.valence)


# --- the trained text head (the default when shipped) -------------------------------------------------------------

needs_head = pytest.mark.skipif(not (DEFAULT_HEAD_DIR / "head.json").is_file(), reason="no shipped text head")


@pytest.fixture(scope="module")
def with_head() -> TextAnalyzer:
    return TextAnalyzer()


@needs_head
@pytest.mark.parametrize("lang,text", POSITIVE + NEGATIVE)
def test_head_reads_polarity_and_cites_its_own_words(with_head, lang, text):
    assert with_head.head is not None
    ev = with_head.analyze_text(text, lang, duration=4.0)
    positive = (lang, text) in POSITIVE
    assert (ev.valence > 0) == positive, (text, ev.valence, ev.features)
    assert sum(ev.features[f"head_p_{lab}"] for lab in ("SNEG", "WNEG", "NEUT", "WPOS", "SPOS")) == pytest.approx(1, abs=1e-3)
    assert ev.cues and all(c.text in text and c.kind in ("word", "phrase") for c in ev.cues)
    top = max(ev.cues, key=lambda c: abs(c.effect))
    assert (top.effect > 0) == positive  # the strongest word pushes the way the verdict goes
    assert all(0.0 <= c.start <= c.end <= 4.0 for c in ev.cues)


@needs_head
def test_head_cue_times_come_from_word_timestamps(with_head):
    text = "The food was great but the service was awful."
    words = [(0.0 + 0.4 * i, 0.4 + 0.4 * i, w) for i, w in enumerate(text.split())]
    ev = with_head.analyze_text(text, "en", words=words, duration=5.0)
    assert ev.cues
    for c in ev.cues:
        assert text.count(c.text) == 1, c.text  # the phrase is a verbatim, unique piece of the transcript
        first = len(text[:text.index(c.text)].split())  # its first word's index
        assert c.start == pytest.approx(0.4 * first, abs=1e-6)
        assert c.end == pytest.approx(0.4 * (first + len(c.text.split())), abs=1e-6)
