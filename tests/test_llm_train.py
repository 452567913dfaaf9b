"""TRL SFT then GRPO of the text-only Qwen2 (omni_mer.train.llm): recipes, the reward registry inside TRL, a tiny
random Qwen2 trained on real transcripts (skipped without ../shared/data/text), and a slow run of the real 0.5B
(skipped when `bash scripts/setup.sh --llm` has not been run)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from omni_mer.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
TEXT_DATA = ROOT.parent / "shared" / "data" / "text"
needs_text = pytest.mark.skipif(not (TEXT_DATA / "MOSEI").is_dir(), reason="../shared/data/text is absent")


def test_reward_functions_carry_registry_names_and_never_swallow_errors():
    from omni_mer.train.llm import reward_functions

    fns = reward_functions(["format", "accuracy_ordinal", "grounding"])
    assert [f.__name__ for f in fns] == ["format", "accuracy_ordinal", "grounding"]
    good = "<think>x</think><answer>SPOS</answer>"
    assert fns[0]([[{"role": "assistant", "content": good}]], trainer_state=None) == [1.0]
    with pytest.raises(RuntimeError, match="reward 'accuracy_ordinal' failed.*HAPPY"):
        fns[1]([good], label=["HAPPY"])
    with pytest.raises(RuntimeError, match="reward 'grounding' failed.*evidence"):
        fns[2]([good], label=["SPOS"])


@pytest.mark.parametrize("recipe", sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("recipes/llm/*/*.yaml")))
def test_every_llm_recipe_parses_into_trl_configs(recipe):
    from trl import GRPOConfig, SFTConfig

    from omni_mer.train.llm import parse

    cpu = ["--bf16", "false", "--use-cpu", "true"] if "gpu" in recipe else []  # parse a GPU recipe on a CPU box
    script, train_cfg, model_cfg = parse(["--config", str(ROOT / recipe), "--model-name-or-path", "x", *cpu])
    if script.stage == "sft":
        assert isinstance(train_cfg, SFTConfig) and train_cfg.assistant_only_loss
        assert 0 < script.label_only_share < 0.5  # label scoring's answer is trained, rationales stay the majority
    else:
        assert isinstance(train_cfg, GRPOConfig) and train_cfg.num_generations >= 2
        assert len(train_cfg.reward_weights) == len(script.reward_funcs)
    assert model_cfg.use_peft
    if "0.5b-cpu" in recipe:  # the measured CPU settings (docs/llm.md §4): bf16 base + autocast, no checkpointing
        assert model_cfg.dtype == "bfloat16" and train_cfg.bf16 and not train_cfg.gradient_checkpointing


def test_bad_llm_recipe_values_name_the_valid_ones(tmp_path):
    from omni_mer.train.llm import parse

    base = ["--model-name-or-path", "x", "--output-dir", str(tmp_path)]
    with pytest.raises(ConfigError, match="sft, grpo"):
        parse(["--stage", "dpo", *base])
    with pytest.raises(ConfigError, match="format, accuracy, accuracy_ordinal, grounding, language"):
        parse(["--stage", "grpo", "--reward-funcs", "format", "vibes", *base])
    with pytest.raises(ConfigError, match="mosei"):
        parse(["--train-datasets", "imdb", *base])
    with pytest.raises(ConfigError, match="model_name_or_path is required"):
        parse(["--output-dir", str(tmp_path), "--use-cpu", "true", "--bf16", "false"])
    with pytest.raises(ConfigError, match=r"label_only_share=0.5 is not valid: a share in \[0, 0.5\)"):
        parse(["--label-only-share", "0.5", *base])
    with pytest.raises(ConfigError, match="label_only_share=0.2 applies to stage sft only"):
        parse(["--stage", "grpo", "--label-only-share", "0.2", *base])
    with pytest.raises(ConfigError, match=r"class_balance=1.5 is not valid; valid values: a number in \[0, 1\]"):
        parse(["--class-balance", "1.5", *base])
    with pytest.raises(ConfigError, match=r"^--balance-labels was renamed: use --class-balance \(true is 1, false is"):
        parse(["--balance-labels", "true", *base])  # before TRL's own checks (no --use-cpu here)
    for text, match in (("balance_labels: true", "the key balance_labels was renamed: use class_balance"),
                        ("class_balance: true", r"class_balance=True is not valid; valid values: a number in \[0"),
                        ("class_balance:", r"class_balance=None is not valid; valid values: a number in \[0"),
                        # a string of the wrong type or outside the choices: one line naming the recipe key (argparse
                        # would print its whole usage and name the flag)
                        ("class_balance: abc", r"^--config '.*': class_balance='abc' is not valid; valid values: a "
                                               r"number$"),
                        ("lora_r: eight", "lora_r='eight' is not valid; valid values: an integer$"),
                        ("gradient_checkpointing: maybe", "gradient_checkpointing='maybe' is not valid; valid values: "
                                                          "true or false$"),
                        ("lr_scheduler_type: cosin", "lr_scheduler_type='cosin' is not valid; valid values: linear, "
                                                     "cosine, "),
                        ("dtype: bf16", "dtype='bf16' is not valid; valid values: auto, bfloat16, float16, float32$"),
                        ("stage: grpo\nreward_weights: [1, x]",
                         r"reward_weights: 'x' in \[1, 'x'\] is not valid; valid values: a number$")):
        recipe = tmp_path / "recipe.yaml"
        recipe.write_text(f"{text}\nmodel_name_or_path: x\nuse_cpu: true\nbf16: false\n")
        with pytest.raises(ConfigError, match=match):
            parse(["--config", str(recipe), "--output-dir", str(tmp_path)])
    # a flag that overrides a bad recipe value wins, as for any recipe key (argparse never reads the recipe's value)
    recipe.write_text("lora_r: eight\nmodel_name_or_path: x\nuse_cpu: true\nbf16: false\n")
    assert parse(["--config", str(recipe), "--output-dir", str(tmp_path), "--lora-r", "4"])[2].lora_r == 4
    recipe.write_text("gradient_checkpointing: maybe\nmodel_name_or_path: x\nuse_cpu: true\nbf16: false\n")
    assert not parse(["--config", str(recipe), "--output-dir", str(tmp_path),
                      "--no-gradient-checkpointing"])[1].gradient_checkpointing  # --no-KEY overrides it too
    with pytest.raises(ConfigError, match="no such recipe"):
        parse(["--config", str(tmp_path / "missing.yaml")])


def test_label_only_sft_rows_train_exactly_what_label_scoring_reads(tmp_path):
    """A seeded share of the SFT rows targets the label-only answer. For every label in both languages, that
    conversation rendered as TRL's SFTTrainer renders it (its Qwen2.5 training template, assistant-only mask) starts
    with the very ids the llm scorer teacher-forces, and the label's ids are inside the trained (assistant) tokens."""
    from trl.chat_template_utils import get_training_chat_template

    from omni_mer.core.answer import SCORE_THINK, label_only_answer, split_answer
    from omni_mer.core.labels import LABEL_INDEX, LABELS
    from omni_mer.llm.model import build_tiny_llm, load_llm
    from omni_mer.scorers.llm import LLMScorer
    from omni_mer.train.llm_data import TranscriptRow, row_prompt, sft_records

    rows = [TranscriptRow(f"r{i}", "mosei" if i % 2 else "sims2", "en" if i % 2 else "zh",
                          "it was fine" if i % 2 else "还不错吧", label)
            for i, label in enumerate(["SNEG", "WNEG", "NEUT", "WPOS", "SPOS", "NEUT", "WPOS", "SNEG"])]
    recs = sft_records(rows, label_only_share=0.25, seed=3)
    answers = [r["messages"][-1]["content"] for r in recs]
    short = [i for i, a in enumerate(answers) if split_answer(a) == (SCORE_THINK, rows[i].label)]
    assert len(short) == 2 and sft_records(rows, 0.25, 3) == recs  # round(0.25 * 8) rows, the same ones each time
    assert all(split_answer(a)[0] and split_answer(a)[1] == rows[i].label for i, a in enumerate(answers)
               if i not in short)  # the rest keep their rationale
    assert [r["messages"][-1]["content"] for r in sft_records(rows)] == [
        r["messages"][-1]["content"] for r in sft_records(rows, 0.0, 3)]  # share 0: rationales only

    model, tok = load_llm(build_tiny_llm(tmp_path / "tiny"))
    scorer = LLMScorer(model=model, tokenizer=tok)
    template = get_training_chat_template(tok) or tok.chat_template
    shared, rests = scorer._tails
    every = [TranscriptRow(f"{lang}{label}", "x", lang, "it was fine" if lang == "en" else "还不错吧", label)
             for lang in ("en", "zh") for label in LABELS]
    for row in every:
        messages = row_prompt(row) + [{"role": "assistant", "content": label_only_answer(row.label)}]
        enc = tok.apply_chat_template(messages, chat_template=template, tokenize=True, return_dict=True,
                                      return_assistant_tokens_mask=True)
        ids, trained = list(enc["input_ids"]), list(enc["assistant_masks"])
        scored = scorer.prompt_ids(*_evidence_of(row)) + shared + rests[LABEL_INDEX[row.label]]
        assert ids[: len(scored)] == scored, (row.lang, row.label)
        label_at = range(len(scored) - len(rests[LABEL_INDEX[row.label]]), len(scored))
        assert all(trained[i] for i in label_at), (row.lang, row.label)  # the loss reads the label's ids


