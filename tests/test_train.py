"""Training on a tiny random Qwen2.5-Omni thinker (CPU) with TRL: recipe parsing (the TrlParser triple of the llm
backend), data + evidence cache, SFT masking, LoRA placement, video+audio inside TRL's GRPO loss / reference /
generation (omni_mer.train.omni_grpo.OmniGRPOTrainer), SFT on TRL's SFTTrainer with resume and adapter loading,
GRPO through the ``omni-mer train`` entry point, and the cross-lingual table. The accelerate-launched recipes are
marked slow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("trl")

from omni_mer.core.clip import Clip  # noqa: E402
from omni_mer.core.config import MODALITIES, MediaConfig  # noqa: E402
from omni_mer.evidence.types import Cue, Evidence, ModalityEvidence  # noqa: E402
from omni_mer.core.answer import parse_answer  # noqa: E402
from omni_mer.omni.inputs import build_inputs  # noqa: E402
from omni_mer.omni.model import load_thinker  # noqa: E402
from omni_mer.omni.tiny import build_tiny_model  # noqa: E402
from omni_mer.train.config import OmniTrainArgs  # noqa: E402
from omni_mer.train.data import (EvidenceCache, ExampleList, load_records, make_example,  # noqa: E402
                                 select_records, sft_target)
from omni_mer.train.rewards import format_reward, grounding_reward, language_reward  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ALL = frozenset(MODALITIES)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny_train") / "model", seed=0)


def make_clip(seed=0, seconds=1.5, h=56, w=84, fps=2.0, clip_id="c", language="en") -> Clip:
    rng = np.random.default_rng(seed)
    n = int(round(seconds * fps))
    t = np.arange(int(16000 * seconds)) / 16000
    wave = (0.3 * np.sin(2 * np.pi * (180 + 40 * seed) * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    return Clip(path=Path(f"{clip_id}.mp4"), id=clip_id, frames=rng.integers(0, 255, (n, h, w, 3), dtype=np.uint8),
                frame_times=np.arange(n) / fps, fps=fps, audio=wave, duration=seconds, has_video=True,
                has_audio=True, language=language)


def make_evidence(language="en", face=True) -> Evidence:
    word, transcript = ("love", "I love this") if language == "en" else ("喜欢", "我很喜欢这个")
    text = ModalityEvidence("text", True, valence=0.8, cues=[Cue("text", 0.0, 0.8, word, 0.9, effect=0.9)])
    audio = ModalityEvidence("audio", True, valence=0.2, cues=[Cue("audio", 0.2, 1.0, "pitch up" if language == "en"
                                                                   else "音调升高", 1.1, effect=0.2)])
    visual = (ModalityEvidence("visual", True, valence=0.5, cues=[Cue("visual", 0.0, 1.5, "smile" if language == "en"
                                                                      else "微笑", 0.7, effect=0.5)])
              if face else ModalityEvidence.absent("visual", "no face"))
    return Evidence(language=language, transcript=transcript, segments=[], text=text, audio=audio, visual=visual)


TINY_OVERRIDES = ["--fps", "2.0", "--max-frames", "4", "--max-side", "112", "--max-audio-seconds", "6.0",
                  "--dtype", "float32", "--lora-dropout", "0.0", "--learning-rate", "5e-2", "--max-steps", "2",
                  "--logging-steps", "1", "--seed", "0", "--report-to", "none", "--save-strategy", "no"]


def make_cfg(tiny_dir, out, stage="grpo", *extra):
    """(OmniTrainArgs, SFTConfig | GRPOConfig, ModelConfig) of the tiny recipe, parsed like `omni-mer train`."""
    from omni_mer.train.run import parse

    grpo = ["--num-generations", "2", "--per-device-train-batch-size", "2", "--max-completion-length", "8"]
    return parse(["--config", str(ROOT / f"recipes/tiny-cpu/{stage}.yaml"), "--model-name-or-path", str(tiny_dir),
                  "--output-dir", str(out), *TINY_OVERRIDES, *(grpo if stage == "grpo" else []), *extra])


def examples(cfg: OmniTrainArgs, n: int = 2) -> ExampleList:
    return ExampleList([
        make_example("en1", make_clip(0, clip_id="en1"), make_evidence("en"), "SPOS", "en", cfg.keep_set, cfg.media),
        make_example("zh1", make_clip(1, clip_id="zh1", language="zh"), make_evidence("zh"), "WNEG", "zh",
                     cfg.keep_set, cfg.media),
    ][:n], media=cfg.media)


def lora_state(model) -> dict:
    return {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}


# ------------------------------------------------------------------------------------------ config
def test_recipe_parsing_overrides_and_validation(tmp_path, capsys):
    from trl import GRPOConfig, ModelConfig, SFTConfig

    from omni_mer.train.run import parse

    script, cfg, model_cfg = parse(["--config", str(ROOT / "recipes/tiny-cpu/grpo.yaml"), "--output_dir",
                                    str(tmp_path), "--beta", "0.0", "--reward_funcs", "format", "accuracy_ordinal",
                                    "--reward_weights", "1", "2"])
    assert isinstance(cfg, GRPOConfig) and isinstance(model_cfg, ModelConfig)  # one recipe style with train-llm
    assert script.stage == "grpo" and cfg.beta == 0.0 and cfg.num_generations == 4  # recipe value kept
    assert script.reward_funcs == ["format", "accuracy_ordinal"] and cfg.reward_weights == [1.0, 2.0]
    assert script.media.max_frames == 4 and model_cfg.lora_r == 8
    sft = parse(["--config", str(ROOT / "recipes/tiny-cpu/sft.yaml")])
    assert sft[0].stage == "sft" and isinstance(sft[1], SFTConfig)
    flag = parse(["--stage", "sft", "--output-dir", str(tmp_path), "--use-cpu", "true", "--bf16", "false"])  # the --stage flag picks the TRL config too
    assert flag[0].stage == "sft" and isinstance(flag[1], SFTConfig)
    with pytest.raises(ValueError, match="'ppo'.*sft, grpo"):  # a bad stage names it and the valid ones
        parse(["--config", str(ROOT / "recipes/tiny-cpu/sft.yaml"), "--stage", "ppo"])
    ppo = tmp_path / "ppo.yaml"
    ppo.write_text("stage: ppo\n")
    with pytest.raises(ValueError, match="sft, grpo"):  # a bad recipe value: ConfigError (a ValueError)
        parse(["--config", str(ppo)])
    kebab = parse([f"--config={ROOT / 'recipes/tiny-cpu/grpo.yaml'}", "--output-dir", str(tmp_path), "--beta", "0.0",
                   "--reward-funcs", "format", "accuracy_ordinal", "--reward-weights", "1", "2"])
    assert kebab[0] == script and kebab[1].to_dict() == cfg.to_dict()  # both spellings, and --config=PATH
    with pytest.raises(ValueError, match="format, accuracy, accuracy_ordinal, grounding, language"):
        parse(["--reward_funcs", "format", "vibes"])
    with pytest.raises(ValueError, match="en, zh"):
        parse(["--train_langs", "fr"])
    with pytest.raises(ValueError, match="at least 2 generations.*provided 1"):  # TRL's own check, one line
        parse(["--config", str(ROOT / "recipes/tiny-cpu/grpo.yaml"), "--num_generations", "1"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("stage: grpo\nuse_cpu: true\nbf16: false\nlearning_rat: 1e-5\n")
    with pytest.raises(ValueError, match="learning_rat"):
        parse(["--config", str(bad)])


@pytest.mark.parametrize("recipe", sorted(str(p.relative_to(ROOT)) for p in (ROOT / "recipes").rglob("*.yaml")
                                          if not {"accelerate", "llm", "text"} & set(p.parts)))
def test_every_recipe_parses(recipe):
    """Every omni training recipe (accelerate configs and recipes/llm/ are parsed by tests/test_llm_train.py,
    recipes/text/ by tests/test_text_head.py);
    GPU recipes are parsed with bf16 off, as on this CPU box."""
    from omni_mer.train.config import LLM_LINEAR_REGEX
    from omni_mer.train.run import parse

    script, cfg, model_cfg = parse(["--config", str(ROOT / recipe), "--bf16", "false"])
    assert script.stage in ("sft", "grpo") and model_cfg.use_peft
    assert model_cfg.lora_target_modules == LLM_LINEAR_REGEX  # LoRA on the language model only, in every recipe
    if script.stage == "grpo":
        assert len(cfg.reward_weights) == len(script.reward_funcs)


# ------------------------------------------------------------------------------------------ data
def test_manifest_records_and_splits():
    recs = load_records(ROOT / "samples/meta/manifest.jsonl")
    by_id = {r.id: r for r in recs}
    assert by_id["en_happy_review"].label5 == "SPOS"  # mosei 2.4
    assert by_id["zh_disappointed"].label5 == "SNEG"  # sims -0.8
    assert all(Path(r.path).is_file() for r in recs)  # resolved against the manifest folder
    zh = select_records(recs, "train", ["zh"])
    assert {r.lang for r in zh} == {"zh"} and len(zh) >= 1
    assert select_records(recs, "test", ["en"]) == []


def _counting_extractor(tmp_path):
    """A fake media file, a list of extractor calls, the extractor and a clip for EvidenceCache tests."""
    media_file = tmp_path / "a.mp4"
    media_file.write_bytes(b"fake video bytes")
    calls = []

    def extract(clip):
        calls.append(clip.id)
        return make_evidence("en")

    return media_file, calls, extract, make_clip(clip_id="a")


def test_evidence_cache_runs_extractor_once_per_file(tmp_path):
    media_file, calls, extract, clip = _counting_extractor(tmp_path)
    ev1 = EvidenceCache(tmp_path / "cache", extract).get(clip, "a", media_file)
    ev2 = EvidenceCache(tmp_path / "cache", extract).get(clip, "a", media_file)  # "second epoch": from disk
    assert calls == ["a"] and ev2.to_dict() == ev1.to_dict()
    media_file.write_bytes(b"another file")  # content changed -> recomputed
    EvidenceCache(tmp_path / "cache", extract).get(clip, "a", media_file)
    assert calls == ["a", "a"]


def test_training_reads_the_one_media_config():
    """Issue 18: OmniTrainArgs' media defaults are MediaConfig's (300 s audio, fast decode), every field included."""
    assert OmniTrainArgs().media == MediaConfig()
    assert set(MediaConfig.__dataclass_fields__) <= set(OmniTrainArgs.__dataclass_fields__)
    assert OmniTrainArgs(max_audio_seconds=6.0, fast_video_decode=False).media == MediaConfig(
        max_audio_seconds=6.0, fast_video_decode=False)


@pytest.mark.parametrize("lang,label", [("en", "SPOS"), ("zh", "WNEG")])
def test_sft_target_is_grounded_rationale_with_gold_label(lang, label):
    ev = make_evidence(lang)
    target = sft_target(ev, label, lang)
    assert parse_answer(target) == label
    assert format_reward([target]) == [1.0]
    assert language_reward([target], language=[lang])[0] > 0.6
    assert ("love" if lang == "en" else "喜欢") in target  # cites the evidence
    # issue 18: it cites only what the omni prompt shows (no cue list there), so its grounding is satisfiable
    assert grounding_reward([target], evidence=[ev], cues_shown=[False])[0] == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------ model pieces
def _trainer(tiny_dir, out, stage="grpo", *extra, n=2):
    from omni_mer.train.run import make_trainer

    script, cfg, model_cfg = make_cfg(tiny_dir, out, stage, *extra)
    return make_trainer(script, cfg, model_cfg, examples(script, n)), script


def test_lora_only_on_language_model_and_sft_masks_prompt(tiny_dir, tmp_path):
    from omni_mer.train.sft import END_OF_TURN, OmniSFTCollator

    trainer, script = _trainer(tiny_dir, tmp_path, "sft")
    model, processor = trainer.model, trainer.processing_class
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n and "language_model" in n for n in trainable)
    assert not any("audio_tower" in n or "visual" in n for n in trainable)
    assert any("mlp.down_proj" in n for n in trainable) and any("self_attn.q_proj" in n for n in trainable)

    ex = trainer.train_dataset[0]
    batch = OmniSFTCollator(processor, examples(script))([ex])  # what TRL's SFTTrainer feeds the model
    assert "pixel_values_videos" in batch and "input_features" in batch and batch["use_audio_in_video"] is True
    labels = batch["labels"][0]
    keep = labels != -100
    assert keep.sum() > 5 and not keep[: int(keep.float().argmax())].any()  # one contiguous tail
    target = examples(script)[0].target
    assert processor.tokenizer.decode(labels[keep]) == target + END_OF_TURN
    out = model(**batch, fused_lm_head=True)  # TRL's SFT forward: every target token scored (first shifted in)
    assert torch.isfinite(out.loss) and int(out.label_mask.sum()) == int(keep.sum())


def test_omni_label_only_share_trains_the_ids_label_scoring_reads(tiny_dir, tmp_path):
    """A label-only clip's SFT labels are exactly the scorer's teacher-forced <think></think><answer>LABEL ids (then
    </answer> and the end of turn); the share is drawn by train.label_only and checked at parse time."""
    from omni_mer.core.answer import SCORE_THINK
    from omni_mer.core.labels import LABELS
    from omni_mer.scorers.base import label_tails
    from omni_mer.train.run import build_data, parse
    from omni_mer.train.sft import sft_batch

    script, _, _ = make_cfg(tiny_dir, tmp_path, "sft")
    assert script.label_only_share == pytest.approx(0.33)  # the recipe's, as the llm recipes
    ex = examples(script, 1)[0]
    short = make_example(ex.id, ex.clip, ex.evidence, ex.label, ex.language, ex.keep, script.media, label_only=True)
    assert short.target == f"<think>{SCORE_THINK}</think><answer>{ex.label}</answer>" and ex.target != short.target
    data = build_data(script, str(tmp_path))  # the recipe's manifest (samples/), transcript evidence
    assert len(data.label_only) == round(0.33 * len(data)) and data.label_only < set(range(len(data)))
    i = min(data.label_only)
    assert data[i].label_only and data[i].target.startswith(f"<think>{SCORE_THINK}</think><answer>")
    from omni_mer.train.label_only import label_only_rows

    assert build_data(script, str(tmp_path), seed=7).label_only == label_only_rows(len(data), 0.33, 7)  # the trainer's seed
    from omni_mer.train.cards import card_text

    card = card_text(script, *make_cfg(tiny_dir, tmp_path, "sft")[1:], {}, data.summary())
    assert f"; {len(data.label_only)} with the label-only SFT target" in card and "| label_only_share | 0.33 |" in card
    trainer, _ = _trainer(tiny_dir, tmp_path, "sft")
    tokenizer = trainer.processing_class.tokenizer
    batch = sft_batch(trainer.processing_class, [short], script.media)
    ids = batch["input_ids"][0][batch["labels"][0] != -100].tolist()
    shared, rests = label_tails(tokenizer, SCORE_THINK)
    want = shared + rests[LABELS.index(ex.label)]
    assert ids[: len(want)] == want, (tokenizer.decode(ids), tokenizer.decode(want))
    with pytest.raises(ValueError, match="label_only_share=0.5 is not valid"):
        parse(["--config", str(ROOT / "recipes/tiny-cpu/sft.yaml"), "--label-only-share", "0.5"])
    with pytest.raises(ValueError, match="applies to stage sft only"):
        parse(["--config", str(ROOT / "recipes/tiny-cpu/grpo.yaml"), "--label-only-share", "0.2"])


def _rollout(trainer, advantages=(1.0, -1.0)):
    """One real TRL rollout of the first example (its prompt row twice = G=2): generation, reference log-probs."""
    row = dict(trainer.train_dataset[0])
    torch.manual_seed(0)
    out = trainer._generate_and_score_completions([dict(row), dict(row)])
    out["advantages"] = torch.tensor(advantages)
    return out


def _independent_logps(trainer, batch, completion_ids, completion_mask):
    """Completion log-probs from a plain forward of a build_inputs batch (not the trainer's code path)."""
    ids = torch.cat([batch["input_ids"], completion_ids], 1)
    mask = torch.cat([batch["attention_mask"], completion_mask], 1)
    feed = {k: v for k, v in batch.items() if k not in ("input_ids", "attention_mask")}
    logits = trainer.model(input_ids=ids, attention_mask=mask, **feed).logits[:, batch["input_ids"].shape[1] - 1:-1]
    return torch.log_softmax(logits.float(), -1).gather(-1, completion_ids.unsqueeze(-1)).squeeze(-1)


def test_train_hands_the_trainers_seed_to_build_data(tiny_dir, tmp_path, monkeypatch):
    """`omni-mer train` hands the recipe's seed to build_data, which draws the label-only SFT clips with it (a spy
    stops it there, before any model loads; added after 0e2d034 made it so)."""
    from omni_mer.train import run

    class Stop(Exception):
        pass

    seeds = []

    def spy(script, output_dir, extract_fn=None, seed=0):
        seeds.append(seed)
        raise Stop

    monkeypatch.setattr(run, "build_data", spy)
    for seed in ("7", "0"):
        with pytest.raises(Stop):
            run.train(*make_cfg(tiny_dir, tmp_path, "sft", "--seed", seed), use_default_extractor=False)
    assert seeds == [7, 0]


def test_video_and_audio_reach_the_grpo_loss_and_reference(tiny_dir, tmp_path):
    """Fails if OmniGRPOTrainer (TRL's GRPOTrainer) stops passing pixel_values_videos or input_features (or their
    companions, use_audio_in_video) into the policy forward of the loss or into the reference forward."""
    from dataclasses import replace

    from trl.trainer.utils import use_adapter

    trainer, script = _trainer(tiny_dir, tmp_path, "grpo", "--beta", "0.04", n=1)
    trainer.current_gradient_accumulation_steps = 1  # set by TRL's training loop, which this test steps by hand
    model = trainer.model
    model.train()
    out = _rollout(trainer)
    rows = out["omni_media"]
    assert len(rows) == 2 and rows[0].use_audio_in_video is True
    assert rows[0].features["pixel_values_videos"].shape[0] > 0 and rows[0].features["input_features"].shape[0] == 1
    ids = torch.cat([out["prompt_ids"], out["completion_ids"]], 1)
    mask = torch.cat([out["prompt_mask"], out["completion_mask"]], 1)
    k = out["completion_ids"].shape[1]
    cmask = out["completion_mask"].bool()

    # the reference TRL computed inside the rollout equals a plain forward WITH the clip's video + audio (adapter off)
    ex = examples(script, 1)[0]
    full = build_inputs(trainer.processing_class, [ex.clip] * 2, [ex.messages] * 2, script.media, script.keep_set)
    with torch.no_grad(), use_adapter(model, adapter_name=None):
        indep = _independent_logps(trainer, dict(full), out["completion_ids"], out["completion_mask"])
        for name, key in (("video", "pixel_values_videos"), ("audio", "input_features")):
            noisy = dict(full, **{key: full[key] + torch.randn_like(full[key])})
            other = _independent_logps(trainer, noisy, out["completion_ids"], out["completion_mask"])
            assert (out["ref_per_token_logps"] - other)[cmask].abs().max() > 1e-4, f"reference ignores the {name}"
    assert (out["ref_per_token_logps"] - indep)[cmask].abs().max() < 1e-4

    def logps(media_rows, ref=False):
        with torch.no_grad(), trainer._bind(media_rows), use_adapter(model, adapter_name=None if ref else "default"):
            return trainer._get_per_token_logps_and_entropies(model, ids, mask, k)[0]

    # LoRA B starts at zero: policy == reference exactly, so KL must be 0 -- unless one of the two forwards
    # got different (e.g. missing) video/audio features.
    trainer._compute_loss(model, out)
    assert trainer._metrics["train"]["kl"][-1] == pytest.approx(0.0, abs=1e-7)
    assert (logps(rows, ref=True) - logps(rows))[cmask].abs().max() < 1e-5

    torch.manual_seed(0)
    for n, p in model.named_parameters():
        if "lora_B" in n:
            p.data.normal_(0, 0.5)

    def run(media_rows):
        model.zero_grad()
        loss = trainer._compute_loss(model, dict(out, omni_media=media_rows))
        loss.backward()
        grads = torch.cat([p.grad.flatten() for n, p in model.named_parameters() if p.grad is not None])
        return loss.detach(), trainer._metrics["train"]["kl"][-1], logps(media_rows), grads, logps(media_rows, True)

    loss, kl, pol, grads, ref = run(rows)
    assert torch.isfinite(loss) and kl > 0
    for name, key in (("video", "pixel_values_videos"), ("audio", "input_features")):
        f = rows[0].features
        noisy_row = replace(rows[0], features=dict(f, **{key: f[key] + torch.randn_like(f[key])}))
        _, kl2, pol2, grads2, ref2 = run([noisy_row] * 2)
        assert (pol2 - pol)[cmask].abs().max() > 1e-4, f"{name} features do not reach the policy log-probs"
        assert (ref2 - ref)[cmask].abs().max() > 1e-4, f"{name} features do not reach the reference log-probs"
        assert (grads2 - grads).abs().max() > 1e-6, f"{name} features do not reach the loss gradient"
        assert kl2 != pytest.approx(kl, rel=1e-6, abs=0), f"{name} does not reach the policy forward of the loss"


def test_generation_sees_video_and_audio(tiny_dir, tmp_path):
    """TRL's generate (through OmniGRPOTrainer._generate_single_turn) gets the clip's own video and audio features,
    use_audio_in_video and suppress_tokens. (A random tiny model samples near-uniformly, so this spies on what the
    thinker receives instead of comparing sampled tokens.)"""
    import functools

    from omni_mer.omni.inputs import suppress_token_ids
    from omni_mer.omni.model import base_thinker
    from omni_mer.train.omni_grpo import row_media

    trainer, script = _trainer(tiny_dir, tmp_path, "grpo", n=1)
    row = row_media(trainer.processing_class, examples(script, 1)[0], script.media)
    backbone = base_thinker(trainer.accelerator.unwrap_model(trainer.model)).model
    seen: dict = {"video": [], "audio": [], "flags": []}
    video_fn, audio_fn, forward = backbone.get_video_features, backbone.get_audio_features, backbone.forward

    @functools.wraps(video_fn)
    def spy_video(pixel_values_videos, *a, **k):
        seen["video"].append(pixel_values_videos.detach().clone())
        return video_fn(pixel_values_videos, *a, **k)

    @functools.wraps(audio_fn)
    def spy_audio(input_features, *a, **k):
        seen["audio"].append(input_features.detach().clone())
        return audio_fn(input_features, *a, **k)

    @functools.wraps(forward)
    def spy_forward(*a, **k):
        seen["flags"].append(k.get("use_audio_in_video"))
        return forward(*a, **k)

    backbone.get_video_features, backbone.get_audio_features, backbone.forward = spy_video, spy_audio, spy_forward
    try:
        ids, _ = trainer._generate_single_turn([row.prompt_ids] * 2, None, {"omni_media": [row, row]}, 2)
    finally:
        del backbone.get_video_features, backbone.get_audio_features, backbone.forward
    f = row.features
    assert seen["video"] and torch.allclose(seen["video"][0], torch.cat([f["pixel_values_videos"]] * 2)), \
        "generate() did not get the clip's video features"
    assert seen["audio"] and torch.allclose(seen["audio"][0], torch.cat([f["input_features"]] * 2)), \
        "generate() did not get the clip's audio features"
    assert seen["flags"] and all(bool(flag) for flag in seen["flags"]), "use_audio_in_video did not reach generate()"
    suppressed = set(suppress_token_ids(trainer.processing_class))
    assert suppressed <= set(trainer.generation_config.suppress_tokens)
    assert len(ids) == 2 and not suppressed & {t for seq in ids for t in seq}


def test_sft_trainer_trains_saves_loads_and_resumes(tiny_dir, tmp_path):
    from transformers import TrainerCallback

    out = tmp_path / "sft"
    trainer, _ = _trainer(tiny_dir, out, "sft", "--save-strategy", "steps", "--save-steps", "1",
                          "--gradient-accumulation-steps", "1")
    before = lora_state(trainer.model)
    result = trainer.train()
    trainer.save_model(str(out))
    after = lora_state(trainer.model)
    assert np.isfinite(result.metrics["train_loss"]) and trainer.state.global_step == 2
    assert any(not torch.equal(before[k], after[k]) for k in before), "LoRA weights did not change"
    hist = [h for h in trainer.state.log_history if "loss" in h]
    assert [h["step"] for h in hist] == [1, 2] and all(np.isfinite(h["loss"]) for h in hist)
    assert (out / "checkpoint-1" / "trainer_state.json").is_file()

    loaded, _ = load_thinker(str(tiny_dir), adapter=str(out), device="cpu")
    saved = lora_state(loaded)
    trained = {k.replace(".default", ""): v for k, v in after.items()}
    assert saved and all(torch.allclose(v, trained[k.replace(".default", "")]) for k, v in saved.items())

    # resume from the step-1 checkpoint and run to step 3: only steps 2 and 3 run
    class Steps(TrainerCallback):
        ran: list = []

        def on_step_end(self, args, state, control, **kw):
            self.ran.append(state.global_step)

    t2, _ = _trainer(tiny_dir, out, "sft", "--max-steps", "3", "--gradient-accumulation-steps", "1")
    t2.add_callback(Steps())
    t2.train(resume_from_checkpoint=str(out / "checkpoint-1"))
    assert Steps.ran == [2, 3] and t2.state.global_step == 3  # resumed at step 1, not from scratch


def test_grpo_through_the_train_entry_point(tiny_dir, tmp_path):
    """`omni-mer train` (train_grpo.py's code path) runs TRL GRPO on the tiny thinker: LoRA moved, rewards and KL
    logged, the adapter and its card saved and loadable."""
    from omni_mer.cli import run_command

    out = tmp_path / "grpo"
    rc = run_command("train", ["--config", str(ROOT / "recipes/tiny-cpu/grpo.yaml"), "--model-name-or-path",
                               str(tiny_dir), "--output-dir", str(out), "--evidence", "transcript", "--max-steps", "2",
                               "--num-generations", "2", "--per-device-train-batch-size", "2",
                               "--max-completion-length", "8", "--reward-weights", "1", "1", "0.5", "4",
                               "--report-to", "none", "--save-strategy", "no", "--max-train-samples", "2"],
                     prog="train_grpo.py")
    assert rc == 0
    hist = [h for h in json.loads((out / "log_history.json").read_text()) if "loss" in h]
    assert len(hist) == 2
    for key in ("loss", "kl", "reward", "rewards/format/mean", "rewards/accuracy/mean", "rewards/grounding/mean",
                "rewards/language/mean", "completions/mean_length"):
        assert all(key in h and np.isfinite(h[key]) for h in hist), key
    assert any(h["reward_std"] > 0 for h in hist), "no reward variance: nothing to learn from"
    loaded, _ = load_thinker(str(tiny_dir), adapter=str(out), device="cpu")
    lora_b = [p for n, p in loaded.named_parameters() if "lora_B" in n]
    assert lora_b and any(p.abs().max() > 0 for p in lora_b), "LoRA weights did not change (B is still zero)"
    card = (out / "README.md").read_text()
    assert str(tiny_dir) in card and "GRPO" in card and "GRPOTrainer" in card
    recipe = (out / "recipe.yaml").read_text()
    assert "use_audio_in_video: true" in recipe and "num_generations: 2" in recipe


def test_crosslingual_table_from_runs(tiny_dir, tmp_path):
    from omni_mer.train.crosslingual import table_from_results

    def res(en, zh):
        return {"per_language": {"en": {"acc5": en}, "zh": {"acc5": zh}}}

    table = table_from_results({"en": res(0.6, 0.3), "zh": res(0.2, 0.5), "both": res(0.55, 0.45)})
    assert table["retention"]["en"]["zh"] == pytest.approx(0.3 / 0.5)
    assert table["retention"]["zh"]["en"] == pytest.approx(0.2 / 0.6)
    assert table["acc"]["both"]["en"] == pytest.approx(0.55)


# ------------------------------------------------------------------------------------------ slow: real launches
def _launch(stage, tiny_dir, out):
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
           str(ROOT / "recipes/accelerate/cpu.yaml"), str(ROOT / "train_grpo.py"), "--config",
           str(ROOT / f"recipes/tiny-cpu/{stage}.yaml"), "--output_dir", str(out), "--model_name_or_path",
           str(tiny_dir), "--manifest", str(ROOT / "samples/meta/manifest.jsonl")]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["sft", "grpo"])
