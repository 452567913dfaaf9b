"""What the package-shipped models found in a Clip, per modality, as timed cues."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from omni_mer.core.config import MODALITIES


@dataclass
class Cue:
    """One piece of evidence: e.g. a word and its lexicon score, a pitch drop, a smile."""

    modality: str  # "text" | "audio" | "visual"
    start: float  # seconds
    end: float
    text: str  # short description in the clip's language
    value: float  # the raw value behind it (lexicon score, z-score, probability)
    effect: float = 0.0  # signed valence contribution in [-1, 1], used to rank cues
    kind: str = ""  # machine-readable kind, e.g. "word", "pitch", "loudness", "expression:happy"

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ValueError(f"cue modality {self.modality!r} is not one of {MODALITIES}")


@dataclass
class Segment:
    start: float
    end: float
    text: str


@dataclass
class ModalityEvidence:
    """One modality's verdict. Absent (no speech, no face, no audio track) is a state, not an error."""

    modality: str
    present: bool
    valence: float = 0.0  # [-1, 1]
    confidence: float = 0.0  # [0, 1]; 0 when absent
    arousal: float | None = None  # [-1, 1] when estimated
    cues: list[Cue] = field(default_factory=list)
    features: dict[str, float] = field(default_factory=dict)
    reason: str = ""  # why absent / low confidence

    @classmethod
    def absent(cls, modality: str, reason: str) -> "ModalityEvidence":
        return cls(modality=modality, present=False, reason=reason)


@dataclass
class Evidence:
    language: str  # "en" | "zh"
    transcript: str
    segments: list[Segment]
    text: ModalityEvidence
    audio: ModalityEvidence
    visual: ModalityEvidence
    timings: dict[str, float] = field(default_factory=dict)

    def modality(self, name: str) -> ModalityEvidence:
        if name not in MODALITIES:
            raise ValueError(f"unknown modality {name!r}; valid: {', '.join(MODALITIES)}")
        return getattr(self, name)

    @property
    def present(self) -> frozenset[str]:
        return frozenset(m for m in MODALITIES if self.modality(m).present)

    @property
    def cues(self) -> list[Cue]:
        return [c for m in MODALITIES for c in self.modality(m).cues]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Evidence":
        def mod(x: dict) -> ModalityEvidence:
            return ModalityEvidence(**{**x, "cues": [Cue(**c) for c in x.get("cues", [])]})

        return cls(
            language=d["language"],
            transcript=d["transcript"],
            segments=[Segment(**s) for s in d.get("segments", [])],
            text=mod(d["text"]),
            audio=mod(d["audio"]),
            visual=mod(d["visual"]),
            timings=dict(d.get("timings", {})),
        )
