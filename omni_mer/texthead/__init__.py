"""The trained text sentiment head: transcript -> 5-class ordinal distribution + valence, cross-lingual.

corpus (the labelled transcript tables) -> encoder (multilingual-e5 embeddings, cached) -> head (MLP, 5 logits)
-> calibrate (per-language class biases + temperature) -> cues (each word scored by the head: removed, and alone).
``omni-mer train-text`` fits it (train.py), ``omni-mer eval-text`` measures it (evaluate.py).
"""
