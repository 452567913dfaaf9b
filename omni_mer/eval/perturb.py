"""MER-NOISE style perturbations of a decoded Clip (and, for a dropped transcript, of its Evidence).

Each perturbation is deterministic for a given clip (the noise seed is derived from the clip ID and the
perturbation name), so a robustness table can be reproduced exactly.

Registry (``PERTURBATIONS``; ``get(name)`` raises ConfigError listing the valid names):

    snr20 snr10 snr5 snr0          white noise added to the audio at that signal-to-noise ratio (dB)
    babble10 babble5 babble0       babble-like noise (several amplitude-modulated, formant-filtered noise
                                   "talkers", speech-shaped) at that SNR
    blur                           Gaussian blur of every frame (sigma = 2 % of the frame's longer side)
    occlude                        black box over each detected face (omni_mer.evidence.face.detect_faces); when no
                                   detector is available or no face is found, a centre box covering the middle
                                   40 % x 50 % of the frame (where a talking head sits in interview-style clips)
    drop_audio                     the audio track removed (as a file with no audio stream decodes)
    drop_video                     the frames removed (as an audio-only file decodes)
    drop_text                      the transcript removed (text evidence absent); audio and frames untouched

Public API:
    Perturbation(name, description, clip_fn=None, evidence_fn=None, touches=frozenset())
        .apply_clip(clip) -> Clip            a new Clip (the input is not modified)
        .apply_evidence(evidence) -> Evidence
    PERTURBATIONS: dict[str, Perturbation]; DEFAULT_PERTURBATIONS: tuple[str, ...]
    get(name) -> Perturbation; parse_names("snr10,blur" | list) -> list[Perturbation]
    add_noise(audio, snr_db, kind="white", seed=0) -> np.ndarray
    gaussian_blur(frames, sigma_frac=0.02) -> np.ndarray
    occlude_faces(frames, detector=None) -> (frames, n_detected_boxes)
"""

from __future__ import annotations

import dataclasses
import logging
import zlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from omni_mer.core.clip import Clip
from omni_mer.core.config import SAMPLE_RATE
from omni_mer.core.errors import ConfigError
from omni_mer.evidence.types import Evidence, ModalityEvidence

log = logging.getLogger(__name__)

# Centre box used for occlusion when no face detector is available / no face was found: (height, width) fractions.
CENTRE_BOX = (0.5, 0.4)
BLUR_SIGMA_FRAC = 0.02
OCCLUDE_PAD = 0.1  # detected face boxes are tight (Haar): grow them by 10 % per side


# --------------------------------------------------------------------------------------------------- audio noise


def _seed(*parts: str) -> int:
    return zlib.crc32("\x00".join(parts).encode("utf-8"))


def _babble(n: int, sr: int, rng: np.random.Generator, talkers: int = 6) -> np.ndarray:
    """Speech-shaped babble stand-in: a sum of noise 'talkers', each band-passed around a random formant and
    amplitude-modulated at a syllabic rate (3-6 Hz), so it is non-stationary and sits in the speech band."""
    from scipy.signal import butter, sosfilt

    out = np.zeros(n, dtype=np.float64)
    t = np.arange(n) / sr
    for _ in range(talkers):
        centre = rng.uniform(300.0, 2500.0)
        lo, hi = centre / 1.6, min(centre * 1.6, sr / 2 * 0.95)
        sos = butter(2, [lo, hi], btype="bandpass", fs=sr, output="sos")
        src = sosfilt(sos, rng.standard_normal(n))
        rate, phase = rng.uniform(3.0, 6.0), rng.uniform(0, 2 * np.pi)
        env = np.clip(np.sin(2 * np.pi * rate * t + phase), 0.0, None) ** 2  # syllable-like bursts with pauses
        out += src * env
    return out