def _evidence_of(row):
    from omni_mer.train.llm_data import TEXT_KEEP, transcript_evidence

    return transcript_evidence(row.text, row.lang), TEXT_KEEP, row.lang


def test_balanced_rows_deal_the_shuffle_round_robin_over_the_classes():
    from omni_mer.train.llm_data import balanced_order

    labels = ["NEUT"] * 6 + ["SPOS", "SNEG", "WPOS", "WPOS"]
    order = [9, 0, 7, 1, 2, 8, 3, 6, 4, 5]
    out = balanced_order(labels, order)
    assert sorted(out) == list(range(10))  # every row once
    assert [labels[i] for i in out[:4]] == ["SNEG", "NEUT", "WPOS", "SPOS"]  # one of each present class first
    assert out[:4] == [7, 0, 9, 6] and out[4:6] == [1, 8]  # each class keeps its shuffled order
    assert [labels[i] for i in out[6:]] == ["NEUT"] * 4  # the rest of the big class last


def test_class_quotas_follow_the_frequency_power_and_the_rows_each_class_has():
    from omni_mer.train.llm_data import class_quotas

    counts = {"SNEG": 100, "WNEG": 400, "NEUT": 400, "WPOS": 64, "SPOS": 36}
    assert class_quotas(counts, 100, 0.0) == {"SNEG": 10, "WNEG": 40, "NEUT": 40, "WPOS": 6, "SPOS": 4}
    # square root: shares 10 : 20 : 20 : 8 : 6 of 64
    assert class_quotas(counts, 64, 0.5) == {"SNEG": 10, "WNEG": 20, "NEUT": 20, "WPOS": 8, "SPOS": 6}
    assert class_quotas(counts, 100, 1.0) == {c: 20 for c in counts}
    # a class short of its share gives all it has and the others share the rest (MER2023 has 8 SPOS train rows)
    few = {"SNEG": 50, "WNEG": 50, "NEUT": 50, "WPOS": 50, "SPOS": 8}
    assert class_quotas(few, 200, 1.0) == {"SNEG": 48, "WNEG": 48, "NEUT": 48, "WPOS": 48, "SPOS": 8}
    assert sum(class_quotas(counts, 7, 0.5).values()) == 7 and sum(class_quotas(counts, 2000, 0.5).values()) == 1000
    # remainders equal in exact arithmetic (1/3 each here) but not in floats: the spare row goes in LABELS order
    assert class_quotas({"SNEG": 1, "WNEG": 1, "WPOS": 57, "SPOS": 7}, 22, 0.0) == \
        {"SNEG": 1, "WNEG": 0, "NEUT": 0, "WPOS": 19, "SPOS": 2}


