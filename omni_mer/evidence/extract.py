"""decode -> evidence: run the package-shipped extractors on a Clip, once per clip, models loaded once."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

from omni_mer.core.clip import Clip
from omni_mer.core.config import MediaConfig
from omni_mer.evidence.types import Evidence, ModalityEvidence

log = logging.getLogger(__name__)

EVIDENCE_VERSION = "5"  # bump when extractor output changes, so caches rebuild (4: text head; 5: CenterFace + facex, per-language speech rate)


class EvidenceExtractor:
    """ASR + text, prosody and face analyzers, each loaded lazily on first use and then reused."""

    def __init__(self, use_embeddings: bool = True, cpu_threads: int = 2) -> None:
        self.use_embeddings = use_embeddings
        self.cpu_threads = cpu_threads
        self._transcriber = None
        self._text = None
        self._prosody = None
        self._face = None
        self._asr_pool: ThreadPoolExecutor | None = None

    @property
    def transcriber(self):
        if self._transcriber is None:
            from omni_mer.evidence.asr import Transcriber

            self._transcriber = Transcriber(cpu_threads=self.cpu_threads)
        return self._transcriber

    @property
    def text(self):
        if self._text is None:
            from omni_mer.evidence.text import TextAnalyzer

            self._text = TextAnalyzer(use_embeddings=self.use_embeddings, threads=self.cpu_threads)
        return self._text

    @property
    def prosody(self):
        if self._prosody is None:
            from omni_mer.evidence.prosody import ProsodyAnalyzer

            self._prosody = ProsodyAnalyzer()
        return self._prosody

    @property
    def face(self):
        if self._face is None:
            from omni_mer.evidence.face import FaceAnalyzer

            self._face = FaceAnalyzer()
        return self._face

    def warm_up(self) -> None:
        """Load every model now (the demo and batch jobs do this once at start)."""
        _ = self.transcriber, self.text, self.prosody, self.face

    def start_transcription(self, clip: Clip) -> Future:
        """Whisper on ``clip``'s audio in the extractor's one ASR thread; the Future's result is an asr.Transcript.

        Pipeline.analyze starts it as soon as the audio is decoded, so that the frames decode and the face is
        read while Whisper runs (docs/performance.md: the work beyond the ASR floor overlaps it). One thread: the
        Transcriber is not reentrant, and calls queue in order."""
        transcriber = self.transcriber  # loaded here, in the caller's thread: a load error is raised at once
        if self._asr_pool is None:
            self._asr_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="omni-mer-asr")
        return self._asr_pool.submit(transcriber.transcribe, clip)

    def extract(self, clip: Clip, transcript=None) -> Evidence:
        """Evidence of every modality. ``transcript`` (an asr.Transcript) replaces the ASR: the media-level deletion
        test keeps the words while the audio is muted, or empties them while the audio stays
        (omni_mer.explain.media_deletion); a Future of one (``start_transcription``) is a transcription already
        running. Whisper runs in its thread while the face and the prosody tracks are read here (neither needs the
        words). ``timings`` partition the wall time: "asr" is the wait for Whisper once they are read."""
        timings: dict[str, float] = {}
        if transcript is None and not clip.audio_is_silent:
            transcript = self.start_transcription(clip)
        pending = transcript if isinstance(transcript, Future) else None
        has_frames = clip.has_video and len(clip.frames) > 0
        try:
            t = time.perf_counter()
            observed = self.face.frame_probs(clip) if has_frames else None
            visual_s = time.perf_counter() - t
            t = time.perf_counter()
            tracks = None if clip.audio_is_silent else self.prosody.tracks(clip.audio, clip.sample_rate)
            audio_s = time.perf_counter() - t
        except BaseException:
            if pending is not None:
                pending.exception()  # let Whisper finish before the error leaves (the Transcriber is shared)
            raise
        t = time.perf_counter()
        if pending is not None:
            transcript = pending.result()
        # the wall time spent waiting for Whisper: its own time (transcript.seconds) overlapped the face (and, from
        # Pipeline.analyze, the frames' decoding), so the stages stay parts of the whole
        timings["asr"] = time.perf_counter() - t
        if transcript is not None:
            language = transcript.language
        else:
            language = clip.language or "en"

        t = time.perf_counter()
        if transcript is None or not transcript.text.strip():
            text_ev = ModalityEvidence.absent("text", "no speech")
        else:
            text_ev = self.text.analyze(transcript, duration=clip.duration)
        timings["text"] = time.perf_counter() - t

        segments = list(transcript.segments) if transcript is not None else []
        t = time.perf_counter()
        if clip.audio_is_silent:
            audio_ev = ModalityEvidence.absent("audio", "no audio track" if not clip.has_audio else "silent audio")
        else:
            audio_ev = self.prosody.analyze(clip, segments, language, tracks=tracks)
        timings["audio"] = audio_s + time.perf_counter() - t

        t = time.perf_counter()
        if not has_frames:
            visual_ev = ModalityEvidence.absent("visual", "no video frames")
        else:
            visual_ev = self.face.analyze(clip, language, observed=observed)
        timings["visual"] = visual_s + time.perf_counter() - t

        return Evidence(
            language=language,
            transcript=transcript.text if transcript is not None else "",
            segments=segments,
            text=text_ev,
            audio=audio_ev,
            visual=visual_ev,
            timings=timings,
        )


def media_key(media: MediaConfig) -> str:
    """Short hash of the MediaConfig fields that change what the extractors see (not the decode time budget), and
    of the shipped text head's weights (a retrained head changes the text evidence)."""
    from omni_mer.texthead.head import head_digest
    from omni_mer.texthead.shipped import text_head_dir

    fields = {k: v for k, v in media.to_dict().items() if k != "decode_timeout_s"}
    fields["text_head"] = head_digest(text_head_dir())
    return hashlib.sha1(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:8]


