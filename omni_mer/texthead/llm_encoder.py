"""A Qwen2.5 LLM as a sentence encoder for the text head: the hidden state of the last token of a framed prompt.

Each transcript is framed as a sentiment question in its own language (``FRAMES``; Chinese when it holds CJK
characters), run through the first ``layer`` decoder layers of the model only (the layers above are dropped at load:
the forward costs ``layer / num_hidden_layers`` of the full model), and the hidden state of the frame's last token,
where the model is about to name the sentiment, is the feature vector. Measured in docs/text_head.md (Qwen2.5-Coder
-1.5B, layer 12 of 28: SIMS v2 linear probe 0.464 / 0.453 test Acc-5 / UAR vs e5's 0.392 / 0.384).

Public API:
    FRAMES  {lang: template with {t}}     frame(text) -> str
    LLMEncoder(model, layer, dtype="auto", threads=None)  .id  .cache_id  .dim  .encode(texts) -> (n, hidden) float32
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Sequence

import numpy as np

log = logging.getLogger(__name__)

# the last token is where a language model would name the sentiment
FRAMES = {"en": 'Sentence: "{t}"\nThe sentiment this sentence expresses is',
          "zh": "句子：“{t}”\n这句话表达的情感是"}
_CJK = re.compile(r"[\u4e00-\u9fff]")
LLM_ENCODER_PREFIX = "llm:"  # encoder ids of this module start with it (TextHead.encoder_id tells the kind)


def frame(text: str) -> str:
    """``text`` in its language's frame (Chinese when it holds a CJK character, else English)."""
    return FRAMES["zh" if _CJK.search(text) else "en"].format(t=text)


def frames_digest() -> str:
    """Short hash of FRAMES: part of every LLM encoder id (other frames, other vectors)."""
    return hashlib.sha1(json.dumps(FRAMES, ensure_ascii=False, sort_keys=True).encode()).hexdigest()[:8]


class LLMEncoder:
    """Last-token hidden state after decoder layer ``layer`` of a Qwen2.5 model (a registered name such as
    ``qwen2.5-coder-1.5b`` after ``OMNI_MER_LLM=qwen2.5-coder-1.5b bash scripts/setup.sh --llm``, or a model folder).

    ``id`` names what a head trained on these vectors needs (model, layer, frames; a folder is named with a hash of
    its config and weight sizes, so two folders of the same name never share cached vectors); ``cache_id`` adds the
    compute dtype (bfloat16 on a GPU or on a CPU that computes it natively, else float32:
    ``llm.model.inference_dtype``), so cached vectors of one dtype are never read as the other's. The model loads on
    the first ``encode``, only its first ``layer`` decoder layers (no LM head), on the GPU when there is one;
    ``threads`` (when given) sizes torch's CPU thread pool, process-wide, at that load."""

    def __init__(self, model: str = "qwen2.5-coder-1.5b", layer: int = 12, dtype: str = "auto",
                 batch: int = 16, threads: int | None = None) -> None:
        from omni_mer.llm.model import INFERENCE_DTYPES, default_device, inference_dtype, resolve_model_dir
        from omni_mer.llm.weights import MODELS

        if dtype not in INFERENCE_DTYPES:
            raise ValueError(f"dtype {dtype!r}: valid values are {', '.join(INFERENCE_DTYPES)}")
        if layer < 1:
            raise ValueError(f"layer {layer}: must be >= 1 (the output of that decoder layer)")
        self.model_dir = resolve_model_dir(model)  # raises ModelNotFoundError naming the setup step
        self.config = json.loads((self.model_dir / "config.json").read_text(encoding="utf-8"))
        n_layers = int(self.config["num_hidden_layers"])
        if layer > n_layers:
            raise ValueError(f"layer {layer}: {self.model_dir.name} has {n_layers} decoder layers")
        self.name, self.layer, self.batch, self.threads = str(model), layer, batch, threads
        self.dim = int(self.config["hidden_size"])
        label = str(model) if str(model) in MODELS else f"{self.model_dir.name}-{_folder_digest(self.model_dir)}"
        self.id = f"{LLM_ENCODER_PREFIX}{label}/layer{layer}/last/frames-{frames_digest()}"
        self.device = default_device()
        self.dtype = inference_dtype(dtype, self.device)
        self.cache_id = f"{self.id}/{str(self.dtype).removeprefix('torch.')}"
        self._net = self._tok = None

    def _load(self):
        if self._net is None:
            import torch
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging

            if self.threads:
                torch.set_num_threads(self.threads)
            keep = {"num_hidden_layers": self.layer}
            if self.config.get("layer_types"):
                keep["layer_types"] = self.config["layer_types"][:self.layer]
            level = hf_logging.get_verbosity()
            hf_logging.set_verbosity_error()  # the dropped layers and LM head are reported as unused weights
            try:
                body = AutoModel.from_pretrained(str(self.model_dir), dtype=self.dtype, local_files_only=True, **keep)
            finally:
                hf_logging.set_verbosity(level)
            body.norm = torch.nn.Identity()  # the raw output of the last kept layer (hidden_states[layer])
            tok = AutoTokenizer.from_pretrained(str(self.model_dir), local_files_only=True)
            tok.padding_side = "right"  # causal: the last real token never sees the right padding
            self._net, self._tok = body.to(self.device).eval(), tok
            log.info("text encoder: %s (%s), its first %d layers, %s on %s", self.id, self.model_dir, self.layer,
                     self.dtype, self.device)
        return self._net, self._tok

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(n, hidden) float32: the last token's hidden state of each framed text, batched by length."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        import torch

        net, tok = self._load()
        framed = [frame(t) for t in texts]
        order = np.argsort([len(t) for t in framed], kind="stable")
        out = np.zeros((len(framed), self.dim), dtype=np.float32)
        for s in range(0, len(framed), self.batch):
            idx = order[s:s + self.batch]
            enc = tok([framed[i] for i in idx], return_tensors="pt", padding=True).to(self.device)
            with torch.inference_mode():
                h = net(**enc, use_cache=False).last_hidden_state
            end = enc["attention_mask"].sum(1) - 1
            out[idx] = h[torch.arange(len(idx), device=h.device), end].float().cpu().numpy()
        return out


def _folder_digest(folder) -> str:
    """Short hash of a model folder's config and weight file sizes (what tells two checkpoints apart cheaply)."""
    h = hashlib.sha1((folder / "config.json").read_bytes())
    for f in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
        h.update(f"{f.name}:{f.stat().st_size}".encode())
    return h.hexdigest()[:8]
