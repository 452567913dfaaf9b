"""The write stage: CSVs, per-video supplements (transcripts, blurred frames, explanation.json/.png), index.html."""
