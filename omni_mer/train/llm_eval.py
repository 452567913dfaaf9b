"""``omni-mer eval-llm``: the llm scorer on FIXED held-out subsets of the test splits (docs/llm.md).

Per dataset: the first ``per_dataset`` test rows of a seeded shuffle (omni_mer.train.llm_data.load_rows), scored
by teacher-forced label probabilities (Acc-5, UAR: omni_mer.eval.metrics); on the first ``gen_per_dataset`` of them
the model also writes ``<think>…</think><answer>…</answer>`` greedily: format-valid rate (the format reward),
parse rate (an answer label could be read), the share of well-formed answers with a blank rationale
(``empty_rationale``: what a label-only SFT share, omni_mer.train.llm_data.sft_records, could leak into greedy
generation; a malformed output is not counted), the mean of the registry rewards, and Acc-5 / UAR of the generated
answers (``generated``, with each row's answer in ``generated_answers``; one that does not parse falls back to the
label-scored one, as the scorer's ``generate_batch`` does): what the model decides after writing its own
rationale, where the label scores read the answer after an empty one. ``--text-head`` adds the shipped text head on
the same rows. With ``--text-reading`` each row's text evidence is the shipped text head's, as the pipeline gives a
clip (omni_mer.train.llm_data.read_text), and the prompt shows its reading to an adapter trained with it (or, with
``--show-reading-zero-shot``, to the base model); recorded as ``text_reading``. Writes one JSON (metrics + the row
ids, so the subsets are checkable).

Label calibration (llm/calibration.py): ``--split valid --datasets mosei sims2 --fit-calibration FILE`` scores
validation rows with the raw label scores and fits one calibration per language on them; ``--calibration``
(default auto: the adapter's label_calibration.json when present; none; or a file) is what the scored rows read.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


@dataclass
class LLMEvalConfig:
    """What eval-llm reads."""

    model: str = field(default="qwen2.5-coder-0.5b", metadata={"help": "Qwen2 folder or registered name"})
    adapter: str | None = field(default=None, metadata={"help": "LoRA adapter folder (SFT or GRPO run)"})
    data_dir: str = field(default="../shared/data/text", metadata={"help": "folder of the labelled transcript tables"})
    datasets: list[str] = field(default_factory=lambda: ["mosei", "sims2", "mer2023"],
                                metadata={"help": "held-out datasets (their --split rows)"})
    split: str = field(default="test", metadata={"help": "test (the held-out subsets) or valid (for "
                                                         "--fit-calibration)", "choices": ["test", "valid"]})
    calibration: str = field(default="auto", metadata={
        "help": "label calibration the scores read: auto (the adapter's label_calibration.json when present), none, "
                "or a file (llm/calibration.py)"})
    fit_calibration: str = field(default="", metadata={
        "help": "fit a per-language label calibration on these rows' raw scores and write it to this file (needs "
                "--split valid; put it in the adapter folder as label_calibration.json for auto)"})
    per_dataset: int = field(default=300, metadata={"help": "label-scored test rows per dataset"})
    gen_per_dataset: int = field(default=30, metadata={"help": "of those, rows whose answer is also generated"})
    row_seed: int = field(default=0, metadata={"help": "seed of the fixed subset"})
    max_new_tokens: int = field(default=96, metadata={"help": "generation budget"})
    dtype: str = field(default="auto", metadata={
        "help": "compute dtype: auto (bfloat16 on a GPU or a CPU with native bf16, else float32), float32, bfloat16"})
    reward_funcs: list[str] = field(default_factory=lambda: ["format", "accuracy_ordinal", "grounding", "language"],
                                    metadata={"help": "rewards averaged over the generations"})
    reward_weights: list[float] | None = field(default=None, metadata={"help": "their weights (default 1 each)"})
    text_reading: bool = field(default=False, metadata={
        "help": "the rows' text evidence comes from the shipped text head (omni_mer.train.llm_data.read_text), as the "
                "pipeline gives a clip; the prompt shows its reading to an adapter trained with it, or with "
                "--show-reading-zero-shot to the base model"})
    show_reading_zero_shot: bool = field(default=False, metadata={
        "help": "without --adapter: show the text head's reading anyway (needs --text-reading)"})
    text_head: bool = field(default=False, metadata={
        "help": "also score the rows with the shipped text head ($OMNI_MER_TEXT_HEAD or auto: texthead/shipped.py; "
                "the one used is recorded as text_head in the output)"})
    out: str = field(default="runs/llm-eval.json", metadata={"help": "JSON written with the metrics"})

    def __post_init__(self) -> None:
        for name in ("datasets", "reward_funcs"):
            v = getattr(self, name)
            if isinstance(v, str):
                setattr(self, name, [s for s in v.replace(",", " ").split() if s])
        from omni_mer.llm.model import INFERENCE_DTYPES

        if self.dtype not in INFERENCE_DTYPES:
            raise ValueError(f"--dtype {self.dtype!r}: valid values are {', '.join(INFERENCE_DTYPES)}")
        if self.split not in ("test", "valid"):
            raise ValueError(f"--split {self.split!r}: valid values are test, valid")
        if self.fit_calibration and self.split != "valid":
            raise ValueError(f"--fit-calibration {self.fit_calibration!r} needs --split valid (got {self.split!r}): a "
                             "calibration fitted on test rows would grade itself")
        from omni_mer.llm.model import text_reading_mismatch

        why = text_reading_mismatch(self.adapter, self.text_reading) if self.adapter else None
        if why:
            raise ValueError(why)
        if self.show_reading_zero_shot and (self.adapter or not self.text_reading):
            raise ValueError("--show-reading-zero-shot needs --text-reading and no --adapter (an adapter's prompt is "
                             f"the one it was trained with; got adapter={self.adapter!r}, "
                             f"text_reading={self.text_reading})")
        if self.fit_calibration and self.calibration not in ("auto", "none"):
            raise ValueError(f"--fit-calibration fits on raw scores: drop --calibration {self.calibration!r}")
        if self.per_dataset < 1 or not 0 <= self.gen_per_dataset <= self.per_dataset:
            raise ValueError(f"need per_dataset >= 1 and 0 <= gen_per_dataset <= per_dataset "
                             f"(got {self.per_dataset}, {self.gen_per_dataset})")


def _metrics(gold: list[str], pred: list[str]) -> dict:
    from omni_mer.eval.metrics import classification_metrics

    m = classification_metrics(gold, pred)
    return {k: m[k] for k in ("acc5", "uar", "macro_f1", "acc2", "mae", "n", "confusion")}


def evaluate(cfg: LLMEvalConfig) -> dict:
    """Metrics per dataset and overall (see module docstring)."""
    from omni_mer.core.labels import LABELS
    from omni_mer.scorers.llm import LLMScorer
    from omni_mer.train.llm_data import TEXT_KEEP, grpo_records, load_rows, read_text, row_evidence
    from omni_mer.train.rewards import combine_rewards

    rows = load_rows(cfg.data_dir, cfg.split, cfg.datasets, cfg.per_dataset, cfg.row_seed)
    reading = None
    if cfg.text_reading:
        rows, reading = read_text(rows)
    t0 = time.perf_counter()
    scorer = LLMScorer(cfg.model, adapter=cfg.adapter, max_new_tokens=cfg.max_new_tokens, dtype=cfg.dtype,
                       calibration="none" if cfg.fit_calibration else cfg.calibration,
                       text_reading=True if cfg.show_reading_zero_shot else None)
    load_s = time.perf_counter() - t0
    if reading and not scorer.text_reading:
        log.warning("the text head read the rows, but the base model's prompt does not show its reading (pass "
                    "--show-reading-zero-shot true to show it)")
    preds, secs, scores = [], [], []
    for i, r in enumerate(rows):
        t = time.perf_counter()
        lp = scorer.label_logprobs(row_evidence(r), TEXT_KEEP, r.lang)
        secs.append(time.perf_counter() - t)
        scores.append(lp)
        preds.append(LABELS[int(np.argmax(lp))])
        if (i + 1) % 50 == 0:
            log.info("scored %d/%d rows (%.2f s/row)", i + 1, len(rows), float(np.mean(secs)))
    result: dict = {"config": asdict(cfg), "load_seconds": round(load_s, 1),
                    "compute_dtype": str(scorer.dtype).removeprefix("torch."),
                    "calibration": str(scorer.calibration_path) if scorer.calibration_path else None,
                    "text_reading": {**(reading or {}), "shown": scorer.text_reading},
                    "score_seconds_per_row": round(float(np.mean(secs)), 3), "datasets": {}}
    if cfg.fit_calibration:
        from omni_mer.llm.calibration import fit_label_calibration, save_calibration

        cal = fit_label_calibration(np.asarray(scores), [r.label for r in rows], [r.lang for r in rows])
        meta = {"model": cfg.model, "adapter": cfg.adapter, "split": cfg.split, "datasets": cfg.datasets,
                "per_dataset": cfg.per_dataset, "row_seed": cfg.row_seed, "languages": sorted(cal)}
        result["fitted_calibration"] = str(save_calibration(cal, cfg.fit_calibration, meta))
        log.info("label calibration for %s written to %s", ", ".join(sorted(cal)), cfg.fit_calibration)
    gen_rows = [r for name in cfg.datasets for r in [x for x in rows if x.dataset == name][: cfg.gen_per_dataset]]
    gen: dict[str, dict] = {}
    if gen_rows:
        t = time.perf_counter()
        prompts = [scorer.prompt_ids(row_evidence(r), TEXT_KEEP, r.lang) for r in gen_rows]
        texts = scorer.generate_texts(prompts)
        result["generate_seconds_per_row"] = round((time.perf_counter() - t) / len(gen_rows), 3)
        recs = grpo_records(gen_rows)
        cols = {k: [rec[k] for rec in recs] for k in ("label", "language", "evidence", "keep", "cues_shown")}
        total, per = combine_rewards(cfg.reward_funcs, cfg.reward_weights, texts, **cols)
        from omni_mer.core.answer import parse_answer, split_answer

        position = {(r.dataset, r.id): i for i, r in enumerate(rows)}
        for j, r in enumerate(gen_rows):
            g = gen.setdefault(r.dataset, {"format": [], "parsed": [], "empty": [], "reward": [], "samples": [],
                                           "pairs": [], "answers": {}})
            g["format"].append(float(per["format"][j]) if "format" in per else float("nan"))
            answer = parse_answer(texts[j])
            g["parsed"].append(1.0 if answer else 0.0)
            parts = split_answer(texts[j])
            g["empty"].append(1.0 if parts is not None and not parts[0].strip() else 0.0)
            g["pairs"].append((r.label, answer or preds[position[(r.dataset, r.id)]]))
            g["answers"][r.id] = answer  # None: did not parse (the metrics read the label-scored one then)
            g["reward"].append(total[j])
            if len(g["samples"]) < 3:
                g["samples"].append({"id": r.id, "gold": r.label, "completion": texts[j]})
        result["per_reward_mean"] = {k: float(np.mean([v for v in vals if v is not None]))
                                     for k, vals in per.items()}
    head_preds = None
    if cfg.text_head:
        head_preds, result["text_head"] = _text_head_predictions(rows, reading)
    for name in cfg.datasets + ["all"]:
        idx = [i for i, r in enumerate(rows) if name == "all" or r.dataset == name]
        d = _metrics([rows[i].label for i in idx], [preds[i] for i in idx])
        gsel = [g for k, g in gen.items() if name == "all" or k == name]
        if gsel:
            d["format_valid"] = float(np.mean([x for g in gsel for x in g["format"]]))
            d["parse_rate"] = float(np.mean([x for g in gsel for x in g["parsed"]]))
            d["empty_rationale"] = float(np.mean([x for g in gsel for x in g["empty"]]))
            d["mean_reward"] = float(np.mean([x for g in gsel for x in g["reward"]]))
            d["n_generated"] = sum(len(g["format"]) for g in gsel)
            pairs = [pair for g in gsel for pair in g["pairs"]]
            d["generated"] = _metrics([a for a, _ in pairs], [b for _, b in pairs])
            if name != "all":
                d["samples"] = gen[name]["samples"]
                d["generated_answers"] = gen[name]["answers"]
        if head_preds is not None:
            d["text_head"] = _metrics([rows[i].label for i in idx], [head_preds[i] for i in idx])
        result["datasets"][name] = d
    result["ids"] = {name: [r.id for r in rows if r.dataset == name] for name in cfg.datasets}
    return result


def _text_head_predictions(rows, reading: dict | None = None) -> tuple[list[str], dict]:
    """The shipped text head's labels for ``rows`` (texthead/shipped.py's choice) and which head that was; from the
    rows' own reading when read_text gave them one (the same head), else by running the head."""
    from omni_mer.texthead.shipped import text_head_dir

    folder = text_head_dir()
    if reading:
        from omni_mer.core.labels import LABELS
        from omni_mer.llm.prompt import head_probabilities

        probs = [head_probabilities(r.text_evidence) for r in rows]
        return [LABELS[int(np.argmax([p[lab] for lab in LABELS]))] for p in probs], {"folder": folder.name,
                                                                                      "digest": reading["digest"]}
    from omni_mer.texthead.encoder import encoder_for
    from omni_mer.texthead.evaluate import predict_labels
    from omni_mer.texthead.fused import load_text_head

    head = load_text_head(folder)
    return predict_labels(head, rows, encoder_for(head, threads=2).encode), {"folder": folder.name,
                                                                              "digest": head.digest}


def main(argv: list[str] | None = None, prog: str = "omni-mer eval-llm") -> int:
    from omni_mer.core.console import emit
    from omni_mer.texthead.args import parse_config

    cfg = parse_config(LLMEvalConfig, argv, prog, __doc__)
    from omni_mer.core.console import user_error
    from omni_mer.core.errors import ModelNotFoundError

    try:
        res = evaluate(cfg)
    except (FileNotFoundError, ModelNotFoundError) as exc:  # a missing table, model or calibration file
        return user_error(prog, exc)
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1, ensure_ascii=False), encoding="utf-8")
    lines = [f"{k}: acc5 {v['acc5']:.3f} uar {v['uar']:.3f}"
             + (f" format {v['format_valid']:.3f} reward {v['mean_reward']:.3f} empty rationale "
                f"{v['empty_rationale']:.3f} generated acc5 {v['generated']['acc5']:.3f} uar "
                f"{v['generated']['uar']:.3f}" if "format_valid" in v else "")
             + (f" | text head acc5 {v['text_head']['acc5']:.3f} uar {v['text_head']['uar']:.3f}"
                if "text_head" in v else "") for k, v in res["datasets"].items()]
    emit("\n".join(lines) + f"\nwritten to {out}")
    return 0
