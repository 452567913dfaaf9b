"""Training on a tiny random Qwen2.5-Omni thinker (CPU): recipe parsing, data + evidence cache, SFT masking,
LoRA placement, video+audio inside the GRPO loss / reference / generation, in-process SFT and GRPO runs with
resume and adapter loading, and the cross-lingual table. The accelerate-launched recipes are marked slow."""

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
from omni_mer.train.config import TrainConfig  # noqa: E402
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


def make_cfg(tiny_dir, out, stage="grpo", **over) -> TrainConfig:
    base = dict(stage=stage, model_name_or_path=str(tiny_dir), output_dir=str(out), fps=2.0, max_frames=4,
                max_side=112, max_audio_seconds=6.0, dtype="float32", lora_dropout=0.0, learning_rate=5e-2,
                max_steps=2, num_generations=2, max_completion_length=8, logging_steps=1, seed=0)
    base.update(over)
    return TrainConfig(**base)


def examples(cfg) -> ExampleList:
    return ExampleList([
        make_example("en1", make_clip(0, clip_id="en1"), make_evidence("en"), "SPOS", "en", cfg.keep_set, cfg.media),
        make_example("zh1", make_clip(1, clip_id="zh1", language="zh"), make_evidence("zh"), "WNEG", "zh",
                     cfg.keep_set, cfg.media),
    ])


def lora_state(model) -> dict:
    return {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}