def test_uniform_class_balance_takes_the_rows_the_round_robin_deal_took_first():
    """class_balance 1 picks the same rows as the earlier round-robin option (balanced_order's first N), so the
    measured balanced run (docs/llm.md §4) is reproduced by --class-balance 1."""
    from omni_mer.core.labels import LABELS
    from omni_mer.train.llm_data import balanced_order, class_balanced_take

    rng = np.random.default_rng(0)
    labels = list(rng.choice(LABELS, size=500, p=[0.1, 0.3, 0.35, 0.23, 0.02]))
    order = rng.permutation(500)
    for n in (40, 200, 333):
        assert sorted(class_balanced_take(labels, order, n, 1.0)) == sorted(balanced_order(labels, order)[:n])
    half = class_balanced_take(labels, order, 200, 0.5)

    def share(rows, c):
        return sum(labels[i] == c for i in rows) / len(rows)

    assert len(set(half)) == 200
    assert all(share(half, c) > share(order, c) for c in ("SNEG", "SPOS"))  # the rare classes gain
    assert share(half, "NEUT") < share(order, "NEUT")  # the largest one gives way


@needs_text
def test_class_balance_zero_keeps_the_plain_shuffle_and_above_zero_moves_the_mix():
    from collections import Counter

    from omni_mer.texthead.corpus import load_corpus, select
    from omni_mer.train.llm_data import load_rows

    plain = load_rows(TEXT_DATA, "train", ["sims2"], 60, seed=3)
    native = [e for e in select(load_corpus(TEXT_DATA, datasets=["sims2"]), split="train", datasets=["sims2"],
                                translated=False) if e.text.strip()]
    assert [r.id for r in plain] == [native[i].id for i in np.random.default_rng(3).permutation(len(native))[:60]]
    uniform = Counter(r.label for r in load_rows(TEXT_DATA, "train", ["sims2"], 60, seed=3, class_balance=1.0))
    assert set(uniform.values()) == {12}