def file_digest(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


class EvidenceCache:
    """Per-clip evidence on disk, keyed by the file's content, EVIDENCE_VERSION and the decoding settings.

    Used wherever evidence of the same file is needed again: calibration, training epochs, cross-lingual evaluation.
    Files are ``<cache_dir>/<clip id>-<sha1[:16]>-v<EVIDENCE_VERSION>-m<media key>.json``, written atomically;
    ``media`` (how frames and audio are sampled) is part of the key, so a recipe with another fps or frame size
    never reads evidence computed from other frames.
    """

    def __init__(self, cache_dir: str | Path, extract_fn: Callable[[Clip], Evidence] | None = None,
                 media: MediaConfig = MediaConfig()) -> None:
        self.dir = Path(cache_dir)
        self.extract_fn = extract_fn
        self.media_key = media_key(media)
        self.hits = 0
        self.misses = 0

    def path_for(self, clip_id: str, media_path: str | Path) -> Path:
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in clip_id)
        digest = file_digest(Path(media_path))[:16]
        return self.dir / f"{safe}-{digest}-v{EVIDENCE_VERSION}-m{self.media_key}.json"

    def get(self, clip: Clip, clip_id: str, media_path: str | Path) -> Evidence:
        """Evidence of an already decoded clip (extract_fn runs on a miss)."""
        if self.extract_fn is None:
            raise ValueError("EvidenceCache.get needs an extract_fn; use get_lazy(clip_id, path, compute)")
        return self.get_lazy(clip_id, media_path, lambda: self.extract_fn(clip))

    def get_lazy(self, clip_id: str, media_path: str | Path, compute: Callable[[], Evidence]) -> Evidence:
        """Evidence from disk, or ``compute()`` (which may decode the file) on a miss."""
        path = self.path_for(clip_id, media_path)
        if path.is_file():
            try:
                ev = Evidence.from_dict(json.loads(path.read_text(encoding="utf-8")))
                self.hits += 1
                return ev
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("evidence cache %s unreadable (%s); recomputing", path, exc)
        ev = compute()
        if not isinstance(ev, Evidence):
            raise TypeError(f"evidence extractor returned {type(ev).__name__}, expected Evidence")
        self.misses += 1
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(ev.to_dict(), ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)
        return ev
