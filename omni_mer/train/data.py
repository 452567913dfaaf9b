"""Training data from the unified manifest: SFT examples (cue-grounded rationale ending in the GOLD label, or for a
seeded ``label_only_share`` of the clips the label-only answer that label scoring reads) and GRPO examples (gold
label, language and the evidence the rewards read).

Evidence is cached per clip (JSON of ``Evidence.to_dict()`` keyed by clip id + file hash under the run's cache
dir) and filled by the ``extract_fn(clip) -> Evidence`` the caller passes, so a second epoch never re-runs ASR.
Prompt building, input building and label parsing are NOT here: they come from omni_mer.omni.prompts /
omni_mer.omni.inputs / omni_mer.core.labels (one source of truth for inference and training).
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from omni_mer.core.clip import Clip
from omni_mer.core.config import MODALITIES, MediaConfig
from omni_mer.data.manifest import ManifestRecord, normalise_split
from omni_mer.evidence.extract import EvidenceCache  # noqa: F401  (re-exported: training callers use it)
from omni_mer.core.answer import label_only_answer
from omni_mer.evidence.types import Evidence, ModalityEvidence
from omni_mer.llm.prompt import grounded_target
from omni_mer.core.labels import LABEL_INDEX, from_mosei, from_sims
from omni_mer.omni.inputs import clip_uses
from omni_mer.omni.prompts import build_messages

log = logging.getLogger(__name__)

ExtractFn = Callable[[Clip], Evidence]


# ----------------------------------------------------------------------------- manifest
def _label5(d: dict, where: str) -> str:
    """label5 of a manifest row; derived from ``score`` (+ ``score_scale`` mosei/sims) when the row has none."""
    label = d.get("label5") or d.get("label")
    if label:
        if label not in LABEL_INDEX:
            raise ValueError(f"{where}: label {label!r} is not one of {tuple(LABEL_INDEX)}")
        return label
    if d.get("score") is None:
        raise ValueError(f"{where}: row has neither label5 nor score")
    scale = (d.get("score_scale") or ("sims" if str(d.get("lang", "")).startswith("zh") else "mosei")).lower()
    if scale not in ("mosei", "sims"):
        raise ValueError(f"{where}: score_scale {scale!r} is not one of ('mosei', 'sims')")
    return from_mosei(float(d["score"])) if scale == "mosei" else from_sims(float(d["score"]))


def load_records(manifest: str | Path) -> list[ManifestRecord]:
    """Manifest records with ``path`` resolved against the manifest's folder.

    Same format as omni_mer.data.manifest.read_manifest, but tolerant of rows that give only a score (+
    ``score_scale``) instead of ``label5`` (the shipped samples/meta/manifest.jsonl). A bad row raises naming the line.
    """
    manifest = Path(manifest)
    root = manifest.resolve().parent
    records = []
    text_only = 0
    with manifest.open("r", encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{manifest}:{n}"
            try:
                d = json.loads(line)
                d["label5"] = _label5(d, where)
                rec = ManifestRecord.from_dict(d)
            except (json.JSONDecodeError, TypeError, KeyError) as exc:
                raise ValueError(f"{where}: bad manifest line: {exc}") from exc
            if rec.text_only:
                text_only += 1  # no video to train the omni model on (the text head reads these records)
                continue
            p = Path(rec.path)
            rec.path = str(p if p.is_absolute() else root / p)
            records.append(rec)
    if text_only:
        log.info("%s: %d text-only records (no video) skipped", manifest, text_only)
    return records


def select_records(records: Sequence[ManifestRecord], split: str | None, langs: Sequence[str] | None = None,
                   limit: int | None = None) -> list[ManifestRecord]:
    """Records of one split (None = all) and of the given languages, in manifest order, at most ``limit``."""
    want = normalise_split(split) if split else None
    out = [r for r in records if (want is None or normalise_split(r.split) == want)
           and (not langs or (r.lang or "en")[:2] in langs)]
    return out[:limit] if limit else out


# ----------------------------------------------------------------------------- evidence
def transcript_evidence(record: ManifestRecord) -> ExtractFn:
    """An extract_fn that trusts the manifest transcript and runs no model (modalities present when the clip has
    them, no cues): for quick runs; the rewards then cannot check cue citations beyond the transcript."""

    def extract(clip: Clip) -> Evidence:
        text = (record.text or "").strip()
        return Evidence(
            language=(record.lang or "en")[:2], transcript=text, segments=[],
            text=ModalityEvidence("text", True) if text else ModalityEvidence.absent("text", "no transcript"),
            audio=(ModalityEvidence("audio", True) if not clip.audio_is_silent
                   else ModalityEvidence.absent("audio", "no audio track" if not clip.has_audio else "silent audio")),
            visual=(ModalityEvidence("visual", True) if clip.has_video and len(clip.frames)
                    else ModalityEvidence.absent("visual", "no video frames")),
        )

    return extract


# ----------------------------------------------------------------------------- examples
def sft_target(evidence: Evidence, label: str, language: str, keep: frozenset[str] = frozenset(MODALITIES)) -> str:
    """The SFT target of the omni model: a rationale in the clip's language ending in the GOLD ``label`` that cites
    only what its prompt shows (a verbatim transcript quote; no cue strings, which the omni prompt never lists:
    omni_mer.llm.prompt.grounded_target with ``cue_tags=False``)."""
    return grounded_target(evidence, keep, label, language, cue_tags=False)


@dataclass
class TrainExample:
    """One clip ready for a trainer: the decoded Clip, its evidence, the chat messages and the gold label."""

    id: str
    clip: Clip
    evidence: Evidence
    label: str
    language: str
    messages: list[dict]
    keep: frozenset[str]
    label_only: bool = False  # SFT target: the label-only answer, what label scoring teacher-forces

    @property
    def target(self) -> str:
        if self.label_only:
            return label_only_answer(self.label)
        return sft_target(self.evidence, self.label, self.language, self.keep)

    def columns(self) -> dict:
        """Reward columns of this example (one value each)."""
        return {"label": self.label, "language": self.language, "evidence": self.evidence,
                "keep": ",".join(sorted(self.keep)), "cues_shown": False}


class TrainData:
    """Manifest records → TrainExamples (clips decoded on demand, a few kept in memory; evidence from the cache)."""

    def __init__(self, records: Sequence[ManifestRecord], media: MediaConfig, keep: frozenset[str],
                 cache_dir: str | Path, extract_fn: ExtractFn | None = None, keep_in_memory: int = 64,
                 label_only: set[int] | frozenset[int] = frozenset()) -> None:
        """``label_only``: indices of the records whose SFT target is the label-only answer
        (omni_mer.train.label_only.label_only_rows)."""
        if not records:
            raise ValueError("no training records (check manifest, split and train_langs)")
        self.records = list(records)
        self.media = media
        self.keep = frozenset(keep)
        self.cache_dir = Path(cache_dir)
        self.extract_fn = extract_fn  # None: manifest transcript only (transcript_evidence)
        self.label_only = frozenset(label_only)
        self._clips: OrderedDict[str, Clip] = OrderedDict()
        self._keep_in_memory = keep_in_memory

    def __len__(self) -> int:
        return len(self.records)

    def _clip(self, rec: ManifestRecord) -> Clip:
        from omni_mer.media import decode

        if rec.id in self._clips:
            self._clips.move_to_end(rec.id)
            return self._clips[rec.id]
        clip = decode(rec.path, self.media, clip_id=rec.id, language=(rec.lang or "en")[:2])
        self._clips[rec.id] = clip
        while len(self._clips) > self._keep_in_memory:
            self._clips.popitem(last=False)
        return clip

    def __getitem__(self, i: int) -> TrainExample:
        rec = self.records[i]
        clip = self._clip(rec)
        fn = self.extract_fn or transcript_evidence(rec)
        subdir = "evidence" if self.extract_fn is not None else "evidence-transcript"
        evidence = EvidenceCache(self.cache_dir / subdir, fn, self.media).get(clip, rec.id, rec.path)
        return make_example(rec.id, clip, evidence, rec.label5, (rec.lang or evidence.language or "en")[:2],
                            self.keep, self.media, label_only=i in self.label_only)

    def ids(self) -> list[str]:
        """Clip ids in order (without decoding anything)."""
        return [r.id for r in self.records]

    def summary(self) -> dict:
        """Counts per language and label (for the model card)."""
        out: dict = {"n": len(self.records), "langs": {}, "labels": {}, "label_only": len(self.label_only)}
        for r in self.records:
            out["langs"][r.lang] = out["langs"].get(r.lang, 0) + 1
            out["labels"][r.label5] = out["labels"].get(r.label5, 0) + 1
        return out


def make_example(clip_id: str, clip: Clip, evidence: Evidence, label: str, language: str,
                 keep: frozenset[str], media: MediaConfig, label_only: bool = False) -> TrainExample:
    """A TrainExample with messages built exactly like the omni scorer builds them at inference."""
    if label not in LABEL_INDEX:
        raise ValueError(f"gold label {label!r} is not one of {tuple(LABEL_INDEX)}")
    use_video, use_audio = clip_uses(clip, keep)
    messages = build_messages(language, evidence.transcript, keep, use_video, use_audio,
                              use_audio_in_video=media.use_audio_in_video)
    return TrainExample(id=clip_id, clip=clip, evidence=evidence, label=label, language=language,
                        messages=messages, keep=frozenset(keep), label_only=label_only)


class ExampleList(list):
    """Ready TrainExamples (e.g. clips decoded elsewhere) usable wherever a TrainData is expected."""

    def __init__(self, examples=(), media: MediaConfig | None = None) -> None:
        super().__init__(examples)
        self.media = media or MediaConfig()

    def ids(self) -> list[str]:
        return [ex.id for ex in self]

    def summary(self) -> dict:
        out: dict = {"n": len(self), "langs": {}, "labels": {}, "label_only": sum(ex.label_only for ex in self)}
        for ex in self:
            out["langs"][ex.language] = out["langs"].get(ex.language, 0) + 1
            out["labels"][ex.label] = out["labels"].get(ex.label, 0) + 1
        return out
