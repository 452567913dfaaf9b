"""Training: manifest → SFT/GRPO examples, verifiable rewards, LoRA SFT and GRPO with video+audio in the loss.

Modules: config (TrainConfig), data (records, evidence cache, examples), rewards (registry), common (LoRA model,
loop, logging, checkpoints), sft, grpo, cards (adapter README), crosslingual (train × test language table),
run (entry of train_grpo.py).
"""