@needs_text
def test_rows_carry_the_text_heads_reading_into_prompts_targets_and_rewards():
    """read_text gives each row the pipeline's text evidence (the shipped head's probabilities and word cues): the
    prompt shows it, the SFT target quotes the transcript, and the GRPO row's evidence column keeps it."""
    from omni_mer.evidence.types import Evidence
    from omni_mer.llm.prompt import head_probabilities
    from omni_mer.train.llm_data import grpo_records, load_rows, read_text, row_prompt, sft_records

    rows, info = read_text(load_rows(TEXT_DATA, "test", ["mosei", "sims2"], 2, 0))
    assert info["digest"] and info["seconds_per_row"] > 0
    from omni_mer.train.llm_eval import _text_head_predictions

    run, run_info = _text_head_predictions(rows)  # eval-llm --text-head: the head run on the rows
    read, read_info = _text_head_predictions(rows, info)  # the same head's labels, from the rows' reading
    assert read == run and read_info == run_info
    for row, rec, grpo in zip(rows, sft_records(rows), grpo_records(rows)):
        probs = head_probabilities(row.text_evidence)
        assert probs is not None and sum(probs.values()) == pytest.approx(1, abs=1e-3)
        user = row_prompt(row)[1]["content"]
        assert ("Text model's reading" if row.lang == "en" else "文本模型的判读") in user
        target = rec["messages"][-1]["content"]
        quoted = target.split("“" if row.lang == "en" else "「")[1].split("”" if row.lang == "en" else "」")[0]
        assert quoted and quoted in row.text
        ev = Evidence.from_dict(json.loads(grpo["evidence"]))
        assert head_probabilities(ev.text) == pytest.approx(probs)
    bare = [r.__class__(r.id, r.dataset, r.lang, r.text, r.label) for r in rows]
    assert bare == rows and hash(bare[0]) == hash(rows[0])  # the reading is not part of a row's identity
    for r in bare:
        assert "reading" not in row_prompt(r)[1]["content"] and "判读" not in row_prompt(r)[1]["content"]


def _lora_b_norm(adapter_dir: Path) -> float:
    from safetensors.torch import load_file

    w = load_file(str(adapter_dir / "adapter_model.safetensors"))
    return sum(float(v.abs().sum()) for k, v in w.items() if "lora_B" in k)


