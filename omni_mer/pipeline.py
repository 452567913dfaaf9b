"""One video through the whole path: decode -> evidence -> score -> explain -> write.

Used in-process by the batch job's workers (omni_mer.batch.predict), the demo and the benchmark. Models are loaded once
per Pipeline, never per clip.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from omni_mer.core.clip import Clip
from omni_mer.core.config import MediaConfig
from omni_mer.evidence.extract import EvidenceExtractor
from omni_mer.evidence.types import Evidence
from omni_mer.scorers.base import Scorer

log = logging.getLogger(__name__)

BACKENDS = ("auto", "lite", "omni", "llm")  # llm: text-only Qwen2.5 reading the evidence as text
MODEL_ENV = "OMNI_MER_MODEL"


def resolve_backend(backend: str, model: str | None) -> str:
    """auto = omni when a model is configured (--model or $OMNI_MER_MODEL), else lite."""
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}")
    if backend != "auto":
        return backend
    chosen = "omni" if (model or os.environ.get(MODEL_ENV)) else "lite"
    log.info("backend auto -> %s (%s)", chosen, "a model is configured" if chosen == "omni" else "no model configured")
    return chosen


def build_scorer(backend: str, model: str | None = None, adapter: str | None = None,
                 media: MediaConfig | None = None, calibration: Path | None = None,
                 max_new_tokens: int = 256, llm_dtype: str = "auto") -> Scorer:
    """The scorer of ``backend`` (``llm_dtype``: the llm backend's compute dtype, omni_mer.llm.model.inference_dtype)."""
    backend = resolve_backend(backend, model)
    if backend == "llm":
        from omni_mer.scorers.llm import LLMScorer

        return LLMScorer(model, adapter=adapter, max_new_tokens=min(max_new_tokens, 128), dtype=llm_dtype)
    if backend == "omni":
        from omni_mer.scorers.omni import OmniScorer

        return OmniScorer(model or os.environ.get(MODEL_ENV), adapter=adapter, media=media or MediaConfig(),
                          max_new_tokens=max_new_tokens)
    from omni_mer.scorers.lite import LiteScorer

    return LiteScorer.from_path(calibration)


@dataclass
class Analysis:
    """Everything known about one file after the pipeline ran."""

    id: str
    path: Path
    clip: Clip
    evidence: Evidence
    explanation: dict
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.explanation["label"]


class Pipeline:
    def __init__(self, scorer: Scorer, media: MediaConfig | None = None,
                 extractor: EvidenceExtractor | None = None) -> None:
        self.scorer = scorer
        self.media = media or MediaConfig()
        self.extractor = extractor or EvidenceExtractor()

    @classmethod
    def build(cls, backend: str = "auto", model: str | None = None, adapter: str | None = None,
              media: MediaConfig | None = None, calibration: Path | None = None,
              max_new_tokens: int = 256, llm_dtype: str = "auto") -> "Pipeline":
        media = media or MediaConfig()
        return cls(build_scorer(backend, model, adapter, media, calibration, max_new_tokens, llm_dtype), media)

    def warm_up(self) -> None:
        self.extractor.warm_up()

    def analyze(self, path: Path, clip_id: str | None = None, language: str | None = None) -> Analysis:
        """Run decode -> evidence -> score -> explain on one file. Raises typed errors (omni_mer.core.errors)."""
        from omni_mer.media import decode

        path = Path(path)
        transcription: list[Future] = []

        def start_asr(heard: Clip) -> None:  # Whisper starts on the audio while the frames decode
            if not heard.audio_is_silent:
                transcription.append(self.extractor.start_transcription(heard))

        t = time.perf_counter()
        try:
            clip = decode(path, self.media, clip_id=clip_id, language=language, on_audio=start_asr)
        except BaseException:
            for job in transcription:
                job.exception()  # wait for it: the next clip must not find Whisper still busy
            raise
        decode_s = time.perf_counter() - t
        for w in clip.warnings:
            log.warning("%s: %s", path.name, w)
        return self.analyze_clip(clip, timings={"decode": decode_s},
                                 transcript=transcription[0] if transcription else None)

    def analyze_clip(self, clip: Clip, evidence: Evidence | None = None,
                     timings: dict[str, float] | None = None, transcript=None) -> Analysis:
        """evidence -> score -> explain on an already decoded (possibly perturbed) Clip.

        ``evidence`` skips extraction (e.g. evidence edited by a perturbation); ``timings`` are carried over;
        ``transcript`` (an asr.Transcript, or the Future of one already running) replaces the ASR.
        """
        from omni_mer.explain import explain

        timings = dict(timings or {})
        if evidence is None:
            evidence = self.extractor.extract(clip, transcript=transcript)
            timings.update(evidence.timings)

        t = time.perf_counter()
        generated = self.scorer.generate(clip, evidence)
        timings["generate"] = time.perf_counter() - t

        t = time.perf_counter()
        explanation = explain(clip, evidence, self.scorer, generated=generated).to_dict()
        timings["fusion"] = time.perf_counter() - t
        explanation.setdefault("warnings", list(clip.warnings))
        explanation["timings"] = {**explanation.get("timings", {}), **{k: round(v, 4) for k, v in timings.items()}}
        return Analysis(id=clip.id, path=Path(clip.path), clip=clip, evidence=evidence, explanation=explanation,
                        timings=timings)

