"""Omni scorer on a tiny random Qwen2.5-Omni thinker (CPU): loading, inputs per coalition, label scoring,
generation with fallback, LoRA adapters, and the silently-dropped-modality checks of docs/training.md ("Qwen2.5-Omni facts")."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from omni_mer.core.clip import Clip  # noqa: E402
from omni_mer.core.config import MODALITIES, MediaConfig  # noqa: E402
from omni_mer.core.errors import ConfigError, ModelNotFoundError  # noqa: E402
from omni_mer.evidence.types import Evidence, ModalityEvidence  # noqa: E402
from omni_mer.core.answer import parse_answer  # noqa: E402
from omni_mer.core.labels import LABELS  # noqa: E402
from omni_mer.omni.inputs import build_inputs, suppress_token_ids  # noqa: E402
from omni_mer.omni.model import load_thinker  # noqa: E402
from omni_mer.omni.tiny import build_tiny_model  # noqa: E402
from omni_mer.omni.prompts import build_messages  # noqa: E402
from omni_mer.scorers.omni import OmniScorer  # noqa: E402

ALL = frozenset(MODALITIES)
COALITIONS = [frozenset(c) for c in ([], ["text"], ["audio"], ["visual"], ["text", "audio"], ["text", "visual"],
                                     ["audio", "visual"], ["text", "audio", "visual"])]


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny_omni") / "model", seed=0)


@pytest.fixture(scope="session")
def scorer(tiny_dir) -> OmniScorer:
    return OmniScorer(str(tiny_dir), max_new_tokens=12)


def make_clip(seed=0, fps=2.0, seconds=2.0, h=112, w=168, video=True, audio=True, clip_id="c") -> Clip:
    rng = np.random.default_rng(seed)
    n = int(round(seconds * fps)) if video else 0
    frames = rng.integers(0, 255, (n, h, w, 3), dtype=np.uint8) if video else np.zeros((0, h, w, 3), np.uint8)
    t = np.arange(int(16000 * seconds)) / 16000
    wave = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    return Clip(path=Path(f"{clip_id}.mp4"), id=clip_id, frames=frames, frame_times=np.arange(n) / fps, fps=fps,
                audio=wave if audio else np.zeros(0, np.float32), duration=seconds, has_video=video,
                has_audio=audio, language="en")


def make_evidence(transcript="I really love this phone", language="en") -> Evidence:
    return Evidence(language=language, transcript=transcript, segments=[],
                    text=ModalityEvidence("text", True), audio=ModalityEvidence("audio", True),
                    visual=ModalityEvidence("visual", True))


def _inputs(scorer, clip, keep, ev=None, media=MediaConfig()):
    ev = ev or make_evidence()
    msgs = build_messages("en", ev.transcript, keep, clip.has_video, clip.has_audio,
                          use_audio_in_video=media.use_audio_in_video)
    return build_inputs(scorer.processor, [clip], [msgs], media, keep)


# ---------------------------------------------------------------- loading
def test_tiny_folder_loads_like_a_real_model(tiny_dir, scorer):
    from transformers import Qwen2_5OmniThinkerForConditionalGeneration

    model, processor = scorer.model, scorer.processor
    assert isinstance(model, Qwen2_5OmniThinkerForConditionalGeneration)
    assert next(model.parameters()).dtype == torch.float32  # fp32 on CPU
    tok = processor.tokenizer
    cfg = model.config
    # the token ids the model reads must be the tokenizer's (a wrong audio id silently drops audio)
    assert cfg.audio_token_id == tok.convert_tokens_to_ids("<|AUDIO|>") == tok.audio_token_id
    assert cfg.video_token_id == tok.convert_tokens_to_ids("<|VIDEO|>")
    assert cfg.image_token_id == tok.convert_tokens_to_ids("<|IMAGE|>")
    assert cfg.audio_start_token_id == tok.convert_tokens_to_ids("<|audio_bos|>")
    assert cfg.audio_end_token_id == tok.convert_tokens_to_ids("<|audio_eos|>")
    assert cfg.vision_start_token_id == tok.convert_tokens_to_ids("<|vision_bos|>")
    assert cfg.text_config.hidden_size == cfg.audio_config.output_dim == cfg.vision_config.out_hidden_size
    assert len(tok) >= 151643 and tok.padding_side == "left"
    assert sorted(suppress_token_ids(processor)) == sorted(
        [cfg.audio_token_id, cfg.video_token_id, cfg.image_token_id, cfg.audio_start_token_id,
         cfg.audio_end_token_id, cfg.vision_start_token_id, cfg.vision_end_token_id,
         tok.convert_tokens_to_ids("<|vision_pad|>")])


def test_missing_model_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("OMNI_MER_MODEL", raising=False)
    monkeypatch.delenv("OMNI_MER_CONFIG", raising=False)
    with pytest.raises(ModelNotFoundError, match="--model DIR.*tiny-model"):
        load_thinker(None)
    with pytest.raises(ModelNotFoundError, match="not a model folder"):
        load_thinker(str(tmp_path / "nope"))


def test_model_path_from_environment(tiny_dir, monkeypatch):
    from omni_mer.omni.model import resolve_model_path

    monkeypatch.setenv("OMNI_MER_MODEL", str(tiny_dir))
    assert resolve_model_path(None) == tiny_dir


def test_4bit_needs_a_gpu(tiny_dir):
    with pytest.raises(ConfigError, match="GPU"):
        load_thinker(str(tiny_dir), device="cpu", load_in_4bit=True)


# ---------------------------------------------------------------- inputs
def _count(ids, token_id):
    return int((ids == token_id).sum())


@pytest.mark.parametrize("keep", COALITIONS, ids=lambda k: "+".join(sorted(k)) or "none")
def test_inputs_follow_keep(scorer, keep):
    cfg = scorer.model.config
    clip = make_clip()
    inp = _inputs(scorer, clip, keep)
    ids = inp["input_ids"][0]
    has_audio, has_video = "audio" in keep, "visual" in keep
    assert ("input_features" in inp) == has_audio
    assert ("pixel_values_videos" in inp) == has_video
    assert (_count(ids, cfg.audio_token_id) > 0) == has_audio
    assert (_count(ids, cfg.video_token_id) > 0) == has_video
    assert inp["use_audio_in_video"] == (has_audio and has_video)  # MediaConfig default: on
    text = scorer.processor.tokenizer.decode(ids)
    assert ("I really love this phone" in text) == ("text" in keep)
    if has_video:
        # frames are not upscaled: 112x168 stays 112x168 (grid of 14-px patches), 4 frames -> 2 temporal grids
        assert inp["video_grid_thw"].tolist() == [[2, 112 // 14, 168 // 14]]


def test_use_audio_in_video_off_gives_separate_audio(scorer):
    media = MediaConfig(use_audio_in_video=False)
    inp = _inputs(scorer, make_clip(), ALL, media=media)
    assert inp["use_audio_in_video"] is False
    assert "input_features" in inp and "pixel_values_videos" in inp
    cfg = scorer.model.config
    assert _count(inp["input_ids"][0], cfg.audio_start_token_id) == 1


def test_batch_keeps_each_clip_fps_and_left_pads(scorer):
    a, b = make_clip(seed=1, fps=2.0, seconds=2.0), make_clip(seed=2, fps=1.0, seconds=4.0, h=84, w=84)
    keep = frozenset({"visual"})
    msgs = [build_messages("en", t, keep, True, True) for t in ("short", "a much longer transcript " * 3)]
    inp = build_inputs(scorer.processor, [a, b], msgs, MediaConfig(), keep)
    # temporal_patch_size / fps of each clip, not one fps for the batch (TMRoPE time axis)
    assert inp["video_second_per_grid"].tolist() == pytest.approx([2 / 2.0, 2 / 1.0])
    pad = scorer.processor.tokenizer.pad_token_id
    mask = inp["attention_mask"]
    assert mask[:, -1].tolist() == [1, 1]  # left padding: every row ends with real tokens
    short = int(mask.sum(1).argmin())
    assert mask[short, 0] == 0 and inp["input_ids"][short, 0] == pad


def test_mixed_use_audio_in_video_batch_is_refused(scorer):
    keep = ALL
    clips = [make_clip(), make_clip(audio=False)]
    msgs = [build_messages("en", "x", keep, True, c.has_audio) for c in clips]
    with pytest.raises(ValueError, match="use_audio_in_video"):
        build_inputs(scorer.processor, clips, msgs, MediaConfig(), keep)


# ---------------------------------------------------------------- label scoring
@pytest.mark.parametrize("keep", COALITIONS, ids=lambda k: "+".join(sorted(k)) or "none")
def test_label_scoring_is_a_distribution(scorer, keep):
    p = scorer.score(make_clip(), make_evidence(), keep)
    assert p.shape == (len(LABELS),) and p.dtype == np.float64
    assert np.all(p >= 0) and p.sum() == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("keep", [frozenset({"audio"}), ALL], ids=["audio", "all"])
def test_perturbing_audio_changes_logits(scorer, keep):
    clip, ev = make_clip(seed=0), make_evidence()
    other = make_clip(seed=0)
    other.audio = np.random.default_rng(9).uniform(-0.9, 0.9, other.audio.size).astype(np.float32)
    base = scorer.label_logprobs(clip, ev, keep)
    assert np.abs(scorer.label_logprobs(other, ev, keep) - base).max() > 1e-5


@pytest.mark.parametrize("keep", [frozenset({"visual"}), ALL], ids=["visual", "all"])
def test_perturbing_frames_changes_logits(scorer, keep):
    clip, ev = make_clip(seed=0), make_evidence()
    other = make_clip(seed=0)
    other.frames = 255 - other.frames
    base = scorer.label_logprobs(clip, ev, keep)
    assert np.abs(scorer.label_logprobs(other, ev, keep) - base).max() > 1e-5


def test_modalities_left_out_do_not_matter(scorer):
    clip, ev = make_clip(seed=0), make_evidence()
    other = make_clip(seed=0)
    other.audio = -other.audio[::-1].copy()
    other.frames = 255 - other.frames
    keep = frozenset({"text"})
    np.testing.assert_allclose(scorer.label_logprobs(clip, ev, keep), scorer.label_logprobs(other, ev, keep),
                               rtol=0, atol=1e-6)
    # and the transcript only matters when text is kept
    assert np.abs(scorer.label_logprobs(clip, make_evidence("this is awful"), keep)
                  - scorer.label_logprobs(clip, ev, keep)).max() > 1e-5


def test_audio_only_and_silent_video_clips(scorer):
    ev = make_evidence()
    for clip in (make_clip(video=False), make_clip(audio=False), make_clip(video=False, audio=False)):
        assert scorer.score(clip, ev, ALL).sum() == pytest.approx(1.0)


# ---------------------------------------------------------------- generation
def test_generate_parses_or_falls_back(scorer):
    clips = [make_clip(seed=1, seconds=1.0, h=56, w=84, clip_id="a"),
             make_clip(seed=2, fps=1.0, seconds=2.0, h=56, w=56, clip_id="b"),
             make_clip(seed=3, seconds=1.0, video=False, clip_id="c")]
    evs = [make_evidence(), make_evidence("今天很开心", "zh"), make_evidence()]
    results = scorer.generate_batch(clips, evs)
    assert len(results) == 3 and scorer.last_generation_valid == [r.valid for r in results]
    for r in results:
        assert isinstance(r.text, str)
        assert r.valid == (parse_answer(r.text) is not None)
        assert r.label in LABELS
        if not r.valid:
            assert r.fallback and r.probs is not None and r.probs.sum() == pytest.approx(1.0)
            assert r.label == LABELS[int(np.argmax(r.probs))]
    # a random model writes garbage: the fallback path must have been taken
    assert not all(scorer.last_generation_valid)
    assert isinstance(scorer.generate(clips[2], evs[2]), str)


# ---------------------------------------------------------------- LoRA adapter
def test_lora_adapter_loads_and_changes_logits(tiny_dir, scorer, tmp_path):
    from peft import LoraConfig, get_peft_model

    model, _ = load_thinker(str(tiny_dir))
    cfg = LoraConfig(r=4, lora_alpha=16, init_lora_weights=False,  # random non-zero B: the adapter does something
                     target_modules=r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)")
    torch.manual_seed(0)
    peft_model = get_peft_model(model, cfg)
    peft_model.save_pretrained(str(tmp_path / "adapter"))
    with_adapter = OmniScorer(str(tiny_dir), adapter=str(tmp_path / "adapter"))
    assert "adapter" in with_adapter.version()
    clip, ev = make_clip(seconds=1.0, h=56, w=56), make_evidence()
    a = with_adapter.label_logprobs(clip, ev, ALL)
    b = scorer.label_logprobs(clip, ev, ALL)
    assert np.abs(a - b).max() > 1e-4
    with pytest.raises(ModelNotFoundError):
        load_thinker(str(tiny_dir), adapter=str(tmp_path / "missing"))


@pytest.mark.parametrize("keep", [ALL, frozenset({"audio"})], ids=["all", "audio"])
def test_cached_label_scoring_matches_full_teacher_forcing(scorer, keep):
    """The prefill + KV-cache continuation equals one full forward over prompt + answer prefix + label."""
    clip, ev = make_clip(seed=4, seconds=1.0, h=56, w=84), make_evidence("ok")
    fast = scorer.label_logprobs(clip, ev, keep)
    shared, rests = scorer._tails
    slow = []
    for rest in rests:
        inp = _inputs(scorer, clip, keep, ev)
        extra = torch.tensor([shared + rest])
        inp["input_ids"] = torch.cat([inp["input_ids"], extra], dim=1)
        inp["attention_mask"] = torch.cat([inp["attention_mask"], torch.ones_like(extra)], dim=1)
        with torch.inference_mode():  # fresh 3-D positions, no cache; lm_head only on the label positions
            hidden = scorer.model.model(**inp).last_hidden_state[0, -len(rest) - 1:-1]
            logp = torch.log_softmax(scorer.model.lm_head(hidden).float(), dim=-1)
        slow.append(sum(float(logp[j, tok]) for j, tok in enumerate(rest)))
    np.testing.assert_allclose(fast, np.array(slow), rtol=0, atol=2e-4)


SAMPLES = Path(__file__).resolve().parents[1] / "samples"


@pytest.mark.skipif(not (SAMPLES / "en_happy_review.mp4").is_file(), reason="samples/ not present")
def test_real_sample_clips(scorer):
    """Clips decoded by media.decode (the lite path's Clip): odd frame counts, non-integer fps, audio-only file."""
    from omni_mer.media import decode

    for name in ("en_happy_review.mp4", "en_schedule_audio.wav"):
        clip = decode(SAMPLES / name)
        inp = _inputs(scorer, clip, ALL)
        if clip.has_video and len(clip.frames):
            h, w = clip.frames.shape[1:3]
            gh, gw = inp["video_grid_thw"][0, 1:].tolist()
            assert gh * 14 <= h + 14 and gw * 14 <= w + 14  # at most the 28-px grid rounding, never upscaled
            assert inp["video_second_per_grid"][0] == pytest.approx(2 / clip.fps)
        else:
            assert "pixel_values_videos" not in inp and "input_features" in inp
        assert scorer.score(clip, make_evidence(), ALL).sum() == pytest.approx(1.0)


def test_bench_omni_reports_stages(scorer):
    from omni_mer.omni.bench import bench_omni

    result = bench_omni(scorer, [make_clip(seconds=1.0, h=56, w=56)], generate=False)
    assert result["n_clips"] == 1 and result["device"] == "cpu"
    assert 0 < result["inputs_s"] <= result["score_s"] and result["clips_per_s"] > 0
