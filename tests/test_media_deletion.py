"""Media-level deletion: the pipeline re-run with a modality physically removed (muted, blanked, emptied)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples" / "en_happy_review.mp4"

pytestmark = pytest.mark.skipif(not SAMPLE.is_file(), reason="samples not generated")


@pytest.fixture(scope="module")
def parts():
    from omni_mer.evidence.extract import EvidenceExtractor
    from omni_mer.media import decode
    from omni_mer.scorers.lite import LiteScorer

    extractor = EvidenceExtractor()
    clip = decode(SAMPLE)
    return extractor, LiteScorer.from_path(None), clip, extractor.transcriber.transcribe(clip)


def test_each_removal_takes_away_its_modality_only(parts):
    from omni_mer.explain.media_deletion import blanked, muted, removed_evidence

    extractor, _, clip, transcript = parts
    full = extractor.extract(clip, transcript=transcript)
    assert full.present == {"text", "audio", "visual"}
    assert np.all(muted(clip).audio == 0) and muted(clip).audio.shape == clip.audio.shape
    assert np.all(blanked(clip).frames == 128) and blanked(clip).frames.shape == clip.frames.shape
    for m in ("text", "audio", "visual"):
        ev = removed_evidence(extractor, clip, transcript, m)
        assert ev.present == full.present - {m}, (m, ev.present)
    no_words = removed_evidence(extractor, clip, transcript, "text")
    assert no_words.transcript == "" and "text_rate_syll_s" not in no_words.audio.features
    assert removed_evidence(extractor, clip, transcript, "audio").transcript == full.transcript
    with pytest.raises(ValueError, match="'smell'"):
        removed_evidence(extractor, clip, transcript, "smell")


def test_media_deletion_moves_the_label_most_when_the_top_modality_goes(parts):
    from omni_mer.explain.faithfulness import summarize
    from omni_mer.explain.media_deletion import media_deletion

    extractor, scorer, clip, _ = parts
    r = media_deletion(extractor, scorer, clip)
    assert r["status"] == "evaluated" and set(r["drop"]) == {"text", "audio", "visual"}
    assert r["top"] == "text" and r["success"] is True  # the words decide "I absolutely love this"
    assert r["drop"]["text"] > 0.1 and r["drop"]["text"] > r["drop"]["audio"]
    s = summarize([r, {"status": "excluded: fewer than 2 present modalities"}])
    assert s["n_evaluated"] == 1 and s["deletion_rate"] == 1.0 and s["n_excluded_lt2_modalities"] == 1
