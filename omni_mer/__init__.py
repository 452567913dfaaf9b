"""omni-mer: cross-lingual explainable multimodal sentiment recognition from raw video.

Data path: decode (media/) -> evidence (evidence/) -> score (scorers/) -> explain (explain/) -> write (report/);
omni_mer.pipeline runs it on one file, omni_mer.batch on a folder. The map: docs/architecture.md.
"""

__version__ = "0.1.0"
