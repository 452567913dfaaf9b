"""Evidence extraction: text (what is said), audio (how it is said), visual (the face)."""

from omni_mer.evidence.types import Cue, Evidence, ModalityEvidence, Segment

__all__ = ["Cue", "Evidence", "ModalityEvidence", "Segment"]
