"""Would a real pretrained LLM read the transcripts better than e5? Qwen2.5 hidden states vs e5, same rows, same probe.

    PYTHONPATH=$PWD .venv/bin/python scripts/text_head_llm_features.py --data ../shared/data/text \
        [--model qwen2.5-coder-0.5b] [--datasets sims2,mosei] [--train-limit 4000] [--test-limit 1500]

For each dataset (its native rows, its own splits; train and test subsampled with a fixed seed when larger than the
limits) every transcript is framed as a sentiment question (``FRAMES``) and run once through the LLM (weights from
``bash scripts/setup.sh --llm``; bfloat16 where the CPU computes it natively); the hidden state of the LAST token
(the frame's end, where the model is about to name the sentiment) and the mean over all tokens of the framed prompt
(template included) are kept at every fourth layer from the last (after the final norm) down to a third of the
depth. Features are cached in ``--features-dir`` per model, dataset and split, keyed by the model folder, the
dtype, the frames and the framed texts (``fingerprint``).

Each feature set is then read by the same probe: standardised, a logistic regression trained on the train rows
(C chosen on valid), the text head's calibration (texthead/calibrate.py) fitted on valid, selection by the head's
validation objective (Acc-5 + UAR) / 2, Acc-5 / UAR reported on test. The e5 rows are the same probe on
multilingual-e5-small frozen and on the shipped head's fine-tuned encoder (whose top layers were tuned on these
train rows). One language per probe: each dataset is its own train/valid/test. Writes ``--out`` (JSON) and prints
a markdown table for docs/text_head.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from omni_mer.core.labels import LABEL_INDEX, LABELS
from omni_mer.llm.model import INFERENCE_DTYPES
from omni_mer.texthead.corpus import DATASETS, load_corpus, select
from omni_mer.texthead.llm_encoder import FRAMES  # the framing the shipped LLM features use too

SPLITS = ("train", "valid", "test")
C_GRID = (0.00001, 0.00003, 0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1)


def rows_of(examples, dataset: str, train_limit: int, test_limit: int, seed: int) -> dict[str, list]:
    """The native rows of ``dataset`` per split; train/test subsampled (fixed seed) above their limits. One
    generator draws train then test, so the test sample depends on ``--train-limit`` too."""
    rng = np.random.default_rng(seed)
    out = {}
    for split in SPLITS:
        rows = select(examples, split=split, datasets=[dataset], translated=False)
        limit = {"train": train_limit, "test": test_limit}.get(split, 0)
        if limit and len(rows) > limit:
            rows = [rows[i] for i in sorted(rng.choice(len(rows), limit, replace=False))]
        if not rows:
            raise SystemExit(f"--datasets {dataset}: no native {split} rows (a probe needs train, valid and test)")
        out[split] = rows
    return out


def llm_features(model, tok, rows, batch: int = 16) -> dict[str, np.ndarray]:
    """``{"last", "mean"}``: (layers, len(rows), hidden) hidden states at every fourth layer from the last down to a
    third of the depth, and ``layers``."""
    import torch

    n_layers = model.config.num_hidden_layers
    layers = tuple(sorted(range(n_layers, n_layers // 3 - 1, -4)))
    texts = [FRAMES[r.lang].format(t=r.text) for r in rows]
    order = np.argsort([len(t) for t in texts])  # similar lengths per batch: little padding
    last = np.zeros((len(layers), len(texts), model.config.hidden_size), np.float32)
    mean = np.zeros_like(last)
    tok.padding_side = "right"
    for s in range(0, len(texts), batch):
        idx = order[s:s + batch]
        enc = tok([texts[i] for i in idx], return_tensors="pt", padding=True)
        with torch.inference_mode():
            hidden = model.model(**enc, output_hidden_states=True).hidden_states
        mask = enc["attention_mask"].unsqueeze(-1).float()
        end = enc["attention_mask"].sum(1) - 1
        for k, layer in enumerate(layers):
            h = hidden[layer].float()
            last[k, idx] = h[torch.arange(len(idx)), end].numpy()
            mean[k, idx] = ((h * mask).sum(1) / mask.sum(1)).numpy()
    return {"last": last, "mean": mean, "layers": np.asarray(layers)}


def fingerprint(model_dir: Path, dtype: str, rows) -> str:
    """What the cached features depend on: the model folder, the compute dtype, the frames and the framed texts."""
    import hashlib

    h = hashlib.sha1(json.dumps([str(model_dir), dtype, FRAMES], ensure_ascii=False).encode())
    for r in rows:
        h.update(f"{r.id}\t{r.lang}\t{r.text}\n".encode())
    return h.hexdigest()


def cached_llm_features(folder: Path, model_name: str, dataset: str, split: str, rows, key: str, load) -> dict:
    """``llm_features`` of ``rows``, read from ``folder`` when the same rows were extracted the same way (``key``)."""
    path = folder / f"{Path(model_name).name}_{dataset}_{split}.npz"
    if path.is_file():
        with np.load(path) as z:
            if "key" in z and str(z["key"]) == key:
                return {k: z[k] for k in ("last", "mean", "layers")}
    model, tok = load()
    t0 = time.perf_counter()
    feats = llm_features(model, tok, rows)
    logging.info("%s %s %s: %d rows in %.0f s", model_name, dataset, split, len(rows), time.perf_counter() - t0)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(path, key=np.asarray(key), ids=np.asarray([r.id for r in rows]), **feats)
    return feats


def probe(features: dict[str, np.ndarray], y: dict[str, np.ndarray]) -> dict:
    """Standardise, logistic regression (C on valid), calibration on valid; the valid objective and test metrics."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from omni_mer.eval.metrics import classification_metrics
    from omni_mer.texthead.calibrate import fit_calibration, objective

    missing = sorted(set(range(len(LABELS))) - set(np.unique(y["train"])))
    if missing:  # the logits' columns would no longer be the five labels
        raise SystemExit(f"the train rows have no {[LABELS[k] for k in missing]}: raise --train-limit")
    scaler = StandardScaler().fit(features["train"])
    x = {s: scaler.transform(features[s]) for s in SPLITS}
    best: dict = {}
    best_valid = -1.0
    for c in C_GRID:
        clf = LogisticRegression(max_iter=3000, C=c).fit(x["train"], y["train"])
        zv, zt = clf.decision_function(x["valid"]), clf.decision_function(x["test"])
        cal = fit_calibration(zv, y["valid"])
        valid = objective(y["valid"], cal.apply(zv).argmax(1))
        if valid > best_valid:  # test metrics only for the C that valid picks
            best_valid = valid
            m = classification_metrics([LABELS[k] for k in y["test"]], [LABELS[k] for k in cal.apply(zt).argmax(1)])
            best = {"valid_objective": round(valid, 4), "C": c, "acc5": round(m["acc5"], 4),
                    "uar": round(m["uar"], 4), "n_test": m["n"]}
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/text", help="folder of the labelled tables")
    ap.add_argument("--model", default="qwen2.5-coder-0.5b", help="LLM folder or registered name (setup.sh --llm)")
    ap.add_argument("--datasets", default="sims2,mosei", help="comma-separated datasets, each probed on its own")
    ap.add_argument("--train-limit", type=int, default=4000, help="train rows per dataset at most (seeded sample)")
    ap.add_argument("--test-limit", type=int, default=1500, help="test rows per dataset at most (seeded sample)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", default="auto", choices=INFERENCE_DTYPES,
                    help="LLM compute dtype (auto = bfloat16 where the CPU computes it natively); float32 gives "
                         "CPU-independent features")
    ap.add_argument("--features-dir", type=Path, default=Path("runs/llm-features"), help="feature cache folder")
    ap.add_argument("--out", type=Path, default=Path("runs/text_head_llm_features.json"), help="JSON to write")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    import torch

    from omni_mer.llm.model import inference_dtype, load_llm, resolve_model_dir
    from omni_mer.texthead.encoder import E5Encoder, EmbeddingCache, EncoderAdapter
    from omni_mer.texthead.head import DEFAULT_HEAD_DIR
    from omni_mer.texthead.train import DEFAULT_CACHE

    torch.set_num_threads(2)
    loaded: list = []

    def load():
        if not loaded:
            loaded.extend(load_llm(model_dir, dtype=dtype))
        return loaded

    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    bad = [d for d in datasets if d not in DATASETS]
    if bad or not datasets:
        ap.error(f"--datasets {args.datasets!r}: unknown {bad}; valid: {', '.join(DATASETS)}")
    tuned = EncoderAdapter.load(DEFAULT_HEAD_DIR)
    if tuned is None:
        ap.error(f"{DEFAULT_HEAD_DIR} has no fine-tuned encoder (encoder.npz/encoder.json)")
    model_dir, dtype = resolve_model_dir(args.model), inference_dtype(args.dtype)
    examples = load_corpus(args.data)
    encoders = {"e5 frozen": None, "e5 fine-tuned (shipped)": tuned}
    results: dict = {"config": {"model": args.model, "dtype": str(dtype).removeprefix("torch."), "seed": args.seed,
                                "train_limit": args.train_limit, "test_limit": args.test_limit,
                                "C_grid": list(C_GRID), "frames": FRAMES}}
    for dataset in datasets:
        rows = rows_of(examples, dataset, args.train_limit, args.test_limit, args.seed)
        y = {s: np.asarray([LABEL_INDEX[r.label5] for r in rows[s]]) for s in SPLITS}
        res = results[dataset] = {"n": {s: len(rows[s]) for s in SPLITS}}
        for name, adapter in encoders.items():
            cache = EmbeddingCache(DEFAULT_CACHE, E5Encoder(threads=2, adapter=adapter))
            res[name] = probe({s: cache.encode([r.text for r in rows[s]], progress=True) for s in SPLITS}, y)
            cache.close()
            logging.info("%s %s: %s", dataset, name, res[name])
        key = {s: fingerprint(model_dir, str(dtype), rows[s]) for s in SPLITS}
        feats = {s: cached_llm_features(args.features_dir, args.model, dataset, s, rows[s], key[s], load)
                 for s in SPLITS}
        for pool in ("last", "mean"):
            for k, layer in enumerate(feats["train"]["layers"]):
                name = f"{Path(args.model).name} {pool} token, layer {int(layer)}"
                res[name] = probe({s: feats[s][pool][k] for s in SPLITS}, y)
                logging.info("%s %s: %s", dataset, name, res[name])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")
    for dataset, res in results.items():
        if dataset == "config":
            continue
        print(f"\n{dataset} (rows: {res['n']})\n\n| features | valid objective | C | test Acc-5 | test UAR |\n|---|---|---|---|---|")
        for name, r in res.items():
            if name != "n":
                print(f"| {name} | {r['valid_objective']:.4f} | {r['C']} | {r['acc5']:.3f} | {r['uar']:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
