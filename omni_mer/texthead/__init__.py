"""The trained text sentiment head: transcript -> 5-class ordinal distribution + valence, cross-lingual.

corpus (the labelled transcript tables) -> encoder (multilingual-e5 embeddings, cached) -> head (ordinal MLP,
per-language bands) -> cues (occlusion: what removing a word does to the predicted label's probability).
``omni-mer train-text`` fits it (train.py), ``omni-mer eval-text`` measures it (evaluate.py).
"""
