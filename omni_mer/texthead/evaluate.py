"""`omni-mer eval-text`: the text head on the datasets' held-out splits, the cross-lingual matrix, ASR noise.

    omni-mer eval-text --data ../shared/data/text --split test --head e5 --out runs/text_eval

(``--head auto``, the default, is the fused head when its LLM is set up: its matrix is its LLM member's, below.)

``DIR/metrics.json`` = {"<dataset>": {"acc5", "uar", "mae", "n", ...} for MOSEI, MOSI, SIMSv2, MER2023
(native transcripts), "<dataset>/translated": the same rows machine-translated into the other language,
"<dataset>/asr_noise": the same rows with ASR-like noise (texthead/noise.py), "crosslingual": {...}}.

(SIMS v1 is a subset of SIMS v2 and is not loaded: corpus.DEFAULT_DATASETS.)

Cross-lingual matrix: heads trained with the shipped head's settings on native train rows of en only (MOSEI+MOSI),
zh only (SIMSv2+MER2023) and both, no translations, each tested on en and zh native and translated rows.
``retention[train][test] = acc5(train -> test) / acc5(test -> test)``. Calibration: "strict" uses only the
training language's validation rows, for selection too (true zero-shot); "adapted" refits the test language's
five class biases and temperature on its validation rows (a few hundred labels, no retraining). For a fused head
(texthead/fused.py) the matrix retrains its first LLM member on the frozen LLM encoder (the e5 member's matrix,
which fine-tunes three encoders, is the e5 head's own: docs/text_head.md).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from omni_mer.core.labels import LABELS
from omni_mer.eval.metrics import classification_metrics
from omni_mer.texthead.corpus import DATASETS, DEFAULT_DATASETS, TextExample, load_corpus, select
from omni_mer.texthead.encoder import CachedEmbedder
from omni_mer.core.i18n import LANGUAGES
from omni_mer.texthead.fused import load_text_head
from omni_mer.texthead.head import TextHead
from omni_mer.texthead.shipped import text_head_dir

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
CROSS_TRAIN = {"en": ("mosei", "mosi"), "zh": ("sims2", "mer2023"), "both": DEFAULT_DATASETS}
NOISE_RATE = 0.1
NOISE_SEED = 1234


def _metrics(gold: list[str], pred: list[str]) -> dict:
    m = classification_metrics(gold, pred)
    return {k: m[k] for k in ("acc5", "uar", "mae", "macro_f1", "acc2", "n")}


def predict_labels(head: TextHead, examples: list[TextExample], embed) -> list[str]:
    """Argmax labels of the head for each example, under the example's own language's calibration."""
    if not examples:
        return []
    unknown = sorted({e.lang for e in examples} - set(LANGUAGES))
    if unknown:
        raise ValueError(f"examples in languages {unknown}; the text head reads {', '.join(LANGUAGES)}")
    langs = [e.lang for e in examples]
    return [LABELS[k] for k in head.probs(head.logits(embed([e.text for e in examples]), langs), langs).argmax(1)]


def evaluate_head(head: TextHead, examples: list[TextExample], split: str = "test", cache: str | Path | None = None,
                  threads: int = 2, embed=None, noise: bool = True) -> dict:
    """Per-dataset metrics of ``head`` on ``split``: native, translated and (``noise``) ASR-noised transcripts."""
    from omni_mer.texthead.noise import asr_noise

    if embed is None:
        from omni_mer.texthead.train import DEFAULT_CACHE

        own = CachedEmbedder.for_head(cache or DEFAULT_CACHE, head, threads)
        try:
            return evaluate_head(head, examples, split, embed=own, noise=noise)
        finally:
            own.close()
    out: dict = {}
    rng = np.random.default_rng(NOISE_SEED)
    for key, (name, _) in DATASETS.items():
        native = select(examples, split=split, datasets=[key], translated=False)
        if not native:
            continue
        out[name] = _metrics([e.label5 for e in native], predict_labels(head, native, embed))
        trans = select(examples, split=split, datasets=[key], translated=True)
        if trans:
            out[f"{name}/translated"] = _metrics([e.label5 for e in trans], predict_labels(head, trans, embed))
        if noise:
            noisy = [replace(e, text=asr_noise(e.text, e.lang, rng, NOISE_RATE)) for e in native]
            out[f"{name}/asr_noise"] = _metrics([e.label5 for e in noisy], predict_labels(head, noisy, embed))
    return out


def _test_sets(examples: list[TextExample], split: str) -> dict[str, list[TextExample]]:
    return {
        "en": select(examples, split=split, langs=["en"], translated=False),
        "zh": select(examples, split=split, langs=["zh"], translated=False),
        "en/translated": select(examples, split=split, langs=["en"], translated=True),
        "zh/translated": select(examples, split=split, langs=["zh"], translated=True),
    }


def crosslingual(examples: list[TextExample], base_config, embed, split: str = "test") -> dict:
    """Train en-only / zh-only / both heads (no translations) and test them on every language (module docstring).

    With ``base_config.finetune_layers > 0`` and no ``embed`` given, each condition fine-tunes its own encoder on its
    own train rows too (an en-only head on an encoder tuned with Mandarin labels would not be zero-shot)."""
    from omni_mer.texthead.train import fit_all_calibrations, train_head

    tests = _test_sets(examples, split)
    own_encoders = embed is None
    result: dict = {"metric": "acc5", "train_sets": {k: list(v) for k, v in CROSS_TRAIN.items()},
                    "encoder": "fine-tuned per condition" if own_encoders else "shared"}
    for mode in ("strict", "adapted"):
        result[mode] = {"acc5": {}, "uar": {}, "retention": {}}
    heads = {}
    for name, datasets in CROSS_TRAIN.items():
        langs = "en,zh" if name == "both" else name
        cfg = replace(base_config, train_datasets=",".join(datasets), train_languages=langs, use_translations=False,
                      noise_fraction=0.0)
        if own_encoders:
            head, _ = train_head(cfg, examples)
            embed = CachedEmbedder.for_head(cfg.cache, head, cfg.threads)
        else:
            head, _ = train_head(cfg, examples, embed)
        heads[name] = head
        try:
            for mode in ("strict", "adapted"):
                h = head
                if mode == "adapted" and name != "both":  # the strict head's calibration is the trained language's
                    h = replace(head, calibration=fit_all_calibrations(
                        lambda exs, h0=head: h0.logits(embed([e.text for e in exs]), [e.lang for e in exs]),
                        examples))
                accs, uars = {}, {}
                for test, exs in tests.items():
                    if not exs:
                        continue
                    m = _metrics([e.label5 for e in exs], predict_labels(h, exs, embed))
                    accs[test], uars[test] = m["acc5"], m["uar"]
                result[mode]["acc5"][name] = accs
                result[mode]["uar"][name] = uars
        finally:
            if own_encoders:
                embed.close()
    for mode in ("strict", "adapted"):
        acc = result[mode]["acc5"]
        for tr in CROSS_TRAIN:
            result[mode]["retention"][tr] = {
                te: (acc[tr][te] / acc[te.split("/")[0]][te] if acc.get(te.split("/")[0], {}).get(te) else None)
                for te in acc[tr]
            }
    return result


def write_metrics(metrics: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(metrics, indent=2, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)
    return path


@dataclass
class EvalTextConfig:
    """Flags of `omni-mer eval-text`."""

    data: str = field(default="../shared/data/text", metadata={"help": "folder of the labelled tables"})
    split: str = field(default="test", metadata={"help": "split to report", "choices": list(SPLITS)})
    out: str = field(default="runs/text_eval", metadata={"help": "folder for metrics.json"})
    head: str = field(default="auto", metadata={
        "help": "trained text head folder, or auto / e5 / fused: a shipped one (texthead/shipped.py)"})
    cache: str = field(default="", metadata={"help": "embedding cache; %(default)r: the train-text cache"})
    threads: int = field(default=2, metadata={"help": "CPU threads"})
    crosslingual: bool = field(default=True, metadata={
        "help": "also train and test the cross-lingual matrix (three heads, each fine-tuning its encoder when the "
                "head's recipe does: ~80 min on 2 cores for the e5 head)"})

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"--split {self.split!r}: valid values are {', '.join(SPLITS)}")


def main(argv: list[str] | None = None) -> int:
    """omni-mer eval-text: metrics of the text head per dataset, translated, with ASR noise, and cross-lingually."""
    from omni_mer.core.console import emit
    from omni_mer.texthead.args import parse_config
    from omni_mer.texthead.train import DEFAULT_CACHE, TrainTextConfig

    cfg = parse_config(EvalTextConfig, argv, prog="omni-mer eval-text", description=main.__doc__)
    from omni_mer.core.console import user_error
    from omni_mer.core.errors import ModelNotFoundError

    try:
        folder = text_head_dir(cfg.head)
        head = load_text_head(folder)
        examples = load_corpus(cfg.data)
    except (ValueError, FileNotFoundError, ModelNotFoundError) as exc:
        return user_error("omni-mer eval-text", exc)
    cache = cfg.cache or str(DEFAULT_CACHE)
    metrics = evaluate_head(head, examples, split=cfg.split, cache=cache, threads=cfg.threads)
    metrics["head"] = {"folder": folder.name, "digest": head.digest, "encoder": head.encoder_id}
    if cfg.crosslingual:
        matrix_head = head
        if getattr(head, "members", None):  # fused: the matrix retrains its member on a frozen encoder (docstring)
            matrix_head = next((m for m in head.members if m.encoder_spec), head.members[0])
        known = set(TrainTextConfig.__dataclass_fields__)
        saved = {k: v for k, v in matrix_head.meta.get("config", {}).items() if k in known}
        base = TrainTextConfig(**{**saved, "data": cfg.data, "threads": cfg.threads, "fuse_with": "",
                                  "keep_member": False, "cache": cache})
        if matrix_head.encoder is not None:  # fine-tuned: each condition fine-tunes its own encoder (docstring)
            metrics["crosslingual"] = crosslingual(examples, base, None, split=cfg.split)
        else:
            matrix_embed = CachedEmbedder.for_head(cache, matrix_head, cfg.threads)
            try:
                metrics["crosslingual"] = crosslingual(examples, base, matrix_embed, split=cfg.split)
            finally:
                matrix_embed.close()
        if matrix_head is not head:
            metrics["crosslingual"]["head"] = f"the fused head's member on {matrix_head.encoder_id}"
    path = write_metrics(metrics, Path(cfg.out) / "metrics.json")
    emit(json.dumps({k: {m: round(v[m], 4) if isinstance(v[m], float) else v[m] for m in ("acc5", "uar", "mae", "n")}
                     for k, v in metrics.items() if "acc5" in v}, indent=1))
    if "crosslingual" in metrics:
        emit(json.dumps(metrics["crosslingual"]["strict"]["retention"], indent=1))
    emit(f"wrote {path}")
    return 0