def test_tiny_recipe_under_accelerate_launch(stage, tiny_dir, tmp_path):
    out = tmp_path / stage
    proc = _launch(stage, tiny_dir, out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    hist = [h for h in json.loads((out / "log_history.json").read_text()) if "loss" in h]
    assert hist and all(np.isfinite(h["loss"]) for h in hist)
    if stage == "grpo":
        assert all("kl" in h and "rewards/format/mean" in h for h in hist)
    model, _ = load_thinker(str(tiny_dir), adapter=str(out), device="cpu")
    assert any("lora_" in n for n, _ in model.named_parameters())


@pytest.mark.slow
def test_crosslingual_command_fills_table(tiny_dir, tmp_path):
    from omni_mer.train.crosslingual import main as xl_main
    from omni_mer.train.run import parse, train

    adapters = {}
    for lang in ("en", "zh"):
        cfg = parse(["--config", str(ROOT / "recipes/tiny-cpu/sft.yaml"), "--output_dir",
                     str(tmp_path / lang), "--model_name_or_path", str(tiny_dir), "--manifest",
                     str(ROOT / "samples/meta/manifest.jsonl"), "--train_langs", lang, "--max_steps", "1",
                     "--evidence", "transcript", "--save_strategy", "no", "--report_to", "none"])
        train(*cfg)
        adapters[lang] = tmp_path / lang
    out = tmp_path / "xl"
    assert xl_main(["--model", str(tiny_dir), "--manifest", str(ROOT / "samples/meta/manifest.jsonl"), "--split",
                    "train", "--evidence", "transcript", "--max-frames", "4", "--out", str(out),
                    "--runs", f"en={adapters['en']}", f"zh={adapters['zh']}"]) == 0
    table = json.loads((out / "crosslingual.json").read_text())
    assert table["train_langs"] == ["en", "zh"] and table["test_langs"] == ["en", "zh"]
    for tr in ("en", "zh"):
        for te in ("en", "zh"):
            assert 0.0 <= table["acc"][tr][te] <= 1.0
    assert (out / "en" / "label_prediction.csv").read_text().startswith("ID,Label")


def test_evidence_cache_is_keyed_by_media_settings(tmp_path):
    media_file, calls, extract, clip = _counting_extractor(tmp_path)
    EvidenceCache(tmp_path / "cache", extract, MediaConfig(fps=2.0)).get(clip, "a", media_file)
    EvidenceCache(tmp_path / "cache", extract, MediaConfig(fps=2.0, decode_timeout_s=5.0)).get(clip, "a", media_file)
    assert calls == ["a"]  # the time budget does not change what the extractors see
    EvidenceCache(tmp_path / "cache", extract, MediaConfig(fps=4.0)).get(clip, "a", media_file)
    EvidenceCache(tmp_path / "cache", extract, MediaConfig(fast_video_decode=False)).get(clip, "a", media_file)
    assert calls == ["a", "a", "a"]  # other frames -> other evidence