@needs_text
def test_tiny_qwen2_sft_then_grpo_with_trl(tmp_path):
    """SFT (assistant-only loss) then GRPO on the merged SFT policy, both on real transcripts, 1 step each."""
    from omni_mer.llm.model import BASE_ADAPTER_FILE, build_tiny_llm, load_llm
    from omni_mer.train.llm import parse, train

    tiny = build_tiny_llm(tmp_path / "tiny")
    common = ["--model-name-or-path", str(tiny), "--data-dir", str(TEXT_DATA), "--max-steps", "1",
              "--train-per-dataset", "2"]
    sft = tmp_path / "sft"
    m = train(*parse(["--config", str(ROOT / "recipes/llm/tiny/sft.yaml"), *common, "--output-dir", str(sft),
                      "--class-balance", "1", "--text-reading", "true"]))
    assert m["train_loss"] > 0 and _lora_b_norm(sft) > 0  # LoRA B starts at zero: the step moved it
    history = json.loads((sft / "log_history.json").read_text())
    assert any("loss" in h for h in history)
    import yaml

    from omni_mer.llm.model import RECIPE_FILE, adapter_text_reading

    recipe = yaml.safe_load((sft / RECIPE_FILE).read_text(encoding="utf-8"))
    assert recipe["script"]["text_reading"] and recipe["text_head"]["digest"] and adapter_text_reading(sft)

    grpo = tmp_path / "grpo"
    args = ["--config", str(ROOT / "recipes/llm/tiny/grpo.yaml"), *common, "--output-dir", str(grpo),
            "--init-adapter", str(sft), "--max-completion-length", "8"]
    with pytest.raises(ValueError, match="says text_reading: true; pass --text-reading true so that it sees the prompt"):
        train(*parse(args))
    train(*parse([*args, "--text-reading", "true"]))
    history = json.loads((grpo / "log_history.json").read_text())
    logged = {k for h in history for k in h}
    for key in ("reward", "kl", "rewards/format/mean", "rewards/accuracy_ordinal/mean", "rewards/grounding/mean",
                "rewards/language/mean"):
        assert key in logged, key
    assert json.loads((grpo / BASE_ADAPTER_FILE).read_text())["merged_adapter"] == str(sft)
    assert _lora_b_norm(grpo) > 0
    model, tok = load_llm(tiny, adapter=grpo)  # base + merged SFT adapter + GRPO adapter
    from omni_mer.scorers.llm import LLMScorer
    from omni_mer.train.llm_data import TEXT_KEEP, transcript_evidence

    lp = LLMScorer(model=model, tokenizer=tok).label_logprobs(transcript_evidence("so good", "en"), TEXT_KEEP, "en")
    assert lp.shape == (5,)


@needs_text
def test_sft_trains_through_a_qwen25_template_variant_trl_cannot_mark(tmp_path):
    """The Qwen2.5-Coder-1.5B GGUF ships Qwen2.5's chat template with the tool-call example's braces doubled: TRL
    cannot mark it for the assistant-only loss (SFT stopped on it), yet it renders the conversations the same, so SFT
    trains through TRL's Qwen2.5 template. A template that renders them differently is left alone."""
    from trl.chat_template_utils import qwen2_5_chat_template

    from omni_mer.llm.model import build_tiny_llm, load_llm
    from omni_mer.train.llm import parse, train, use_trainable_chat_template

    tiny = build_tiny_llm(tmp_path / "tiny")
    example = '{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}'
    assert example in qwen2_5_chat_template
    (tiny / "chat_template.jinja").write_text(qwen2_5_chat_template.replace(example, "{" + example + "}"),
                                              encoding="utf-8")
    out = tmp_path / "sft"
    m = train(*parse(["--config", str(ROOT / "recipes/llm/tiny/sft.yaml"), "--model-name-or-path", str(tiny),
                      "--data-dir", str(TEXT_DATA), "--max-steps", "1", "--train-per-dataset", "1",
                      "--output-dir", str(out)]))
    assert m["train_loss"] > 0 and _lora_b_norm(out) > 0
    assert (out / "chat_template.jinja").read_text(encoding="utf-8") == qwen2_5_chat_template

    _, tok = load_llm(tiny)
    other = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    tok.chat_template = other
    chat = [[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]]
    assert not use_trainable_chat_template(tok, chat) and tok.chat_template == other
    variant = (tiny / "chat_template.jinja").read_text(encoding="utf-8")
    for template, convs in ((variant, []), ({"default": variant}, chat)):  # nothing to compare; a named template
        tok.chat_template = template
        assert not use_trainable_chat_template(tok, convs) and tok.chat_template == template


