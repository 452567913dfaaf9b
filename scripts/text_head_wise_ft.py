"""Does fine-tuning e5 on one language cost the other? Weight-space interpolation of a matrix condition's encoder.

    PYTHONPATH=$PWD .venv/bin/python scripts/text_head_wise_ft.py --data ../shared/data/text --condition zh \
        --alphas 0,0.25,0.5,0.75,1 --out runs/text_head_wise_ft.json

Trains the cross-lingual matrix's ``--condition`` head as `omni-mer eval-text` does (the shipped recipe, its own
encoder fine-tuned on that condition's native train rows; ``--head DIR`` reuses one saved by an earlier run, and
``--save DIR`` saves it), then, for each alpha, interpolates its tuned layers with the pretrained ones (WiSE-FT,
Wortsman et al. 2022: ``(1 - alpha) * pretrained + alpha * tuned``, re-quantised to Q4_0 as the engine reads
them; alpha 0 is the frozen encoder, 1 the tuned one), retrains the head on what that encoder embeds with the same
recipe (the shipped e5 head's, as `eval-text` reads it), and reports Acc-5 / UAR and the predicted label shares
on the en and zh test rows (native and translated) under the strict calibration (the training language's
validation rows only) and, for a one-language condition, the adapted one (each test language's calibration refitted
on its own validation rows), as in the matrix. Embeddings are cached in ``--cache`` by encoder. Each alpha costs one
embedding pass of the condition's rows, the validation and the test rows (~5 min on 2 cores for zh).
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from omni_mer.core.labels import LABELS
from omni_mer.texthead.corpus import load_corpus
from omni_mer.texthead.e5_packed import PackedE5, dequantize_q4_0, quantize_q4_0
from omni_mer.texthead.encoder import E5Encoder, EmbeddingCache, EncoderAdapter
from omni_mer.texthead.evaluate import CROSS_TRAIN, _metrics, _test_sets, predict_labels
from omni_mer.texthead.head import TextHead
from omni_mer.texthead.shipped import text_head_dir
from omni_mer.texthead.train import DEFAULT_CACHE, TrainTextConfig, fit_all_calibrations, train_head

log = logging.getLogger("text_head_wise_ft")


def interpolate(adapter: EncoderAdapter, alpha: float, packed: PackedE5) -> EncoderAdapter:
    """``adapter``'s tensors moved to ``(1 - alpha) * pretrained + alpha * tuned`` (4-bit blocks re-quantised)."""
    out = {}
    for name, value in adapter.tensors.items():
        base = packed.tensor(name)
        tuned = dequantize_q4_0(value, base.shape) if value.dtype == np.uint8 else value
        mixed = ((1.0 - alpha) * base + alpha * tuned).astype(np.float32)
        out[name] = (np.frombuffer(quantize_q4_0(mixed), dtype=np.uint8).copy() if value.dtype == np.uint8
                     else mixed)
    return EncoderAdapter(out, {**adapter.meta, "interpolation_alpha": alpha})


def test_metrics(head: TextHead, examples, embed) -> dict:
    """Acc-5, UAR and the share of each predicted label (LABELS order) per test pool, under the head's calibration."""
    out = {}
    for test, exs in _test_sets(examples, "test").items():
        if exs:
            pred = predict_labels(head, exs, embed)
            m = _metrics([e.label5 for e in exs], pred)
            out[test] = {"acc5": round(m["acc5"], 4), "uar": round(m["uar"], 4),
                         "predicted": [round(pred.count(lab) / len(pred), 3) for lab in LABELS]}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/text", help="folder of the labelled tables")
    ap.add_argument("--condition", default="zh", choices=list(CROSS_TRAIN), help="the matrix condition's train rows")
    ap.add_argument("--alphas", default="0,0.25,0.5,0.75,1", help="comma-separated shares of the tuned weights")
    ap.add_argument("--head", default="", help="a condition head saved by --save (skips its fine-tuning)")
    ap.add_argument("--save", default="", help="folder to save the condition's trained head in")
    ap.add_argument("--cache", default=str(DEFAULT_CACHE), help="embedding cache")
    ap.add_argument("--out", type=Path, default=Path("runs/text_head_wise_ft.json"), help="JSON to write")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    alphas = [float(a) for a in args.alphas.split(",")]
    if any(not 0.0 <= a <= 1.0 for a in alphas):
        ap.error(f"--alphas {args.alphas}: each must be in [0, 1]")
    examples = load_corpus(args.data)
    datasets = CROSS_TRAIN[args.condition]
    # the shipped e5 head's recipe, read from its saved config as eval-text's matrix reads it
    known = set(TrainTextConfig.__dataclass_fields__)
    saved = {k: v for k, v in TextHead.load(text_head_dir("e5")).meta.get("config", {}).items() if k in known}
    cfg = TrainTextConfig(**{**saved, "data": args.data, "cache": args.cache, "threads": 2, "fuse_with": "",
                             "keep_member": False, "train_datasets": ",".join(datasets),
                             "train_languages": "en,zh" if args.condition == "both" else args.condition,
                             "use_translations": False, "noise_fraction": 0.0})
    if args.head:
        tuned = TextHead.load(args.head)
        trained_on = tuned.meta.get("config", {}).get("train_datasets")
        if trained_on != cfg.train_datasets:
            ap.error(f"--head {args.head} was trained on {trained_on!r}; --condition {args.condition} trains on "
                     f"{cfg.train_datasets!r}")
    else:
        tuned, _ = train_head(cfg, examples)
        if args.save:
            tuned.save(args.save)
    if tuned.encoder is None:
        raise SystemExit(f"{args.head}: this head reads the frozen encoder; nothing to interpolate")
    packed = PackedE5()
    results = {"condition": args.condition, "train_datasets": list(datasets), "tuned_encoder": tuned.encoder_id,
               "alphas": {}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for alpha in alphas:
        adapter = interpolate(tuned.encoder, alpha, packed) if alpha > 0 else None
        cache = EmbeddingCache(args.cache, E5Encoder(threads=2, adapter=adapter))
        try:
            embed = lambda texts: cache.encode(texts, progress=True)  # noqa: E731
            head, meta = train_head(replace(cfg, finetune_layers=0), examples, embed)
            row = {"valid_objective": round(meta["valid_objective"], 4), "strict": test_metrics(head, examples, embed)}
            if args.condition != "both":  # as the matrix: "both" is calibrated on both languages already
                own = replace(head, calibration=fit_all_calibrations(
                    lambda exs, h=head: h.logits(embed([e.text for e in exs]), [e.lang for e in exs]), examples))
                row["adapted"] = test_metrics(own, examples, embed)
            results["alphas"][str(alpha)] = row
        finally:
            cache.close()
        log.info("alpha %s: %s", alpha, results["alphas"][str(alpha)])
        args.out.write_text(json.dumps(results, indent=1), encoding="utf-8")  # after each alpha: nothing lost
    print("| alpha | valid objective | en test Acc-5 / UAR | zh test | en (translated from zh) | zh (translated from en) "
          "| en test, adapted | zh test, adapted |")
    print("|---|---|---|---|---|---|---|---|")
    for alpha, r in results["alphas"].items():
        cells = [f"{m[t]['acc5']:.3f} / {m[t]['uar']:.3f}" if m and t in m else "-"
                 for m, t in [(r["strict"], t) for t in ("en", "zh", "en/translated", "zh/translated")]
                 + [(r.get("adapted"), t) for t in ("en", "zh")]]
        print(f"| {alpha} | {r['valid_objective']:.4f} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
