"""Audio evidence: how it is said. Prosody and voice over time with numpy + scipy (permissive, fast).

Frame analysis (16 kHz, 64 ms frames, 20 ms hop):
- F0 by YIN (cumulative mean normalised difference, threshold 0.15, parabolic refinement), 60–500 Hz; a frame is
  voiced when it is active and its YIN aperiodicity is < 0.25. Pitch is in semitones re 100 Hz, voiced frames only;
  frames > 9 st from the clip median are folded by an octave (YIN octave errors); F0 SD = (84th - 16th percentile) / 2.
- Loudness: RMS in dBFS. Activity: RMS above max(-55 dBFS, 95th percentile - 35 dB).
- Voice quality proxies: spectral flatness and spectral tilt (dB energy 0–1 kHz minus 1–4 kHz) on active frames;
  "jitter-ish" = median |ΔF0|/F0 between consecutive voiced frames (not cycle-level jitter).
- Speech rate proxy: syllable nuclei = peaks of the 300–2500 Hz band energy (smoothed 40 ms) that are voiced,
  ≥ 2 dB prominent and ≥ 100 ms apart, per second of speaking time (de Jong & Wempe 2009, simplified). With ASR
  segments, the text rate (Chinese characters or English syllables per second of segment time) is also reported.
- Pauses: silences ≥ 0.25 s inside the speech span; silence ratio = inactive fraction of the span; a pause
  ≥ 0.6 s is a "long pause" cue.

Clip-level features are turned into z-scores against fixed population references for conversational adult speech
(rough values from the speech literature; recording gain makes absolute level meaningless, so only level
*variability* is used):
    F0 SD 2.5 ± 1.0 st · F0 range (5–95 %) 8 ± 3 st · pause ratio 0.20 ± 0.10 · loudness SD 6 ± 2 dB ·
    spectral tilt 15 ± 6 dB · speech rate per language (RATE_REFS: en 4.5 ± 1.1, zh 5.1 ± 1.3 syll/s).
Arousal = tanh(0.6 (0.35 z_F0sd + 0.25 z_rate + 0.3 z_loudSD - 0.3 z_tilt + 0.15 z_range)). Arousal is what prosody
predicts well (lively, fast, loud, bright voices are aroused); ``features["arousal_confidence"]`` says how much of
it to believe (speech likeness x amount of speech).
Valence = tanh(0.5 (0.35 z_F0sd + 0.25 z_rate - 0.3 z_pause + 0.15 z_range)) with confidence at most 0.35 is kept
as a descriptor ("lively vs flat"), but the lite fusion does not read it as polarity: on real clips it does not
track gold polarity (Spearman 0.03, ../shared/DESIGN.md §4), so the fusion uses the audio modality for intensity
(arousal moves probability between the strong and the weak class of the polarity the other modalities set;
omni_mer/scorers/fusion.py, docs/voice.md).

Timed cues: tracks at 20 ms are smoothed (pitch 0.3 s, loudness 0.6 s energy average, rate 0.4 s Gaussian) over
speech (active frames plus sub-0.25 s dips), z-scored within the clip over active frames, and runs of
|z| ≥ 1 lasting ≥ 0.3 s become cues: pitch (rises/drops), loudness (louder/quieter), rate (speeds up/slows); runs
that overlap are merged into one cue (e.g. en "voice drops and slows at 3.2–4.0 s", zh "3.2–4.0 秒声音变低变慢").
``Cue.value`` is the run's mean z-score (the pause length in seconds for pauses), ``effect`` its signed valence
contribution, ``kind`` "pitch" / "loudness" / "rate" / "pause".

Non-speech audio (a steady tone, noise, music) gets a low "speech likeness" (voicing, F0 movement and a
syllable-like rhythm are all needed), which scales the confidence down.
"""

from __future__ import annotations

import logging
import re

import numpy as np

from omni_mer.core.clip import Clip
from omni_mer.evidence.types import Cue, ModalityEvidence, Segment

log = logging.getLogger(__name__)

FRAME = 1024  # 64 ms at 16 kHz: two periods of a 31 Hz tone fit, so 60 Hz voices are safe
HOP_S = 0.02
FMIN, FMAX = 60.0, 500.0
YIN_THRESHOLD = 0.15
VOICED_APERIODICITY = 0.25