@pytest.mark.slow
@needs_text
def test_real_qwen25_05b_lora_moves_in_a_few_steps(tmp_path):
    """The real Qwen2.5-Coder-0.5B (setup.sh --llm): 3 SFT steps change the LoRA weights and lower the loss;
    one GRPO step logs a reward. ~10-20 min on 2 busy cores."""
    from omni_mer.core.errors import ModelNotFoundError
    from omni_mer.llm.weights import llm_model_dir
    from omni_mer.train.llm import parse, train

    try:
        llm_model_dir("qwen2.5-coder-0.5b")
    except ModelNotFoundError:
        pytest.skip("the real weights are not set up (bash scripts/setup.sh --llm)")
    sft = tmp_path / "sft"
    common = ["--data-dir", str(TEXT_DATA), "--train-per-dataset", "4", "--per-device-train-batch-size", "2"]
    train(*parse(["--config", str(ROOT / "recipes/llm/qwen2.5-0.5b-cpu/sft.yaml"), *common, "--max-steps", "3",
                  "--output-dir", str(sft), "--learning-rate", "1e-3", "--warmup-steps", "0"]))
    losses = [h["loss"] for h in json.loads((sft / "log_history.json").read_text()) if "loss" in h]
    assert _lora_b_norm(sft) > 0 and len(losses) == 3 and losses[-1] < losses[0]
    grpo = tmp_path / "grpo"
    train(*parse(["--config", str(ROOT / "recipes/llm/qwen2.5-0.5b-cpu/grpo.yaml"), *common, "--max-steps", "1",
                  "--per-device-train-batch-size", "4", "--max-completion-length", "16", "--init-adapter", str(sft),
                  "--output-dir", str(grpo)]))
    history = json.loads((grpo / "log_history.json").read_text())
    assert any("reward" in h for h in history) and _lora_b_norm(grpo) > 0


@needs_text
def test_eval_llm_on_fixed_test_subsets(tmp_path, capsys, monkeypatch):
    """eval-llm: the same fixed test rows every time, Acc-5/UAR/confusion, format/parse rates and rewards."""
    from omni_mer.cli import main as cli_main
    from omni_mer.llm.model import build_tiny_llm

    tiny = build_tiny_llm(tmp_path / "tiny")
    outs = []
    for i in range(2):
        out = tmp_path / f"eval{i}.json"
        assert cli_main(["eval-llm", "--model", str(tiny), "--data-dir", str(TEXT_DATA), "--datasets", "mosei",
                         "sims2", "--per-dataset", "3", "--gen-per-dataset", "1", "--max-new-tokens", "4",
                         "--dtype", "float32", "--text-reading", "true", "--show-reading-zero-shot", "true",
                         "--out", str(out)]) == 0
        outs.append(json.loads(out.read_text()))
    assert outs[0]["ids"] == outs[1]["ids"] and len(outs[0]["ids"]["mosei"]) == 3
    all_ = outs[0]["datasets"]["all"]
    assert all_["n"] == 6 and all_["n_generated"] == 2 and 0 <= all_["acc5"] <= 1 and "confusion" in all_
    assert set(outs[0]["per_reward_mean"]) == {"format", "accuracy_ordinal", "grounding", "language"}
    assert outs[0]["compute_dtype"] == "float32"
    assert outs[0]["text_reading"]["shown"] and outs[0]["text_reading"]["digest"]  # zero-shot: the prompt shows it
    # Acc-5 / UAR of the generated answers: a parsed answer counts as written, one that does not parse falls back to
    # that row's label-scored prediction (as the scorer's generate_batch does). Each row gets its own label score.
    import numpy as np

    from omni_mer.core.labels import LABEL_INDEX, LABELS
    from omni_mer.scorers.llm import LLMScorer
    from omni_mer.train.llm_data import load_rows

    rows = load_rows(TEXT_DATA, "test", ["mosei", "sims2"], 3, 0)
    scored = {r.text: LABELS[i % len(LABELS)] for i, r in enumerate(rows)}  # 6 rows: SNEG..SPOS, SNEG

    def fake_scores(self, evidences, keeps, languages):
        return np.array([[0.0 if label == scored[ev.transcript] else -9.0 for label in LABELS] for ev in evidences])

    first = {name: next(r for r in rows if r.dataset == name) for name in ("mosei", "sims2")}
    wrong = next(x for x in LABELS if x not in (first["mosei"].label, scored[first["mosei"].text]))
    monkeypatch.setattr(LLMScorer, "label_logprobs_many", fake_scores)
    monkeypatch.setattr(LLMScorer, "generate_texts",
                        lambda self, prompts: [f"<think></think><answer>{wrong}</answer>", "no answer"])
    out = tmp_path / "eval_gen.json"
    assert cli_main(["eval-llm", "--model", str(tiny), "--data-dir", str(TEXT_DATA), "--datasets", "mosei",
                     "sims2", "--per-dataset", "3", "--gen-per-dataset", "1", "--dtype", "float32",
                     "--out", str(out)]) == 0
    res = json.loads(out.read_text())["datasets"]
    row = first["sims2"]
    assert res["mosei"]["parse_rate"] == 1.0 and res["mosei"]["generated"]["acc5"] == 0.0
    assert res["mosei"]["generated"]["confusion"][LABEL_INDEX[first["mosei"].label]][LABEL_INDEX[wrong]] == 1
    assert res["sims2"]["parse_rate"] == 0.0 and res["all"]["generated"]["n"] == 2
    assert scored[row.text] == "WPOS"  # the 4th row's score: a fallback that read another row would differ
    assert res["sims2"]["generated"]["confusion"][LABEL_INDEX[row.label]][LABEL_INDEX["WPOS"]] == 1
    assert res["mosei"]["generated_answers"] == {first["mosei"].id: wrong}
    assert res["sims2"]["generated_answers"] == {row.id: None}
    # an empty rationale is a well-formed answer with a blank <think>; "no answer" is malformed, not empty
    assert res["mosei"]["empty_rationale"] == 1.0 and res["sims2"]["empty_rationale"] == 0.0
    with pytest.raises(SystemExit):
        cli_main(["eval-llm", "--per-dataset", "2", "--gen-per-dataset", "5"])
    with pytest.raises(SystemExit):
        cli_main(["eval-llm", "--dtype", "float16"])
    assert "--dtype 'float16': valid values are auto, float32, bfloat16" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["eval-llm", "--show-reading-zero-shot", "true"])  # without --text-reading
    assert "--show-reading-zero-shot needs --text-reading and no --adapter" in capsys.readouterr().err


