"""Audio (prosody) evidence on project-made signals: harmonic voices with known pitch/loudness contours."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from omni_mer.core.clip import Clip
from omni_mer.evidence.prosody import ProsodyAnalyzer, text_syllables, yin
from omni_mer.evidence.types import Segment

SR = 16_000
ROOT = Path(__file__).resolve().parents[1]


def voice(f0: np.ndarray, amp: np.ndarray, syll_hz: float = 4.0) -> np.ndarray:
    """A voiced signal: 11 harmonics following the F0 contour, a syllable-like envelope times ``amp``."""
    t = np.arange(len(f0)) / SR
    phase = 2 * np.pi * np.cumsum(f0) / SR
    x = sum((0.8**k) * np.sin(k * phase) for k in range(1, 12))
    x = x * amp * (0.55 - 0.45 * np.cos(2 * np.pi * syll_hz * t)) ** 2
    return (0.3 * x / np.max(np.abs(x))).astype(np.float32)


def make_clip(audio: np.ndarray, has_audio: bool = True) -> Clip:
    return Clip.from_audio(audio, "synthetic", has_audio=has_audio, sample_rate=SR)


T = np.arange(4 * SR) / SR
FIRST = T < 2


@pytest.fixture(scope="module")
def pa() -> ProsodyAnalyzer:
    return ProsodyAnalyzer()


def test_yin_recovers_known_pitch():
    for f in (90.0, 150.0, 230.0):
        x = voice(np.full(SR, f), np.ones(SR), syll_hz=0.0)
        frames = np.lib.stride_tricks.sliding_window_view(x, 1024)[::320]
        f0, ap = yin(frames, SR)
        assert abs(np.median(f0) / f - 1) < 0.01
        assert np.median(ap) < 0.1


def test_rising_pitch_gives_late_pitch_rise_cue(pa):
    f0 = np.where(FIRST, 140.0, 140.0 * 2 ** (((T - 2) / 2 * 6) / 12))  # flat, then up 6 semitones
    ev = pa.analyze(make_clip(voice(f0, np.ones_like(T))), None, "en")
    assert ev.present and ev.modality == "audio"
    pitch = [c for c in ev.cues if c.kind == "pitch"]
    assert pitch, ev.cues
    assert all(c.value > 0 and c.start >= 2.0 for c in pitch)
    assert "pitch rises" in pitch[0].text and pitch[0].text.endswith(" s")
    json.dumps(asdict(ev))  # evidence is cached as JSON
    assert 5 < ev.features["f0_range_st"] < 7


def test_falling_quiet_voice_drops_in_second_half(pa):
    f0 = np.where(FIRST, 180.0, 180.0 * 2 ** (-((T - 2) / 2 * 6) / 12))
    audio = voice(f0, np.where(FIRST, 1.0, 0.15))
    en = pa.analyze(make_clip(audio), None, "en")
    low = [c for c in en.cues if c.value < 0 and c.kind in ("pitch", "loudness")]
    assert low and all(c.start >= 1.8 for c in low), en.cues
    assert "voice drops" in low[0].text or "pitch drops" in low[0].text
    assert low[0].effect < 0
    zh = pa.analyze(make_clip(audio), None, "zh")
    assert any("秒" in c.text and ("声音变低" in c.text or "音调降低" in c.text) for c in zh.cues), zh.cues


def test_loud_then_quiet(pa):
    f0 = 150.0 * (1 + 0.05 * np.sin(2 * np.pi * 0.7 * T))
    ev = pa.analyze(make_clip(voice(f0, np.where(FIRST, 1.0, 0.2))), None, "en")
    quiet = [c for c in ev.cues if c.kind == "loudness" and c.value < 0]
    assert quiet and quiet[0].start >= 1.8 and "quieter" in quiet[0].text, ev.cues
    # the reverse order: the quiet part comes first (or the loud part second); z-scores are within the clip
    ev2 = pa.analyze(make_clip(voice(f0, np.where(FIRST, 0.2, 1.0))), None, "en")
    loud = [c for c in ev2.cues if c.kind == "loudness"]
    assert loud, ev2.cues
    for c in loud:
        assert (c.value < 0 and c.end <= 2.2 and "quieter" in c.text) or (c.value > 0 and c.start >= 1.8), c


def test_lively_vs_flat_directions(pa):
    lively = pa.analyze(make_clip(voice(160 * 2 ** (4 * np.sin(2 * np.pi * 1.5 * T) / 12), np.ones_like(T),
                                        syll_hz=5.5)), None, "en")
    flat = pa.analyze(make_clip(voice(120 * (1 + 0.03 * np.sin(2 * np.pi * 0.5 * T)), np.ones_like(T),
                                      syll_hz=2.5)), None, "en")
    assert lively.features["f0_sd_st"] > flat.features["f0_sd_st"] + 1
    assert lively.features["rate_syll_s"] > flat.features["rate_syll_s"] + 1.5
    assert lively.arousal > flat.arousal + 0.3
    assert lively.valence > flat.valence
    assert -1 <= flat.valence <= 1 and -1 <= lively.arousal <= 1
    assert 0 < lively.confidence <= 0.35  # valence from prosody stays modest


def test_long_pause_cue(pa):
    f0 = np.full(len(T), 150.0) * (1 + 0.05 * np.sin(2 * np.pi * 1.1 * T))
    audio = voice(f0, np.ones_like(T))
    audio[int(1.5 * SR) : int(2.5 * SR)] = 0
    ev = pa.analyze(make_clip(audio), None, "en")
    pauses = [c for c in ev.cues if c.kind == "pause"]
    assert len(pauses) == 1, ev.cues
    assert abs(pauses[0].start - 1.5) < 0.2 and abs(pauses[0].end - 2.5) < 0.2
    assert pauses[0].text.startswith("long pause") and pauses[0].effect < 0
    assert ev.features["pause_ratio"] > 0.2
    zh = pa.analyze(make_clip(audio), None, "zh")
    assert any(c.kind == "pause" and "停顿" in c.text for c in zh.cues)


def test_non_speech_gets_low_confidence(pa):
    tone = (0.3 * np.sin(2 * np.pi * 220 * T)).astype(np.float32)
    noise = (0.1 * np.random.default_rng(0).standard_normal(len(T))).astype(np.float32)
    for sig in (tone, noise):
        ev = pa.analyze(make_clip(sig), None, "en")
        assert ev.confidence < 0.05 and ev.features["speech_likeness"] < 0.2, ev


def test_absent_cases(pa):
    assert pa.analyze(make_clip(np.zeros(2 * SR)), None, "en").present is False
    ev = pa.analyze(make_clip(np.zeros(0), has_audio=False), None, "en")
    assert not ev.present and ev.reason == "no audio track" and ev.confidence == 0
    faint = (1e-5 * np.random.default_rng(1).standard_normal(SR)).astype(np.float32)
    assert pa.analyze(make_clip(faint), None, "zh").present is False


def test_segments_give_text_rate(pa):
    f0 = 150.0 * (1 + 0.05 * np.sin(2 * np.pi * 0.7 * T))
    segs = [Segment(0.0, 2.0, "我今天非常开心"), Segment(2.0, 4.0, "结果太好了")]
    ev = pa.analyze(make_clip(voice(f0, np.ones_like(T))), segs, "zh")
    assert ev.features["text_rate_syll_s"] == pytest.approx(12 / 4.0)
    assert text_syllables("I love this", "en") == 3
    assert text_syllables("我很满意", "zh") == 4


def test_speed_10s_clip(pa):
    t = np.arange(10 * SR) / SR
    audio = voice(150 * 2 ** (3 * np.sin(2 * np.pi * 0.4 * t) / 12), np.ones_like(t))
    pa.analyze(make_clip(audio), None, "en")
    cpu = time.process_time()
    pa.analyze(make_clip(audio), None, "en")
    assert time.process_time() - cpu < 0.5  # ~0.05 s measured; loose for a busy shared machine


@pytest.mark.skipif(not (ROOT / "samples" / "en_happy_review.mp4").is_file(), reason="samples not present")
def test_real_speech_sample(pa):
    from omni_mer import media

    clip = media.decode(ROOT / "samples" / "en_happy_review.mp4")
    ev = pa.analyze(clip, None, "en")
    assert ev.present and ev.features["speech_likeness"] > 0.5
    assert 2 < ev.features["rate_syll_s"] < 8 and 70 < ev.features["f0_median_hz"] < 300
    assert all(0 <= c.start < c.end <= clip.duration + 0.1 for c in ev.cues)


def test_speech_rate_is_normalised_per_language(pa):
    """Each language against its own reference: a typical Mandarin rate (chars/s) and a typical English rate
    (syllables/s) are both z = 0, and one physical rate reads fast in English and slow in Mandarin."""
    from omni_mer.core.i18n import LANGUAGES
    from omni_mer.evidence.prosody import RATE_REFS, rate_z

    assert set(RATE_REFS) == set(LANGUAGES)
    assert rate_z(RATE_REFS["zh"][0], "zh") == 0 and rate_z(RATE_REFS["en"][0], "en") == 0
    assert rate_z(5.0, "en") > 0.3 and rate_z(5.0, "zh") < 0
    with pytest.raises(ValueError, match="'fr'.*'en', 'zh'"):
        rate_z(4.0, "fr")
    f0 = 150.0 * (1 + 0.05 * np.sin(2 * np.pi * 0.7 * T))
    clip = make_clip(voice(f0, np.ones_like(T)))
    zh = pa.analyze(clip, [Segment(0.0, 4.0, "我" * round(4 * RATE_REFS["zh"][0]))], "zh")  # 20 chars in 4 s
    en = pa.analyze(clip, [Segment(0.0, 4.0, "I love this " * 5)], "en")  # 15 syllables in 4 s
    mu, sd = RATE_REFS["en"]
    assert abs(zh.features["z_rate_syll_s"]) < 0.1 and abs(en.features["z_rate_syll_s"] - (3.75 - mu) / sd) < 0.01
    assert zh.features["rate_ref_syll_s"] == RATE_REFS["zh"][0]
