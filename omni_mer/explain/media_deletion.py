"""Deletion test on the media: re-run the pipeline with a modality physically removed.

The coalition deletion test (explain/faithfulness.py) reads the same coalition scores the Shapley values came from.
This one edits the input instead and extracts the evidence again:

- text: the transcript emptied (the ASR output replaced by an empty transcript); audio and frames unchanged, so the
  prosody is re-measured without the words (its speech rate falls back to the acoustic one);
- audio: the audio muted (zeros of the same length) while the words are kept (the original transcript is given, as
  if read from subtitles): the prosody stage sees silence;
- visual: every frame blanked to mid-gray: the face stage finds no face.

Each edited clip is scored with every modality kept (what the job would predict for that media); ``drop[m]`` is
p(label | original media) - p(label | media without m). The clip counts as a success when removing the
top-Shapley modality lowers the predicted-label probability more than removing the bottom-Shapley one
(faithfulness.judge; faithfulness.summarize gives the rate); clips with fewer than 2 present modalities or tied
attributions are excluded and counted.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from omni_mer.core.clip import Clip
from omni_mer.core.config import MODALITIES
from omni_mer.explain.faithfulness import judge
from omni_mer.core.labels import LABEL_INDEX

log = logging.getLogger(__name__)

BLANK_GRAY = 128


def muted(clip: Clip) -> Clip:
    """The clip with its audio replaced by silence of the same length."""
    return dataclasses.replace(clip, audio=np.zeros_like(np.asarray(clip.audio, dtype=np.float32)))


def blanked(clip: Clip) -> Clip:
    """The clip with every frame mid-gray."""
    return dataclasses.replace(clip, frames=np.full_like(np.asarray(clip.frames), BLANK_GRAY))


def removed_evidence(extractor, clip: Clip, transcript, modality: str):
    """Evidence of ``clip`` with ``modality`` physically removed (module docstring); ``transcript`` is the original
    ASR output (None for a clip without speech)."""
    from omni_mer.evidence.asr import Transcript

    if modality == "text":
        lang = transcript.language if transcript is not None else (clip.language or "en")
        return extractor.extract(clip, transcript=Transcript.empty(lang))
    if modality == "audio":
        return extractor.extract(muted(clip), transcript=transcript)
    if modality == "visual":
        return extractor.extract(blanked(clip), transcript=transcript)
    raise ValueError(f"unknown modality {modality!r}; valid: {', '.join(MODALITIES)}")


def media_deletion(extractor, scorer, clip: Clip) -> dict:
    """The media-level deletion result for one decoded clip (see the module docstring)."""
    from omni_mer.explain import explain

    transcript = None if clip.audio_is_silent else extractor.transcriber.transcribe(clip)
    evidence = extractor.extract(clip, transcript=transcript) if transcript is not None else extractor.extract(clip)
    expl = explain(clip, evidence, scorer).to_dict()
    label = expl["label"]
    idx = LABEL_INDEX[label]
    present = [m for m in MODALITIES if evidence.modality(m).present]
    out: dict = {"id": clip.id, "label": label, "present": present}
    if len(present) < 2:
        out["status"] = "excluded: fewer than 2 present modalities"
        return out
    keep = frozenset(MODALITIES)
    p_full = float(np.asarray(scorer.score(clip, evidence, keep))[idx])
    drop = {}
    for m in present:
        ev = removed_evidence(extractor, clip, transcript, m)
        still = ev.modality(m).present
        if still:
            log.warning("%s: %s still present after its media was removed (%s)", clip.id, m, ev.modality(m).reason)
        drop[m] = p_full - float(np.asarray(scorer.score(clip, ev, keep))[idx])
    return judge(out, drop, {m: float(expl["shapley"][m]) for m in present})