# population references (mean, sd) for conversational adult speech; see the module docstring
REFS = {
    "f0_sd_st": (2.5, 1.0),
    "f0_range_st": (8.0, 3.0),
    "pause_ratio": (0.20, 0.10),
    "loud_sd_db": (6.0, 2.0),
    "tilt_db": (15.0, 6.0),
}
# Speech rate is normalised per language, never with one reference for both: a Mandarin character is a syllable,
# and the two languages are spoken at different syllable rates. (median, sd) in syllables per second of ASR segment
# time (English: vowel groups per word, text_syllables; Mandarin: characters). zh: centred on the median measured on
# real Mandarin film/TV clips (../shared/DESIGN.md §4: z +0.48 against 4.5 +- 1.2, i.e. 5.1 chars/s); en: the
# conversational English syllable rate the module always used (4.5), which the one real English speech clip here
# (MEAD M003 neutral, read: 4.1 syll/s, z -0.4) agrees with; sd about 25 % of the median (speaker spread within a
# language). The acoustic syllable-nucleus rate, used when there is no transcript, is read against the same
# reference. docs/voice.md.
RATE_REFS = {"en": (4.5, 1.1), "zh": (5.1, 1.3)}
VALENCE_CONF_MAX = 0.35
CUE_Z = 1.0
CUE_MIN_S = 0.3
LONG_PAUSE_S = 0.6
MAX_CUES = 8

WORDS = {
    "en": {("pitch", 1): "pitch rises", ("pitch", -1): "pitch drops", ("loudness", 1): "louder",
           ("loudness", -1): "quieter", ("rate", 1): "speeds up", ("rate", -1): "slows",
           "voice_drop": "voice drops", "voice_up": "voice rises", "pause": "long pause"},
    "zh": {("pitch", 1): "音调升高", ("pitch", -1): "音调降低", ("loudness", 1): "声音变大",
           ("loudness", -1): "声音变小", ("rate", 1): "语速加快", ("rate", -1): "语速放慢",
           "voice_drop": "声音变低", "voice_up": "声音变高", "pause": "长时间停顿"},
}
# signed valence contribution of a +1 z excursion of each track (see the docstring: weak and mostly via liveliness)
CUE_VALENCE = {"pitch": 0.15, "loudness": 0.05, "rate": 0.15}


def _frames(x: np.ndarray, frame: int, hop: int) -> np.ndarray:
    if len(x) < frame:
        x = np.pad(x, (0, frame - len(x)))
    n = 1 + (len(x) - frame) // hop
    return np.lib.stride_tricks.as_strided(x, (n, frame), (x.strides[0] * hop, x.strides[0]), writeable=False)


def yin(frames: np.ndarray, sr: int, fmin: float = FMIN, fmax: float = FMAX) -> tuple[np.ndarray, np.ndarray]:
    """YIN F0 (Hz) and aperiodicity (CMNDF minimum, 0 = perfectly periodic) per frame."""
    w = frames.shape[1] // 2  # integration window
    tmin, tmax = max(2, int(sr / fmax)), min(w - 1, int(sr / fmin))
    f = frames.astype(np.float64)
    n_fft = 1 << int(np.ceil(np.log2(2 * frames.shape[1])))
    spec = np.fft.rfft(f, n_fft)
    # r_t(tau) = sum_{j<w} x[j] x[j+tau]: cross-correlation of the first w samples with the whole frame
    spec_w = np.fft.rfft(f[:, :w], n_fft)
    acf = np.fft.irfft(np.conj(spec_w) * spec, n_fft)[:, : tmax + 1]
    sq = np.cumsum(np.concatenate([np.zeros((len(f), 1)), f**2], axis=1), axis=1)
    energy0 = sq[:, w][:, None]
    taus = np.arange(tmax + 1)
    energy_tau = sq[:, taus + w] - sq[:, taus]
    d = energy0 + energy_tau - 2 * acf
    d[:, 0] = 0
    cum = np.cumsum(d[:, 1:], axis=1) / np.arange(1, tmax + 1)
    cmndf = np.ones_like(d)
    cmndf[:, 1:] = d[:, 1:] / np.maximum(cum, 1e-12)
    c = cmndf[:, tmin : tmax + 1]
    below = c < YIN_THRESHOLD
    # first dip below threshold, then walk to its local minimum; global minimum when none dips
    first = np.where(below.any(axis=1), below.argmax(axis=1), c.argmin(axis=1))
    idx = first.copy()
    for _ in range(8):  # walk downhill a few steps (vectorised)
        nxt = np.minimum(idx + 1, c.shape[1] - 1)
        step = c[np.arange(len(c)), nxt] < c[np.arange(len(c)), idx]
        idx = np.where(step, nxt, idx)
    rows = np.arange(len(c))
    ap = c[rows, idx]
    # parabolic interpolation of the dip
    l, r = np.maximum(idx - 1, 0), np.minimum(idx + 1, c.shape[1] - 1)
    a, b, cc = c[rows, l], c[rows, idx], c[rows, r]
    den = a - 2 * b + cc
    shift = np.where(np.abs(den) > 1e-12, 0.5 * (a - cc) / np.where(np.abs(den) > 1e-12, den, 1), 0)
    period = tmin + idx + np.clip(shift, -1, 1)
    return sr / period, np.clip(ap, 0, 1)