def add_noise(audio: np.ndarray, snr_db: float, kind: str = "white", seed: int = 0,
              sr: int = SAMPLE_RATE) -> np.ndarray:
    """``audio`` plus noise scaled so that signal power / noise power = ``snr_db`` (power over the whole clip).

    ``kind`` is "white" or "babble". Silent or empty audio is returned unchanged (an SNR is undefined there).
    The result is clipped to [-1, 1] float32.
    """
    a = np.asarray(audio, dtype=np.float32)
    if a.size == 0:
        return a.copy()
    p_sig = float(np.mean(a.astype(np.float64) ** 2))
    if p_sig < 1e-10:
        return a.copy()
    rng = np.random.default_rng(seed)
    if kind == "white":
        n = rng.standard_normal(a.size)
    elif kind == "babble":
        n = _babble(a.size, sr, rng)
    else:
        raise ConfigError(f"noise kind {kind!r} is not one of white, babble")
    p_noise = float(np.mean(n ** 2)) or 1.0
    n *= np.sqrt(p_sig / (10.0 ** (snr_db / 10.0)) / p_noise)
    return np.clip(a + n, -1.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------------------------------------- video


def gaussian_blur(frames: np.ndarray, sigma_frac: float = BLUR_SIGMA_FRAC) -> np.ndarray:
    """Every frame blurred with a Gaussian of sigma = ``sigma_frac`` x the frame's longer side (>= 1 px)."""
    import cv2

    frames = np.asarray(frames)
    if len(frames) == 0:
        return frames.copy()
    sigma = max(1.0, sigma_frac * max(frames.shape[1], frames.shape[2]))
    return np.stack([cv2.GaussianBlur(f, (0, 0), sigmaX=sigma, sigmaY=sigma) for f in frames]).astype(np.uint8)


def _default_detector() -> Callable[[np.ndarray], list] | None:
    try:
        from omni_mer.evidence.face import detect_faces
    except ImportError as exc:
        log.warning("no face detector (%s); occluding the centre box instead", exc)
        return None
    return detect_faces


def _box_xyxy(box, h: int, w: int) -> tuple[int, int, int, int]:
    """Accept (x, y, w, h) tuples/arrays or objects with x/y/w/h (or x0/y0/x1/y1) attributes."""
    if hasattr(box, "x0"):
        x0, y0, x1, y1 = box.x0, box.y0, box.x1, box.y1
    elif hasattr(box, "w") and hasattr(box, "x"):
        x0, y0, x1, y1 = box.x, box.y, box.x + box.w, box.y + box.h
    else:
        x, y, bw, bh = [float(v) for v in list(box)[:4]]
        x0, y0, x1, y1 = x, y, x + bw, y + bh
    x0, x1 = int(np.clip(np.floor(x0), 0, w)), int(np.clip(np.ceil(x1), 0, w))
    y0, y1 = int(np.clip(np.floor(y0), 0, h)), int(np.clip(np.ceil(y1), 0, h))
    return x0, y0, x1, y1


def _pad(box: tuple[int, int, int, int], pad: float, h: int, w: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    px, py = int(round(pad * (x1 - x0))), int(round(pad * (y1 - y0)))
    return max(0, x0 - px), max(0, y0 - py), min(w, x1 + px), min(h, y1 + py)


def _centre_box(h: int, w: int) -> tuple[int, int, int, int]:
    bh, bw = int(round(h * CENTRE_BOX[0])), int(round(w * CENTRE_BOX[1]))
    y0, x0 = (h - bh) // 2, (w - bw) // 2
    return x0, y0, x0 + bw, y0 + bh


def occlude_faces(frames: np.ndarray, detector: Callable | None = None,
                  pad: float = OCCLUDE_PAD) -> tuple[np.ndarray, int]:
    """Black boxes over the faces in every frame (each box grown by ``pad`` x its size on every side, so hair line
    and chin are covered too); frames without a detected face get the centre box.

    Returns the new frames and how many face boxes the detector found (0 means every frame used the fallback).
    """
    frames = np.array(frames, copy=True)
    det = detector if detector is not None else _default_detector()
    found = 0
    for i, f in enumerate(frames):
        h, w = f.shape[:2]
        boxes = []
        if det is not None:
            try:
                boxes = [_box_xyxy(b, h, w) for b in (det(f) or [])]
            except Exception as exc:  # noqa: BLE001 - occlusion must still happen
                log.warning("face detection failed on frame %d (%s); using the centre box", i, exc)
                boxes = []
        boxes = [b for b in boxes if b[2] > b[0] and b[3] > b[1]]
        found += len(boxes)
        for x0, y0, x1, y1 in [_pad(b, pad, h, w) for b in boxes] or [_centre_box(h, w)]:
            f[y0:y1, x0:x1] = 0
    return frames, found


# ------------------------------------------------------------------------------------------------- the registry


@dataclass(frozen=True)
class Perturbation:
    """A named corruption. ``clip_fn(clip, seed) -> Clip`` and/or ``evidence_fn(evidence) -> Evidence``."""

    name: str
    description: str
    clip_fn: Callable[[Clip, int], Clip] | None = None
    evidence_fn: Callable[[Evidence], Evidence] | None = None
    touches: frozenset[str] = field(default_factory=frozenset)  # subset of {"audio", "video", "text"}

    def apply_clip(self, clip: Clip) -> Clip:
        """A perturbed copy of ``clip`` (the same object when this perturbation only touches evidence)."""
        if self.clip_fn is None:
            return clip
        out = self.clip_fn(clip, _seed(clip.id, self.name))
        out.warnings = list(clip.warnings) + [f"perturbed: {self.name}"]
        return out

    def apply_evidence(self, evidence: Evidence) -> Evidence:
        return evidence if self.evidence_fn is None else self.evidence_fn(evidence)


def _noise_fn(snr_db: float, kind: str) -> Callable[[Clip, int], Clip]:
    def fn(clip: Clip, seed: int) -> Clip:
        return dataclasses.replace(clip, audio=add_noise(clip.audio, snr_db, kind, seed, clip.sample_rate))

    return fn


def _blur(clip: Clip, seed: int) -> Clip:
    return dataclasses.replace(clip, frames=gaussian_blur(clip.frames))


def _occlude(clip: Clip, seed: int) -> Clip:
    frames, _ = occlude_faces(clip.frames)
    return dataclasses.replace(clip, frames=frames)


def _drop_audio(clip: Clip, seed: int) -> Clip:
    # The same state media.decode gives a file without an audio stream.
    return dataclasses.replace(clip, audio=np.zeros(0, np.float32), has_audio=False)


def _drop_video(clip: Clip, seed: int) -> Clip:
    # The same state media.decode gives an audio-only file.
    return dataclasses.replace(clip, frames=np.zeros((0, 0, 0, 3), np.uint8), frame_times=np.zeros(0), fps=0.0,
                               has_video=False)


def _drop_text(ev: Evidence) -> Evidence:
    return dataclasses.replace(ev, transcript="", segments=[],
                               text=ModalityEvidence.absent("text", "transcript removed (perturbation drop_text)"))


def _build() -> dict[str, Perturbation]:
    reg: dict[str, Perturbation] = {}
    for snr in (20, 10, 5, 0):
        reg[f"snr{snr}"] = Perturbation(f"snr{snr}", f"white noise at {snr} dB SNR", _noise_fn(snr, "white"),
                                        touches=frozenset({"audio"}))
    for snr in (10, 5, 0):
        reg[f"babble{snr}"] = Perturbation(f"babble{snr}", f"babble-like noise at {snr} dB SNR",
                                           _noise_fn(snr, "babble"), touches=frozenset({"audio"}))
    reg["blur"] = Perturbation("blur", f"Gaussian blur, sigma {BLUR_SIGMA_FRAC:.0%} of the longer side", _blur,
                               touches=frozenset({"video"}))
    reg["occlude"] = Perturbation("occlude", "black box over detected faces (centre box if none found)", _occlude,
                                  touches=frozenset({"video"}))
    reg["drop_audio"] = Perturbation("drop_audio", "audio track removed", _drop_audio, touches=frozenset({"audio"}))
    reg["drop_video"] = Perturbation("drop_video", "frames removed", _drop_video, touches=frozenset({"video"}))
    reg["drop_text"] = Perturbation("drop_text", "transcript removed", evidence_fn=_drop_text,
                                    touches=frozenset({"text"}))
    return reg


PERTURBATIONS: dict[str, Perturbation] = _build()
DEFAULT_PERTURBATIONS: tuple[str, ...] = ("snr20", "snr10", "snr0", "babble5", "blur", "occlude", "drop_audio",
                                          "drop_video", "drop_text")


def get(name: str) -> Perturbation:
    """The registered perturbation ``name``; ConfigError naming the valid ones otherwise."""
    try:
        return PERTURBATIONS[name.strip()]
    except KeyError:
        raise ConfigError(f"unknown perturbation {name!r}; valid: {', '.join(PERTURBATIONS)}") from None


def parse_names(names: str | list[str] | tuple[str, ...] | None) -> list[Perturbation]:
    """Comma-separated string or list of names ("all" = every registered one; None/"default" = the default set)."""
    if names is None or names == "default" or names == ["default"]:
        names = list(DEFAULT_PERTURBATIONS)
    elif isinstance(names, str):
        names = [n for n in names.split(",") if n.strip()]
    if list(names) == ["all"]:
        names = list(PERTURBATIONS)
    out, seen = [], set()
    for n in names:
        p = get(n)
        if p.name not in seen:
            seen.add(p.name)
            out.append(p)
    if not out:
        raise ConfigError(f"no perturbation given; valid: {', '.join(PERTURBATIONS)}")
    return out
