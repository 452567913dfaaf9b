"""Per-stage timing of the omni scorer (processor inputs, label-scoring forward, generation, memory)."""

from __future__ import annotations

import logging
import statistics
import time

from omni_mer.core.clip import Clip
from omni_mer.core.config import MODALITIES

log = logging.getLogger(__name__)


def bench_omni(model, clips: list[Clip], evidences=None, generate: bool = True, coalitions: bool = False) -> dict:
    """Time the omni scorer on ``clips``; ``model`` is an OmniScorer or a model folder path.

    Returns seconds per clip for each stage (``inputs_s``: processor, ``score_s``: label scoring with all
    modalities incl. inputs, ``shapley8_s``: the 8 coalitions when ``coalitions``, ``generate_s``: batched
    generate), ``clips_per_s`` for label scoring, and peak GPU memory when on CUDA.
    """
    import torch

    from omni_mer.evidence.types import Evidence, ModalityEvidence
    from omni_mer.scorers.omni import OmniScorer

    scorer = model if isinstance(model, OmniScorer) else OmniScorer(str(model))
    if evidences is None:
        evidences = [
            Evidence(language=c.language or "en", transcript="", segments=[],
                     text=ModalityEvidence.absent("text", "bench"), audio=ModalityEvidence("audio", c.has_audio),
                     visual=ModalityEvidence("visual", c.has_video))
            for c in clips
        ]
    on_cuda = scorer.device.type == "cuda"
    if on_cuda:
        torch.cuda.reset_peak_memory_stats()
    keep = frozenset(MODALITIES)
    scorer.score(clips[0], evidences[0], keep)  # warm-up (kernels, caches)
    inputs_s, score_s, shap_s = [], [], []
    for clip, ev in zip(clips, evidences):
        t = time.perf_counter()
        scorer.score(clip, ev, keep)
        score_s.append(time.perf_counter() - t)
        inputs_s.append(scorer.timings.get("inputs_s", 0.0))
        if coalitions:
            from itertools import combinations

            t = time.perf_counter()
            for r in range(len(MODALITIES) + 1):
                for c in combinations(MODALITIES, r):
                    scorer.score(clip, ev, frozenset(c))
            shap_s.append(time.perf_counter() - t)
    result = {
        "device": str(scorer.device),
        "dtype": str(scorer.dtype),
        "n_clips": len(clips),
        "inputs_s": statistics.mean(inputs_s),
        "score_s": statistics.mean(score_s),
        "clips_per_s": len(clips) / sum(score_s),
    }
    if shap_s:
        result["shapley8_s"] = statistics.mean(shap_s)
    if generate:
        t = time.perf_counter()
        scorer.generate_batch(list(clips), list(evidences))
        result["generate_s"] = (time.perf_counter() - t) / len(clips)
        result["generation_valid_rate"] = sum(scorer.last_generation_valid) / len(clips)
    if on_cuda:
        result["peak_gpu_mem_gb"] = torch.cuda.max_memory_allocated() / 1e9
    log.info("omni bench: %s", result)
    return result
