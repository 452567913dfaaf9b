"""The CPU "lite" scorer: fuse per-modality evidence into an ordinal 5-class distribution.

The formulas are in omni_mer/scorers/fusion.py (written once; calibrate.py fits the same ones). For the modalities
in ``keep`` that are present, the valence fusion

    s = sum_m w_m c_m v_m / (shrink + sum_m w_m c_m)          (v = valence in [-1, 1], c = confidence)

``shrink`` is a pseudo-weight on a neutral prior: weak or missing evidence pulls ``s`` toward 0 (NEUT), so the empty
coalition gives the prior and every added modality moves the distribution only as far as its confidence allows. ``s``
goes through a cumulative-logit (ordinal) link with four increasing thresholds:

    P(y <= k) = sigmoid((theta_k - s) / temperature),   k = SNEG..WPOS

With a trained text head, coalitions with words tilt the head's distribution instead (class docstring). In both,
a kept audio modality then shifts probability between the strong and the weak classes by its arousal (intensity:
fusion.apply_intensity), never across polarity.

Default parameters and why (docs/fusion.md has the measurements):
- polarity weights text 1.0, visual 1.0, audio 0.0: text carries most of the polarity signal (the head decides
  wherever there are words); the face's weight is fitted on the real actor clips (scripts/visual_reliability.py);
  prosody valence does not track polarity on real clips (Spearman 0.03) and so gets no polarity weight (it had
  0.35), only the intensity gain 0.5.
- shrink 0.35: one fully confident modality (w c = 1) keeps 74 % of its valence; a hesitant one (w c = 0.2) keeps 36 %.
- thresholds (-0.55, -0.15, 0.15, 0.55): symmetric, the NEUT band a little narrower than the weak bands, matching
  the label mappings (MOSEI's NEUT is (-0.5, 0.5) of a [-3, 3] scale, i.e. 1/6 of the range).
- temperature 0.12: turns a 0.1 valence margin at a threshold into about 70/30 odds.
``omni-mer calibrate`` refits all of them (per language when there are enough clips), keeps a modality's weight only
when held-out folds say it helps (calibrate.guard_weights), and writes ``checkpoints/lite/calibration.json``, which
the pipeline loads automatically.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from omni_mer.core.clip import Clip
from omni_mer.core.config import MODALITIES, PROJECT_ROOT
from omni_mer.evidence.types import Evidence
from omni_mer.core.labels import LABELS
from omni_mer.core.ordinal import CLASS_VALENCE, ordinal_probs
from omni_mer.scorers.base import Scorer, check_keep
from omni_mer.scorers.fusion import apply_intensity, audio_intensity, fuse_valence

log = logging.getLogger(__name__)

DEFAULT_CALIBRATION_PATH = PROJECT_ROOT / "checkpoints" / "lite" / "calibration.json"


# Reliability defaults (docs/fusion.md has the measurements): prosody valence does not track polarity on real clips
# (Spearman 0.03), so audio's polarity weight is 0 in both the valence fusion and the head tilt, and audio is used
# for intensity only. The face's 1.0 (was a 0.6 prior) is the smallest weight with the best visual-only polarity on
# the 17 real actor clips (balanced accuracy 0.85 in-sample; 0.72 leave-one-out, as with 0.6:
# scripts/visual_reliability.py). Text keeps 1.0 (the trained head decides wherever there are words).
DEFAULT_WEIGHTS = {"text": 1.0, "audio": 0.0, "visual": 1.0}
DEFAULT_TILT = {"audio": 0.0, "visual": 0.3}
DEFAULT_INTENSITY = 0.5


@dataclass
class FusionParams:
    """Polarity weights and bands of the valence fusion, the head-mode tilt weights and the audio intensity gain
    (omni_mer.scorers.fusion has the formulas). Files written before ``tilt``/``intensity`` existed load with the
    defaults."""

    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    shrink: float = 0.35
    thresholds: tuple[float, float, float, float] = (-0.55, -0.15, 0.15, 0.55)
    temperature: float = 0.12
    tilt: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_TILT))
    intensity: float = DEFAULT_INTENSITY

    def __post_init__(self) -> None:
        missing = set(MODALITIES) - set(self.weights)
        if missing:
            raise ValueError(f"fusion weights miss modalities {sorted(missing)}; need all of {MODALITIES}")
        if set(self.tilt) != {"audio", "visual"}:
            raise ValueError(f"tilt weights {self.tilt!r} must give exactly 'audio' and 'visual'")
        bad = {k: v for k, v in {**self.weights, **self.tilt}.items() if not v >= 0}
        if bad:
            raise ValueError(f"fusion weights must be >= 0, got {bad}")
        th = tuple(float(t) for t in self.thresholds)
        if len(th) != len(LABELS) - 1 or any(b <= a for a, b in zip(th, th[1:])):
            raise ValueError(f"thresholds {th} must be {len(LABELS) - 1} strictly increasing values")
        if self.shrink < 0 or self.temperature <= 0:
            raise ValueError(f"shrink={self.shrink} must be >= 0 and temperature={self.temperature} > 0")
        self.thresholds = th  # type: ignore[assignment]

    def weight_vector(self) -> np.ndarray:
        return np.asarray([self.weights[m] for m in MODALITIES], dtype=np.float64)

    def fused_valence(self, valence: dict[str, float], confidence: dict[str, float]) -> float:
        used = [m for m in MODALITIES if m in valence]
        return float(fuse_valence([valence[m] for m in used], [confidence[m] for m in used],
                                  [self.weights[m] for m in used], self.shrink))

    def distribution(self, s: float) -> np.ndarray:
        return ordinal_probs(np.asarray([s]), np.asarray(self.thresholds), self.temperature)[0]


@dataclass
class Calibration:
    """Fusion parameters, optionally per language ("en"/"zh"), plus where they came from."""

    default: FusionParams = field(default_factory=FusionParams)
    per_language: dict[str, FusionParams] = field(default_factory=dict)
    source: str = "defaults"
    metrics: dict = field(default_factory=dict)

    def for_language(self, language: str | None) -> FusionParams:
        return self.per_language.get(language or "", self.default)

    def to_dict(self) -> dict:
        return {
            "default": asdict(self.default),
            "per_language": {k: asdict(v) for k, v in self.per_language.items()},
            "source": self.source,
            "metrics": self.metrics,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Calibration":
        return cls(
            default=FusionParams(**d["default"]),
            per_language={k: FusionParams(**v) for k, v in d.get("per_language", {}).items()},
            source=d.get("source", "file"),
            metrics=d.get("metrics", {}),
        )

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> "Calibration":
        try:
            cal = cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not a valid lite calibration file ({exc})") from exc
        cal.source = str(path)
        return cal


# Text-head mode: how strongly a fully confident audio / visual valence tilts the head's distribution along the
# class valences (logit units: the SPOS-vs-SNEG logit difference moves by 2 * TILT_SCALE * w * c * v). The weights are
# FusionParams.tilt (per language in a calibration); audio's is 0 because prosody valence does not track polarity on
# real clips (Spearman 0.03; docs/fusion.md, docs/voice.md).
TILT_SCALE = 2.0
HEAD_MODE_WEIGHTS = DEFAULT_TILT  # the head-mode tilt weights when no calibration sets them (FusionParams.tilt)


class LiteScorer(Scorer):
    """Fuses the evidence extractors' per-modality verdicts; no model weights of its own.

    With a trained text head (``text_head``, loaded by ``from_path``: texthead/shipped.py's choice), every coalition
    that keeps a present text modality is a tilt of the head's calibrated distribution:
    ``p ∝ softmax((z + bias)/T + TILT_SCALE * u * class_valence)`` with ``z`` the head's logits for the transcript
    and ``u = sum_m w_m c_m v_m`` over the kept, present audio/visual modalities (``w``: HEAD_MODE_WEIGHTS). The
    text-only coalition IS the head's distribution. Coalitions without words (silent clips, and the Shapley
    coalitions that drop text) have nothing for the head to read and use the valence fusion in the module docstring,
    as without a head: an empty transcript reads as confidently NEUT to the head (p = 0.56 in English), which would
    silence the face on every silent clip (measured: 0 of 18 weakly labelled silent actor clips kept their polarity,
    against 9 with the valence fusion).
    """

    name = "lite"

    def __init__(self, calibration: Calibration | None = None, text_head=None,
                 head_weights: dict[str, float] | None = None) -> None:
        self.calibration = calibration or Calibration()
        self.text_head = text_head
        # an explicit head_weights overrides the calibration's per-language tilt weights
        self._head_weights_override = None if head_weights is None else dict(head_weights)
        if self._head_weights_override is not None and set(self._head_weights_override) != {"audio", "visual"}:
            raise ValueError(f"head_weights {head_weights!r} must give exactly 'audio' and 'visual'")

    @property
    def head_weights(self) -> dict[str, float]:
        """The head-mode tilt weights of the default language (``tilt_weights(lang)`` for one language)."""
        return self.tilt_weights(None)

    def tilt_weights(self, language: str | None) -> dict[str, float]:
        if self._head_weights_override is not None:
            return self._head_weights_override
        return dict(self.calibration.for_language(language).tilt)

    @classmethod
    def from_path(cls, path: Path | None) -> "LiteScorer":
        """Use the calibration at ``path`` (default checkpoints/lite/calibration.json) when it exists, and the
        shipped text head (texthead/shipped.py's choice: the one the evidence extractor reads) when it exists."""
        from omni_mer.texthead.shipped import load_shipped_head

        head = load_shipped_head()
        if head is not None:
            kind = (f"fused, {len(head.members)} members" if getattr(head, "members", None)
                    else f"encoder {head.encoder_id}")
            log.info("lite scorer: text head %s (%s)", head.digest, kind)
        path = Path(path) if path else DEFAULT_CALIBRATION_PATH
        if path.is_file():
            log.info("lite scorer: calibration from %s", path)
            return cls(Calibration.load(path), text_head=head)
        log.info("lite scorer: no calibration at %s, using documented defaults", path)
        return cls(text_head=head)

    def fused_valence(self, evidence: Evidence, keep: frozenset[str]) -> float:
        params = self.calibration.for_language(evidence.language)
        used = [m for m in MODALITIES if m in keep and evidence.modality(m).present]
        return params.fused_valence(
            {m: evidence.modality(m).valence for m in used}, {m: evidence.modality(m).confidence for m in used}
        )

    def uses_head(self, evidence: Evidence, keep: frozenset[str]) -> bool:
        """Whether this coalition is scored by the text head (a head is loaded and present text is kept)."""
        return self.text_head is not None and "text" in keep and evidence.text.present

    def head_inputs(self, evidence: Evidence, keep: frozenset[str]) -> tuple[np.ndarray, float]:
        """Text-head mode: (logits, tilt) of a coalition that keeps the words (see the class docstring)."""
        head = self.text_head
        text = evidence.text
        z = head.prior_logits(evidence.language)
        if all(f"head_z_{lab}" in text.features for lab in LABELS):
            z = np.asarray([text.features[f"head_z_{lab}"] for lab in LABELS], dtype=np.float64)
        else:  # text evidence from elsewhere (a manifest, a test): its valence tilts the empty-transcript reading
            z = z + head.calibration_for(evidence.language).temperature * TILT_SCALE * (
                text.confidence * text.valence) * CLASS_VALENCE
        u = 0.0
        for m, w in self.tilt_weights(evidence.language).items():
            me = evidence.modality(m)
            if m in keep and me.present:
                u += w * me.confidence * me.valence
        return z, TILT_SCALE * u

    def score(self, clip: Clip, evidence: Evidence, keep: frozenset[str]) -> np.ndarray:
        keep = check_keep(keep)
        params = self.calibration.for_language(evidence.language)
        if self.uses_head(evidence, keep):
            z, tilt = self.head_inputs(evidence, keep)
            p = self.text_head.probs(z, evidence.language, tilt)[0]
        else:
            p = params.distribution(self.fused_valence(evidence, keep))
        arousal, conf = audio_intensity(evidence, keep)
        return apply_intensity(p, arousal, conf, params.intensity) if conf > 0 and params.intensity else p

    def prior(self) -> np.ndarray:
        return self.calibration.default.distribution(0.0)

    def version(self) -> str:
        head = f", text head {self.text_head.digest}" if self.text_head is not None else ""
        return f"lite-fusion ({self.calibration.source}{head})"
