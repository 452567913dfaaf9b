"""Measuring the system: metrics, `omni-mer evaluate` (with faithfulness and noise robustness), perturbations,
`omni-mer bench`."""
