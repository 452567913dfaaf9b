"""omni-mer: cross-lingual explainable multimodal sentiment recognition from raw video.

Data path: decode (media) -> evidence -> score (scorers) -> explain -> write (outputs).
"""

__version__ = "0.1.0"
