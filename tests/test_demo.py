"""Demo logic without a browser: follow-up answers (en/zh) and upload validation (readable errors, no tracebacks).

The explanations are produced by the real explain() with the real lite scorer from hand-written evidence, so every
number an answer quotes can be checked against the explanation dict.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests import media_makers as synthetic
from omni_mer.demo.chat import ChatContext, ModelAnswerer, answer, detect_intent, facts, make_answerer
from omni_mer.core.clip import Clip
from omni_mer.core.config import MODALITIES
from omni_mer.core.i18n import MODALITY_NAMES
from omni_mer.demo.app import DemoApp, UploadError, _get_args, error_message, label_key, prob_bars
from omni_mer.evidence.types import Cue, Evidence, ModalityEvidence, Segment
from omni_mer.explain import explain
from omni_mer.core.labels import LABEL_NAMES, LABELS
from omni_mer.pipeline import Pipeline
from omni_mer.scorers.lite import LiteScorer

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples" / "en_happy_review.mp4"

CUES = {
    "en": {"transcript": "I really love this phone, the screen is wonderful.",
           "text": [("love", 0.7), ("wonderful", 0.6)],
           "audio": [("pitch drops", -0.5), ("quiet voice", -0.3)],
           "visual": [("smile (p=0.81)", 0.8)]},
    "zh": {"transcript": "我真的很喜欢这个手机，屏幕太好了。",
           "text": [("喜欢", 0.7), ("太好了", 0.6)],
           "audio": [("音调下降", -0.5), ("声音很轻", -0.3)],
           "visual": [("微笑（p=0.81）", 0.8)]},
}


def make_ctx(lang: str = "en", valence: dict | None = None) -> ChatContext:
    """A real explanation (lite scorer + explain()) of hand-written evidence."""
    valence = valence or {"text": 0.7, "audio": -0.6, "visual": 0.6}
    c = CUES[lang]
    mods = {}
    for m in MODALITIES:
        if valence.get(m) is None:
            mods[m] = ModalityEvidence.absent(m, "no face detected" if m == "visual" else "silence")
            continue
        cues = [Cue(m, 1.0 * i, 1.0 * i + 0.8, txt, eff * 2, eff, m) for i, (txt, eff) in enumerate(c[m])]
        mods[m] = ModalityEvidence(m, True, float(valence[m]), 0.9, cues=cues)
    ev = Evidence(lang, c["transcript"], [Segment(0.0, 3.0, c["transcript"])], mods["text"], mods["audio"],
                  mods["visual"])
    clip = Clip(path=Path("x.mp4"), id="x", frames=np.zeros((0, 8, 8, 3), np.uint8), frame_times=np.zeros(0),
                fps=2.0, audio=np.zeros(16000, np.float32), duration=3.0, has_video=True, has_audio=True,
                language=lang)
    e = explain(clip, ev, LiteScorer()).to_dict()
    return ChatContext(e, ev.transcript, ev.to_dict())


# ------------------------------------------------------------------------------------------------ intents

@pytest.mark.parametrize("q,intent", [
    ("why not positive?", "why_not"), ("Why isn't it negative?", "why_not"), ("why not SPOS", "why_not"),
    ("what did the voice do?", "audio"), ("How was it said?", "audio"), ("what did the face show?", "visual"),
    ("what was said?", "text"), ("which modality mattered most?", "most"), ("how sure are you?", "confidence"),
    ("why?", "why"), ("tell me a joke", "unknown"), ("", "empty"),
    ("为什么不是积极？", "why_not"), ("语音表现如何？", "audio"), ("面部表情如何？", "visual"),
    ("说了什么？", "text"), ("哪个模态最重要？", "most"), ("有多确定？", "confidence"), ("为什么？", "why"),
])
def test_detect_intent(q, intent):
    assert detect_intent(q).name == intent


def test_why_not_targets():
    assert detect_intent("why not strongly positive?").target == frozenset({"SPOS"})
    assert detect_intent("why not positive?").target == frozenset({"WPOS", "SPOS"})
    assert detect_intent("为什么不是消极？").target == frozenset({"SNEG", "WNEG"})
    assert detect_intent("why not neutral").target == frozenset({"NEUT"})


# ------------------------------------------------------------------------------------------------ answers

def test_why_not_answer_uses_probabilities_shapley_and_cues():
    ctx = make_ctx("en")
    e = ctx.explanation
    label = e["label"]
    # Ask about the opposite pole of whatever was predicted.
    target, q = ({"SNEG", "WNEG"}, "why not negative?") if label in ("WPOS", "SPOS", "NEUT") else \
        ({"WPOS", "SPOS"}, "why not positive?")
    a = answer(q, ctx, "en")
    p_t = sum(e["probs"][lab] for lab in target)
    assert f"p = {p_t:.2f}" in a
    assert f"p = {e['probs'][label]:.2f}" in a
    # Modalities pulling away from the target are named with their expected-valence Shapley value.
    direction = -1 if "SNEG" in target else 1
    for m, v in e["shapley_valence"].items():
        if v * direction < -1e-6:
            assert f"{v:+.2f}" in a
    assert "“" in a  # at least one cue quoted


def test_why_not_own_label_says_so():
    ctx = make_ctx("en")
    label = ctx.explanation["label"]
    name = LABEL_NAMES["en"][label]
    a = answer(f"why not {name}?", ctx, "en")
    assert a.startswith("It is") and label in a


def test_voice_face_text_answers_quote_their_cues():
    ctx = make_ctx("en")
    e = ctx.explanation
    voice = answer("what did the voice do?", ctx, "en")
    assert "“pitch drops”" in voice and f"{e['shapley']['audio']:+.3f}" in voice
    assert "label would" in voice  # counterfactual sentence
    face = answer("what did the face show?", ctx, "en")
    assert "“smile (p=0.81)”" in face
    said = answer("what was said?", ctx, "en")
    assert ctx.transcript in said and "“love”" in said


def test_most_answer_ranks_by_shapley():
    ctx = make_ctx("en")
    sh = ctx.explanation["shapley"]
    top = max(sh, key=sh.get)
    a = answer("which modality mattered most?", ctx, "en")
    name = MODALITY_NAMES["en"][top]  # the one set of display names (omni_mer.core.i18n)
    assert a.startswith(f"The **{name}** mattered most")
    for m, v in sh.items():
        assert f"{v:+.3f}" in a


def test_chinese_answers_are_chinese():
    ctx = make_ctx("zh")
    for q in ("为什么不是消极？", "语音表现如何？", "面部表情如何？", "说了什么？", "哪个模态最重要？", "有多确定？"):
        a = answer(q, ctx, "zh")
        assert any("\u4e00" <= ch <= "\u9fff" for ch in a), (q, a)
    assert "「音调下降」" in answer("语音表现如何？", ctx, "zh")
    # English UI on a Chinese clip still answers in English, quoting the cues verbatim.
    assert "“音调下降”" in answer("what did the voice do?", ctx, "en")


def test_absent_modality_is_stated():
    ctx = make_ctx("en", {"text": 0.7, "audio": -0.2, "visual": None})
    a = answer("what did the face show?", ctx, "en")
    assert "No face was visible" in a and "no face detected" in a
    assert "Absent: face" in answer("which modality mattered most?", ctx, "en")


def test_confidence_and_why_and_help():
    ctx = make_ctx("en")
    e = ctx.explanation
    conf = answer("how sure are you?", ctx, "en")
    assert f"p({e['label']}) = {e['probs'][e['label']]:.2f}" in conf
    why = answer("why?", ctx, "en")
    assert "<think>" not in why and "mattered most" in why
    assert "You can ask" in answer("what's the weather?", ctx, "en")
    assert "Upload a video" in answer("why?", None, "en")


def test_facts_for_model_and_answerer_choice():
    ctx = make_ctx("en")
    f = facts(ctx)
    assert f"Predicted label: {ctx.label}" in f and "Transcript:" in f
    assert make_answerer(LiteScorer()).name == "evidence"

    class _NoModel:  # an omni-named scorer without a model object falls back to evidence answers
        name = "omni"
    assert make_answerer(_NoModel()).name == "evidence"


def test_model_answerer_falls_back_to_evidence_when_generation_fails():
    ctx = make_ctx("en")

    class _Broken:
        name = "omni"
        model = None  # generate cannot run: AttributeError inside _generate
        processor = None
    a = ModelAnswerer(_Broken()).answer("what did the voice do?", ctx, "en")
    assert a == answer("what did the voice do?", ctx, "en")


# ------------------------------------------------------------------------------------------------ uploads

@pytest.fixture(scope="module")
def app(tmp_path_factory):
    # The real pipeline object (models load lazily, so refused uploads never load any).
    return DemoApp(Pipeline.build("lite"), max_upload_mb=200, max_duration_s=120,
                   work_dir=tmp_path_factory.mktemp("demo"))


def _readable(msg: str, path: Path | None = None) -> None:
    assert msg and "Traceback" not in msg and 'File "' not in msg
    if path is not None:
        assert str(path.parent) not in msg  # server paths never reach the browser


def test_too_large_upload(app, tmp_path):
    small = DemoApp(app.pipeline, max_upload_mb=0.1, work_dir=tmp_path)
    res = small.analyze(SAMPLE, "en")
    assert res.state is None and res.chart is None
    assert "the limit is 0 MB" in res.error or "limit is 0" in res.error
    assert "0.3 MB" in res.error
    _readable(res.messages[0]["content"], SAMPLE)
    assert "上限" in small.analyze(SAMPLE, "zh").error


def test_too_long_upload(app, tmp_path):
    short = DemoApp(app.pipeline, max_duration_s=1, work_dir=tmp_path)
    res = short.analyze(SAMPLE, "en")
    assert res.error.startswith("This video is") and "the limit is 1 s" in res.error
    assert "秒" in short.analyze(SAMPLE, "zh").error


@pytest.mark.parametrize("maker,expect", [
    (lambda p: synthetic.write_text_as_video(p / "notes.mp4"), "not a media file"),
    (lambda p: synthetic.write_empty(p / "empty.mp4"), "file is empty"),
    (lambda p: synthetic.write_garbage(p / "garbage.mp4"), "could not be read"),
    (lambda p: synthetic.write_subtitle_only(p / "subs.mkv"), "no decodable audio or video stream"),
    (lambda p: synthetic.write_truncated(SAMPLE, p / "cut.mp4", 0.02), "could not be read"),
    (lambda p: (p / "report.pdf").write_bytes(b"%PDF-1.4") and p / "report.pdf", "not a supported"),
])
def test_bad_files_get_readable_messages(app, tmp_path, maker, expect):
    path = maker(tmp_path)
    res = app.analyze(path, "en")
    assert res.state is None and res.error
    assert expect in res.error, res.error
    assert res.messages[0]["role"] == "assistant" and res.messages[0]["content"].startswith("⚠")
    _readable(res.error, Path(path))
    zh = app.analyze(path, "zh").error
    assert any("\u4e00" <= ch <= "\u9fff" for ch in zh)


def test_missing_and_no_file(app, tmp_path):
    assert app.analyze(None, "en").error == "Please upload a video first."
    assert "does not exist" in app.analyze(tmp_path / "gone.mp4", "en").error


def test_unexpected_failure_is_hidden(app, tmp_path, monkeypatch):
    # Fault injection: a crash deep inside the pipeline must reach the user as one sentence, not a traceback.
    def boom(*a, **k):
        raise RuntimeError("secret internal state at /srv/x.py line 3")
    monkeypatch.setattr(app.pipeline, "analyze", boom)
    res = app.analyze(SAMPLE, "en")
    assert "RuntimeError" in res.error and "secret" not in res.error and "server log" in res.error


def test_error_message_types():
    assert "limit is 5 MB" in error_message(UploadError("too_large", size=9.0, limit=5), "en")
    assert "5 MB" in error_message(UploadError("too_large", size=9.0, limit=5), "zh")
    assert "KeyError" in error_message(KeyError("x"), "en")


def test_summary_and_helpers():
    ctx = make_ctx("en")
    e = ctx.explanation
    s = DemoApp.summary(e, "en", 1.5)
    assert e["label"] in s and LABEL_NAMES["zh"][e["label"]] in s and "<think>" not in s
    bars = prob_bars(e["probs"], e["label"])
    assert all(lab in bars for lab in LABELS) and "◀" in bars
    assert label_key("SPOS") == "SPOS · strongly positive · 强烈积极"


def test_args_defaults_and_validation():
    args = _get_args([])
    assert args.host == "127.0.0.1" and args.backend == "auto" and args.max_upload_mb == 200
    assert args.max_duration_s == 120
    with pytest.raises(SystemExit):
        _get_args(["--max-upload-mb", "0"])
    with pytest.raises(SystemExit):
        _get_args(["--backend", "gpt"])


def test_ask_without_clip_and_with_clip(app):
    assert "Upload a video" in app.ask("why not positive?", None, "en")
    ctx = make_ctx("en")
    state = {"explanation": ctx.explanation, "transcript": ctx.transcript, "evidence": ctx.evidence}
    assert app.ask("what was said?", state, "en") == answer("what was said?", ctx, "en")


@pytest.mark.slow
def test_model_answerer_generates_with_tiny_omni(tmp_path):
    """Omni backend: the question + explanation facts go through the model's generate (tiny random model)."""
    pytest.importorskip("transformers")
    from omni_mer.omni.tiny import build_tiny_model
    from omni_mer.scorers.omni import OmniScorer

    scorer = OmniScorer(str(build_tiny_model(tmp_path / "tiny", seed=0)), max_new_tokens=6)
    answerer = make_answerer(scorer)
    assert isinstance(answerer, ModelAnswerer)
    ctx = make_ctx("en")
    reply = answerer.answer("what did the voice do?", ctx, "en")
    assert answerer.last_new_tokens > 0  # the model really generated
    grounded = answer("what did the voice do?", ctx, "en")
    assert reply.endswith(grounded)  # the evidence answer is always shown