def _smooth(x: np.ndarray, n: int) -> np.ndarray:
    if n <= 1 or len(x) == 0:
        return x
    k = np.hanning(n + 2)[1:-1]
    k /= k.sum()
    return _conv_same(x, k)


def _conv_same(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Centred convolution of len(x) (np.convolve's "same" returns len(k) samples when the kernel is longer)."""
    full = np.convolve(x, k, mode="full")
    start = (len(k) - 1) // 2
    return full[start:start + len(x)]


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index runs where mask is True."""
    m = np.concatenate([[False], mask.astype(bool), [False]])
    d = np.diff(m.astype(int))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def _z(name: str, v: float) -> float:
    mu, sd = REFS[name]
    return float(np.clip((v - mu) / sd, -3, 3))


def rate_z(rate: float, language: str) -> float:
    """Speech rate (syllables/s) as a z-score against ``language``'s own reference (RATE_REFS)."""
    if language not in RATE_REFS:
        raise ValueError(f"no speech-rate reference for language {language!r}; have {sorted(RATE_REFS)}")
    mu, sd = RATE_REFS[language]
    return float(np.clip((rate - mu) / sd, -3, 3))


def text_syllables(text: str, language: str) -> int:
    """Syllables in a transcript: CJK characters for Chinese, vowel groups per English word."""
    cjk = len(re.findall(r"[\u4e00-\u9fff]", text))
    words = re.findall(r"[A-Za-z']+", text)
    en = sum(max(1, len(re.findall(r"[aeiouy]+", w.lower().rstrip("e")) or [1])) for w in words)
    return cjk + en


class ProsodyAnalyzer:
    """Prosody evidence for a Clip (modality "audio"). Stateless apart from settings; about 0.05 s CPU per 10 s."""

    def __init__(self, hop_s: float = HOP_S) -> None:
        import scipy.signal  # noqa: F401 - imported once here, not inside the first clip's timing

        self.hop_s = hop_s

    def tracks(self, audio: np.ndarray, sr: int) -> dict[str, np.ndarray]:
        """Frame-level tracks at ``hop_s``: time, f0 (Hz), aperiodicity, rms_db, active, voiced, band_db, tilt, flat."""
        hop = int(round(self.hop_s * sr))
        x = np.nan_to_num(np.asarray(audio, dtype=np.float32).ravel())
        # centre frames on their time stamps
        xp = np.pad(x, (FRAME // 2, FRAME // 2))
        fr = _frames(xp, FRAME, hop)
        n = min(len(fr), int(np.ceil(len(x) / hop)))
        fr = fr[:n]
        t = np.arange(n) * hop / sr
        rms = np.sqrt(np.mean(fr.astype(np.float64) ** 2, axis=1) + 1e-12)
        rms_db = 20 * np.log10(rms + 1e-10)
        thr = max(-55.0, float(np.percentile(rms_db, 95)) - 35.0)
        active = rms_db > thr
        f0, ap = yin(fr, sr)
        voiced = active & (ap < VOICED_APERIODICITY) & (f0 >= FMIN) & (f0 <= FMAX)
        # spectrum of a 512-sample Hann window at the frame centre (enough resolution for band energies)
        c0 = FRAME // 2 - 256
        spec = np.abs(np.fft.rfft(fr[:, c0 : c0 + 512] * np.hanning(512), axis=1)) ** 2 + 1e-12
        freqs = np.fft.rfftfreq(512, 1 / sr)
        lo = spec[:, (freqs > 50) & (freqs <= 1000)].sum(axis=1)
        hi = spec[:, (freqs > 1000) & (freqs <= 4000)].sum(axis=1)
        band = spec[:, (freqs >= 300) & (freqs <= 2500)].sum(axis=1)
        sub = spec[:, (freqs > 50) & (freqs <= 4000)]
        flat = np.exp(np.mean(np.log(sub), axis=1)) / np.mean(sub, axis=1)
        return {"t": t, "f0": f0, "ap": ap, "rms_db": rms_db, "active": active, "voiced": voiced,
                "band_db": 10 * np.log10(band), "tilt": 10 * np.log10(lo / hi), "flat": flat}

    def _nuclei(self, tr: dict[str, np.ndarray]) -> np.ndarray:
        """Frame indices of syllable nuclei (voiced, prominent peaks of smoothed band energy)."""
        from scipy.signal import find_peaks

        e = _smooth(tr["band_db"], max(1, int(round(0.04 / self.hop_s))))
        peaks, _ = find_peaks(e, prominence=2.0, distance=max(1, int(round(0.1 / self.hop_s))))
        return peaks[tr["voiced"][peaks]] if len(peaks) else peaks

    def analyze(self, clip: Clip, segments: list[Segment] | None, language: str,
                tracks: dict[str, np.ndarray] | None = None) -> ModalityEvidence:
        """Prosody evidence; absent when there is no audio track or it is silent. ``tracks``: ``self.tracks`` of the
        clip's audio computed beforehand (the extractor does while Whisper runs: only the rate needs the words)."""
        lang = "zh" if str(language).startswith("zh") else "en"
        if not clip.has_audio or len(clip.audio) == 0:
            return ModalityEvidence.absent("audio", "no audio track")
        if clip.audio_is_silent:
            return ModalityEvidence.absent("audio", "silent audio")
        sr = clip.sample_rate
        tr = tracks if tracks is not None else self.tracks(clip.audio, sr)
        active, voiced = tr["active"], tr["voiced"]
        hop = self.hop_s
        if float(np.max(tr["rms_db"])) < -60 or active.sum() * hop < 0.1:
            return ModalityEvidence.absent("audio", "silent audio")

        act_idx = np.flatnonzero(active)
        span0, span1 = act_idx[0], act_idx[-1] + 1
        speech_s = float(active.sum() * hop)
        st = 12 * np.log2(np.where(voiced, tr["f0"], np.nan) / 100.0)
        if voiced.any():
            # YIN octave errors: fold frames more than 9 st from the clip's median back by an octave
            med = np.nanmedian(st)
            dev = st - med
            st = np.where(dev > 9, st - 12, np.where(dev < -9, st + 12, st))
        st_v = st[voiced]
        n_voiced = int(voiced.sum())
        voiced_frac = n_voiced / max(1, active.sum())

        # pauses inside the speech span
        pauses = [(a, b) for a, b in _runs(~active[span0:span1]) if (b - a) * hop >= 0.25]
        pauses = [(a + span0, b + span0) for a, b in pauses]
        pause_ratio = float((~active[span0:span1]).mean()) if span1 > span0 else 0.0
        nuclei = self._nuclei(tr)
        talk_s = max(speech_s, 0.2)
        rate = len(nuclei) / talk_s
        feats: dict[str, float] = {
            "speech_s": speech_s, "voiced_frac": float(voiced_frac), "pause_ratio": pause_ratio,
            "n_pauses": float(len(pauses)), "rate_syll_s": float(rate),
            "loud_mean_db": float(np.mean(tr["rms_db"][active])), "loud_sd_db": float(np.std(tr["rms_db"][active])),
            "tilt_db": float(np.median(tr["tilt"][active])), "flatness": float(np.median(tr["flat"][active])),
        }
        if n_voiced >= 5:
            f0v = 100.0 * 2 ** (st_v / 12)
            p16, p84 = np.percentile(st_v, [16, 84])  # SD from the central 68 %: robust to leftover pitch errors
            feats.update(f0_median_hz=float(np.median(f0v)), f0_sd_st=float(p84 - p16) / 2,
                         f0_range_st=float(np.percentile(st_v, 95) - np.percentile(st_v, 5)))
            pairs = voiced[1:] & voiced[:-1]
            if pairs.any():
                f0 = 100.0 * 2 ** (np.nan_to_num(st) / 12)
                feats["jitter_pct"] = float(100 * np.median(np.abs(np.diff(f0))[pairs] / f0[1:][pairs]))
        if segments:
            seg_s = sum(max(0.0, s.end - s.start) for s in segments)
            syl = sum(text_syllables(s.text, lang) for s in segments)
            if seg_s > 0.3 and syl:
                feats["text_rate_syll_s"] = syl / seg_s

        # speech likeness: voicing, pitch movement and a syllable rhythm are all needed
        f0_sd = feats.get("f0_sd_st", 0.0)
        like_voicing = float(np.clip((voiced_frac - 0.1) / 0.3, 0, 1))
        like_motion = float(np.clip((f0_sd - 0.3) / 1.0, 0, 1))
        like_rhythm = float(np.clip((rate - 0.8) / 1.5, 0, 1)) * float(np.clip((12 - rate) / 3, 0, 1))
        likeness = (like_voicing * like_motion * like_rhythm) ** (1 / 3)
        feats["speech_likeness"] = likeness

        rate_for_z = feats.get("text_rate_syll_s", rate)
        z = {
            "f0_sd_st": _z("f0_sd_st", f0_sd) if n_voiced >= 5 else 0.0,
            "f0_range_st": _z("f0_range_st", feats.get("f0_range_st", 0.0)) if n_voiced >= 5 else 0.0,
            "rate_syll_s": rate_z(rate_for_z, lang),
            "pause_ratio": _z("pause_ratio", pause_ratio),
            "loud_sd_db": _z("loud_sd_db", feats["loud_sd_db"]),
            "tilt_db": _z("tilt_db", feats["tilt_db"]),
        }
        feats.update({f"z_{k}": v for k, v in z.items()})
        feats["rate_ref_syll_s"] = RATE_REFS[lang][0]
        arousal = float(np.tanh(0.6 * (0.35 * z["f0_sd_st"] + 0.25 * z["rate_syll_s"] + 0.3 * z["loud_sd_db"]
                                       - 0.3 * z["tilt_db"] + 0.15 * z["f0_range_st"])))
        valence = float(np.tanh(0.5 * (0.35 * z["f0_sd_st"] + 0.25 * z["rate_syll_s"] - 0.3 * z["pause_ratio"]
                                       + 0.15 * z["f0_range_st"])))
        amount = float(np.clip(speech_s / 2.0, 0, 1))  # under ~2 s of speech the clip statistics are noisy
        confidence = VALENCE_CONF_MAX * likeness * amount
        feats["arousal_confidence"] = 0.8 * likeness * amount
        reason = "valence from prosody is weak"
        if likeness < 0.3:
            reason = "audio does not sound like speech (no voicing, pitch movement or syllable rhythm)"

        cues = self._cues(tr, st, nuclei, pauses, lang) if likeness >= 0.15 else []
        return ModalityEvidence(modality="audio", present=True, valence=valence, confidence=float(confidence),
                                arousal=arousal, cues=cues, features=feats, reason=reason)

    def local_z(self, tr: dict[str, np.ndarray], st: np.ndarray, nuclei: np.ndarray) -> dict[str, np.ndarray]:
        """Within-clip z-scores per frame of smoothed pitch, loudness and syllable rate (NaN where undefined)."""
        active = tr["active"]
        n = len(active)
        # speech = active frames plus the short dips between syllables; pauses (>= 0.25 s) stay out
        speech = active.copy()
        for a, b in _runs(~active):
            if a > 0 and b < n and (b - a) * self.hop_s < 0.25:
                speech[a:b] = True
        win = max(1, int(round(0.3 / self.hop_s)))
        out: dict[str, np.ndarray] = {}
        # pitch: interpolate across unvoiced gaps inside speech, then smooth
        vi = np.flatnonzero(~np.isnan(st))
        if len(vi) >= 5:
            p = np.interp(np.arange(n), vi, st[vi])
            p = _smooth(p, win)
            p[~speech] = np.nan
            out["pitch"] = p
        # loudness: energy averaged over ~0.6 s (longer than a syllable), in dB
        power = np.where(active, 10 ** (tr["rms_db"] / 10), 0.0)
        lwin = max(1, int(round(0.6 / self.hop_s)))
        loud = 10 * np.log10(_smooth(power, lwin) / np.maximum(_smooth(active.astype(float), lwin), 1e-3) + 1e-12)
        loud[~speech] = np.nan
        out["loudness"] = loud
        if len(nuclei) >= 4:
            imp = np.zeros(n)
            imp[nuclei] = 1.0 / self.hop_s
            sd = max(1, int(round(0.4 / self.hop_s)))
            k = np.exp(-0.5 * (np.arange(-3 * sd, 3 * sd + 1) / sd) ** 2)
            k /= k.sum()
            act = _conv_same(speech.astype(float), k)
            r = _conv_same(imp, k) / np.maximum(act, 0.2)
            r[~speech] = np.nan
            out["rate"] = r
        zs = {}
        for name, v in out.items():
            m = ~np.isnan(v)
            sd = float(np.std(v[m])) if m.sum() > 2 else 0.0
            floor = {"pitch": 0.5, "loudness": 1.5, "rate": 1.0}[name]  # tiny wiggles are not cues
            zs[name] = (v - np.mean(v[m])) / max(sd, floor) if m.any() else v
        return zs

    def _cues(self, tr, st, nuclei, pauses, lang: str) -> list[Cue]:
        hop = self.hop_s
        t = tr["t"]
        zs = self.local_z(tr, st, nuclei)
        min_len = int(round(CUE_MIN_S / hop))
        runs = []  # (start_idx, end_idx, kind, sign, mean z)
        for kind, z in zs.items():
            zz = np.nan_to_num(z)
            for sign in (1, -1):
                for a, b in _runs(sign * zz >= CUE_Z):
                    if b - a >= min_len:
                        runs.append((a, b, kind, sign, float(np.mean(zz[a:b]))))
        # merge overlapping runs into one described event
        runs.sort()
        groups: list[list] = []
        for r in runs:
            if groups and r[0] < max(g[1] for g in groups[-1]):
                groups[-1].append(r)
            else:
                groups.append([r])
        words = WORDS[lang]
        cues: list[Cue] = []
        for g in groups:
            a, b = min(r[0] for r in g), max(r[1] for r in g)
            start, end = float(t[a]), float(t[min(b, len(t) - 1)])
            parts = {(r[2], r[3]) for r in g}
            strongest = max(g, key=lambda r: abs(r[4]))
            names = []
            if ("pitch", -1) in parts and ("loudness", -1) in parts:
                names.append(words["voice_drop"])
                parts -= {("pitch", -1), ("loudness", -1)}
            elif ("pitch", 1) in parts and ("loudness", 1) in parts and lang == "zh":
                names.append(words["voice_up"])
                parts -= {("pitch", 1), ("loudness", 1)}
            order = ["pitch", "loudness", "rate"]
            names += [words[p] for p in sorted(parts, key=lambda p: order.index(p[0]))]
            span = f"{start:.1f}–{end:.1f}"
            if lang == "zh":
                desc = "、".join(names)
                if names and names[0] == words["voice_drop"] and ("rate", -1) in parts and len(names) == 2:
                    desc = "声音变低变慢"
                text = f"{span} 秒{desc}"
            else:
                desc = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
                text = f"{desc} at {span} s"
            effect = float(np.clip(sum(CUE_VALENCE[r[2]] * r[4] for r in g) / 2, -1, 1))
            cues.append(Cue(modality="audio", start=start, end=end, text=text, value=strongest[4],
                            effect=effect, kind=strongest[2]))
        for a, b in pauses:
            dur = (b - a) * hop
            if dur >= LONG_PAUSE_S:
                start, end = float(t[a]), float(t[min(b, len(t) - 1)])
                span = f"{start:.1f}–{end:.1f}"
                text = f"{span} 秒{words['pause']}" if lang == "zh" else f"{words['pause']} {span} s"
                cues.append(Cue(modality="audio", start=start, end=end, text=text, value=float(dur),
                                effect=float(-min(0.3, 0.1 * dur)), kind="pause"))
        cues.sort(key=lambda c: abs(c.value) if c.kind != "pause" else c.value, reverse=True)
        cues = cues[:MAX_CUES]
        cues.sort(key=lambda c: c.start)
        return cues
