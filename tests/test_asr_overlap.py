"""Whisper runs beside the rest: Pipeline.analyze starts it on the decoded audio while the frames decode, and the
extractor reads the face while it runs. Same evidence as one after the other; errors wait for Whisper to finish."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from tests import media_makers as syn
from omni_mer.core.config import SAMPLE_RATE, MediaConfig
from omni_mer.evidence.asr import Segment, Transcript
from omni_mer.evidence.extract import EvidenceExtractor
from omni_mer.media import decode


class RecordingTranscriber:
    """Stands in for Whisper (its interface: transcribe(clip) -> Transcript) and records how it was called."""

    def __init__(self, wait_for: threading.Event | None = None, seconds: float = 0.0) -> None:
        self.wait_for, self.seconds = wait_for, seconds
        self.clips, self.threads = [], []
        self.overlapped = None
        self.finished = threading.Event()

    def transcribe(self, clip) -> Transcript:
        self.clips.append(clip)
        self.threads.append(threading.current_thread().name)
        if self.wait_for is not None:
            self.overlapped = self.wait_for.wait(timeout=120)  # set by the face reader: both ran at once
        time.sleep(self.seconds)
        self.finished.set()
        return Transcript(language="en", text="I love this", segments=[Segment(0.0, 1.0, "I love this")],
                          seconds=self.seconds)


@pytest.fixture()
def video(tmp_path):
    return syn.write_video(tmp_path / "face.mp4", syn.moving_face_frames(20, size=(48, 64)), 10,
                           audio=syn.tone(2.0, SAMPLE_RATE))


def _extractor(transcriber) -> EvidenceExtractor:
    ex = EvidenceExtractor(use_embeddings=False)
    ex._transcriber = transcriber
    return ex


def test_decode_hands_over_the_audio_before_the_frames(video):
    heard = []
    clip = decode(video, MediaConfig(), clip_id="c1", language="en", on_audio=heard.append)
    assert len(heard) == 1
    a = heard[0]
    assert a.id == "c1" and a.language == "en" and a.has_audio and not a.has_video and len(a.frames) == 0
    np.testing.assert_array_equal(a.audio, clip.audio)
    assert len(clip.frames) > 0


def test_face_is_read_while_whisper_runs(video, monkeypatch):
    face_read = threading.Event()
    tr = RecordingTranscriber(wait_for=face_read)
    ex = _extractor(tr)
    _ = ex.face, ex.prosody  # loaded before: only the reading overlaps Whisper
    real = ex.face.frame_probs

    def frame_probs(clip):
        out = real(clip)
        face_read.set()
        return out

    monkeypatch.setattr(ex.face, "frame_probs", frame_probs)
    clip = decode(video, MediaConfig())
    ev = ex.extract(clip)
    assert tr.overlapped is True and tr.threads == ["omni-mer-asr_0"]
    assert ev.transcript == "I love this" and ev.language == "en"
    # the same evidence as with the transcript handed over (no overlap)
    again = _extractor(RecordingTranscriber()).extract(clip, transcript=tr.transcribe(clip))
    assert _untimed(again.to_dict()) == _untimed(ev.to_dict())


def _untimed(evidence: dict) -> dict:
    """Evidence without what measures time (the stage timings, the text analyzer's own seconds)."""
    out = dict(evidence, timings={})
    for m in ("text", "audio", "visual"):
        out[m] = dict(out[m], features={k: v for k, v in out[m].get("features", {}).items() if k != "seconds"})
    return out


def test_a_face_error_waits_for_whisper(video, monkeypatch):
    tr = RecordingTranscriber(seconds=0.3)
    ex = _extractor(tr)

    def broken(clip):
        raise RuntimeError("face model broke")

    monkeypatch.setattr(ex.face, "frame_probs", broken)
    with pytest.raises(RuntimeError, match="face model broke"):
        ex.extract(decode(video, MediaConfig()))
    assert tr.finished.is_set()  # the shared Transcriber is idle before the error reaches the caller


def test_pipeline_starts_whisper_on_the_audio_and_times_add_up(video):
    from omni_mer.pipeline import Pipeline
    from omni_mer.scorers.lite import LiteScorer

    tr = RecordingTranscriber(seconds=0.2)
    pipeline = Pipeline(LiteScorer(), extractor=_extractor(tr))
    t = time.perf_counter()
    a = pipeline.analyze(video, clip_id="v")
    total = time.perf_counter() - t
    assert len(tr.clips) == 1 and len(tr.clips[0].frames) == 0  # started before the frames were decoded
    np.testing.assert_array_equal(tr.clips[0].audio, a.clip.audio)
    assert a.evidence.transcript == "I love this"
    stages = ("decode", "asr", "text", "audio", "visual", "generate", "fusion")
    assert sum(a.timings[k] for k in stages) <= total + 1e-6  # the stages partition the wall time