@needs_text
def test_eval_llm_fits_a_label_calibration_on_valid_that_the_scorer_reads(tmp_path, capsys):
    """--split valid --fit-calibration writes one calibration per language; --calibration FILE (or an adapter's
    label_calibration.json) makes the scorer's label log-probs the calibrated, normalised ones."""
    import numpy as np

    from omni_mer.cli import main as cli_main
    from omni_mer.llm.calibration import load_calibration
    from omni_mer.llm.model import build_tiny_llm
    from omni_mer.scorers.llm import LLMScorer
    from omni_mer.train.llm_data import TEXT_KEEP, transcript_evidence

    tiny = build_tiny_llm(tmp_path / "tiny")
    common = ["--model", str(tiny), "--data-dir", str(TEXT_DATA), "--datasets", "mosei", "sims2",
              "--gen-per-dataset", "0", "--dtype", "float32"]
    cal = tmp_path / "label_calibration.json"
    assert cli_main(["eval-llm", *common, "--split", "valid", "--per-dataset", "25", "--fit-calibration", str(cal),
                     "--out", str(tmp_path / "valid.json")]) == 0
    fitted = load_calibration(cal)
    assert set(fitted) == {"en", "zh"}
    assert cli_main(["eval-llm", *common, "--per-dataset", "3", "--calibration", str(cal),
                     "--out", str(tmp_path / "test.json")]) == 0
    assert json.loads((tmp_path / "test.json").read_text())["calibration"] == str(cal)
    raw = LLMScorer(str(tiny), dtype="float32", calibration="none")
    calibrated = LLMScorer(str(tiny), dtype="float32", calibration=str(cal))
    ev = transcript_evidence("I really love this.", "en")
    a, b = raw.label_logprobs(ev, TEXT_KEEP, "en"), calibrated.label_logprobs(ev, TEXT_KEEP, "en")
    assert np.isclose(np.exp(b).sum(), 1.0) and np.allclose(b, np.log(fitted["en"].apply(a)[0]))
    assert calibrated.version().endswith(f"+calibration:{cal}")
    capsys.readouterr()
    with pytest.raises(SystemExit):  # fitted on test rows, it would grade itself
        cli_main(["eval-llm", *common, "--per-dataset", "3", "--fit-calibration", str(cal)])
    assert "needs --split valid" in capsys.readouterr().err
    assert cli_main(["eval-llm", *common, "--per-dataset", "3", "--calibration", str(tmp_path / "absent.json"),
                     "--out", str(tmp_path / "x.json")]) != 0
    assert "no such file" in capsys.readouterr().err