# ------------------------------------------------------------------------------------------ config
def test_recipe_parsing_overrides_and_validation(tmp_path, capsys):
    from omni_mer.train.run import parse_config

    cfg = parse_config(["--config", str(ROOT / "recipes/tiny-cpu/grpo.yaml"), "--output_dir", str(tmp_path),
                        "--beta", "0.0", "--reward_funcs", "format", "accuracy_ordinal", "--reward_weights", "1", "2"])
    assert cfg.stage == "grpo" and cfg.beta == 0.0 and cfg.num_generations == 4  # recipe value kept
    assert cfg.reward_funcs == ["format", "accuracy_ordinal"] and cfg.reward_weights == [1.0, 2.0]
    assert cfg.media.max_frames == 4
    sft = parse_config(["--config", str(ROOT / "recipes/tiny-cpu/grpo.yaml"), "--stage", "sft"])
    assert sft.stage == "sft"
    with pytest.raises(SystemExit):  # a bad flag value: argparse names it and the choices
        parse_config(["--config", str(ROOT / "recipes/tiny-cpu/sft.yaml"), "--stage", "ppo"])
    assert "'ppo'" in capsys.readouterr().err
    ppo = tmp_path / "ppo.yaml"
    ppo.write_text("stage: ppo\n")
    with pytest.raises(ValueError, match="sft, grpo"):  # a bad recipe value: ConfigError (a ValueError)
        parse_config(["--config", str(ppo)])
    kebab = parse_config([f"--config={ROOT / 'recipes/tiny-cpu/grpo.yaml'}", "--output-dir", str(tmp_path), "--beta", "0.0",
                          "--reward-funcs", "format", "accuracy_ordinal", "--reward-weights", "1", "2"])
    assert kebab == cfg  # both spellings of every flag, and --config=PATH, give the same config
    with pytest.raises(ValueError, match="format, accuracy, accuracy_ordinal, grounding, language"):
        parse_config(["--reward_funcs", "format", "vibes"])
    with pytest.raises(ValueError, match="en, zh"):
        parse_config(["--train_langs", "fr"])
    with pytest.raises(ValueError, match="num_generations"):
        parse_config(["--num_generations", "1"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("stage: grpo\nlearning_rat: 1e-5\n")
    with pytest.raises(ValueError, match="learning_rat"):
        parse_config(["--config", str(bad)])


@pytest.mark.parametrize("recipe", sorted(str(p.relative_to(ROOT)) for p in (ROOT / "recipes").rglob("*.yaml")
                                          if "accelerate" not in p.parts and "llm" not in p.parts))
def test_every_recipe_parses(recipe):
    """Every omni training recipe (accelerate configs and recipes/llm/, TRL's own configs, are parsed by
    tests/test_llm_train.py)."""
    from omni_mer.train.run import parse_config

    cfg = parse_config(["--config", str(ROOT / recipe)])
    assert cfg.stage in ("sft", "grpo")


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
    """Issue 18: TrainConfig's media defaults are MediaConfig's (300 s audio, fast decode), every field included."""
    assert TrainConfig().media == MediaConfig()
    assert set(MediaConfig.__dataclass_fields__) <= set(TrainConfig.__dataclass_fields__)
    assert TrainConfig(max_audio_seconds=6.0, fast_video_decode=False).media == MediaConfig(
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
def test_lora_only_on_language_model_and_sft_masks_prompt(tiny_dir, tmp_path):
    from omni_mer.train.common import load_for_training
    from omni_mer.train.sft import END_OF_TURN, sft_batch, sft_loss

    cfg = make_cfg(tiny_dir, tmp_path, stage="sft")
    model, processor = load_for_training(cfg, device="cpu")
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n and "language_model" in n for n in trainable)
    assert not any("audio_tower" in n or "visual" in n for n in trainable)
    assert any("mlp.down_proj" in n for n in trainable) and any("self_attn.q_proj" in n for n in trainable)

    ex = examples(cfg)[0]
    batch = sft_batch(processor, ex, cfg.media)
    assert "pixel_values_videos" in batch and "input_features" in batch and batch["use_audio_in_video"] is True
    labels = batch["labels"][0]
    keep = labels != -100
    assert keep.sum() > 5 and not keep[: int(keep.float().argmax())].any()  # one contiguous tail
    assert processor.tokenizer.decode(labels[keep]) == ex.target + END_OF_TURN
    loss, n = sft_loss(model, dict(batch))
    assert torch.isfinite(loss) and n == int(keep.sum()) - 0  # every target token scored (first shifted in)


def _grpo_batch(processor, cfg, clip, g=2):
    from omni_mer.train.grpo import repeat_inputs

    ex = make_example("x", clip, make_evidence("en"), "SPOS", "en", cfg.keep_set, cfg.media)
    return repeat_inputs(build_inputs(processor, [clip], [ex.messages], cfg.media, cfg.keep_set), g)


def test_video_and_audio_reach_the_grpo_loss_and_reference(tiny_dir, tmp_path):
    """Fails if grpo_loss / completion_logps stop passing pixel_values_videos or input_features (or their
    companions) into the policy or the reference forward."""
    from omni_mer.train.common import load_for_training
    from omni_mer.train.grpo import completion_mask, grpo_loss

    cfg = make_cfg(tiny_dir, tmp_path)
    model, processor = load_for_training(cfg, device="cpu")
    batch = _grpo_batch(processor, cfg, make_clip(0))
    assert batch["use_audio_in_video"] is True
    assert batch["pixel_values_videos"].shape[0] > 0 and batch["input_features"].shape[0] == 2
    tok = processor.tokenizer
    comp = torch.tensor([tok("<think>good</think><answer>SPOS</answer><|im_end|>")["input_ids"]] * 2)
    mask = completion_mask(comp, [tok.convert_tokens_to_ids("<|im_end|>")])
    adv = torch.tensor([1.0, -1.0])

    # LoRA B starts at zero: policy == reference exactly, so KL must be 0 -- unless one of the two forwards
    # got different (e.g. missing) video/audio features.
    _, m0, logps0, ref0 = grpo_loss(model, dict(batch), comp, mask, adv, beta=0.04)
    assert m0["kl"] == pytest.approx(0.0, abs=1e-7)
    assert (ref0 - logps0.detach()).abs().max() < 1e-5

    torch.manual_seed(0)
    for n, p in model.named_parameters():
        if "lora_B" in n:
            p.data.normal_(0, 0.5)

    def run(b):
        model.zero_grad()
        loss, m, logps, ref = grpo_loss(model, b, comp, mask, adv, beta=0.04)
        loss.backward()
        grads = torch.cat([p.grad.flatten() for n, p in model.named_parameters() if p.grad is not None])
        return loss.detach(), m, logps.detach(), grads, ref

    loss, m, logps, grads, ref = run(dict(batch))
    assert torch.isfinite(loss) and m["kl"] > 0
    video = dict(batch, pixel_values_videos=batch["pixel_values_videos"] + torch.randn_like(
        batch["pixel_values_videos"]))
    audio = dict(batch, input_features=batch["input_features"] + torch.randn_like(batch["input_features"]))
    for name, changed in (("video", video), ("audio", audio)):
        _, m2, logps2, grads2, ref2 = run(changed)
        assert (logps2 - logps).abs().max() > 1e-4, f"{name} features do not reach the policy log-probs"
        assert (ref2 - ref).abs().max() > 1e-4, f"{name} features do not reach the reference log-probs"
        assert (grads2 - grads).abs().max() > 1e-6, f"{name} features do not reach the loss gradient"
        assert m2["kl"] != pytest.approx(m["kl"], rel=1e-6, abs=0), f"{name} does not reach policy/reference"


# ------------------------------------------------------------------------------------------ trainers
def test_sft_trainer_trains_saves_loads_and_resumes(tiny_dir, tmp_path):
    from omni_mer.train.sft import SFTTrainer

    out = tmp_path / "sft"
    cfg = make_cfg(tiny_dir, out, stage="sft", max_steps=2, save_steps=1)
    trainer = SFTTrainer(cfg, examples(cfg))
    before = lora_state(trainer.model)
    metrics = trainer.train()
    after = lora_state(trainer.model)
    assert np.isfinite(metrics["loss"]) and metrics["steps"] == 2
    assert any(not torch.equal(before[k], after[k]) for k in before), "LoRA weights did not change"
    hist = [json.loads(line) for line in (out / "log_history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in hist] == [1, 2] and all(np.isfinite(h["loss"]) for h in hist)
    assert list((out / "runs").glob("events.out.tfevents.*"))
    card = (out / "README.md").read_text()
    assert str(tiny_dir) in card and "SFT" in card and "loss" in card
    assert (out / "checkpoint-1" / "trainer_state.json").is_file()

    loaded, _ = load_thinker(str(tiny_dir), adapter=str(out), device="cpu")
    saved = lora_state(loaded)
    trained = {k.replace(".default", ""): v for k, v in after.items()}
    assert saved and all(torch.allclose(v, trained[k.replace(".default", "")]) for k, v in saved.items())

    # resume from the step-1 checkpoint and run to step 3
    cfg2 = make_cfg(tiny_dir, out, stage="sft", max_steps=3, resume_from_checkpoint=str(out / "checkpoint-1"))
    t2 = SFTTrainer(cfg2, examples(cfg2))
    t2.train()
    hist = [json.loads(line)["step"] for line in (out / "log_history.jsonl").read_text().splitlines()]
    assert hist == [1, 2, 2, 3]  # resumed at step 1, not from scratch


def test_grpo_trainer_logs_rewards_kl_and_generation_sees_video(tiny_dir, tmp_path):
    from omni_mer.train.grpo import GRPOTrainer

    out = tmp_path / "grpo"
    cfg = make_cfg(tiny_dir, out, max_steps=1, num_generations=3, reward_weights=[1.0, 1.0, 0.5, 4.0])
    trainer = GRPOTrainer(cfg, examples(cfg))

    # generation receives the video: same sampling seed, different frames -> different completions
    batch = _grpo_batch(trainer.processor, cfg, make_clip(0), g=2)
    other = dict(batch, pixel_values_videos=batch["pixel_values_videos"] * -1.0)
    torch.manual_seed(1)
    a, _ = trainer.generate(batch)
    torch.manual_seed(1)
    b, _ = trainer.generate(other)
    assert not torch.equal(a, b), "generate() ignores the video features"
    louder = dict(batch, input_features=batch["input_features"] + 3.0 * torch.randn_like(batch["input_features"]))
    torch.manual_seed(1)
    c, _ = trainer.generate(louder)
    assert not torch.equal(a, c), "generate() ignores the audio features"

    before = lora_state(trainer.model)
    metrics = trainer.train()
    after = lora_state(trainer.model)
    for key in ("loss", "kl", "reward", "rewards/format", "rewards/accuracy", "rewards/grounding",
                "rewards/language", "completion_length"):
        assert key in metrics and np.isfinite(metrics[key]), key
    hist = [json.loads(line) for line in (out / "log_history.jsonl").read_text().splitlines()]
    assert any(h["reward_std"] > 0 for h in hist), "no reward variance: nothing to learn from"
    assert any(not torch.equal(before[k], after[k]) for k in before), "LoRA weights did not change"
    samples = [json.loads(line) for line in (out / "completions.jsonl").read_text().splitlines()]
    assert samples and {"completion", "reward", "format", "gold"} <= set(samples[0])
    loaded, _ = load_thinker(str(tiny_dir), adapter=str(out), device="cpu")
    assert any("lora_" in n for n, _ in loaded.named_parameters())


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
    hist = [json.loads(line) for line in (out / "log_history.jsonl").read_text().splitlines()]
    assert hist and all(np.isfinite(h["loss"]) for h in hist)
    if stage == "grpo":
        assert all("kl" in h and "rewards/format" in h for h in hist)
    model, _ = load_thinker(str(tiny_dir), adapter=str(out), device="cpu")
    assert any("lora_" in n for n, _ in model.named_parameters())


@pytest.mark.slow
def test_crosslingual_command_fills_table(tiny_dir, tmp_path):
    from omni_mer.train.crosslingual import main as xl_main
    from omni_mer.train.run import parse_config, train

    adapters = {}
    for lang in ("en", "zh"):
        cfg = parse_config(["--config", str(ROOT / "recipes/tiny-cpu/sft.yaml"), "--output_dir",
                            str(tmp_path / lang), "--model_name_or_path", str(tiny_dir), "--manifest",
                            str(ROOT / "samples/meta/manifest.jsonl"), "--train_langs", lang, "--max_steps", "1",
                            "--evidence", "transcript", "--save_steps", "0", "--report_to", "none"])
        train(cfg)
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
