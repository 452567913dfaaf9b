"""Does LoRA-tuning the LLM encoder read Mandarin better than the frozen one? SIMS v2 only, one head recipe for both.

    OMNI_MER_LLM=qwen2.5-coder-1.5b bash scripts/setup.sh --llm      # the weights, once
    PYTHONPATH=$PWD .venv/bin/python scripts/text_head_llm_lora.py --data ../shared/data/text \
        --epochs 3 --out runs/text_head_llm_lora.json                # ~40 min on 2 cores (bf16)

The fused head's LLM members read frozen Qwen2.5-Coder-1.5B states (the last token of the framed transcript after
decoder layer 12, texthead/llm_encoder.py); fine-tuning was e5's lever for English. This measures the same lever for
the LLM on Mandarin: a head (LayerNorm, 1536→256→5 MLP, the text head's neighbour-smoothed targets and class-balance
weights) is trained on SIMS v2's 2,718 train rows (a) on the frozen states (control: 3 seeds × 30 epochs, the best
by the validation objective) and (b) jointly with LoRA adapters (rank 8 on q/k/v/o of the 12 kept layers, 0.9M
parameters) for ``--epochs`` epochs. Both get the text head's calibration fitted on SIMS v2 valid; the control reports
its best epoch, LoRA every epoch (valid objective, test Acc-5 / UAR). Runs on the GPU when there is one.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from omni_mer.core.labels import LABEL_INDEX, LABELS
from omni_mer.eval.metrics import classification_metrics
from omni_mer.texthead.calibrate import fit_calibration, objective
from omni_mer.texthead.corpus import load_corpus, select
from omni_mer.texthead.finetune import length_batches
from omni_mer.texthead.llm_encoder import LLMEncoder, frame
from omni_mer.texthead.train import TrainTextConfig, _smoothed_targets, _weights

log = logging.getLogger("text_head_llm_lora")


def main() -> int:
    import torch
    from peft import LoraConfig, get_peft_model
    from torch import nn

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/text", help="folder of the labelled tables")
    ap.add_argument("--model", default="qwen2.5-coder-1.5b", help="the LLM (set up by scripts/setup.sh --llm)")
    ap.add_argument("--layer", type=int, default=12, help="decoder layers kept (the fused head's members: 12)")
    ap.add_argument("--epochs", type=int, default=3, help="LoRA epochs (0: the frozen control only)")
    ap.add_argument("--rank", type=int, default=8, help="LoRA rank")
    ap.add_argument("--out", type=Path, default=Path("runs/text_head_llm_lora.json"), help="JSON to write")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(2)
    torch.manual_seed(0)

    examples = load_corpus(args.data)
    rows = {split: select(examples, split=split, datasets=["sims2"], translated=False)
            for split in ("train", "valid", "test")}
    train = rows["train"]
    gold = {split: np.asarray([LABEL_INDEX[e.label5] for e in r]) for split, r in rows.items()}
    weights = torch.tensor(_weights(train, TrainTextConfig(train_datasets="sims2", train_languages="zh")),
                           dtype=torch.float32)
    targets = torch.tensor(_smoothed_targets(gold["train"], 0.2), dtype=torch.float32)
    encoder = LLMEncoder(args.model, args.layer, threads=2)
    body, tok = encoder._load()
    device = encoder.device
    weights, targets = weights.to(device), targets.to(device)
    results: dict = {"model": encoder.id, "rank": args.rank, "runs": {}}

    def states(net, texts: list[str], grad: bool = False, batch: int = 16):
        out = []
        for s in range(0, len(texts), batch):
            enc = tok([frame(t) for t in texts[s:s + batch]], return_tensors="pt", padding=True).to(device)
            with torch.set_grad_enabled(grad):
                h = net(**enc, use_cache=False).last_hidden_state
            end = enc["attention_mask"].sum(1) - 1
            out.append(h[torch.arange(len(end), device=device), end].float())
        return torch.cat(out)

    def make_head():
        return nn.Sequential(nn.LayerNorm(encoder.dim), nn.Linear(encoder.dim, 256), nn.GELU(approximate="tanh"),
                             nn.Dropout(0.1), nn.Linear(256, len(LABELS))).to(device)

    def loss_of(z, b):
        return (-(targets[b] * torch.log_softmax(z, 1)).sum(1) * weights[b]).mean()

    def report(name: str, z_valid: np.ndarray, z_test: np.ndarray, extra: dict) -> None:
        cal = fit_calibration(z_valid, gold["valid"])
        pred = cal.apply(z_test).argmax(1)
        m = classification_metrics([LABELS[i] for i in gold["test"]], [LABELS[i] for i in pred])
        results["runs"][name] = {"valid_objective": round(float(objective(gold["valid"],
                                                                          cal.apply(z_valid).argmax(1))), 4),
                                 "test_acc5": round(m["acc5"], 4), "test_uar": round(m["uar"], 4), **extra}
        log.info("%s: %s", name, results["runs"][name])
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1), encoding="utf-8")

    # (a) control: the same head on the frozen states
    frozen = {split: states(body, [e.text for e in r]) for split, r in rows.items()}
    best = None
    for seed in (0, 1, 2):
        torch.manual_seed(seed)
        head = make_head()
        opt = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=0.01)
        for epoch in range(30):
            head.train()
            perm = torch.randperm(len(train)).to(device)
            for s in range(0, len(train), 32):
                b = perm[s:s + 32]
                opt.zero_grad()
                loss_of(head(frozen["train"][b]), b).backward()
                opt.step()
            head.eval()
            with torch.no_grad():
                zv, zt = head(frozen["valid"]).cpu().numpy(), head(frozen["test"]).cpu().numpy()
            score = objective(gold["valid"], zv.argmax(1))
            if best is None or score > best[0]:
                best = (score, zv, zt, {"seed": seed, "epoch": epoch + 1})
    report("frozen states", best[1], best[2], best[3])

    # (b) LoRA adapters and the head, jointly
    if args.epochs > 0:
        torch.manual_seed(0)
        net = get_peft_model(body, LoraConfig(r=args.rank, lora_alpha=2 * args.rank, lora_dropout=0.05,
                                              target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
        head = make_head()
        adapters = [p for p in net.parameters() if p.requires_grad]
        opt = torch.optim.AdamW([{"params": adapters, "lr": 2e-4}, {"params": head.parameters(), "lr": 1e-3}],
                                weight_decay=0.01)
        batch = 16
        steps = args.epochs * int(np.ceil(len(train) / batch))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / (steps // 10))
                                                  * 0.5 * (1 + np.cos(np.pi * min(1.0, s / steps))))
        lengths = np.asarray([len(e.text) for e in train])
        rng = np.random.default_rng(0)
        for epoch in range(args.epochs):
            batches = length_batches(lengths, batch, rng, chunk=20)
            net.train()
            head.train()
            t0 = time.perf_counter()
            for b in batches:
                loss = loss_of(head(states(net, [train[i].text for i in b], grad=True, batch=batch)),
                               torch.as_tensor(b, device=device))
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
            net.eval()
            head.eval()
            with torch.no_grad():
                zv = head(states(net, [e.text for e in rows["valid"]])).cpu().numpy()
                zt = head(states(net, [e.text for e in rows["test"]])).cpu().numpy()
            report(f"LoRA rank {args.rank}, epoch {epoch + 1} of {args.epochs}", zv, zt,
                   {"seconds": round(time.perf_counter() - t0, 1)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
