"""ASR on real speech: shipped sample clips (espeak-ng voices) and, when espeak-ng is installed, fresh Mandarin.

The samples are decoded exactly as the product decodes them (omni_mer.media.decode), and the tests assert what
holds on any CPU: the language, speech vs no speech, an error-rate bound against the sentence that was spoken,
word times inside the clip. Never one exact word: int8 CTranslate2 kernels differ between CPUs, and a ~1e-5
difference in the samples flips a borderline word of synthetic speech ("love" -> "on"). A broken ASR (empty,
wrong language, garbage) still fails every one of these bounds.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
from math import gcd
from pathlib import Path

import numpy as np
import pytest

from omni_mer.core.clip import Clip
from omni_mer.core.config import SAMPLE_RATE, MediaConfig
from omni_mer.core.parts import sha256_of
from omni_mer.evidence import asr
from omni_mer.evidence.asr import Transcriber, Transcript, to_simplified, whisper_model_dir

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
ESPEAK = shutil.which("espeak-ng")


def _clip(audio: np.ndarray, name: str = "clip", language: str | None = None, has_audio: bool = True) -> Clip:
    return Clip.from_audio(audio, name, language=language, has_audio=has_audio)


# What each sample clip says (the text its speech was made from).
SPOKEN = {json.loads(line)["id"]: json.loads(line)["text"]
          for line in (SAMPLES / "meta" / "manifest.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()}
WER_EN = 0.35  # English word error rate bound: two slips in a 13-word sentence pass, a broken ASR does not
CER_ZH = 0.6  # Mandarin character error rate bound: Whisper base garbles half a synthetic sentence at worst


def _sample_clip(name: str, language: str | None = None) -> Clip:
    """A sample's audio through the product's decoder (the same samples test_script.py feeds the ASR)."""
    from omni_mer.media import decode

    path = SAMPLES / name
    if not path.is_file():
        pytest.skip(f"sample {name} not shipped")
    return decode(path, MediaConfig(), clip_id=path.stem, language=language, include_video=False)


def _tokens(text: str, language: str) -> list[str]:
    """Words (English, lower case, no punctuation) or characters (Mandarin, no punctuation)."""
    if language == "zh":
        return [ch for ch in text if re.match(r"\w", ch)]
    return re.findall(r"[a-z0-9']+", text.lower())


def error_rate(reference: str, hypothesis: str, language: str) -> float:
    """Word (en) / character (zh) error rate: Levenshtein distance over the reference length."""
    ref, hyp = _tokens(reference, language), _tokens(hypothesis, language)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / max(len(ref), 1)


def test_error_rate():
    assert error_rate("I absolutely love this.", "I absolutely love this", "en") == 0
    assert error_rate("I absolutely love this", "I am absolutely on this", "en") == pytest.approx(2 / 4)
    assert error_rate("I absolutely love this", "", "en") == 1
    assert error_rate("这太糟糕了，我非常失望", "这太糟糕了,我非常喜欢", "zh") == pytest.approx(2 / 10)


def _assert_times_inside(tr, clip: Clip) -> None:
    assert tr.segments and tr.words
    assert all(0.0 <= s.start <= s.end <= clip.duration + 0.5 for s in tr.segments)
    assert all(0.0 <= a <= b <= clip.duration + 0.5 for a, b, _ in tr.words)
    starts = [a for a, _, _ in tr.words]
    assert starts == sorted(starts)  # words in spoken order
    assert tr.words[-1][1] - tr.words[0][0] > 0.5 * (tr.segments[-1].end - tr.segments[0].start)


def _espeak_clip(tmp_path: Path, voice: str, text: str, language: str | None = None) -> Clip:
    import soundfile as sf
    from scipy.signal import resample_poly

    if ESPEAK is None:
        pytest.skip("espeak-ng not installed")
    wav = tmp_path / "speech.wav"
    subprocess.run([ESPEAK, "-v", voice, "-s", "130", "-w", str(wav), text], check=True, capture_output=True)
    audio, sr = sf.read(wav, dtype="float32")
    g = gcd(sr, SAMPLE_RATE)
    return _clip(resample_poly(audio, SAMPLE_RATE // g, sr // g), wav.stem, language)


@pytest.fixture(scope="module")
def transcriber() -> Transcriber:
    return Transcriber()


def test_default_cache_is_outside_repo():
    assert ROOT not in asr.default_cache_dir().resolve().parents


@pytest.mark.parametrize("name", ["en_happy_review", "en_bad_service", "en_schedule"])
def test_english_sample(transcriber, name):
    clip = _sample_clip(f"{name}.mp4")
    tr = transcriber.transcribe(clip)
    assert tr.language == "en" and not tr.no_speech
    assert tr.language_probs["en"] > 0.9
    assert error_rate(SPOKEN[name], tr.text, "en") <= WER_EN, (SPOKEN[name], tr.text)
    _assert_times_inside(tr, clip)
    print(f"ASR {tr.seconds:.2f} s for {clip.duration:.1f} s")


@pytest.mark.parametrize("name", ["zh_disappointed", "zh_good_news"])
def test_mandarin_sample(transcriber, name):
    clip = _sample_clip(f"{name}.mp4")
    tr = transcriber.transcribe(clip)
    assert tr.language == "zh" and not tr.no_speech, tr
    assert set(tr.language_probs) == {"en", "zh"}  # detection restricted to the two languages
    assert error_rate(SPOKEN[name], tr.text, "zh") <= CER_ZH, (SPOKEN[name], tr.text)
    assert to_simplified(tr.text) == tr.text
    _assert_times_inside(tr, clip)


def test_mandarin_with_hint_simplified(transcriber, tmp_path):
    # The packaged espeak-ng has no Hanzi dictionary; tone-numbered pinyin gives real Mandarin syllables.
    clip = _espeak_clip(tmp_path, "cmn-latn-pinyin", "wo3 bu4 xi3 huan1 zhe4 ge4, zhen1 rang4 ren2 shi1 wang4.",
                        language="zh")
    tr = transcriber.transcribe(clip)
    assert tr.language == "zh"
    assert error_rate("我不喜欢这个，真让人失望。", tr.text, "zh") <= CER_ZH, tr.text
    assert to_simplified(tr.text) == tr.text
    assert all(to_simplified(w) == w for _, _, w in tr.words)


def test_trim_window_padding_keeps_content_plus_pad():
    feats = np.zeros((2, 80, 3000), np.float32)
    feats[0, :, :451] = 0.5
    feats[1, 3, :200] = -0.2  # the longest item in the batch decides
    out = asr.trim_window_padding(feats, pad_frames=500)
    assert out.shape == (2, 80, 952)  # 451 + 500, rounded up to even for the stride-2 convolution
    np.testing.assert_array_equal(out, feats[..., :952])
    full = np.ones((1, 80, 3000), np.float32)
    assert asr.trim_window_padding(full, 500).shape[-1] == 3000  # never longer than the window
    assert asr.trim_window_padding(np.zeros((1, 80, 3000), np.float32), 0).shape[-1] == 2


def test_trimmed_encoder_sees_short_input_and_agrees_with_full_window(transcriber):
    clip = _sample_clip("en_bad_service.mp4")
    seen = []
    inner = transcriber._lang._inner

    class Spy:
        def __getattr__(self, name):
            return getattr(inner, name)

        def encode(self, features, *a, **k):
            seen.append(np.asarray(features).shape[-1])
            return inner.encode(features, *a, **k)

    transcriber._lang._inner = Spy()
    try:
        short = transcriber.transcribe(clip)
    finally:
        transcriber._lang._inner = inner
    assert seen and max(seen) < 3000  # clip (~7 s) + 5 s pad, not the 30 s window
    full = Transcriber(encoder_pad_s=None).transcribe(clip)
    for tr in (short, full):
        assert error_rate(SPOKEN["en_bad_service"], tr.text, "en") <= WER_EN, (short.text, full.text)
    assert short.language == full.language == "en"
    # Word times come from the same frames: the last word ends at the same moment (within 0.1 s).
    assert abs(short.words[-1][1] - full.words[-1][1]) < 0.1


def test_negative_encoder_pad_rejected():
    with pytest.raises(ValueError, match="encoder_pad_s"):
        Transcriber(encoder_pad_s=-1.0)


def test_to_simplified():
    assert to_simplified("我們覺得這個電影很好看") == "我们觉得这个电影很好看"


@pytest.mark.parametrize("kind", ["zeros", "no_track", "noise"])
def test_silence_is_no_speech(transcriber, kind):
    rng = np.random.default_rng(0)
    if kind == "zeros":
        clip = _clip(np.zeros(3 * SAMPLE_RATE))
    elif kind == "no_track":
        clip = _clip(np.zeros(0), has_audio=False)
    else:
        clip = _clip(0.003 * rng.standard_normal(3 * SAMPLE_RATE))
    tr = transcriber.transcribe(clip)
    assert isinstance(tr, Transcript)
    assert tr.no_speech and tr.text == "" and tr.segments == [] and tr.words == []


def test_hallucination_guard_bounds_time(transcriber):
    # A tone is not speech; whatever Whisper makes of it must not loop for many seconds.
    t = np.arange(4 * SAMPLE_RATE) / SAMPLE_RATE
    clip = _clip(0.3 * np.sin(2 * np.pi * 220 * t))
    tr = transcriber.transcribe(clip)
    assert tr.seconds < 15
    assert len(tr.text) < 200


def test_cache_join_verify_and_rebuild(tmp_path):
    d = whisper_model_dir(tmp_path / "wb")
    model = d / "model.bin"
    man = json.loads((d / asr.MANIFEST).read_text())
    assert model.stat().st_size == man["size"] == sum(p["size"] for p in man["parts"])
    assert (d / "tokenizer.json").is_file() and (d / "config.json").is_file()
    assert sha256_of(model) == man["sha256"]
    assert not list(d.glob(".*.tmp"))  # no temp files left behind
    mtime = model.stat().st_mtime_ns
    assert whisper_model_dir(d) == d and model.stat().st_mtime_ns == mtime  # valid: not rebuilt

    with open(model, "r+b") as f:  # partial file (e.g. disk full / killed mid-copy)
        f.truncate(1000)
    whisper_model_dir(d)
    assert model.stat().st_size == man["size"] and sha256_of(model) == man["sha256"]

    with open(model, "r+b") as f:  # same size, damaged bytes: only the checksum notices
        f.seek(5_000_000)
        f.write(b"\x00" * 64)
    assert sha256_of(model) != man["sha256"]
    whisper_model_dir(d, verify_checksum=True)
    assert sha256_of(model) == man["sha256"]

    (d / asr.MANIFEST).unlink()  # manifest missing = unfinished build
    whisper_model_dir(d)
    assert (d / asr.MANIFEST).is_file()


def test_no_network_during_transcribe_and_analyze(monkeypatch):
    from omni_mer.evidence.text import TextAnalyzer

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    tr_model = Transcriber()
    analyzer = TextAnalyzer()
    clip = _sample_clip("en_happy_review.mp4")
    tr = tr_model.transcribe(clip)
    ev = analyzer.analyze(tr, duration=clip.duration)
    assert ev.present and ev.valence > 0
    assert error_rate(SPOKEN["en_happy_review"], tr.text, "en") <= WER_EN, tr.text
    cues = [c for c in ev.cues if c.kind in ("word", "phrase")]
    assert cues and all(0.0 <= c.start <= c.end <= clip.duration + 0.5 for c in cues)
    positive = [c for c in cues if c.value > 0]
    assert positive and min(c.end - c.start for c in positive) < 1.5  # word-level time, not the whole clip
